import { Inject, Injectable } from '@nestjs/common';
import { Fanout } from '../bus/fanout.service.js';
import { ROOM_BUS, type RoomBus } from '../bus/room-bus.js';
import {
  POSE_ENTRY_BYTES,
  writeClientEntry,
  type ClientPoseEntry,
} from '../protocol/binary-poses.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import { ErrorCode, ServerEvent, type AppMessage } from '../protocol/protocol.js';
import type { Connection } from '../users/connection.js';
import { PoseTicker } from './pose-ticker.js';
import { LAST_ACTIVITY_RESOLUTION_MS, ROOM_STORE, type RoomStore } from './room-store.js';

/** Relays application messages: room broadcasts (the pose hot path) and direct messages. */
@Injectable()
export class RelayService {
  /** When each room's lastActivity was last written, so a busy room writes it once a second. */
  private readonly lastActivityWrite = new Map<string, number>();
  /** A binary pose's entry on its way to the bus, which reads it during the call only. */
  private readonly entry = Buffer.alloc(POSE_ENTRY_BYTES);

  constructor(
    @Inject(ROOM_STORE) private readonly store: RoomStore,
    @Inject(ROOM_BUS) private readonly bus: RoomBus,
    private readonly fanout: Fanout,
    private readonly ticker: PoseTicker,
  ) {}

  /** Hot path: a Set lookup, one serialization in the bus, no await on success. */
  broadcast(sender: Connection, roomId: string, message: AppMessage): Promise<void> | void {
    if (!sender.rooms.has(roomId)) {
      return this.rejectNotMember(roomId, sender.userId);
    }
    if (message.senderId !== undefined && message.senderId !== sender.userId) {
      throw ProtocolError.forbidden('message.senderId must be your own userId');
    }
    if (!this.fanout.isThrowaway(message.type)) {
      this.bus.publish(
        roomId,
        { event: ServerEvent.Message, data: { roomId, message, senderId: sender.userId } },
        sender.userId,
      );
    } else if (this.ticker.enabled) {
      this.ticker.hold(sender, roomId, message);
    } else {
      this.bus.publishPose(roomId, sender.userId, sender.profiles.get(roomId)?.slot, message);
    }
    this.recordActivity(roomId);
  }

  /**
   * The pose hot path of the binary channel: a client's pose frame (checked, see checkClientPose)
   * from a member of the room, passed on in entry form without becoming a message, unless a JSON
   * member or another instance needs one.
   */
  broadcastBinaryPose(
    sender: Connection,
    roomId: string,
    frame: Buffer,
    pose: ClientPoseEntry,
  ): void {
    if (this.ticker.enabled) {
      this.ticker.holdEntry(sender, roomId, frame, pose);
    } else {
      writeClientEntry(this.entry, 0, 0, frame, pose);
      this.bus.publishPoseEntry(
        roomId,
        sender.userId,
        sender.profiles.get(roomId)?.slot,
        this.entry,
      );
    }
    this.recordActivity(roomId);
  }

  /**
   * @param via the room to send it through, which the sender must be in here; default: a room
   *   the two share.
   */
  async sendDirect(
    sender: Connection,
    targetUserId: string,
    message: AppMessage,
    via?: string,
  ): Promise<void> {
    if (message.senderId !== undefined && message.senderId !== sender.userId) {
      throw ProtocolError.forbidden('message.senderId must be your own userId');
    }
    if (via !== undefined && !sender.rooms.has(via)) {
      throw ProtocolError.notInRoom(via);
    }
    const roomId = await this.store.shareRoom(sender.userId, targetUserId, via);
    const delivered =
      roomId !== undefined &&
      this.bus.sendToMember(roomId, targetUserId, {
        event: ServerEvent.Message,
        // The room it went through: its `seq` (with resume on) counts in that room.
        data: { roomId, message, senderId: sender.userId },
      });
    if (!delivered) {
      throw new ProtocolError(
        ErrorCode.UserNotFound,
        `User ${targetUserId} is not connected or shares no room with you`,
      );
    }
  }

  /** Forgets rooms that have been quiet for a while, so the map does not grow with old rooms. */
  pruneActivityRecords(now: number): void {
    for (const [roomId, writtenAt] of this.lastActivityWrite) {
      if (now - writtenAt >= LAST_ACTIVITY_RESOLUTION_MS) {
        this.lastActivityWrite.delete(roomId);
      }
    }
  }

  private recordActivity(roomId: string): void {
    const now = Date.now();
    const last = this.lastActivityWrite.get(roomId) ?? 0;
    if (now - last < LAST_ACTIVITY_RESOLUTION_MS) {
      return;
    }
    this.lastActivityWrite.set(roomId, now);
    void this.store.touch(roomId, now);
  }

  private async rejectNotMember(roomId: string, userId: string): Promise<never> {
    // roleOf throws ROOM_NOT_FOUND for a room that does not exist.
    await this.store.roleOf(roomId, userId);
    throw ProtocolError.notInRoom(roomId);
  }
}
