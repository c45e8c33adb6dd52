import type { ServerEvent, ServerMessage } from '../protocol/protocol.js';
import type { Connection } from '../users/connection.js';
import type { Fanout } from './fanout.service.js';
import type { RoomBus } from './room-bus.js';

/** The data of a reply: `requestId` first when the request had one, absent otherwise. */
export function withRequestId<T extends object>(
  requestId: string | undefined,
  data: T,
): T & { requestId?: string } {
  return requestId !== undefined ? { requestId, ...data } : data;
}

/** Sends a room event to everyone: the actor's copy is its reply (with `requestId`), the others'
 * copies carry none. */
export function publishWithReply<E extends ServerEvent>(
  bus: RoomBus,
  fanout: Fanout,
  actor: Connection,
  roomId: string,
  message: ServerMessage<E>,
  requestId: string | undefined,
): void {
  bus.publish(roomId, message, actor.userId);
  fanout.send(actor, replyTo(message, requestId));
}

/**
 * The same for an event a shared store already published to the other instances (a commit):
 * resolves once this instance's members and the actor have it, so that the actor's next request
 * is not answered before this one.
 */
export function deliverCommittedWithReply<E extends ServerEvent>(
  bus: RoomBus,
  fanout: Fanout,
  actor: Connection,
  roomId: string,
  message: ServerMessage<E>,
  requestId: string | undefined,
): Promise<void> {
  return bus.deliverCommitted(roomId, message, actor.userId, () =>
    fanout.send(actor, replyTo(message, requestId)),
  );
}

function replyTo<E extends ServerEvent>(
  message: ServerMessage<E>,
  requestId: string | undefined,
): ServerMessage<E> {
  return { event: message.event, data: withRequestId(requestId, message.data) };
}
