import { Injectable, Optional } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { fitsPoseEntry, readEntryMessage } from '../protocol/binary-poses.js';
import {
  ServerEvent,
  type AppMessage,
  type RoomUser,
  type ServerEventMap,
  type ServerMessage,
} from '../protocol/protocol.js';
import { ServerCounters } from '../telemetry/server-counters.js';
import type { Connection } from '../users/connection.js';
import { UsersService } from '../users/users.service.js';
import { Fanout } from './fanout.service.js';
import { toOutgoingFrame, type OutgoingFrame } from './outgoing-frame.js';
import { PoseBatches } from './pose-batches.js';

/** A room's members here by how they take poses (see LocalDelivery.poseAudience). */
interface PoseAudience {
  json: Connection[];
  binary: Connection[];
  /** LocalMembership's revision it was taken at: any later join, leave or takeover voids it. */
  revision: number;
}

/** Events held back for one joiner while its join is answered; past it the joiner is dropped. */
export const MAX_HELD_EVENTS = 4096;

/**
 * Delivers a room event to the members connected to this instance: the part of every RoomBus
 * that touches sockets. It changes no membership: the room service does.
 */
@Injectable()
export class LocalDelivery {
  private poseAudiences = new Map<string, PoseAudience>();

  constructor(
    private readonly users: UsersService,
    private readonly fanout: Fanout,
    private readonly poseBatches: PoseBatches,
    @Optional() private readonly counters: ServerCounters = new ServerCounters(),
  ) {
    fanout.beforeFlush(() => this.forgetPoseAudiences());
  }

  /**
   * A fresh map each turn rather than clear(). V8 gives a cleared map its new table where the old
   * table lives, which for a map as old as this service is the old generation. Each turn's
   * audiences then sat in an old table, and the tables cleared before (dead, but in the old
   * generation until a full collection) still held theirs, which young collections count as live:
   * at 20x20 JSON about 220 KB of audiences were promoted per young collection, and each of these
   * took 2.0-2.1 ms at the median instead of 1.2 ms (docs/performance.md).
   */
  private forgetPoseAudiences(): void {
    if (this.poseAudiences.size > 0) {
      this.poseAudiences = new Map();
    }
  }

  /**
   * A throwaway pose of `senderId` (its `slot` in the room) to the room's other members here:
   * JSON members get the event serialized once (`frame`, when the caller has it already), binary
   * members an entry in the room's binary frame of this turn (PoseBatches) when the message fits
   * one, else the JSON frame too. Joiners in flight get nothing: the next pose is due soon.
   */
  publishPose(
    roomId: string,
    senderId: string,
    slot: number | undefined,
    message: AppMessage,
    frame?: OutgoingFrame,
  ): void {
    const audience = this.poseAudience(roomId);
    if (!audience) {
      return;
    }
    // Checked only for a room with binary members: a JSON-only room's poses skip the fit test.
    const binary = audience.binary.length > 0 && slot !== undefined && fitsPoseEntry(message);
    if (hasOthers(audience.json, senderId) || (!binary && hasOthers(audience.binary, senderId))) {
      const started = performance.now();
      const json = frame ?? poseFrame(roomId, senderId, message);
      let dropped = this.fanout.sendThrowaway(audience.json, senderId, json);
      if (!binary) {
        dropped += this.fanout.sendThrowaway(audience.binary, senderId, json);
      }
      if (dropped > 0) {
        this.fanout.countDrops(roomId, dropped);
      }
      this.counters.fanoutSeconds.observe((performance.now() - started) / 1000);
    }
    // Not timed here: the entry is only written down; its frame's delivery is (PoseBatches).
    if (binary) {
      this.poseBatches.add(roomId, slot, message);
    }
  }

