import { Inject, Injectable } from '@nestjs/common';
import { ROOM_BUS, type RoomBus } from '../bus/room-bus.js';
import { ServerEvent, type ServerMessage } from '../protocol/protocol.js';

const CUSTOM_EVENT = /^[a-z][a-z0-9_]{0,63}$/;
const BUILT_IN_EVENTS: ReadonlySet<string> = new Set(Object.values(ServerEvent));

/**
 * Sends an extension's own events to rooms, through the same bus as the built-in ones: serialized
 * once, to every member on every instance, in order with the room's other events. The event name
 * is yours (lower snake case) and may not be a built-in one.
 */
@Injectable()
export class RoomMessenger {
  constructor(@Inject(ROOM_BUS) private readonly bus: RoomBus) {}

  /** `{event, data}` to every member of the room, except `exceptUserId` when given. */
  toRoom(
    roomId: string,
    event: string,
    data: Record<string, unknown>,
    exceptUserId?: string,
  ): void {
    this.bus.publish(roomId, customMessage(event, data), exceptUserId);
  }

  /** `{event, data}` to one member of the room; false when it is not a member anywhere. */
  toMember(roomId: string, userId: string, event: string, data: Record<string, unknown>): boolean {
    return this.bus.sendToMember(roomId, userId, customMessage(event, data));
  }
}

function customMessage(event: string, data: Record<string, unknown>): ServerMessage {
  if (!CUSTOM_EVENT.test(event) || BUILT_IN_EVENTS.has(event)) {
    throw new Error(
      `"${event}" cannot be an extension's event name (lower_snake_case, not built in)`,
    );
  }
  // The bus carries any {event, data}; only the built-in ones are typed.
  return { event, data } as unknown as ServerMessage;
}
