import { Inject, Injectable } from '@nestjs/common';
import { ROOM_BUS, type RoomBus } from '../bus/room-bus.js';
import { ROOM_STORE, type RoomStore } from '../rooms/room-store.js';
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
  constructor(
    @Inject(ROOM_BUS) private readonly bus: RoomBus,
    @Inject(ROOM_STORE) private readonly store: RoomStore,
  ) {}

  /** `{event, data}` to every member of the room, except `exceptUserId` when given. */
  toRoom(
    roomId: string,
    event: string,
    data: Record<string, unknown>,
    exceptUserId?: string,
  ): void {
    this.bus.publish(roomId, customMessage(event, data), exceptUserId);
  }

  /**
   * `{event, data}` to one member of the room, on whichever instance it is connected; false when
   * the room has no such member. ROOM_NOT_FOUND (a ProtocolError) when there is no such room.
   */
  async toMember(
    roomId: string,
    userId: string,
    event: string,
    data: Record<string, unknown>,
  ): Promise<boolean> {
    const message = customMessage(event, data);
    if ((await this.store.roleOf(roomId, userId)) === undefined) {
      return false;
    }
    return this.bus.sendToMember(roomId, userId, message);
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
