import { Injectable } from '@nestjs/common';
import { Fanout } from '../bus/fanout.service.js';
import type { ServerEvent, ServerMessage } from '../protocol/protocol.js';
import type { Connection } from '../users/connection.js';

/** The data of a reply: `requestId` first when the request had one, absent otherwise. */
export function withRequestId<T extends object>(
  requestId: string | undefined,
  data: T,
): T & { requestId?: string } {
  return requestId !== undefined ? { requestId, ...data } : data;
}

/**
 * The one way a request is answered: a handler's returned reply, an error from the exception
 * filter, and the replies that must go out in order with room events (RoomDelivery) all come
 * here. A reply is never dropped, whatever the client's backlog.
 */
@Injectable()
export class Replies {
  constructor(private readonly fanout: Fanout) {}

  /** `message` to its sender, with `requestId` first in its data when the request had one. */
  send<E extends ServerEvent>(
    connection: Connection,
    message: ServerMessage<E>,
    requestId?: string,
  ): void {
    this.fanout.send(
      connection,
      requestId === undefined
        ? message
        : { event: message.event, data: withRequestId(requestId, message.data) },
    );
  }
}
