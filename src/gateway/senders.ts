import { Injectable } from '@nestjs/common';
import { ProtocolError } from '../protocol/protocol-error.js';
import { ErrorCode } from '../protocol/protocol.js';
import type { Connection } from '../users/connection.js';
import { UsersService } from '../users/users.service.js';

/** The connection behind a handler's `@ConnectedSocket()`, for built-in and custom actions. */
@Injectable()
export class Senders {
  constructor(private readonly users: UsersService) {}

  /** FORBIDDEN when the socket's session was replaced by a newer one of the same user. */
  of(socket: object): Connection {
    const connection = this.users.connectionOf(socket);
    if (!connection) {
      throw new ProtocolError(ErrorCode.Forbidden, 'This session was replaced');
    }
    return connection;
  }
}
