import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { CloseCode, CloseReason } from '../protocol/protocol.js';
import { UsersService } from '../users/users.service.js';

/**
 * The graceful part of shutdown, run when the app closes (SIGTERM/SIGINT or app.close()):
 * readiness turns 503, new upgrades are refused, every client gets close 1001 and has a moment
 * to close before Nest tears the servers down.
 */
@Injectable()
export class ShutdownService implements OnModuleDestroy {
  private readonly logger = new Logger(ShutdownService.name);
  private shuttingDown = false;

  constructor(
    private readonly users: UsersService,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
  ) {}

  get isShuttingDown(): boolean {
    return this.shuttingDown;
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
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
