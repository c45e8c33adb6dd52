import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Server } from 'node:http';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { CloseCode, CloseReason } from '../protocol/protocol.js';
import { UsersService } from '../users/users.service.js';
import { HttpDrain } from './http-drain.js';

/**
 * The graceful part of shutdown, run when the app closes (SIGTERM/SIGINT or app.close()):
 * readiness turns 503, new upgrades are refused, every client gets close 1001 and has a moment
 * to close before Nest tears the servers down. Then the HTTP connections that would keep that
 * teardown waiting are closed, so the shutdown hooks after it run too.
 */
@Injectable()
export class ShutdownService
  implements OnApplicationBootstrap, OnModuleDestroy, BeforeApplicationShutdown
{
  private readonly logger = new Logger(ShutdownService.name);
  private shuttingDown = false;
  private http?: HttpDrain;

  constructor(
    private readonly users: UsersService,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
  ) {}

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Before the server listens: every HTTP connection is seen from its start. */
  onApplicationBootstrap(): void {
    const server = this.adapterHost?.httpAdapter?.getHttpServer() as Server | undefined;
    if (server) {
      this.http = new HttpDrain(server);
    }
  }

  async onModuleDestroy(): Promise<void> {
    this.shuttingDown = true;
    const connections = [...this.users.all()];
    this.logger.log(`Shutting down: closing ${connections.length} connection(s) with 1001`);
    const closed = connections.map(
      (connection) => new Promise<void>((resolve) => connection.output.onClose(resolve)),
    );
    for (const connection of connections) {
      connection.close(CloseCode.GoingAway, CloseReason.GoingAway);
    }
    // Half the budget for clients to answer the close; the rest is Nest's own teardown.
    await Promise.race([Promise.all(closed), delay(this.config.shutdownTimeoutMs / 2)]);
  }

  /**
   * Once the clients are closed (every destroy hook ran): idle HTTP connections and ones whose
   * request never finished arriving are closed now, for Nest's close of the HTTP server would
   * wait for them. A request in progress (a /metrics scrape) gets a quarter of the budget to be
   * answered, which leaves the last quarter to the shutdown hooks.
   */
  beforeApplicationShutdown(): void {
    this.http?.drain(this.config.shutdownTimeoutMs / 4);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
