import { Injectable, Logger } from '@nestjs/common';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Identity } from '../auth/identity.js';
import { CloseCode, CloseReason } from '../protocol/protocol.js';
import { Connection } from './connection.js';
import { LocalMembership } from './local-membership.js';

export interface ConnectResult {
  connection: Connection;
  /** The earlier connection of the same userId, now closed with 4000. */
  replaced?: Connection;
}

/** Connected users on this instance: socket <-> userId, and the rooms each one is in here. */
@Injectable()
export class UsersService {
  private readonly logger = new Logger(UsersService.name);
  private readonly byUserId = new Map<string, Connection>();
  private readonly bySocket = new WeakMap<WebSocket, Connection>();
  readonly membership = new LocalMembership();
  private readonly connectListeners: Array<(connection: Connection) => void> = [];

  /** Called for every new connection, after any same-instance replacement. */
  onConnect(listener: (connection: Connection) => void): void {
    this.connectListeners.push(listener);
  }

  /**
   * @param transport the TCP socket under the WebSocket; see Connection.
   * @param identity who the upgrade said this is; see Connection.
   */
  connect(
    userId: string,
    socket: WebSocket,
    transport?: Duplex,
    identity?: Identity,
  ): ConnectResult {
    const connection = new Connection(userId, socket, transport, identity);
    const replaced = this.byUserId.get(userId);
    this.byUserId.set(userId, connection);
    this.bySocket.set(socket, connection);
    socket.on('pong', () => {
      connection.alive = true;
    });
    if (replaced) {
      this.membership.transfer(replaced, connection);
      this.bySocket.delete(replaced.socket);
      replaced.close(CloseCode.SessionReplaced, CloseReason.SessionReplaced);
      this.logger.log(`User ${userId} reconnected; the earlier session was replaced`);
    }
    for (const listener of this.connectListeners) {
      listener(connection);
    }
    return { connection, replaced };
  }

  /** Forgets a closed socket; returns its connection only if it was still the user's current one. */
  disconnect(socket: WebSocket): Connection | undefined {
    const connection = this.bySocket.get(socket);
    if (!connection) {
      return undefined;
    }
    this.bySocket.delete(socket);
    if (this.byUserId.get(connection.userId) === connection) {
      this.byUserId.delete(connection.userId);
    }
    return connection;
  }

  connectionOf(socket: WebSocket): Connection | undefined {
    return this.bySocket.get(socket);
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
