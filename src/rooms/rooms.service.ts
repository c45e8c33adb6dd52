import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Fanout } from '../bus/fanout.service.js';
import { publishWithReply, withRequestId } from '../bus/reply.js';
import { ROOM_BUS, type RoomBus } from '../bus/room-bus.js';
import { appConfig, type AppConfig } from '../config/app.config.js';
import type { LeaveReason } from '../extensions/room-events.js';
import { RoomEvents } from '../extensions/room-events.service.js';
import { RoomHooks } from '../extensions/room-hooks.service.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import {
  ErrorCode,
  ServerEvent,
  type Avatar,
  type Role,
  type RoomInfo,
  type RoomUser,
  type ServerMessage,
} from '../protocol/protocol.js';
import type { Connection } from '../users/connection.js';
import type { BufferedEvent } from '../users/local-membership.js';
import { UsersService } from '../users/users.service.js';
import { hashPassword } from './password.js';
import {
  ROOM_STORE,
  type GrantableRole,
  type LeaveOutcome,
  type RoomConfig,
  type RoomOwner,
  type RoomQuota,
  type RoomStore,
} from './room-store.js';

export type { RoomOwner } from './room-store.js';

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
}

/** Room lifecycle, membership and roles. Replies whose order matters are sent from here. */
@Injectable()
export class RoomsService {
  private readonly logger = new Logger(RoomsService.name);

