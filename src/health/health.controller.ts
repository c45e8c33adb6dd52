import { Controller, Get, Inject } from '@nestjs/common';
import {
  HealthCheck,
  HealthCheckService,
  HealthIndicatorService,
  type HealthIndicatorFunction,
} from '@nestjs/terminus';
import {
  CLUSTER_COORDINATOR,
  type ClusterCoordinator,
  type ClusterDependency,
} from '../cluster/cluster-coordinator.js';
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
    @Inject(CLUSTER_COORDINATOR) private readonly cluster: ClusterCoordinator,
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

  /**
   * Readiness: 503 once shutdown has begun, and in cluster mode while Redis does not answer, so
   * load balancers send new clients elsewhere.
   */
  @Get('ready')
  @HealthCheck()
  ready() {
    const checks: HealthIndicatorFunction[] = [() => this.shutdownIndicator()];
    for (const dependency of this.cluster.dependencies) {
      checks.push(() => this.dependencyIndicator(dependency));
    }
    return this.health.check(checks);
  }

  /**
   * Never down: in cluster mode an unreachable Redis must not fail /health (a blip would restart
   * every pod); it shows as `available: false`, and /health/ready reports it.
   */
  private async roomStoreIndicator() {
    const indicator = this.indicators.check('roomStore');
    try {
      const rooms = await this.store.list();
      return indicator.up({ rooms: rooms.length, available: true });
    } catch (error) {
      return indicator.up({ rooms: 0, available: false, message: String(error) });
    }
  }

  private async dependencyIndicator(dependency: ClusterDependency) {
    const indicator = this.indicators.check(dependency.name);
    try {
      await dependency.ping();
      return indicator.up();
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
