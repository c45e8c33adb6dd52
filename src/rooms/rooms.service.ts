import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { ROOM_BUS, type RoomBus } from '../bus/room-bus.js';
import { appConfig, type AppConfig } from '../config/app.config.js';
import type { LeaveReason } from '../extensions/room-events.js';
import { RoomEvents } from '../extensions/room-events.service.js';
import {
  attemptKeyOf,
  PasswordAttempts,
  type PasswordAttempt,
} from '../limits/password-attempts.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import {
  ClientAction,
  ErrorCode,
  MIN_ROLE,
  type Avatar,
  type Role,
  type RoomUser,
} from '../protocol/protocol.js';
import type { Connection } from '../users/connection.js';
import { UsersService } from '../users/users.service.js';
import { limitPasswordHashing } from './password-hashing.js';
import {
  ROOM_CHANGE_DELIVERY,
  type RequestOrigin,
  type RoomChange,
  type RoomChangeDelivery,
} from './room-changes.js';
import {
  ROOM_STORE,
  type GrantableRole,
  type LeaveOutcome,
  type RoomConfig,
  type RoomOwner,
  type RoomActor,
  type RoomQuota,
  type JoinOutcome,
  type RoomStore,
} from './room-store.js';

export type { RoomOwner } from './room-store.js';

/** A join that checks no password has no attempt to count. */
const NO_ATTEMPT: PasswordAttempt = { settle: () => undefined };

export interface CreateRoomCommand {
  roomId?: string;
  name?: string;
  maxUsers?: number;
  password?: string;
  persistent?: boolean;
  defaultRole?: GrantableRole;
  /** The room counts against this owner's quota (MAX_ROOMS_PER_USER / _IP); none: no quota. */
  owner?: RoomOwner;
  /** False when the caller's token does not allow creating rooms; default true. */
  mayCreateRoom?: boolean;
  /** The userId of the creator, for the `room.created` event. */
  createdBy?: string;
}

export interface JoinRoomCommand {
  roomId: string;
  password?: string;
  name?: string;
  role?: Role;
  avatar?: Avatar;
  /** The highest role this membership may ever hold (from the caller's token); none = no cap. */
  maxRole?: Role;
  /** False: a missing room is ROOM_NOT_FOUND instead of being created; default true. */
  mayCreateRoom?: boolean;
  /** The owner a room created by this join counts against. */
  owner?: RoomOwner;
  /**
   * Taking over a membership on record (the user's session moved here from another instance):
   * it is answered as it is, without the admission checks, and moves to this instance.
   */
  takeOver?: boolean;
}

/** What the caller's checks let a join of a room be: the token's role cap, and the profile. */
export type JoinTerms = Pick<JoinRoomCommand, 'name' | 'role' | 'avatar' | 'maxRole'>;

/**
 * The checks a `join_room` of `roomId` passes (the token's rooms claim, the beforeJoin hooks),
 * made by the gateway, which knows them; throws (FORBIDDEN, a hook's veto) to refuse the join.
 */
export type JoinAdmission = (roomId: string) => Promise<JoinTerms>;

/**
 * Room lifecycle, membership and roles: the rules, the store's check-and-writes and this
 * instance's memberships. What changed goes to the delivery (ROOM_CHANGE_DELIVERY), which
 * decides the events and replies, and to extensions as lifecycle events (RoomEvents).
 */
@Injectable()
export class RoomsService {
  private readonly logger = new Logger(RoomsService.name);
  /** Wrong passwords per client and room, on this instance (PASSWORD_MAX_FAILURES). */
  private readonly passwordAttempts: PasswordAttempts;

  constructor(
    @Inject(ROOM_STORE) private readonly store: RoomStore,
    @Inject(ROOM_BUS) private readonly bus: RoomBus,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
    private readonly users: UsersService,
    @Inject(ROOM_CHANGE_DELIVERY) private readonly delivery: RoomChangeDelivery,
    private readonly events: RoomEvents,
  ) {
    this.passwordAttempts = new PasswordAttempts(config.passwordAttempts);
    // The hashes' bound is the process's (its thread pool), set from the config it boots with.
    limitPasswordHashing(config.passwordHashing);
    this.bus.onMembershipEnded((roomId, userId) => this.endLocalMembership(roomId, userId));
    this.bus.onResyncNeeded((roomId) => void this.resyncLocalMembers(roomId));
    this.bus.onLiveMemberLeft((roomId, userId) => void this.confirmLocalMember(roomId, userId));
  }

