import { Injectable } from '@nestjs/common';
import { CloseCode, CloseReason } from '../protocol/protocol.js';
import type { Connection } from './connection.js';

/** setTimeout's longest delay (about 24.8 days); a later expiry is reached in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * AUTH_MODE=jwt: closes a connection with 4001 when its token's `exp` passes, unless a
 * `refresh_token` moved the expiry on. One unref'd timer per connection, gone with its socket.
 */
@Injectable()
export class SessionExpiryService {
  private readonly timers = new Map<Connection, NodeJS.Timeout>();

  /** Ends `connection` at `expiresAt` (ms since the epoch), replacing any earlier expiry. */
  schedule(connection: Connection, expiresAt: number): void {
    const known = this.timers.has(connection);
    this.clear(connection);
    if (!connection.output.isOpen()) {
      return;
    }
    if (!known) {
      connection.output.onClose(() => this.clear(connection));
    }
    this.arm(connection, expiresAt);
  }

  clear(connection: Connection): void {
    clearTimeout(this.timers.get(connection));
    this.timers.delete(connection);
  }

  /** Connections with an expiry pending (for tests and stats). */
  get size(): number {
    return this.timers.size;
  }

  private arm(connection: Connection, expiresAt: number): void {
    const left = expiresAt - Date.now();
    const timer = setTimeout(
      () => {
        if (left > MAX_TIMER_MS) {
          this.arm(connection, expiresAt);
          return;
        }
        this.timers.delete(connection);
        connection.close(CloseCode.TokenExpired, CloseReason.TokenExpired);
      },
      Math.min(Math.max(left, 0), MAX_TIMER_MS),
    );
    timer.unref();
    this.timers.set(connection, timer);
  }
}