  /**
   * publishPose for a pose that came on the binary channel, already in entry form (40 bytes,
   * read during the call only): binary members get it copied into the room's frame as it is,
   * and only a room with JSON members here (or a sender without a slot) has it turned into the
   * `pose_update` message. `frame` is that message's JSON frame when the caller has it already.
   */
  publishPoseEntry(
    roomId: string,
    senderId: string,
    slot: number | undefined,
    entry: Buffer,
    frame?: OutgoingFrame,
  ): void {
    if (slot === undefined) {
      this.publishPose(roomId, senderId, slot, readEntryMessage(entry, 0, senderId), frame);
      return;
    }
    const audience = this.poseAudience(roomId);
    if (!audience) {
      return;
    }
    if (hasOthers(audience.json, senderId)) {
      const started = performance.now();
      const json = frame ?? poseFrame(roomId, senderId, readEntryMessage(entry, 0, senderId));
      const dropped = this.fanout.sendThrowaway(audience.json, senderId, json);
      if (dropped > 0) {
        this.fanout.countDrops(roomId, dropped);
      }
      this.counters.fanoutSeconds.observe((performance.now() - started) / 1000);
    }
    if (audience.binary.length > 0) {
      this.poseBatches.addEntry(roomId, slot, entry);
    }
  }

  /**
   * The room's members here split by how they take poses, worked out once per turn rather than
   * once per pose: with server ticks a room's 50 poses of a tick would each walk its 50 members,
   * where the binary ones only need one entry each. Forgotten when the turn's writes start, and
   * taken again after any membership change here, so no one who left gets another pose.
   */
  private poseAudience(roomId: string): PoseAudience | undefined {
    const membership = this.users.membership;
    const revision = membership.revision();
    let audience = this.poseAudiences.get(roomId);
    if (audience && audience.revision === revision) {
      return audience;
    }
    const members = membership.members(roomId);
    if (!members) {
      this.poseAudiences.delete(roomId);
      return undefined;
    }
    audience = { json: [], binary: [], revision };
    for (const member of members) {
      (member.binaryPoses ? audience.binary : audience.json).push(member);
    }
    if (this.poseAudiences.size === 0) {
      this.fanout.scheduleFlush();
    }
    this.poseAudiences.set(roomId, audience);
    return audience;
  }

  /** Every local member of the room except `exceptUserId`; joiners in flight get it held back. */
  toRoom<E extends ServerEvent>(
    roomId: string,
    message: ServerMessage<E>,
    frame: OutgoingFrame,
    exceptUserId: string | null | undefined,
  ): void {
    if (message.event === ServerEvent.UserUpdated) {
      this.keepProfileCurrent(roomId, (message.data as ServerEventMap['user_updated']).user);
    }
    const membership = this.users.membership;
    const members = membership.members(roomId);
    if (members) {
      const started = performance.now();
      const stateVersion = stateVersionOf(message);
      let dropped = 0;
      for (const member of members) {
        if (member.userId === exceptUserId) {
          continue;
        }
        if (
          stateVersion !== undefined &&
          !membership.admitsStateVersion(member, roomId, stateVersion)
        ) {
          continue;
        }
        if (!this.fanout.sendFrame(member, frame)) {
          dropped++;
        }
      }
      if (dropped > 0) {
        this.fanout.countDrops(roomId, dropped);
      }
      this.counters.fanoutSeconds.observe((performance.now() - started) / 1000);
    }
    // Throwaway events are not held back for a joiner: the next pose is due within a tick.
    const pending = frame.throwaway ? undefined : membership.pending(roomId);
    if (pending) {
      for (const [member, held] of pending) {
        if (member.userId === exceptUserId) {
          continue;
        }
        if (held.length >= MAX_HELD_EVENTS) {
          // Its join has been pending for thousands of events: treat it as a client too slow.
          this.fanout.overflow(member);
          continue;
        }
        held.push({ event: message.event, data: message.data, frame });
      }
    }
  }

