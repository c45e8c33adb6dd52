import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnModuleDestroy,
} from '@nestjs/common';
import { appConfig, type AppConfig } from '../config/app.config.js';
import type { Connection } from './connection.js';
import { UsersService } from './users.service.js';

/**
 * Pings every client each interval; a client that has not answered since the previous tick is
 * terminated, and its close handler removes it from its rooms.
 */
@Injectable()
export class HeartbeatService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(HeartbeatService.name);
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly users: UsersService,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => this.tick(), this.config.heartbeatIntervalMs);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  tick(): void {
    for (const connection of this.users.all()) {
      try {
        this.check(connection);
      } catch (error) {
        this.logger.error(`Heartbeat of ${connection.userId} failed: ${String(error)}`);
      }
    }
  }

  private check(connection: Connection): void {
    if (!connection.alive) {
      this.logger.log(`Terminating ${connection.userId}: no heartbeat answer`);
      connection.output.terminate();
      return;
    }
    connection.alive = false;
    connection.output.ping();
  }
}
