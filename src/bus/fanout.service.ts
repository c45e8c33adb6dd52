import { Injectable } from '@nestjs/common';
import { WebSocket } from 'ws';
import type { ServerEvent, ServerMessage } from '../protocol/protocol.js';
import type { Connection } from '../users/connection.js';

/**
 * The only code that writes frames to sockets. Callers hand it a frame serialized once, however
 * many connections receive it.
 */
@Injectable()
export class Fanout {
  send<E extends ServerEvent>(connection: Connection, message: ServerMessage<E>): void {
    this.sendFrame(connection, JSON.stringify(message));
  }

  sendFrame(connection: Connection, frame: string): void {
    const socket = connection.socket;
    if (socket.readyState !== WebSocket.OPEN) {
      return;
    }
    socket.send(frame);
  }
}
