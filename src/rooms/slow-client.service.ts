import { Injectable, type OnModuleInit } from '@nestjs/common';
import { Fanout } from '../bus/fanout.service.js';
import { CloseCode, CloseReason } from '../protocol/protocol.js';
import type { Connection } from '../users/connection.js';
import { UsersService } from '../users/users.service.js';
import { RoomsService } from './rooms.service.js';
import { StructuredLogger } from '../logging/structured-logger.js';
import { truncate } from '../logging/log-fields.js';

/** How long a client told to go (1013) has to close before its socket is destroyed. */
export const SLOW_CLIENT_TERMINATE_MS = 2000;

/**
 * A client whose pending output passed MAX_CLIENT_BUFFER_BYTES leaves its rooms at once (the
 * others get `user_left`), gets close 1013, and is terminated if it has not closed 2 s later.
 * Its output is discarded, so it cannot hold more memory than the limit.
 */
@Injectable()
export class SlowClientService implements OnModuleInit {
  private readonly logger = new StructuredLogger(SlowClientService.name);
  private readonly evictedListeners: Array<(connection: Connection) => Promise<void>> = [];

  constructor(
    private readonly fanout: Fanout,
    private readonly users: UsersService,
    private readonly rooms: RoomsService,
  ) {}

  onModuleInit(): void {
    // Not inside the fan-out that overflowed: it may be iterating the room this client leaves.
    this.fanout.onOverflow((connection) => queueMicrotask(() => this.evict(connection)));
  }

  /**
   * Told of every evicted connection once it has left its rooms. Its socket's close comes later
   * and finds no connection, so whatever a close ends (a resume session) ends here instead.
   */
  onEvicted(listener: (connection: Connection) => Promise<void>): void {
    this.evictedListeners.push(listener);
  }

  evict(connection: Connection): void {
    if (!this.users.disconnect(connection.handle)) {
      return;
    }
    this.logger.warn(
      `Disconnecting ${truncate(connection.userId)}: it is not reading its messages`,
      { userId: connection.userId, ...connection.logContext },
    );
    connection.evict(CloseCode.TryAgainLater, CloseReason.TryAgainLater);
    setTimeout(() => connection.output.terminate(), SLOW_CLIENT_TERMINATE_MS).unref();
    void this.leave(connection);
  }

  private async leave(connection: Connection): Promise<void> {
    const fields = { userId: connection.userId, ...connection.logContext };
    await this.rooms.leaveAll(connection).catch((error: unknown) => {
      this.logger.error('Could not remove a user from its rooms', error, fields);
    });
    for (const listener of this.evictedListeners) {
      await listener(connection).catch((error: unknown) => {
        this.logger.error('Could not end the session of an evicted user', error, fields);
      });
    }
  }
}