  async create(command: CreateRoomCommand): Promise<string> {
    if (command.mayCreateRoom === false) {
      throw ProtocolError.forbidden('Your token does not allow creating rooms');
    }
    const roomId = command.roomId ?? generateRoomId();
    const maxUsers = command.maxUsers ?? this.config.maxUsersPerRoom;
    if (maxUsers > this.config.maxUsersPerRoom) {
      throw ProtocolError.validation(
        'config.maxUsers',
        `config.maxUsers may be at most ${this.config.maxUsersPerRoom}`,
      );
    }
    const config: RoomConfig = {
      ...(command.name !== undefined ? { name: command.name } : {}),
      maxUsers,
      persistent: command.persistent ?? false,
      defaultRole: command.defaultRole ?? 'editor',
    };
    const quota = this.quotaOf(command.owner);
    await this.store.create(
      {
        roomId,
        config,
        createdAt: Date.now(),
        ...(command.password ? { password: command.password } : {}),
        ...(quota ? { quota } : {}),
      },
      this.config.maxRooms,
    );
    this.logger.log(`Room ${roomId} created${config.persistent ? ' (persistent)' : ''}`);
    this.events.emit('room.created', {
      roomId,
      persistent: config.persistent,
      ...(command.createdBy !== undefined ? { createdBy: command.createdBy } : {}),
    });
    return roomId;
  }

  /**
   * Joins (creating the room if needed). The joiner's local membership is pending while the
   * store takes the snapshot, so `room_joined` goes out before any other event of the room, and
   * nothing published meanwhile is lost or repeated.
   */
  /**
   * The store part of a join: the joiner's local membership is left pending (the caller completes
   * it) and undefined when a takeover found a held seat, which waits for its own resume or join.
   */
  private async admit(
    connection: Connection,
    command: JoinRoomCommand,
  ): Promise<JoinOutcome | undefined> {
    const { roomId } = command;
    const membership = this.users.membership;
    // Taken before this join counts: a member on record here that nothing here holds is a ghost.
    const heldHere = this.holdsHere(roomId, connection.userId);
    if (!membership.isMember(connection, roomId)) {
      this.checkRoomsPerConnection(connection);
    }
    const attempt = this.reservePasswordAttempt(connection, command);
    membership.beginJoin(connection, roomId);
    try {
      await this.bus.watch(roomId);
      const quota = this.quotaOf(command.owner);
      const outcome = await this.store.join({
        roomId,
        userId: connection.userId,
        name: command.name ?? connection.userId,
        avatar: command.avatar,
        requestedRole: command.role,
        ...(command.maxRole ? { maxRole: command.maxRole } : {}),
        password: command.password,
        now: Date.now(),
        configForNewRoom: {
          maxUsers: this.config.maxUsersPerRoom,
          persistent: false,
          defaultRole: 'editor',
        },
        ...(command.mayCreateRoom === false ? { mayCreate: false } : {}),
        ...(quota ? { quota } : {}),
        maxRooms: this.config.maxRooms,
        ...(command.takeOver ? { restore: true } : {}),
      });
      attempt.settle('accepted');
      if (!outcome.alreadyMember) {
        return outcome;
      }
      if (outcome.user.connected) {
        const ghost = outcome.onRecordHere === true && !heldHere && !command.takeOver;
        return ghost ? asArrival(outcome) : outcome;
      }
      if (command.takeOver) {
        // A held seat waits for its resume, a join or the grace's end, as on one instance.
        membership.abortJoin(connection, roomId);
        return undefined;
      }
      return await this.reconnectHeldSeat(roomId, connection.userId, outcome);
    } catch (error) {
      attempt.settle(isWrongPassword(error) ? 'wrong' : 'inconclusive');
      membership.abortJoin(connection, roomId);
      throw error;
    }
  }

