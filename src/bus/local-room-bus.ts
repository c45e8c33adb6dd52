import { Injectable } from '@nestjs/common';
import type { ServerEvent, ServerMessage } from '../protocol/protocol.js';
import { LocalDelivery } from './local-delivery.js';
import type { RoomBus } from './room-bus.js';

/** The single-instance bus: every member of every room is a socket on this process. */
@Injectable()
export class LocalRoomBus implements RoomBus {
  constructor(private readonly local: LocalDelivery) {}

  publish<E extends ServerEvent>(
    roomId: string,
    message: ServerMessage<E>,
    exceptUserId?: string,
    throwaway = false,
  ): void {
    this.local.publish(roomId, message, exceptUserId, throwaway);
  }

  deliverCommitted<E extends ServerEvent>(
    roomId: string,
    message: ServerMessage<E>,
    exceptUserId: string,
    delivered: () => void,
  ): Promise<void> {
    this.publish(roomId, message, exceptUserId);
    delivered();
    return Promise.resolve();
  }

  sendToMember<E extends ServerEvent>(
    roomId: string,
    userId: string,
    message: ServerMessage<E>,
  ): boolean {
    const connection = this.local.memberHere(roomId, userId);
    if (!connection) {
      return false;
    }
    this.local.toMember(connection, message);
    return true;
  }

  /** The listener is never needed: on one instance, the room service makes every change itself. */
  onMembershipEnded(): void {}

  watch(): Promise<void> {
    return Promise.resolve();
  }
}
