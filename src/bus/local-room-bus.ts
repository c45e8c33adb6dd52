import { Injectable } from '@nestjs/common';
import { MemoryRoomHistory } from '../history/memory-room-history.js';
import type { AppMessage, ServerEvent, ServerMessage } from '../protocol/protocol.js';
import { UsersService } from '../users/users.service.js';
import { LocalDelivery } from './local-delivery.js';
import { toOutgoingFrame, type OutgoingFrame } from './outgoing-frame.js';
import type { RoomBus } from './room-bus.js';

/**
 * The single-instance bus: every member of every room is a socket on this process. With resume
 * on, every event but poses is numbered (`seq`) and kept in the room's history first.
 */
@Injectable()
export class LocalRoomBus implements RoomBus {
  constructor(
    private readonly local: LocalDelivery,
    private readonly users: UsersService,
    private readonly history: MemoryRoomHistory,
  ) {}

  publish<E extends ServerEvent>(
    roomId: string,
    message: ServerMessage<E>,
    exceptUserId?: string,
  ): void {
    if (!this.history.enabled) {
      this.local.publish(roomId, message, exceptUserId);
      return;
    }
    const [numbered, frame] = this.numbered(roomId, message, { except: exceptUserId });
    this.local.toRoom(roomId, numbered, frame, exceptUserId);
  }

  publishPose(
    roomId: string,
    senderId: string,
    slot: number | undefined,
    message: AppMessage,
  ): void {
    this.local.publishPose(roomId, senderId, slot, message);
  }

  publishPoseEntry(
    roomId: string,
    senderId: string,
    slot: number | undefined,
    entry: Buffer,
  ): void {
    this.local.publishPoseEntry(roomId, senderId, slot, entry);
  }

  publishWithReply<E extends ServerEvent>(
    roomId: string,
    message: ServerMessage<E>,
    actorUserId: string,
    reply: (message: ServerMessage<E>) => void,
  ): void {
    if (!this.history.enabled) {
      this.local.publish(roomId, message, actorUserId);
      reply(message);
      return;
    }
    // Kept for the actor too: if its reply is lost with its connection, a resume replays it.
    const [numbered, frame] = this.numbered(roomId, message, {});
    this.local.toRoom(roomId, numbered, frame, actorUserId);
    reply(numbered);
  }

  deliverCommitted<E extends ServerEvent>(
    roomId: string,
    message: ServerMessage<E>,
    exceptUserId: string,
    delivered: (numbered?: ServerMessage<E>) => void,
  ): Promise<void> {
    this.publishWithReply(roomId, message, exceptUserId, delivered);
    return Promise.resolve();
  }

  /** True when the member got it, or will on resume (its connection dropped, its seat held). */
  sendToMember<E extends ServerEvent>(
    roomId: string,
    userId: string,
    message: ServerMessage<E>,
  ): boolean {
    const connection = this.local.memberHere(roomId, userId);
    const held = connection === undefined && this.users.isHeld(userId);
    if (!connection && !held) {
      return false;
    }
    const [numbered] = this.history.enabled
      ? this.numbered(roomId, message, { to: userId })
      : [message];
    if (connection) {
      this.local.toMember(connection, numbered);
    }
    return true;
  }

  /** The listener is never needed: on one instance, the room service makes every change itself. */
  onMembershipEnded(): void {}

  /** Never needed: on one instance nothing is missed between the bus and the sockets. */
  onResyncNeeded(): void {}

  /** Never needed: on one instance a user's sockets never race each other's memberships. */
  onLiveMemberLeft(): void {}

  watch(): Promise<void> {
    return Promise.resolve();
  }

  /** The event with the room's next `seq`, serialized once, and kept in the room's history. */
  private numbered<E extends ServerEvent>(
    roomId: string,
    message: ServerMessage<E>,
    audience: { except?: string; to?: string },
  ): [ServerMessage<E>, OutgoingFrame] {
    const seq = this.history.nextSeq(roomId);
    const numbered = { event: message.event, data: { ...message.data, seq } } as ServerMessage<E>;
    const frame = toOutgoingFrame(numbered);
    this.history.record(roomId, { seq, frame, ...audience });
    return [numbered, frame];
  }
}