  constructor(
    @Inject(ROOM_STORE) private readonly store: RoomStore,
    @Inject(ROOM_BUS) private readonly bus: RoomBus,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
    private readonly users: UsersService,
    private readonly fanout: Fanout,
    private readonly events: RoomEvents,
    private readonly hooks: RoomHooks,
  ) {}

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
      ...(command.password ? { passwordHash: await hashPassword(command.password) } : {}),
      persistent: command.persistent ?? false,
      defaultRole: command.defaultRole ?? 'editor',
    };
    const quota = this.quotaOf(command.owner);
    await this.store.create(
      { roomId, config, createdAt: Date.now(), ...(quota ? { quota } : {}) },
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
  async join(connection: Connection, request: JoinRoomCommand, requestId?: string): Promise<void> {
    const { roomId } = request;
    const membership = this.users.membership;
    if (!membership.isMember(connection, roomId)) {
      this.checkRoomsPerConnection(connection);
    }
    const command = await this.runJoinHooks(connection, request);
    membership.beginJoin(connection, roomId);
    const now = Date.now();
    let outcome;
    try {
      await this.bus.watch(roomId);
      const quota = this.quotaOf(command.owner);
      outcome = await this.store.join({
        roomId,
        userId: connection.userId,
        name: command.name ?? connection.userId,
        avatar: command.avatar,
        requestedRole: command.role,
        ...(command.maxRole ? { maxRole: command.maxRole } : {}),
        password: command.password,
        now,
        configForNewRoom: {
          maxUsers: this.config.maxUsersPerRoom,
          persistent: false,
          defaultRole: 'editor',
        },
        ...(command.mayCreateRoom === false ? { mayCreate: false } : {}),
        ...(quota ? { quota } : {}),
        maxRooms: this.config.maxRooms,
      });
    } catch (error) {
      membership.abortJoin(connection, roomId);
      throw error;
    }
    if (outcome.createdRoom) {
      this.logger.log(`Room ${roomId} created on join`);
      this.events.emit('room.created', {
        roomId,
        persistent: false,
        createdBy: connection.userId,
      });
    }
    this.fanout.send(connection, {
      event: ServerEvent.RoomJoined,
      data: withRequestId(requestId, { roomInfo: outcome.roomInfo }),
    });
    const isNews = newsFilter(outcome.roomInfo, (version) =>
      membership.admitsStateVersion(connection, roomId, version),
    );
    connection.profiles.set(roomId, outcome.user);
    const snapshotVersion = outcome.roomInfo.state.version;
    for (const held of membership.completeJoin(connection, roomId, snapshotVersion)) {
      if (isNews(held)) {
        this.fanout.sendFrame(connection, held.frame);
      }
    }
    if (outcome.alreadyMember) {
      if (outcome.roleChanged) {
        this.bus.publish(
          roomId,
          { event: ServerEvent.UserUpdated, data: { roomId, user: outcome.user } },
          connection.userId,
        );
        this.events.emit('member.role_changed', {
          roomId,
          userId: outcome.user.id,
          role: outcome.user.role,
        });
      }
      return;
    }
    this.bus.publish(
      roomId,
      { event: ServerEvent.UserJoined, data: { roomId, user: outcome.user } },
      connection.userId,
    );
    this.events.emit('member.joined', { roomId, user: outcome.user });
  }

  /** The beforeJoin hooks may veto the join (they throw) or change its name, role and avatar. */
  private async runJoinHooks(
    connection: Connection,
    command: JoinRoomCommand,
  ): Promise<JoinRoomCommand> {
    if (!this.hooks.hasJoinHooks) {
      return command;
    }
    const hooked = await this.hooks.runBeforeJoin({
      roomId: command.roomId,
      userId: connection.userId,
      identity: connection.identity,
      name: command.name ?? connection.userId,
      ...(command.role !== undefined ? { role: command.role } : {}),
      ...(command.avatar !== undefined ? { avatar: command.avatar } : {}),
    });
    return { ...command, name: hooked.name, role: hooked.role, avatar: hooked.avatar };
  }

  async leave(connection: Connection, roomId: string, requestId?: string): Promise<void> {
    const outcome = await this.store.leave(roomId, connection.userId, Date.now());
    this.users.membership.remove(connection, roomId);
    this.fanout.send(connection, {
      event: ServerEvent.RoomLeft,
      data: withRequestId(requestId, { roomId }),
    });
    if (outcome) {
      await this.announceDeparture(roomId, connection.userId, outcome, 'left');
    }
  }

  /** A closed or dead socket leaves every room it was in; nobody gets a reply. */
  async leaveAll(connection: Connection): Promise<void> {
    for (const roomId of [...connection.rooms]) {
      this.users.membership.remove(connection, roomId);
      const outcome = await this.store.leave(roomId, connection.userId, Date.now());
      if (outcome) {
        await this.announceDeparture(roomId, connection.userId, outcome, 'disconnected');
      }
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
    const changed = await this.store.setRole(roomId, targetUserId, role);
    const target = changed.pop() as RoomUser;
    for (const demoted of changed) {
      this.bus.publish(roomId, { event: ServerEvent.UserUpdated, data: { roomId, user: demoted } });
    }
    this.publishWithReply(
      actor,
      roomId,
      { event: ServerEvent.UserUpdated, data: { roomId, user: target } },
      requestId,
    );
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
    const outcome = await this.store.kick(roomId, targetUserId, now + this.config.kickBanMs, now);
    this.bus.sendToMember(roomId, targetUserId, { event: ServerEvent.Kicked, data: { roomId } });
    this.publishWithReply(
      actor,
      roomId,
      { event: ServerEvent.UserLeft, data: { roomId, userId: targetUserId } },
      requestId,
    );
    this.logger.log(`User ${targetUserId} kicked from room ${roomId} by ${actor.userId}`);
    this.events.emit('member.left', {
      roomId,
      userId: targetUserId,
      reason: 'kicked',
      by: actor.userId,
      ...(outcome.newHost ? { newHost: outcome.newHost } : {}),
    });
    await this.announceNewHost(roomId, outcome);
  }

  async delete(actor: Connection, roomId: string, requestId?: string): Promise<void> {
    await this.store.delete(roomId);
    this.publishWithReply(
      actor,
      roomId,
      { event: ServerEvent.RoomDeleted, data: { roomId, reason: 'deleted' } },
      requestId,
    );
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
      this.fanout.forgetRoom(room.roomId);
      if (room.memberIds.length > 0 || this.users.membership.members(room.roomId)) {
        this.bus.publish(room.roomId, {
          event: ServerEvent.RoomDeleted,
          data: { roomId: room.roomId, reason: 'idle_timeout' },
        });
      }
      this.logger.log(`Room ${room.roomId} deleted (${room.reason})`);
      this.events.emit('room.deleted', { roomId: room.roomId, reason: room.reason });
    }
  }

  /** Tells the room a member is gone (and who hosts now): for leaves and for ghosts removed. */
  async announceDeparture(
    roomId: string,
    userId: string,
    outcome: LeaveOutcome,
    reason: LeaveReason,
  ): Promise<void> {
    this.bus.publish(roomId, { event: ServerEvent.UserLeft, data: { roomId, userId } });
    this.events.emit('member.left', {
      roomId,
      userId,
      reason,
      ...(outcome.newHost ? { newHost: outcome.newHost } : {}),
    });
    await this.announceNewHost(roomId, outcome);
  }

  private async announceNewHost(roomId: string, outcome: LeaveOutcome): Promise<void> {
    if (outcome.newHost) {
      this.bus.publish(roomId, {
        event: ServerEvent.UserUpdated,
        data: { roomId, user: outcome.newHost },
      });
    }
    if (outcome.remaining === 0 && this.config.emptyRoomTtlMs === 0) {
      await this.deleteExpiredRooms();
    }
  }

  private publishWithReply<E extends ServerEvent>(
    actor: Connection,
    roomId: string,
    message: ServerMessage<E>,
    requestId: string | undefined,
  ): void {
    publishWithReply(this.bus, this.fanout, actor, roomId, message, requestId);
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

function generateRoomId(): string {
  const bytes = randomBytes(12);
  let id = 'room-';
  for (const byte of bytes) {
    id += (byte % 36).toString(36);
  }
  return id;
}

function rejectSelfTarget(actor: Connection, targetUserId: string): void {
  if (actor.userId === targetUserId) {
    throw ProtocolError.validation('targetUserId', 'You cannot target yourself');
  }
}

/**
 * Decides which events held back during a join are news to a joiner holding this snapshot,
 * walking them in order: state updates newer than its version, arrivals of users it does not
 * list (yet), departures of users it lists (still).
 */
function newsFilter(
  snapshot: RoomInfo,
  admitsStateVersion: (version: number) => boolean,
): (held: BufferedEvent) => boolean {
  const present = new Set(snapshot.users.map((user) => user.id));
  return (held) => {
    const data = held.data as { version?: number; user?: { id: string }; userId?: string };
    switch (held.event) {
      case ServerEvent.StateUpdated:
        return admitsStateVersion(data.version ?? 0);
      case ServerEvent.UserJoined:
        return toggle(present, data.user?.id, true);
      case ServerEvent.UserLeft:
        return toggle(present, data.userId, false);
      default:
        return true;
    }
  };
}

/** Moves `userId` in or out of `present`; true when that changed something. */
function toggle(present: Set<string>, userId: string | undefined, joined: boolean): boolean {
  if (userId === undefined || present.has(userId) === joined) {
    return false;
  }
  if (joined) {
    present.add(userId);
  } else {
    present.delete(userId);
  }
  return true;
}