  /**
   * Who here would get an event of the room now (members and joiners in flight, but
   * `exceptUserId`): for an event delivered later, once Redis numbered it, to those it was for.
   */
  audience(roomId: string, exceptUserId: string | null | undefined): Connection[] {
    const membership = this.users.membership;
    const audience: Connection[] = [];
    for (const member of membership.members(roomId) ?? []) {
      if (member.userId !== exceptUserId) {
        audience.push(member);
      }
    }
    for (const joiner of membership.pending(roomId)?.keys() ?? []) {
      if (joiner.userId !== exceptUserId) {
        audience.push(joiner);
      }
    }
    return audience;
  }

  /**
   * Delivers to an `audience` taken earlier: a joiner still in flight gets it held back, a
   * connection closed meanwhile nothing.
   */
  toAudience<E extends ServerEvent>(
    roomId: string,
    audience: readonly Connection[],
    message: ServerMessage<E>,
    frame: OutgoingFrame,
  ): void {
    if (message.event === ServerEvent.UserUpdated) {
      this.keepProfileCurrent(roomId, (message.data as ServerEventMap['user_updated']).user);
    }
    const held = this.users.membership.pending(roomId);
    let dropped = 0;
    for (const connection of audience) {
      const joinerHeld = held?.get(connection);
      if (joinerHeld) {
        if (joinerHeld.length >= MAX_HELD_EVENTS) {
          this.fanout.overflow(connection);
        } else {
          joinerHeld.push({ event: message.event, data: message.data, frame });
        }
      } else if (this.users.isCurrent(connection) && !this.fanout.sendFrame(connection, frame)) {
        dropped++;
      }
    }
    if (dropped > 0) {
      this.fanout.countDrops(roomId, dropped);
    }
  }

  /** Serializes the event once and delivers it here, when anyone here would receive it. */
  publish<E extends ServerEvent>(
    roomId: string,
    message: ServerMessage<E>,
    exceptUserId: string | undefined,
  ): void {
    if (this.hasAudience(roomId)) {
      this.toRoom(roomId, message, toOutgoingFrame(message), exceptUserId);
    }
  }

  /** Whether any local member or joiner in flight would receive the room's events. */
  hasAudience(roomId: string): boolean {
    const membership = this.users.membership;
    return membership.members(roomId) !== undefined || membership.pending(roomId) !== undefined;
  }

  /**
   * A member here whose role changed (on any instance): its profile follows, since a Redis that
   * comes back empty gets the membership registered again from it, role included.
   */
  private keepProfileCurrent(roomId: string, user: RoomUser): void {
    const connection = this.memberHere(roomId, user.id);
    if (!connection) {
      return;
    }
    // An update may come without the slot (RedisRoomStore's role changes): the member keeps it.
    const slot = user.slot ?? connection.profiles.get(roomId)?.slot;
    connection.profiles.set(roomId, slot === undefined ? user : { ...user, slot });
  }

  /** The local connection of a room member, if it is connected here. */
  memberHere(roomId: string, userId: string): Connection | undefined {
    const connection = this.users.byUser(userId);
    return connection?.rooms.has(roomId) ? connection : undefined;
  }

  /** One member (a direct message, a kick notice). */
  toMember<E extends ServerEvent>(connection: Connection, message: ServerMessage<E>): void {
    this.fanout.send(connection, message);
  }
}

/** A pose's `message` event, serialized once for every JSON member. */
function poseFrame(roomId: string, senderId: string, message: AppMessage): OutgoingFrame {
  return toOutgoingFrame({ event: ServerEvent.Message, data: { roomId, message, senderId } }, true);
}

/** Whether anyone but the sender is among `members`. */
function hasOthers(members: readonly Connection[], senderId: string): boolean {
  return members.length > 1 || (members.length === 1 && members[0].userId !== senderId);
}

function stateVersionOf(message: { event: string; data: unknown }): number | undefined {
  return message.event === ServerEvent.StateUpdated
    ? (message.data as ServerEventMap['state_updated']).version
    : undefined;
}
