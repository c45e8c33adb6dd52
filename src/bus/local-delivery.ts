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
 * How long after a member got a snapshot of a room (`room_joined`) its `user_joined` and
 * `user_left` are checked against what it holds (see trackRoster). An arrival or a departure
 * committed just before the snapshot reaches the instance within a Redis round trip; this is
 * far past a command's timeout (1.5 s), for one held up by a stalled Redis.
 */
export const ROSTER_WATCH_MS = 30_000;

/**
 * Delivers a room event to the members connected to this instance: the part of every RoomBus
 * that touches sockets. It changes no membership: the room service does.
 */
@Injectable()
export class LocalDelivery {
  private poseAudiences = new Map<string, PoseAudience>();
  /** Rooms with members whose roster is tracked, the last tracked last (see trackRoster). */
  private readonly rosters = new Map<string, RoomRoster>();

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
    const roster = this.rosterChange(roomId, message);
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
        if (roster && !roster.room.admits(member, roster.change, roster.now)) {
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
    roster?.room.apply(roster.change);
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
    const roster = this.rosterChange(roomId, message);
    let dropped = 0;
    for (const connection of audience) {
      const joinerHeld = held?.get(connection);
      if (joinerHeld) {
        if (joinerHeld.length >= MAX_HELD_EVENTS) {
          this.fanout.overflow(connection);
        } else {
          joinerHeld.push({ event: message.event, data: message.data, frame });
        }
      } else if (roster && !roster.room.admits(connection, roster.change, roster.now)) {
        continue;
      } else if (this.users.isCurrent(connection) && !this.fanout.sendFrame(connection, frame)) {
        dropped++;
      }
    }
    if (dropped > 0) {
      this.fanout.countDrops(roomId, dropped);
    }
    roster?.room.apply(roster.change);
  }

  /**
   * A member just got a snapshot of the room: `users`, then `news`, the events held back for it
   * that it was sent right after. For ROSTER_WATCH_MS it gets a `user_joined` only for a seat
   * that is new to it, and a `user_left` only for a user it has, as on one instance. With Redis,
   * a join or leave committed just before the snapshot may be announced after it (the store's
   * answer and the announcement travel apart), and would tell it what it knows already.
   */
  trackRoster(
    connection: Connection,
    roomId: string,
    users: readonly RoomUser[],
    news: readonly { event: string; data: unknown }[],
  ): void {
    const now = Date.now();
    this.forgetRostersPast(now);
    const seats = new Map<string, number>();
    for (const user of users) {
      seats.set(user.id, seatOf(user));
    }
    for (const event of news) {
      const change = rosterChangeOf(event);
      if (change) {
        applySeat(seats, change);
      }
    }
    const room = this.rosters.get(roomId) ?? new RoomRoster();
    room.track(connection, seats, now);
    // Kept in the order they end, so that forgetRostersPast stops at the first one still on.
    this.rosters.delete(roomId);
    this.rosters.set(roomId, room);
  }

  /** The member's roster of the room is not tracked any more: it left, or was resynced. */
  untrackRoster(connection: Connection, roomId: string): void {
    this.rosters.get(roomId)?.untrack(connection);
  }

  /** For a `user_joined` or `user_left` of a room whose roster is tracked for someone. */
  private rosterChange(
    roomId: string,
    message: { event: string; data: unknown },
  ): { room: RoomRoster; change: SeatChange; now: number } | undefined {
    if (message.event !== ServerEvent.UserJoined && message.event !== ServerEvent.UserLeft) {
      return undefined;
    }
    const room = this.rosters.get(roomId);
    const change = room && rosterChangeOf(message);
    if (!room || !change) {
      return undefined;
    }
    const now = Date.now();
    if (room.until < now) {
      this.rosters.delete(roomId);
      return undefined;
    }
    return { room, change, now };
  }

  private forgetRostersPast(now: number): void {
    for (const [roomId, room] of this.rosters) {
      if (room.until >= now) {
        return;
      }
      this.rosters.delete(roomId);
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

/** A member's seat as a roster holds it: its slot, or NO_SLOT for a user without one. */
const NO_SLOT = -1;
/** Not in the room. */
const GONE = -2;

/** A `user_joined` (the user's seat) or a `user_left` (GONE). */
interface SeatChange {
  readonly userId: string;
  readonly seat: number;
}

/**
 * The rosters tracked in one room (LocalDelivery.trackRoster). Rather than a copy of the room
 * per member, one roster as the room's arrivals and departures heard here since the first of
 * them say, and per member only where its own differs: what was in flight at its snapshot.
 */
class RoomRoster {
  /** User id -> seat, as the roster events heard here say. */
  private heard?: Map<string, number>;
  /** Per member tracked: where its roster differs from `heard`, and until when it is tracked. */
  private readonly members = new Map<Connection, { differs: Map<string, number>; until: number }>();
  /** When the last member's tracking ends. */
  until = 0;

  /** `seats`: the member's roster now (its snapshot and what followed it). */
  track(connection: Connection, seats: Map<string, number>, now: number): void {
    this.members.delete(connection);
    for (const [tracked, member] of this.members) {
      if (member.until < now) {
        this.members.delete(tracked);
      }
    }
    const until = now + ROSTER_WATCH_MS;
    this.until = until;
    const heard = this.heard;
    if (!heard || this.members.size === 0) {
      // Nobody else tracked: what was heard before may be stale, this member's roster is not.
      this.heard = seats;
      this.members.set(connection, { differs: new Map(), until });
      return;
    }
    const differs = new Map<string, number>();
    for (const [userId, seat] of seats) {
      if (heard.get(userId) !== seat) {
        differs.set(userId, seat);
      }
    }
    for (const userId of heard.keys()) {
      if (!seats.has(userId)) {
        differs.set(userId, GONE);
      }
    }
    this.members.set(connection, { differs, until });
  }

  untrack(connection: Connection): void {
    this.members.delete(connection);
  }

  /** Whether the change is news to the member: always, when its roster is not tracked. */
  admits(connection: Connection, change: SeatChange, now: number): boolean {
    const member = this.members.get(connection);
    if (!member) {
      return true;
    }
    if (member.until < now) {
      this.members.delete(connection);
      return true;
    }
    const seat = member.differs.get(change.userId) ?? this.heard?.get(change.userId) ?? GONE;
    return seat !== change.seat;
  }

  /** The change was delivered: every tracked member holds it now. */
  apply(change: SeatChange): void {
    if (this.heard) {
      applySeat(this.heard, change);
    }
    for (const member of this.members.values()) {
      member.differs.delete(change.userId);
    }
  }
}

function seatOf(user: RoomUser): number {
  return user.slot ?? NO_SLOT;
}

function rosterChangeOf(event: { event: string; data: unknown }): SeatChange | undefined {
  if (event.event === ServerEvent.UserJoined) {
    const { user } = event.data as ServerEventMap['user_joined'];
    return { userId: user.id, seat: seatOf(user) };
  }
  if (event.event === ServerEvent.UserLeft) {
    return { userId: (event.data as ServerEventMap['user_left']).userId, seat: GONE };
  }
  return undefined;
}

function applySeat(seats: Map<string, number>, change: SeatChange): void {
  if (change.seat === GONE) {
    seats.delete(change.userId);
  } else {
    seats.set(change.userId, change.seat);
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