  /**
   * A join with a password takes one of its client's attempts on the room (PasswordAttempts):
   * once wrong passwords used them up, it is refused here, before the store hashes anything, so
   * that guessing costs the guesser time and the server no thread. Without a password nothing is
   * hashed or counted; nor is a takeover, which checks no password.
   */
  private reservePasswordAttempt(
    connection: Connection,
    command: JoinRoomCommand,
  ): PasswordAttempt {
    if (command.password === undefined || command.takeOver) {
      return NO_ATTEMPT;
    }
    const { identity } = connection;
    const key = attemptKeyOf(
      { verified: identity.verified, userId: connection.userId, address: identity.address },
      command.roomId,
    );
    const reservation = this.passwordAttempts.reserve(key, performance.now());
    if (reservation.ok) {
      return reservation;
    }
    const { retryAfterMs } = reservation;
    throw new ProtocolError(
      ErrorCode.RateLimited,
      `Too many wrong passwords for room ${command.roomId}; retry in ${retryAfterMs} ms`,
      { retryAfterMs },
    );
  }

  /**
   * A `resume` for a room whose seat is gone (the grace ran out, a restart): joined again as a
   * `join_room` would be, after the same checks (`admission`: the token's rooms claim, the
   * beforeJoin hooks), without creating the room. The membership is left pending for the resume
   * to complete with the others; undefined when the room cannot be joined (it goes under `lost`).
   */
  async rejoinForResume(
    connection: Connection,
    roomId: string,
    admission: JoinAdmission,
  ): Promise<JoinOutcome | undefined> {
    try {
      const terms = await admission(roomId);
      const outcome = await this.admit(connection, { ...terms, roomId, mayCreateRoom: false });
      if (outcome) {
        connection.profiles.set(roomId, outcome.user);
      }
      return outcome;
    } catch (error) {
      const why = `Resume of ${connection.userId} could not join ${roomId}: ${String(error)}`;
      // A refusal (not listed, a hook's veto, full) is the client's lost room; anything else, such
      // as a hook's invalid result, is a fault to look into.
      if (error instanceof ProtocolError && error.code !== ErrorCode.InternalError) {
        this.logger.log(why);
      } else {
        this.logger.error(why);
      }
      return undefined;
    }
  }

  /** Extensions hear of a member a `resume` joined again (rejoinForResume). */
  noteJoinedByResume(roomId: string, user: RoomUser): void {
    this.events.emit('member.joined', { roomId, user });
  }

  async join(connection: Connection, command: JoinRoomCommand, requestId?: string): Promise<void> {
    const { roomId } = command;
    const membership = this.users.membership;
    const outcome = await this.admit(connection, command);
    if (!outcome) {
      return;
    }
    if (!this.users.isCurrent(connection)) {
      // It closed (or was replaced) while the store took the join: nobody was told of it yet.
      membership.abortJoin(connection, roomId);
      await this.undoJoin(roomId, connection.userId, outcome.alreadyMember);
      throw ProtocolError.forbidden('This connection closed while it was joining');
    }
    if (outcome.createdRoom) {
      this.logger.log(`Room ${roomId} created on join`);
      this.events.emit('room.created', {
        roomId,
        persistent: false,
        createdBy: connection.userId,
      });
    }
    connection.profiles.set(roomId, outcome.user);
    // Completed and delivered in one step: nothing of the room can reach the joiner in between.
    const held = membership.completeJoin(connection, roomId, outcome.roomInfo.state.version);
    this.deliver({
      kind: 'member_joined',
      roomId,
      origin: { connection, requestId },
      roomInfo: outcome.roomInfo,
      user: outcome.user,
      held,
      alreadyMember: outcome.alreadyMember,
      roleChanged: outcome.roleChanged === true,
    });
    if (!outcome.alreadyMember) {
      this.events.emit('member.joined', { roomId, user: outcome.user });
    } else if (outcome.roleChanged) {
      this.events.emit('member.role_changed', {
        roomId,
        userId: outcome.user.id,
        role: outcome.user.role,
      });
    }
  }

  /**
   * A member whose connection dropped joins again on a new one instead of resuming: its held
   * seat is its own again, connected, and the room is told.
   */
  private async reconnectHeldSeat(
    roomId: string,
    userId: string,
    outcome: JoinOutcome,
  ): Promise<JoinOutcome> {
    const seat = await this.store.setConnected(roomId, userId, true, Date.now());
    if (!seat) {
      return outcome;
    }
    this.deliver({ kind: 'member_updated', roomId, user: seat.user });
    return { ...outcome, user: seat.user, roomInfo: seat.roomInfo };
  }

