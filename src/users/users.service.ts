import { Injectable, Optional } from '@nestjs/common';
import type { Identity } from '../auth/identity.js';
import { CloseCode, CloseReason } from '../protocol/protocol.js';
import { ServerCounters } from '../telemetry/server-counters.js';
import type { ClientLink } from './client-link.js';
import { Connection } from './connection.js';
import { LocalMembership } from './local-membership.js';
import { StructuredLogger } from '../logging/structured-logger.js';
import { truncate } from '../logging/log-fields.js';

/** See UsersService.onConnect. */
export type ConnectListener = (connection: Connection) => void | Promise<void>;

export interface ConnectResult {
  connection: Connection;
  /** The earlier connection of the same userId, now closed with 4000. */
  replaced?: Connection;
}

/**
 * Connected users on this instance: transport handle (the gateway's socket) <-> userId, and the
 * rooms each one is in here.
 */
@Injectable()
export class UsersService {
  private readonly logger = new StructuredLogger(UsersService.name);
  private readonly byUserId = new Map<string, Connection>();
  private readonly byHandle = new WeakMap<object, Connection>();
  /** Users whose connection dropped and whose seats are held for a resume. */
  private readonly held = new Set<string>();
  readonly membership = new LocalMembership();
  private readonly connectListeners: Array<ConnectListener> = [];
  private readonly countClose: (code: number) => void;

  constructor(@Optional() counters: ServerCounters = new ServerCounters()) {
    this.countClose = (code) => counters.disconnect(code);
  }

  /**
   * Called for every new connection, after any same-instance replacement. A listener that returns
   * a promise holds the connection's frames back until it settles (Connection.connectWork), so
   * that what a client sends first sees what the listener did (its rooms taken over).
   */
  onConnect(listener: ConnectListener): void {
    this.connectListeners.push(listener);
  }

  /**
   * @param handle the transport's object for this client; see Connection.
   * @param identity who the upgrade said this is; see Connection.
   * @param takeRooms false: an earlier connection of the user keeps its rooms (a resume detaches
   *   them and takes them back itself); default: they move to this one.
   */
  connect(
    userId: string,
    handle: object,
    output: ClientLink,
    identity?: Identity,
    takeRooms = true,
  ): ConnectResult {
    const connection = new Connection(userId, handle, output, identity);
    connection.resuming = !takeRooms;
    connection.onServerClose = this.countClose;
    const replaced = this.byUserId.get(userId);
    this.byUserId.set(userId, connection);
    this.byHandle.set(handle, connection);
    output.onPong(() => {
      connection.alive = true;
    });
    if (replaced) {
      if (takeRooms) {
        this.membership.transfer(replaced, connection);
      }
      this.byHandle.delete(replaced.handle);
      replaced.close(CloseCode.SessionReplaced, CloseReason.SessionReplaced);
      this.logger.log(`User ${truncate(userId)} reconnected; the earlier session was replaced`, {
        userId,
      });
    }
    connection.connectWork = this.runConnectListeners(connection);
    return { connection, replaced };
  }

  private runConnectListeners(connection: Connection): Promise<void> | undefined {
    const work: Promise<void>[] = [];
    for (const listener of this.connectListeners) {
      const started = listener(connection);
      if (started) {
        work.push(started);
      }
    }
    if (work.length === 0) {
      return undefined;
    }
    // The frames wait for the work, not for its outcome: a listener's failure is its own to log.
    return Promise.allSettled(work).then(() => undefined);
  }

  /** Forgets a closed client; returns its connection only if it was still the user's current one. */
  disconnect(handle: object): Connection | undefined {
    const connection = this.byHandle.get(handle);
    if (!connection) {
      return undefined;
    }
    this.byHandle.delete(handle);
    if (this.byUserId.get(connection.userId) === connection) {
      this.byUserId.delete(connection.userId);
    }
    return connection;
  }

  /** Whether this is still its client's connection here: not closed, not replaced. */
  isCurrent(connection: Connection): boolean {
    return this.byHandle.get(connection.handle) === connection && connection.output.isOpen();
  }

  /** The user's connection dropped; its seats are held until it resumes or the grace ends. */
  hold(userId: string): void {
    this.held.add(userId);
  }

  release(userId: string): void {
    this.held.delete(userId);
  }

  isHeld(userId: string): boolean {
    return this.held.has(userId);
  }

  heldCount(): number {
    return this.held.size;
  }

  connectionOf(handle: object): Connection | undefined {
    return this.byHandle.get(handle);
  }

  byUser(userId: string): Connection | undefined {
    return this.byUserId.get(userId);
  }

  all(): IterableIterator<Connection> {
    return this.byUserId.values();
  }

  count(): number {
    return this.byUserId.size;
  }
}
