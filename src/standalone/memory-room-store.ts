import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import {
  ErrorCode,
  ROLE_RANK,
  type Role,
  type RoomState,
  type RoomUser,
} from '../protocol/protocol.js';
import { applyStateChange, initialRoomState } from '../state/room-state.js';
import { hashPassword, verifyPassword } from '../rooms/password.js';
import { assertRoleAtLeast, cappedRole, RoomErrors } from '../rooms/room-errors.js';
import { ROOM_PERSISTENCE, type PersistedRoom, type RoomPersistence } from './room-persistence.js';
import {
  LAST_ACTIVITY_RESOLUTION_MS,
  SLOT_COUNT,
  type ExpiredRoom,
  type ExpiryPolicy,
  type ConnectedSeat,
  type JoinOutcome,
  type JoinRequest,
  type LeaveOutcome,
  type NewRoom,
  type RoomActor,
  type RoomConfig,
  type RoomOwner,
  type RoomQuota,
  type RoomStore,
  type RoomSummary,
  type StateChange,
  type StateChangeActor,
} from '../rooms/room-store.js';

interface StoredRoom {
  roomId: string;
  config: RoomConfig;
  createdAt: number;
  lastActivity: number;
  /** The lastActivity its record on disk holds (persistent rooms). */
  savedActivity: number;
  /** Who created it, for the room quota. */
  owner?: RoomOwner;
  /** Insertion order is join order: the first entry is the longest-present member. */
  members: Map<string, RoomUser>;
  /** The highest role a member may hold, for members that have a cap. */
  caps: Map<string, Role>;
  state: RoomState;
  bans: Map<string, number>;
  /** Set while the room has no members. */
  emptySince?: number;
  /**
   * Set while a persistent room's first write is under way: until it is on disk (or the write
   * failed and the room is gone) the room is not acknowledged, and joins wait for the outcome.
   */
  firstSave?: Promise<void>;
  /** The newest member's join number, whence its slot (see nextJoinNumber). */
  joins: number;
}

/**
 * A persistent room's record is written again for activity alone (joins, leaves, broadcasts) at
 * most this often, so that its idle deadline survives a crash within this much (a clean shutdown
 * writes the newest activity of every room). Shorter with a short PERSISTENT_ROOM_IDLE_MS.
 */
export const SAVED_ACTIVITY_INTERVAL_MS = 60 * 60 * 1000;

/**
 * How often activity alone is written: a quarter of the idle time, at most an hour. So after a
 * crash a busy room is deleted as idle no earlier than three quarters of that time after its
 * last activity, at the price of at most four writes per idle time per busy room.
 */
export function savedActivityIntervalMs(persistentRoomIdleMs: number): number {
  if (persistentRoomIdleMs <= 0) {
    return SAVED_ACTIVITY_INTERVAL_MS;
  }
  return Math.min(SAVED_ACTIVITY_INTERVAL_MS, persistentRoomIdleMs / 4);
}

