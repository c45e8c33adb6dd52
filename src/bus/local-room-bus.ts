import { Injectable } from '@nestjs/common';
import { ServerEvent, type ServerMessage } from '../protocol/protocol.js';
import type { Connection } from '../users/connection.js';
import { UsersService } from '../users/users.service.js';
import { Fanout } from './fanout.service.js';
import { toOutgoingFrame } from './outgoing-frame.js';
import type { RoomBus } from './room-bus.js';

/** The single-instance bus: every member of every room is a socket on this process. */
@Injectable()
export class LocalRoomBus implements RoomBus {
  constructor(
    private readonly users: UsersService,
    private readonly fanout: Fanout,
  ) {}

  publish<E extends ServerEvent>(
    roomId: string,
    message: ServerMessage<E>,
    exceptUserId?: string,
    throwaway = false,
  ): void {
    const membership = this.users.membership;
    const members = membership.members(roomId);
    const pending = membership.pending(roomId);
    if (!members && !pending) {
      return;
    }
    const frame = toOutgoingFrame(message, { throwaway, roomId });
    if (members) {
      for (const member of members) {
        if (member.userId !== exceptUserId) {
          this.fanout.sendFrame(member, frame);
        }
      }
    }
    if (pending) {
      for (const [member, held] of pending) {
        if (member.userId !== exceptUserId) {
          held.push({ event: message.event, data: message.data, frame });
        }
      }
    }
    this.afterDelivery(roomId, message);
  }

  sendToMember<E extends ServerEvent>(
    roomId: string,
    userId: string,
    message: ServerMessage<E>,
  ): boolean {
    const connection = this.users.byUser(userId);
    if (!connection || !connection.rooms.has(roomId)) {
      return false;
    }
    this.fanout.send(connection, message);
    this.afterDirectDelivery(connection, roomId, message);
    return true;
  }

  /** Membership changes that travel with an event: a deleted room loses its local members. */
  private afterDelivery(roomId: string, message: { event: ServerEvent }): void {
    if (message.event === ServerEvent.RoomDeleted) {
      this.users.membership.removeRoom(roomId);
      this.fanout.forgetRoom(roomId);
    }
  }

  /** A kicked member stops receiving the room's events the moment it is told. */
  private afterDirectDelivery(
    connection: Connection,
    roomId: string,
    message: { event: ServerEvent },
  ): void {
    if (message.event === ServerEvent.Kicked) {
      this.users.membership.remove(connection, roomId);
    }
  }
}
