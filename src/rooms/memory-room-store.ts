import {
  Inject,
  Injectable,
  Optional,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { ProtocolError } from '../protocol/protocol-error.js';
import {
  ErrorCode,
  ROLE_RANK,
  type Role,
  type RoomState,
  type RoomUser,
} from '../protocol/protocol.js';
import { applyStateChange, initialRoomState } from '../state/room-state.js';
import { verifyPassword } from './password.js';
import { ROOM_PERSISTENCE, type PersistedRoom, type RoomPersistence } from './room-persistence.js';
import {
  LAST_ACTIVITY_RESOLUTION_MS,
  type ExpiredRoom,
  type ExpiryPolicy,
  type JoinOutcome,
  type JoinRequest,
  type LeaveOutcome,
  type NewRoom,
  type RoomConfig,
  type RoomStore,
  type RoomSummary,
  type StateChange,
} from './room-store.js';

interface StoredRoom {
  roomId: string;
  config: RoomConfig;
  createdAt: number;
  lastActivity: number;
  /** Insertion order is join order: the first entry is the longest-present member. */
  members: Map<string, RoomUser>;
  state: RoomState;
  bans: Map<string, number>;
  /** Set while the room has no members. */
  emptySince?: number;
}

/**
 * The single-instance RoomStore: plain maps, so every method is atomic by construction.
 *
 * Persistent rooms are also written through `RoomPersistence`, when one is provided: their
 * creation, state changes and deletion resolve only once durable. Those writes run one at a time
 * per room, each change is committed to memory only after its write succeeded, and a persistent
 * room leaves the map only inside that sequence, so a failed write changes nothing and a
 * compare-and-set always sees the state on disk. Non-persistent rooms never wait for anything.
 */
@Injectable()
export class MemoryRoomStore implements RoomStore, OnModuleInit, OnApplicationShutdown {
  readonly publishesStateUpdates = false;
  private readonly rooms = new Map<string, StoredRoom>();
  private readonly roomsOfUser = new Map<string, Set<string>>();
  /** Per persistent room with writes in flight: the end of its sequence (never rejects). */
  private readonly writes = new Map<string, Promise<void>>();

  constructor(
    @Optional() @Inject(ROOM_PERSISTENCE) private readonly persistence?: RoomPersistence,
  ) {}

  /** Restores the persistent rooms before the server accepts connections. */
  async onModuleInit(): Promise<void> {
    if (!this.persistence) {
      return;
    }
    const now = Date.now();
    for (const saved of await this.persistence.loadAll()) {
      this.restoreRoom(saved, now);
    }
  }

  /** Lets writes in flight land before the process exits. */
  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.writes.values());
  }

  create(room: NewRoom, maxRooms: number): Promise<void> {
    if (this.rooms.has(room.roomId)) {
      throw new ProtocolError(ErrorCode.RoomExists, `Room ${room.roomId} already exists`);
    }
    const stored = this.insertRoom(room, maxRooms);
    const persistence = this.persistenceOf(stored);
    if (!persistence) {
      return Promise.resolve();
    }
    return this.inSequence(stored.roomId, async () => {
      try {
        await persistence.save(persistedRoom(stored, stored.state));
      } catch (error) {
        // Never acknowledged, so it must not exist either.
        if (this.rooms.get(stored.roomId) === stored) {
          this.deleteRoom(stored);
        }
        throw error;
      }
    });
  }

  join(request: JoinRequest): Promise<JoinOutcome> {
    let room = this.rooms.get(request.roomId);
    const createdRoom = !room;
    if (!room) {
      room = this.insertRoom(
        { roomId: request.roomId, config: request.configForNewRoom, createdAt: request.now },
        request.maxRooms,
      );
    }
    const existing = room.members.get(request.userId);
    if (existing) {
      return Promise.resolve({
        roomInfo: this.roomInfo(room),
        user: existing,
        alreadyMember: true,
        createdRoom,
      });
    }
    this.checkAdmission(room, request);
    const user: RoomUser = {
      id: request.userId,
      name: request.name,
      role: this.grantedRole(room, request.requestedRole),
      ...(request.avatar ? { avatar: request.avatar } : {}),
      connected: true,
      lastSeen: request.now,
    };
    room.members.set(user.id, user);
    room.emptySince = undefined;
    room.lastActivity = request.now;
    this.indexMembership(user.id, room.roomId, true);
    return Promise.resolve({
      roomInfo: this.roomInfo(room),
      user,
      alreadyMember: false,
      createdRoom,
    });
  }

  leave(roomId: string, userId: string, now: number): Promise<LeaveOutcome | undefined> {
    const room = this.rooms.get(roomId);
    if (!room || !room.members.has(userId)) {
      return Promise.resolve(undefined);
    }
    return Promise.resolve(this.removeMember(room, userId, now));
  }

  roleOf(roomId: string, userId: string): Promise<Role | undefined> {
    return Promise.resolve(this.requireRoom(roomId).members.get(userId)?.role);
  }

  setRole(roomId: string, targetUserId: string, role: Role): Promise<RoomUser[]> {
    const room = this.requireRoom(roomId);
    const target = this.requireMember(room, targetUserId);
    const changed: RoomUser[] = [];
    if (role === 'host' && target.role !== 'host') {
      for (const member of room.members.values()) {
        if (member.role === 'host') {
          member.role = 'editor';
          changed.push({ ...member });
        }
      }
    }
    target.role = role;
    changed.push({ ...target });
    return Promise.resolve(changed);
  }

  kick(
    roomId: string,
    targetUserId: string,
    bannedUntil: number,
    now: number,
  ): Promise<LeaveOutcome> {
    const room = this.requireRoom(roomId);
    this.requireMember(room, targetUserId);
    room.bans.set(targetUserId, bannedUntil);
    return Promise.resolve(this.removeMember(room, targetUserId, now));
  }

  delete(roomId: string): Promise<string[]> {
    const room = this.requireRoom(roomId);
    const persistence = this.persistenceOf(room);
    if (!persistence) {
      return Promise.resolve(this.deleteRoom(room));
    }
    return this.inSequence(roomId, async () => {
      this.requireSameRoom(room);
      await persistence.remove(roomId);
      return this.deleteRoom(room);
    });
  }

  applyStateChange(roomId: string, change: StateChange, maxStateBytes: number): Promise<number> {
    const room = this.requireRoom(roomId);
    const persistence = this.persistenceOf(room);
    if (!persistence) {
      room.state = applyStateChange(room.state, change, maxStateBytes);
      room.lastActivity = Date.now();
      return Promise.resolve(room.state.version);
    }
    return this.inSequence(roomId, async () => {
      this.requireSameRoom(room);
      const next = applyStateChange(room.state, change, maxStateBytes);
      const now = Date.now();
      await persistence.save(persistedRoom(room, next, now));
      room.state = next;
      room.lastActivity = now;
      return next.version;
    });
  }

  getState(roomId: string): Promise<RoomState> {
    return Promise.resolve(this.requireRoom(roomId).state);
  }

  shareRoom(userId: string, otherUserId: string): Promise<string | undefined> {
    const mine = this.roomsOfUser.get(userId);
    const theirs = this.roomsOfUser.get(otherUserId);
    if (!mine || !theirs) {
      return Promise.resolve(undefined);
    }
    for (const roomId of mine) {
      if (theirs.has(roomId)) {
        return Promise.resolve(roomId);
      }
    }
    return Promise.resolve(undefined);
  }

  touch(roomId: string, now: number): Promise<void> {
    const room = this.rooms.get(roomId);
    if (room) {
      room.lastActivity = now;
    }
    return Promise.resolve();
  }

  list(): Promise<RoomSummary[]> {
    const summaries = [...this.rooms.values()].map((room) => ({
      roomId: room.roomId,
      ...(room.config.name ? { name: room.config.name } : {}),
      userCount: room.members.size,
      persistent: room.config.persistent,
      createdAt: room.createdAt,
      lastActivity: room.lastActivity,
    }));
    return Promise.resolve(summaries);
  }

  deleteExpired(policy: ExpiryPolicy): Promise<ExpiredRoom[]> {
    const expired: ExpiredRoom[] = [];
    for (const room of this.rooms.values()) {
      const reason = this.expiryReason(room, policy);
      if (reason) {
        expired.push({ roomId: room.roomId, reason, memberIds: this.deleteRoom(room) });
      }
    }
    return Promise.resolve(expired);
  }

  private expiryReason(room: StoredRoom, policy: ExpiryPolicy): ExpiredRoom['reason'] | undefined {
    // Also what keeps a persistent room's deletion, and its file's removal, in its sequence.
    if (room.config.persistent) {
      return undefined;
    }
    if (room.emptySince !== undefined && policy.now - room.emptySince >= policy.emptyRoomTtlMs) {
      return 'empty';
    }
    if (policy.now - room.lastActivity >= policy.roomTimeoutMs + LAST_ACTIVITY_RESOLUTION_MS) {
      return 'idle_timeout';
    }
    return undefined;
  }

  private persistenceOf(room: StoredRoom): RoomPersistence | undefined {
    return room.config.persistent ? this.persistence : undefined;
  }

  /**
   * Runs `task` after every earlier task of the room has settled, whatever their outcome: the
   * writes of one room land in the order they were made.
   */
  private inSequence<T>(roomId: string, task: () => Promise<T>): Promise<T> {
    const result = (this.writes.get(roomId) ?? Promise.resolve()).then(task);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.writes.set(roomId, settled);
    void settled.then(() => {
      if (this.writes.get(roomId) === settled) {
        this.writes.delete(roomId);
      }
    });
    return result;
  }

  /** A task that waited in the sequence fails if its room was deleted meanwhile. */
  private requireSameRoom(room: StoredRoom): void {
    if (this.rooms.get(room.roomId) !== room) {
      throw ProtocolError.roomNotFound(room.roomId);
    }
  }

  /** A restored room has its config and state and no members: its next joiner becomes host. */
  private restoreRoom(saved: PersistedRoom, now: number): void {
    this.rooms.set(saved.roomId, {
      roomId: saved.roomId,
      config: saved.config,
      createdAt: saved.createdAt,
      lastActivity: saved.lastActivity,
      members: new Map(),
      state: saved.state,
      bans: new Map(),
      emptySince: now,
    });
  }

  private insertRoom(room: NewRoom, maxRooms: number): StoredRoom {
    if (this.rooms.size >= maxRooms) {
      throw new ProtocolError(
        ErrorCode.RoomLimit,
        `The server holds its maximum of ${maxRooms} rooms`,
      );
    }
    const stored: StoredRoom = {
      roomId: room.roomId,
      config: room.config,
      createdAt: room.createdAt,
      lastActivity: room.createdAt,
      members: new Map(),
      state: initialRoomState(),
      bans: new Map(),
      emptySince: room.createdAt,
    };
    this.rooms.set(room.roomId, stored);
    return stored;
  }

  private checkAdmission(room: StoredRoom, request: JoinRequest): void {
    const bannedUntil = room.bans.get(request.userId);
    if (bannedUntil !== undefined) {
      if (bannedUntil > request.now) {
        throw new ProtocolError(
          ErrorCode.Kicked,
          `You were removed from ${room.roomId}; try later`,
        );
      }
      room.bans.delete(request.userId);
    }
    if (room.config.passwordHash && !verifyPassword(request.password, room.config.passwordHash)) {
      throw new ProtocolError(ErrorCode.InvalidPassword, 'Wrong or missing room password');
    }
    if (room.members.size >= room.config.maxUsers) {
      throw new ProtocolError(ErrorCode.RoomFull, 'Room is full');
    }
  }

  /** The first member hosts; others get what they ask for, capped at the room's default role. */
  private grantedRole(room: StoredRoom, requested: Role | undefined): Role {
    if (room.members.size === 0) {
      return 'host';
    }
    const cap = room.config.defaultRole;
    if (!requested || ROLE_RANK[requested] > ROLE_RANK[cap]) {
      return cap;
    }
    return requested;
  }

  private removeMember(room: StoredRoom, userId: string, now: number): LeaveOutcome {
    const leaving = room.members.get(userId);
    room.members.delete(userId);
    room.lastActivity = now;
    this.indexMembership(userId, room.roomId, false);
    if (room.members.size === 0) {
      room.emptySince = now;
      return { remaining: 0 };
    }
    if (leaving?.role !== 'host') {
      return { remaining: room.members.size };
    }
    const successor = room.members.values().next().value as RoomUser;
    successor.role = 'host';
    return { newHost: { ...successor }, remaining: room.members.size };
  }

  private deleteRoom(room: StoredRoom): string[] {
    const memberIds = [...room.members.keys()];
    for (const userId of memberIds) {
      this.indexMembership(userId, room.roomId, false);
    }
    this.rooms.delete(room.roomId);
    return memberIds;
  }

  private indexMembership(userId: string, roomId: string, member: boolean): void {
    let rooms = this.roomsOfUser.get(userId);
    if (member) {
      if (!rooms) {
        rooms = new Set();
        this.roomsOfUser.set(userId, rooms);
      }
      rooms.add(roomId);
      return;
    }
    rooms?.delete(roomId);
    if (rooms?.size === 0) {
      this.roomsOfUser.delete(userId);
    }
  }

  private requireRoom(roomId: string): StoredRoom {
    const room = this.rooms.get(roomId);
    if (!room) {
      throw ProtocolError.roomNotFound(roomId);
    }
    return room;
  }

  private requireMember(room: StoredRoom, userId: string): RoomUser {
    const member = room.members.get(userId);
    if (!member) {
      throw new ProtocolError(ErrorCode.UserNotFound, `${userId} is not in room ${room.roomId}`);
    }
    return member;
  }

  private roomInfo(room: StoredRoom) {
    return {
      roomId: room.roomId,
      users: [...room.members.values()].map((user) => ({ ...user })),
      state: room.state,
      createdAt: room.createdAt,
    };
  }
}

function persistedRoom(room: StoredRoom, state: RoomState, lastActivity = room.lastActivity) {
  return {
    roomId: room.roomId,
    config: room.config,
    createdAt: room.createdAt,
    lastActivity,
    state,
  } satisfies PersistedRoom;
}