  async leave(connection: Connection, roomId: string, requestId?: string): Promise<void> {
    const outcome = await this.store.leave(roomId, connection.userId, Date.now());
    this.users.membership.remove(connection, roomId);
    if (!outcome) {
      // Not on record any more (already gone from the store): the sender is answered, nobody told.
      this.deliver({
        kind: 'member_left',
        roomId,
        userId: connection.userId,
        origin: { connection, requestId },
        announce: false,
      });
      return;
    }
    const origin = { connection, requestId };
    if (outcome.remaining > 0 || this.config.emptyRoomTtlMs > 0) {
      await this.announceDeparture(roomId, connection.userId, outcome, 'left', origin);
      return;
    }
    // The room empties and goes now (EMPTY_ROOM_TTL_MS=0): the sender hears back once it is gone,
    // so that its room quota already counts one room less.
    await this.announceDeparture(roomId, connection.userId, outcome, 'left');
    this.deliver({
      kind: 'member_left',
      roomId,
      userId: connection.userId,
      origin,
      announce: false,
    });
  }

  /**
   * A closed or dead socket leaves every room it was in; nobody gets a reply. A room the store
   * fails for is logged and the others are still left (in cluster mode, recovery removes the
   * rest when Redis answers again).
   */
  async leaveAll(connection: Connection): Promise<void> {
    const roomIds = [...connection.rooms];
    for (const roomId of roomIds) {
      this.users.membership.remove(connection, roomId);
    }
    await this.removeDeparted(connection.userId, roomIds);
  }

  /**
   * Takes a user that is gone (closed, dropped, its held seats expired) out of rooms, and tells
   * each room. Every leave goes to the store at once, before this returns to the event loop: a
   * join of the same user that comes after (a reconnect) then reaches the store after them, and
   * is not taken out by a leave that was still to be sent.
   */
  removeDeparted(userId: string, roomIds: readonly string[]): Promise<void> {
    return Promise.all(roomIds.map((roomId) => this.removeDepartedFrom(roomId, userId))).then(
      () => undefined,
    );
  }

  private async removeDepartedFrom(roomId: string, userId: string): Promise<void> {
    try {
      const outcome = await this.store.leave(roomId, userId, Date.now());
      if (outcome) {
        await this.announceDeparture(roomId, userId, outcome, 'disconnected');
      }
    } catch (error) {
      this.logger.error(`Could not remove ${userId} from room ${roomId}: ${String(error)}`);
    }
  }

  /**
   * Takes back a join nobody heard of (its connection closed first: a `join_room` here, a room a
   * `resume` joined again); a member from before keeps its membership.
   */
  async undoJoin(roomId: string, userId: string, wasMember: boolean): Promise<void> {
    if (wasMember) {
      return;
    }
    const outcome = await this.store.leave(roomId, userId, Date.now());
    if (outcome?.remaining === 0 && this.config.emptyRoomTtlMs === 0) {
      await this.deleteExpiredRooms();
    }
  }

  roleOf(roomId: string, userId: string): Promise<Role | undefined> {
    return this.store.roleOf(roomId, userId);
  }

  async setRole(
    actor: Connection,
    roomId: string,
    targetUserId: string,
    role: Role,
    requestId?: string,
  ): Promise<void> {
    rejectSelfTarget(actor, targetUserId);
    const changed = await this.store.setRole(
      roomId,
      targetUserId,
      role,
      actorFor(actor, ClientAction.SetRole),
    );
    const target = changed.pop() as RoomUser;
    this.deliver({
      kind: 'roles_changed',
      roomId,
      alsoChanged: changed,
      target,
      origin: { connection: actor, requestId },
    });
    for (const user of [...changed, target]) {
      this.events.emit('member.role_changed', {
        roomId,
        userId: user.id,
        role: user.role,
        by: actor.userId,
      });
    }
  }

  async kick(
    actor: Connection,
    roomId: string,
    targetUserId: string,
    requestId?: string,
  ): Promise<void> {
    rejectSelfTarget(actor, targetUserId);
    const now = Date.now();
    const outcome = await this.store.kick(
      roomId,
      targetUserId,
      now + this.config.kickBanMs,
      now,
      actorFor(actor, ClientAction.KickUser),
    );
    // The notice reaches the member while it is still one; then it stops receiving the room.
    this.deliver({ kind: 'member_kicked', roomId, userId: targetUserId });
    this.forgetLocalMember(roomId, targetUserId);
    this.logger.log(`User ${targetUserId} kicked from room ${roomId} by ${actor.userId}`);
    await this.announceDeparture(roomId, targetUserId, outcome, 'kicked', {
      connection: actor,
      requestId,
    });
  }