/** Rounds of join: more than two only if a room is replaced while a password is checked. */
const JOIN_ATTEMPTS = 5;

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
  private readonly logger = new Logger(MemoryRoomStore.name);
  private readonly rooms = new Map<string, StoredRoom>();
  private readonly roomsOfUser = new Map<string, Set<string>>();
  /** `<kind>:<id>` of an owner -> the ids of the rooms it created that still exist. */
  private readonly roomsOfOwner = new Map<string, Set<string>>();
  /** Per persistent room with writes in flight: the end of its sequence (never rejects). */
  private readonly writes = new Map<string, Promise<void>>();
  private readonly savedActivityIntervalMs: number;

  constructor(
    @Optional() @Inject(ROOM_PERSISTENCE) private readonly persistence?: RoomPersistence,
    @Optional()
    @Inject(appConfig.KEY)
    config?: Pick<AppConfig, 'persistentRoomIdleMs'>,
  ) {
    this.savedActivityIntervalMs = savedActivityIntervalMs(config?.persistentRoomIdleMs ?? 0);
  }

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

  /**
   * Writes the newest activity of each persistent room not yet on disk (activity alone is written
   * only once an interval), and lets every write in flight land before the process exits.
   */
  async onApplicationShutdown(): Promise<void> {
    for (const room of this.rooms.values()) {
      const persistence = this.persistenceOf(room);
      if (persistence && room.lastActivity !== room.savedActivity) {
        this.saveActivity(room, persistence);
      }
    }
    await Promise.all(this.writes.values());
  }

  /**
   * A password is hashed only once the checks pass, and they run again after the hash (another
   * create may have taken the id or the last place meanwhile): a refusal costs no hash.
   */
  async create(room: NewRoom, maxRooms: number): Promise<void> {
    this.checkNewRoom(room, maxRooms);
    const { password, ...unhashed } = room;
    const hashed = password
      ? { ...unhashed, config: { ...room.config, passwordHash: await hashPassword(password) } }
      : unhashed;
    this.checkNewRoom(hashed, maxRooms);
    const stored = this.insertRoom(hashed, maxRooms);
    const persistence = this.persistenceOf(stored);
    if (!persistence) {
      return;
    }
    const saved = this.inSequence(stored.roomId, async () => {
      try {
        await persistence.save(persistedRoom(stored, stored.state));
      } catch (error) {
        // Never acknowledged, so it must not exist either.
        if (this.rooms.get(stored.roomId) === stored) {
          this.deleteRoom(stored);
        }
        throw error;
      } finally {
        stored.firstSave = undefined;
      }
    });
    stored.firstSave = saved.catch(() => undefined);
    await saved;
  }

  /**
   * Atomic like every method here, though a password is hashed or checked before the checks run:
   * what it was checked against (a room, or the absence of one) is looked up again after, and
   * the join starts over when that changed meanwhile.
   */
  async join(request: JoinRequest): Promise<JoinOutcome> {
    for (let attempt = 0; attempt < JOIN_ATTEMPTS; attempt++) {
      const room = this.rooms.get(request.roomId);
      if (!room) {
        this.checkCreation(request);
        const passwordHash = request.password ? await hashPassword(request.password) : undefined;
        if (this.rooms.has(request.roomId)) {
          continue;
        }
        this.checkCreation(request);
        const created = this.insertRoom(
          {
            roomId: request.roomId,
            config: { ...request.configForNewRoom, ...(passwordHash ? { passwordHash } : {}) },
            createdAt: request.now,
            quota: request.quota,
          },
          request.maxRooms,
        );
        return this.admit(created, request, true, true);
      }
      if (room.firstSave) {
        // Nobody may be in a room that might yet not exist: it is on disk, or gone, first.
        await room.firstSave;
        continue;
      }
      if (request.restore && room.members.has(request.userId)) {
        return this.admit(room, request, true, false);
      }
      if (!room.config.passwordHash) {
        return this.admit(room, request, true, false);
      }
      const passwordOk = await verifyPassword(request.password, room.config.passwordHash);
      if (this.rooms.get(request.roomId) === room) {
        return this.admit(room, request, passwordOk, false);
      }
    }
    throw new ProtocolError(
      ErrorCode.Unavailable,
      `Room ${request.roomId} keeps changing; try again`,
    );
  }

  leave(roomId: string, userId: string, now: number): Promise<LeaveOutcome | undefined> {
    const room = this.rooms.get(roomId);
    if (!room || !room.members.has(userId)) {
      return Promise.resolve(undefined);
    }
    return Promise.resolve(this.removeMember(room, userId, now));
  }

  setConnected(
    roomId: string,
    userId: string,
    connected: boolean,
    now: number,
  ): Promise<ConnectedSeat | undefined> {
    const member = this.rooms.get(roomId)?.members.get(userId);
    if (!member) {
      return Promise.resolve(undefined);
    }
    const changed = member.connected !== connected;
    member.connected = connected;
    member.lastSeen = now;
    const room = this.rooms.get(roomId) as StoredRoom;
    return Promise.resolve({ user: { ...member }, roomInfo: this.roomInfo(room), changed });
  }

  roomsOf(userId: string): Promise<string[]> {
    return Promise.resolve([...(this.roomsOfUser.get(userId) ?? [])]);
  }

  roleOf(roomId: string, userId: string): Promise<Role | undefined> {
    return Promise.resolve(this.requireRoom(roomId).members.get(userId)?.role);
  }

  setRole(
    roomId: string,
    targetUserId: string,
    role: Role,
    actor?: RoomActor,
  ): Promise<RoomUser[]> {
    const room = this.requireRoom(roomId);
    this.checkActor(room, actor);
    const target = this.requireMember(room, targetUserId);
    const cap = room.caps.get(targetUserId);
    if (cappedRole(role, cap) !== role) {
      throw RoomErrors.roleCap(targetUserId, cap as Role);
    }
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
    actor?: RoomActor,
  ): Promise<LeaveOutcome> {
    const room = this.requireRoom(roomId);
    this.checkActor(room, actor);
    this.requireMember(room, targetUserId);
    room.bans.set(targetUserId, bannedUntil);
    return Promise.resolve(this.removeMember(room, targetUserId, now));
  }

  delete(roomId: string, actor?: RoomActor): Promise<string[]> {
    const room = this.requireRoom(roomId);
    this.checkActor(room, actor);
    const persistence = this.persistenceOf(room);
    if (!persistence) {
      return Promise.resolve(this.deleteRoom(room));
    }
    return this.inSequence(roomId, async () => {
      this.requireSameRoom(room);
      this.checkActor(room, actor);
      await this.writeAsActor(room, actor, () => persistence.remove(roomId));
      return this.deleteRoom(room);
    });
  }

  applyStateChange(
    roomId: string,
    change: StateChange,
    maxStateBytes: number,
    actor?: StateChangeActor,
  ): Promise<number> {
    const room = this.requireRoom(roomId);
    const persistence = this.persistenceOf(room);
    if (!persistence) {
      this.checkActor(room, actor);
      room.state = applyStateChange(room.state, change, maxStateBytes);
      room.lastActivity = Date.now();
      return Promise.resolve(room.state.version);
    }
    return this.inSequence(roomId, async () => {
      this.requireSameRoom(room);
      this.checkActor(room, actor);
      const next = applyStateChange(room.state, change, maxStateBytes);
      const now = Date.now();
      await this.writeAsActor(room, actor, () => persistence.save(persistedRoom(room, next, now)));
      room.state = next;
      room.lastActivity = now;
      room.savedActivity = now;
      return next.version;
    });
  }

  getState(roomId: string): Promise<RoomState> {
    return Promise.resolve(this.requireRoom(roomId).state);
  }

  members(roomId: string): Promise<RoomUser[]> {
    const room = this.requireRoom(roomId);
    return Promise.resolve([...room.members.values()].map((user) => ({ ...user })));
  }

  shareRoom(userId: string, otherUserId: string, via?: string): Promise<string | undefined> {
    const mine = this.roomsOfUser.get(userId);
    const theirs = this.roomsOfUser.get(otherUserId);
    if (!mine || !theirs) {
      return Promise.resolve(undefined);
    }
    if (via !== undefined) {
      return Promise.resolve(mine.has(via) && theirs.has(via) ? via : undefined);
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
      this.markActivity(room, now);
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

  /**
   * Non-persistent rooms go at once. An idle persistent room goes inside its sequence of writes,
   * once its record is removed; if that fails it stays (logged), for the next sweep to retry.
   */
  async deleteExpired(policy: ExpiryPolicy): Promise<ExpiredRoom[]> {
    const expiring: Array<Promise<ExpiredRoom | undefined>> = [];
    for (const room of [...this.rooms.values()]) {
      if (room.config.persistent) {
        if (isIdlePersistent(room, policy)) {
          expiring.push(this.deleteIdlePersistent(room, policy));
        }
        continue;
      }
      const reason = expiryReason(room, policy);
      if (reason) {
        const memberIds = this.deleteRoom(room);
        expiring.push(Promise.resolve({ roomId: room.roomId, reason, memberIds }));
      }
    }
    const expired = await Promise.all(expiring);
    return expired.filter((room): room is ExpiredRoom => room !== undefined);
  }

  private deleteIdlePersistent(
    room: StoredRoom,
    policy: ExpiryPolicy,
  ): Promise<ExpiredRoom | undefined> {
    const removeRecord = async (): Promise<ExpiredRoom | undefined> => {
      // Checked again in the sequence: activity or a deletion may have come first.
      if (this.rooms.get(room.roomId) !== room || !isIdlePersistent(room, policy)) {
        return undefined;
      }
      await this.persistence?.remove(room.roomId);
      return { roomId: room.roomId, reason: 'idle_timeout', memberIds: this.deleteRoom(room) };
    };
    if (!this.persistence) {
      return removeRecord();
    }
    return this.inSequence(room.roomId, removeRecord).catch((error: unknown) => {
      this.logger.error(`Could not remove idle persistent room ${room.roomId}: ${String(error)}`);
      return undefined;
    });
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

  /** NOT_IN_ROOM or FORBIDDEN unless the actor (none: the server) may make the write now. */
  private checkActor(room: StoredRoom, actor: RoomActor | undefined): void {
    if (actor) {
      assertRoleAtLeast(room.roomId, room.members.get(actor.userId)?.role, actor.minRole);
    }
  }

  /**
   * A persistent room's write for an actor, run in the room's sequence: it reaches the disk
   * before memory, and roles change meanwhile without waiting for it. So the actor is checked
   * again once the write is on disk, and a write it may no longer make is undone there (the
   * room's record written again as memory has it: nothing else wrote it meanwhile) and refused.
   */
  private async writeAsActor(
    room: StoredRoom,
    actor: RoomActor | undefined,
    write: () => Promise<void>,
  ): Promise<void> {
    await write();
    try {
      this.checkActor(room, actor);
    } catch (refusal) {
      await this.persistence?.save(persistedRoom(room, room.state)).catch((error: unknown) => {
        this.logger.error(
          `Could not undo a refused write to room ${room.roomId} on disk: ${String(error)}`,
        );
      });
      throw refusal;
    }
  }

  /** A task that waited in the sequence fails if its room was deleted meanwhile. */
  private requireSameRoom(room: StoredRoom): void {
    if (this.rooms.get(room.roomId) !== room) {
      throw ProtocolError.roomNotFound(room.roomId);
    }
  }

  /**
   * A restored room has its config and state and no members: its next joiner becomes host. A
   * lastActivity in the future (a clock that was ahead, a hand edit) counts from now instead, or
   * the room would never be idle; the record takes the correction with its next write.
   */
  private restoreRoom(saved: PersistedRoom, now: number): void {
    if (saved.lastActivity > now) {
      this.logger.warn(
        `Room ${saved.roomId} was last active in the future ` +
          `(${new Date(saved.lastActivity).toISOString()}); counting its idle time from now`,
      );
    }
    this.rooms.set(saved.roomId, {
      roomId: saved.roomId,
      config: saved.config,
      createdAt: saved.createdAt,
      lastActivity: Math.min(saved.lastActivity, now),
      savedActivity: saved.lastActivity,
      ...(saved.owner ? { owner: saved.owner } : {}),
      members: new Map(),
      joins: 0,
      caps: new Map(),
      state: saved.state,
      bans: new Map(),
      emptySince: now,
    });
    this.indexOwnership(saved.owner, saved.roomId, true);
  }

  /** What create checks: the id is free, the owner's quota, MAX_ROOMS. */
  private checkNewRoom(room: NewRoom, maxRooms: number): void {
    if (this.rooms.has(room.roomId)) {
      throw new ProtocolError(ErrorCode.RoomExists, `Room ${room.roomId} already exists`);
    }
    this.checkQuota(room.quota);
    this.checkRoomLimit(maxRooms);
  }

  /** What a join that creates the room checks first: may it, the owner's quota, MAX_ROOMS. */
  private checkCreation(request: JoinRequest): void {
    if (request.mayCreate === false) {
      throw ProtocolError.roomNotFound(request.roomId);
    }
    this.checkQuota(request.quota);
    this.checkRoomLimit(request.maxRooms);
  }

  private checkQuota(quota: RoomQuota | undefined): void {
    if (!quota || quota.maxRooms <= 0) {
      return;
    }
    const count = this.roomsOfOwner.get(ownerKey(quota.owner))?.size ?? 0;
    if (count >= quota.maxRooms) {
      throw RoomErrors.quota(count, quota.maxRooms);
    }
  }

  private checkRoomLimit(maxRooms: number): void {
    if (this.rooms.size >= maxRooms) {
      throw RoomErrors.roomLimit(maxRooms);
    }
  }

  private insertRoom(room: NewRoom, maxRooms: number): StoredRoom {
    this.checkRoomLimit(maxRooms);
    const owner = room.quota?.owner;
    const stored: StoredRoom = {
      roomId: room.roomId,
      config: room.config,
      createdAt: room.createdAt,
      lastActivity: room.createdAt,
      savedActivity: room.createdAt,
      ...(owner ? { owner: { kind: owner.kind, id: owner.id } } : {}),
      members: new Map(),
      joins: 0,
      caps: new Map(),
      state: initialRoomState(),
      bans: new Map(),
      emptySince: room.createdAt,
    };
    this.rooms.set(room.roomId, stored);
    this.indexOwnership(stored.owner, stored.roomId, true);
    return stored;
  }

  /**
   * The checks and writes of a join, with the password already checked (`passwordOk`): KICKED,
   * INVALID_PASSWORD (a member joining again too), then ROOM_FULL for a newcomer.
   */
  private admit(
    room: StoredRoom,
    request: JoinRequest,
    passwordOk: boolean,
    createdRoom: boolean,
  ): JoinOutcome {
    const existing = room.members.get(request.userId);
    if (existing && request.restore) {
      return {
        roomInfo: this.roomInfo(room),
        user: { ...existing },
        alreadyMember: true,
        createdRoom,
      };
    }
    const bannedUntil = room.bans.get(request.userId);
    if (bannedUntil !== undefined) {
      if (bannedUntil > request.now) {
        throw RoomErrors.kicked(room.roomId);
      }
      room.bans.delete(request.userId);
    }
    if (!passwordOk) {
      throw RoomErrors.invalidPassword();
    }
    if (existing) {
      return this.admitAgain(room, existing, request, createdRoom);
    }
    if (room.members.size >= room.config.maxUsers) {
      throw RoomErrors.roomFull();
    }
    const joinNumber = nextJoinNumber(room.joins, room.members.values());
    if (joinNumber === undefined) {
      throw RoomErrors.roomFull();
    }
    room.joins = joinNumber;
    const user: RoomUser = {
      id: request.userId,
      name: request.name,
      role: cappedRole(this.grantedRole(room, request.requestedRole), request.maxRole),
      ...(request.avatar ? { avatar: request.avatar } : {}),
      connected: true,
      lastSeen: request.now,
      // As RedisRoomStore numbers them (join-room.ts), so both stores give a joiner one slot.
      slot: joinNumber % SLOT_COUNT,
    };
    room.members.set(user.id, user);
    this.setCap(room, user.id, request.maxRole);
    room.emptySince = undefined;
    this.markActivity(room, request.now);
    this.indexMembership(user.id, room.roomId, true);
    return { roomInfo: this.roomInfo(room), user: { ...user }, alreadyMember: false, createdRoom };
  }

  /** A member joining again keeps its profile and role, but takes the cap it comes with now. */
  private admitAgain(
    room: StoredRoom,
    member: RoomUser,
    request: JoinRequest,
    createdRoom: boolean,
  ): JoinOutcome {
    this.setCap(room, member.id, request.maxRole);
    const capped = cappedRole(member.role, request.maxRole);
    const roleChanged = capped !== member.role;
    member.role = capped;
    return {
      roomInfo: this.roomInfo(room),
      user: { ...member },
      alreadyMember: true,
      ...(roleChanged ? { roleChanged } : {}),
      createdRoom,
    };
  }

  private setCap(room: StoredRoom, userId: string, maxRole: Role | undefined): void {
    if (maxRole === undefined || maxRole === 'host') {
      room.caps.delete(userId);
    } else {
      room.caps.set(userId, maxRole);
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

  /** The host's successor is the longest-present member its cap lets host, if any. */
  private removeMember(room: StoredRoom, userId: string, now: number): LeaveOutcome {
    const leaving = room.members.get(userId);
    room.members.delete(userId);
    room.caps.delete(userId);
    this.markActivity(room, now);
    this.indexMembership(userId, room.roomId, false);
    if (room.members.size === 0) {
      room.emptySince = now;
      return { remaining: 0 };
    }
    if (leaving?.role !== 'host') {
      return { remaining: room.members.size };
    }
    for (const successor of room.members.values()) {
      if (!room.caps.has(successor.id)) {
        successor.role = 'host';
        return { newHost: { ...successor }, remaining: room.members.size };
      }
    }
    return { remaining: room.members.size };
  }

  /**
   * Records activity; a persistent room's record takes it too, at most once an interval (or at
   * once when the record's time is ahead of the clock).
   */
  private markActivity(room: StoredRoom, now: number): void {
    room.lastActivity = now;
    const persistence = this.persistenceOf(room);
    const sinceSaved = now - room.savedActivity;
    if (!persistence || (sinceSaved >= 0 && sinceSaved < this.savedActivityIntervalMs)) {
      return;
    }
    this.saveActivity(room, persistence);
  }

  /**
   * Writes the room's record with its lastActivity, in the room's sequence. A failed write is
   * only logged: it leaves the room's activity unsaved, so the next activity (or the shutdown)
   * tries again.
   */
  private saveActivity(room: StoredRoom, persistence: RoomPersistence): void {
    // Set now, so activity until the write lands does not queue more writes.
    room.savedActivity = room.lastActivity;
    this.inSequence(room.roomId, async () => {
      if (this.rooms.get(room.roomId) !== room) {
        return;
      }
      const lastActivity = room.lastActivity;
      await persistence.save(persistedRoom(room, room.state, lastActivity));
      room.savedActivity = lastActivity;
    }).catch((error: unknown) => {
      room.savedActivity = 0;
      this.logger.warn(`Could not record activity of room ${room.roomId}: ${String(error)}`);
    });
  }

  private deleteRoom(room: StoredRoom): string[] {
    const memberIds = [...room.members.keys()];
    for (const userId of memberIds) {
      this.indexMembership(userId, room.roomId, false);
    }
    this.rooms.delete(room.roomId);
    this.indexOwnership(room.owner, room.roomId, false);
    return memberIds;
  }

  private indexOwnership(owner: RoomOwner | undefined, roomId: string, owned: boolean): void {
    if (!owner) {
      return;
    }
    const key = ownerKey(owner);
    let rooms = this.roomsOfOwner.get(key);
    if (owned) {
      if (!rooms) {
        rooms = new Set();
        this.roomsOfOwner.set(key, rooms);
      }
      rooms.add(roomId);
      return;
    }
    rooms?.delete(roomId);
    if (rooms?.size === 0) {
      this.roomsOfOwner.delete(key);
    }
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
    ...(room.owner ? { owner: room.owner } : {}),
    state,
  } satisfies PersistedRoom;
}

/**
 * A newcomer's join number: the first after `joins` whose slot (the number mod SLOT_COUNT) no
 * member holds, or undefined when the members hold every slot. Until the numbers first wrap,
 * each one's slot is new; after, a member that stayed may hold the slot the next one stands for.
 */
export function nextJoinNumber(joins: number, members: Iterable<RoomUser>): number | undefined {
  let next = joins + 1;
  if (next < SLOT_COUNT) {
    return next;
  }
  const held = new Set<number>();
  for (const member of members) {
    if (member.slot !== undefined) {
      held.add(member.slot);
    }
  }
  if (held.size >= SLOT_COUNT) {
    return undefined;
  }
  while (held.has(next % SLOT_COUNT)) {
    next++;
  }
  return next;
}

function ownerKey(owner: RoomOwner): string {
  return `${owner.kind}:${owner.id}`;
}

/** Why a non-persistent room expired under the policy, if it did. */
function expiryReason(room: StoredRoom, policy: ExpiryPolicy): ExpiredRoom['reason'] | undefined {
  if (room.emptySince !== undefined && policy.now - room.emptySince >= policy.emptyRoomTtlMs) {
    return 'empty';
  }
  if (policy.now - room.lastActivity >= policy.roomTimeoutMs + LAST_ACTIVITY_RESOLUTION_MS) {
    return 'idle_timeout';
  }
  return undefined;
}

function isIdlePersistent(room: StoredRoom, policy: ExpiryPolicy): boolean {
  const idleMs = policy.persistentRoomIdleMs ?? 0;
  return idleMs > 0 && policy.now - room.lastActivity >= idleMs + LAST_ACTIVITY_RESOLUTION_MS;
}
