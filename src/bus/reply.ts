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

/**
 * Sends a room event to everyone: the actor's copy is its reply (with `requestId`), the others'
 * copies carry none. `othersAlreadyTold`: other instances got it already (from a shared store).
 */
export function publishWithReply<E extends ServerEvent>(
  bus: RoomBus,
  fanout: Fanout,
  actor: Connection,
  roomId: string,
  message: ServerMessage<E>,
  requestId: string | undefined,
  othersAlreadyTold = false,
): void {
  const reply = () =>
    fanout.send(actor, { event: message.event, data: withRequestId(requestId, message.data) });
  if (othersAlreadyTold) {
    bus.deliverCommitted(roomId, message, actor.userId, reply);
    return;
  }
  bus.publish(roomId, message, actor.userId);
  reply();
}
