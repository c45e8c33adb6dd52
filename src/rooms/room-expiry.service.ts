import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnModuleDestroy,
} from '@nestjs/common';
import { ProtocolError } from '../protocol/protocol-error.js';
import { ErrorCode } from '../protocol/protocol.js';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { RelayService } from './relay.service.js';
import { RoomsService } from './rooms.service.js';

const MAX_SWEEP_INTERVAL_MS = 1000;
const MIN_SWEEP_INTERVAL_MS = 20;

/** Runs the empty-room and idle-room deadlines on a timer. */
@Injectable()
export class RoomExpiryService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(RoomExpiryService.name);
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly rooms: RoomsService,
    private readonly relay: RelayService,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.sweep(), this.sweepIntervalMs());
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  async sweep(): Promise<void> {
    try {
      await this.rooms.deleteExpiredRooms();
      this.relay.pruneActivityRecords(Date.now());
    } catch (error) {
      // Redis being away is reported by the cluster module; the next sweep tries again.
      if (error instanceof ProtocolError && error.code === ErrorCode.Unavailable) {
        this.logger.debug(`Room expiry sweep skipped: ${error.message}`);
        return;
      }
      this.logger.error(`Room expiry sweep failed: ${String(error)}`);
    }
  }

  /** Often enough that a deadline is met within a fraction of itself, at most once a second. */
  private sweepIntervalMs(): number {
    const shortest = Math.min(
      this.config.emptyRoomTtlMs || MAX_SWEEP_INTERVAL_MS,
      this.config.roomTimeoutMs,
    );
    return Math.max(MIN_SWEEP_INTERVAL_MS, Math.min(MAX_SWEEP_INTERVAL_MS, shortest / 4));
  }
}
