import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { appConfig, type AppConfig } from '../config/app.config.js';
import type { Connection } from './connection.js';
import { UsersService } from './users.service.js';
import { StructuredLogger } from '../logging/structured-logger.js';
import { truncate } from '../logging/log-fields.js';

/**
 * Pings every client each interval; a client that has not answered since the previous tick is
 * terminated, and its close handler removes it from its rooms. Through the Connection, so the kill
 * is counted in gms_server_disconnects_total (as 1006: the socket gets no close frame).
 */
@Injectable()
export class HeartbeatService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new StructuredLogger(HeartbeatService.name);
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
        this.logger.error('Heartbeat failed', error, {
          userId: connection.userId,
          ...connection.logContext,
        });
      }
    }
  }

  private check(connection: Connection): void {
    if (!connection.alive) {
      this.logger.log(`Terminating ${truncate(connection.userId)}: no heartbeat answer`, {
        userId: connection.userId,
        ...connection.logContext,
      });
      connection.terminate();
      return;
    }
    connection.alive = false;
    connection.output.ping();
  }
}