  async delete(actor: Connection, roomId: string, requestId?: string): Promise<void> {
    await this.store.delete(roomId, actorFor(actor, ClientAction.DeleteRoom));
    this.deliver({
      kind: 'room_deleted',
      roomId,
      reason: 'deleted',
      origin: { connection: actor, requestId },
      announce: true,
    });
    this.users.membership.removeRoom(roomId);
    this.logger.log(`Room ${roomId} deleted by ${actor.userId}`);
    this.events.emit('room.deleted', { roomId, reason: 'deleted', by: actor.userId });
  }

  /** Deletes empty and idle rooms whose time is up and tells members of idle ones. */
  async deleteExpiredRooms(): Promise<void> {
    const expired = await this.store.deleteExpired({
      now: Date.now(),
      emptyRoomTtlMs: this.config.emptyRoomTtlMs,
      roomTimeoutMs: this.config.roomTimeoutMs,
      persistentRoomIdleMs: this.config.persistentRoomIdleMs,
    });
    for (const room of expired) {
      this.deliver({
        kind: 'room_deleted',
        roomId: room.roomId,
        reason: 'idle_timeout',
        announce:
          room.memberIds.length > 0 || this.users.membership.members(room.roomId) !== undefined,
      });
      this.users.membership.removeRoom(room.roomId);
      this.logger.log(`Room ${room.roomId} deleted (${room.reason})`);
      this.events.emit('room.deleted', { roomId: room.roomId, reason: room.reason });
    }
  }

  /**
   * This instance may have missed events of the room (see RoomBus.onResyncNeeded): each member
   * here gets the room as the store has it, or `room_left` when the store no longer lists it.
   */
  async resyncLocalMembers(roomId: string): Promise<void> {
    const members = this.users.membership.members(roomId);
    for (const connection of members ? [...members] : []) {
      try {
        // Marking it connected changes nothing: it is, here. The answer is the room as it is.
        const seat = await this.store.setConnected(roomId, connection.userId, true, Date.now());
        if (!connection.rooms.has(roomId)) {
          continue;
        }
        if (!seat) {
          this.users.membership.remove(connection, roomId);
          this.deliver({ kind: 'member_resynced', roomId, connection });
          continue;
        }
        connection.stateVersions.set(roomId, seat.roomInfo.state.version);
        connection.profiles.set(roomId, seat.user);
        this.deliver({ kind: 'member_resynced', roomId, connection, roomInfo: seat.roomInfo });
      } catch (error) {
        this.logger.warn(`Could not resync ${connection.userId} in ${roomId}: ${String(error)}`);
      }
    }
  }

  /**
   * Another instance announced the departure of a member connected here. If the store has it,
   * the announcement was older than its seat (its former socket's late leave, on another
   * instance): the room, the member included, is told it is there. If not, another instance
   * took this one for dead, and the next presence beat registers it again.
   */
  private async confirmLocalMember(roomId: string, userId: string): Promise<void> {
    try {
      const seat = await this.store.setConnected(roomId, userId, true, Date.now());
      const connection = this.users.byUser(userId);
      if (seat && connection?.rooms.has(roomId)) {
        this.deliver({ kind: 'member_returned', roomId, user: seat.user });
      }
    } catch (error) {
      this.logger.warn(`Could not confirm ${userId} in ${roomId}: ${String(error)}`);
    }
  }

  /**
   * Another instance ended this instance's membership in a room: the room was deleted (no
   * userId) or a member connected here was kicked.
   */
  private endLocalMembership(roomId: string, userId?: string): void {
    if (userId === undefined) {
      this.users.membership.removeRoom(roomId);
      return;
    }
    this.forgetLocalMember(roomId, userId);
  }

  /**
   * Tells the room a member is gone (and who hosts now): for leaves, kicks and ghosts removed.
   * `origin`: the request to answer (`leave_room`, or the host's `kick_user`).
   */
  async announceDeparture(
    roomId: string,
    userId: string,
    outcome: LeaveOutcome,
    reason: LeaveReason,
    origin?: RequestOrigin,
  ): Promise<void> {
    this.deliver({
      kind: 'member_left',
      roomId,
      userId,
      ...(outcome.newHost ? { newHost: outcome.newHost } : {}),
      ...(origin ? { origin } : {}),
      ...(reason === 'kicked' ? { kicked: true } : {}),
    });
    this.events.emit('member.left', {
      roomId,
      userId,
      reason,
      ...(reason === 'kicked' && origin ? { by: origin.connection.userId } : {}),
      ...(outcome.newHost ? { newHost: outcome.newHost } : {}),
    });
    if (outcome.newHost) {
      // The host left: the server handed the room over.
      this.events.emit('member.role_changed', {
        roomId,
        userId: outcome.newHost.id,
        role: outcome.newHost.role,
      });
    }
    if (outcome.remaining === 0 && this.config.emptyRoomTtlMs === 0) {
      await this.deleteExpiredRooms();
    }
  }

