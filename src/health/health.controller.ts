import { Controller, Get, Inject } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { ShutdownService } from '../lifecycle/shutdown.service.js';
import { ROOM_STORE, type RoomStore } from '../rooms/room-store.js';
import { UsersService } from '../users/users.service.js';

/** `/health` (the spec's fields plus Terminus' details), `/health/live`, `/health/ready`. */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly shutdown: ShutdownService,
    private readonly users: UsersService,
    @Inject(ROOM_STORE) private readonly store: RoomStore,
  ) {}

  @Get()
  @HealthCheck()
  async check() {
    const result = await this.health.check([() => this.roomStoreIndicator()]);
    // The store indicator's one read also gives the room count.
    const roomStore = result.details.roomStore;
    return {
      status: result.status,
      rooms: roomStore?.status === 'up' ? roomStore.rooms : 0,
      users: this.users.count(),
      uptime: process.uptime(),
      info: result.info,
      error: result.error,
      details: result.details,
    };
  }

  /** Liveness: the process answers. Never fails for a dependency, so a blip restarts nothing. */
  @Get('live')
  @HealthCheck()
  live() {
    return this.health.check([
      () => this.indicators.check('process').up({ uptime: process.uptime() }),
    ]);
  }

  /** Readiness: 503 once shutdown has begun, so load balancers stop sending new clients. */
  @Get('ready')
  @HealthCheck()
  ready() {
    return this.health.check([() => this.shutdownIndicator()]);
  }

  private async roomStoreIndicator() {
    const indicator = this.indicators.check('roomStore');
    try {
      const rooms = await this.store.list();
      return indicator.up({ rooms: rooms.length });
    } catch (error) {
      return indicator.down({ message: String(error) });
    }
  }

  private shutdownIndicator() {
    const indicator = this.indicators.check('shutdown');
    return this.shutdown.isShuttingDown
      ? indicator.down({ message: 'shutting down' })
      : indicator.up();
  }
}