  /** A member's connection dropped or came back (`user.connected`): the room is told. */
  announceConnection(roomId: string, user: RoomUser): void {
    this.deliver({ kind: 'member_updated', roomId, user });
  }

  /**
   * A member connected here is on record again after the store lost it: the room is told it
   * joined. `leftAnnounced`: another instance removed it, taking this one for dead, and told the
   * room (and the extensions, `member.left`) it left, so `member.joined` follows. A membership
   * Redis lost (an outage) changed nothing for the extensions, and fires nothing.
   */
  announceReturn(roomId: string, user: RoomUser, leftAnnounced: boolean): void {
    this.deliver({ kind: 'member_returned', roomId, user });
    if (leftAnnounced) {
      this.events.emit('member.joined', { roomId, user });
    }
  }

  /** A room without a host was given one by the store (RedisRecoveryService): the room is told. */
  announceNewHost(roomId: string, host: RoomUser): void {
    this.deliver({ kind: 'host_appointed', roomId, host });
    this.events.emit('member.role_changed', { roomId, userId: host.id, role: host.role });
  }

  /**
   * Whether a socket here is in the room or joining it, or the user's seats are held for a
   * resume. A member on record for this instance that none of these holds is a ghost: a join
   * Redis carried out after its caller gave up on it, which nobody announced.
   */
  holdsHere(roomId: string, userId: string): boolean {
    const connection = this.users.byUser(userId);
    if (connection?.rooms.has(roomId)) {
      return true;
    }
    if (connection && this.users.membership.pending(roomId)?.has(connection)) {
      return true;
    }
    return this.users.isHeld(userId);
  }

  private forgetLocalMember(roomId: string, userId: string): void {
    const connection = this.users.byUser(userId);
    if (connection?.rooms.has(roomId)) {
      this.users.membership.remove(connection, roomId);
    }
  }

  private deliver(change: RoomChange): void {
    void this.delivery.deliver(change);
  }

  /** The quota a room created for `owner` counts against (0: none); no owner or id, no quota. */
  private quotaOf(owner: RoomOwner | undefined): RoomQuota | undefined {
    if (!owner?.id) {
      return undefined;
    }
    const maxRooms =
      owner.kind === 'user' ? this.config.maxRoomsPerUser : this.config.maxRoomsPerIp;
    return { owner: { kind: owner.kind, id: owner.id }, maxRooms };
  }

  private checkRoomsPerConnection(connection: Connection): void {
    if (connection.rooms.size >= this.config.maxRoomsPerConnection) {
      throw new ProtocolError(
        ErrorCode.TooManyRooms,
        `A connection may be in at most ${this.config.maxRoomsPerConnection} rooms`,
      );
    }
  }
}

function isWrongPassword(error: unknown): boolean {
  return error instanceof ProtocolError && error.code === ErrorCode.InvalidPassword;
}

function generateRoomId(): string {
  const bytes = randomBytes(12);
  let id = 'room-';
  for (const byte of bytes) {
    id += (byte % 36).toString(36);
  }
  return id;
}

/**
 * A ghost joined again (see holdsHere): nobody was told of it, so it joins as a newcomer would,
 * and the room hears of it now. The presence beat would have announced its removal likewise.
 */
function asArrival(outcome: JoinOutcome): JoinOutcome {
  return { ...outcome, alreadyMember: false, roleChanged: false };
}

/** The store checks the actor's role again as it writes: the guard's check may be stale by then. */
function actorFor(actor: Connection, action: keyof typeof MIN_ROLE): RoomActor {
  return { userId: actor.userId, minRole: MIN_ROLE[action] };
}

function rejectSelfTarget(actor: Connection, targetUserId: string): void {
  if (actor.userId === targetUserId) {
    throw ProtocolError.validation('targetUserId', 'You cannot target yourself');
  }
}
