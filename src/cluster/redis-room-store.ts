import { Logger, type OnApplicationBootstrap } from '@nestjs/common';
import type { ChainableCommander, Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { ProtocolError } from '../protocol/protocol-error.js';
import {
  ErrorCode,
  ServerEvent,
  type Role,
  type RoomInfo,
  type RoomState,
  type RoomUser,
  type ServerMessage,
} from '../protocol/protocol.js';
import { hashPassword, verifyPassword } from '../rooms/password.js';
import { assertRoleAtLeast, RoomErrors } from '../rooms/room-errors.js';
import {
  LAST_ACTIVITY_RESOLUTION_MS,
  type ExpiredRoom,
  type ExpiryPolicy,
  type ConnectedSeat,
  type JoinOutcome,
  type JoinRequest,
  type LeaveOutcome,
  type NewRoom,
  type RoomActor,
  type RoomConfig,
  type RoomQuota,
  type RoomStore,
  type RoomSummary,
  type StateChange,
  type StateChangeActor,
} from '../rooms/room-store.js';
import { applyStateChange, initialRoomState } from '../state/room-state.js';
import { CommitReplies } from './commit-replies.js';
import { decodeMember, encodeProfile, slotOf } from './member-record.js';
import { RedisKeys } from './redis-keys.js';
import { encodeEnvelope, roomChannel, type RoomEnvelope } from './room-envelope.js';
import { defineRoomScripts, type RoomScripts, type ScriptReply } from './room-scripts.js';
import { fromRedisError, storeUnavailable } from './store-unavailable.js';

export interface RedisRoomStoreOptions {
  /** Starts every key and channel, e.g. `gms:`. No braces: they would break the hash tags. */
  keyPrefix: string;
  /** This instance, recorded on the members it joins (for presence cleanup). */
  instanceId: string;
  /** Shared with this instance's bus, which hears the echoes of its commits. */
  commitReplies?: CommitReplies;
  /**
   * Numbered events kept per room for resuming clients (RESUME_HISTORY_EVENTS), 0 or unset with
   * resume off: then rooms have no history and no epoch.
   */
  historyCap?: number;
}

/**
 * Optimistic rounds of applyStateChange before giving up with UNAVAILABLE. Only ops-only changes
 * retry for long: a patch carries a baseVersion, so a lost race ends it with STALE_VERSION.
 */
export const STATE_CHANGE_ATTEMPTS = 20;

/** Rooms read per MULTI by list(). */
const LIST_BATCH = 500;

/** Rounds of join: more than two only if a room is recreated with a new password meanwhile. */
const JOIN_ATTEMPTS = 5;

/**
 * The RoomStore shared by every instance through one Redis primary (key layout: redis-keys.ts).
 * Behaves like MemoryRoomStore; each check-and-write is one Lua script, so limits (maxUsers,
 * MAX_ROOMS), bans, host handover and the state version hold across instances.
 *
 * State changes keep their rules in TypeScript (room-state.ts): read, compute, then a script
 * commits only if the version is still the one read, publishing `state_updated` in the same step.
 *
 * Every Redis failure (unreachable, timed out, overloaded) is thrown as a ProtocolError with code
 * UNAVAILABLE; configure the client with ROOM_STORE_REDIS_OPTIONS so that this happens within 2 s.
 */
export class RedisRoomStore implements RoomStore, OnApplicationBootstrap {
  private readonly logger = new Logger(RedisRoomStore.name);
  private readonly keys: RedisKeys;
  private readonly scripts: RoomScripts;
  private readonly instanceId: string;
  private readonly commitReplies: CommitReplies;
  private readonly initialState = JSON.stringify(initialRoomState());
  /** Set while touch is failing, so an outage is logged once rather than per broadcast. */
  private touchFailing = false;
  /** Set once this store started scheduling persistent rooms stored before the idle schedule. */
  private schedulingPersistentRooms?: Promise<void>;

  constructor(
    private readonly redis: Redis,
    options: RedisRoomStoreOptions,
  ) {
    if (!/^[^\s{}]+$/.test(options.instanceId)) {
      throw new Error(`An instanceId must be non-empty, without spaces or braces`);
    }
    this.keys = new RedisKeys(options.keyPrefix);
    this.instanceId = options.instanceId;
    this.commitReplies = options.commitReplies ?? new CommitReplies();
    this.scripts = defineRoomScripts(redis, options.historyCap ?? 0);
  }

  /**
   * A password is hashed only when the script says the room would be created (HASH), and the
   * script runs again with the hash, checking everything again: atomic, and a refusal is cheap.
   */
  async create(room: NewRoom, maxRooms: number): Promise<void> {
    let config = room.config;
    let reply = await this.runCreate(room, config, maxRooms);
    if (reply[0] === 'HASH') {
      config = { ...config, passwordHash: await hashPassword(room.password ?? '') };
      reply = await this.runCreate(room, config, maxRooms);
    }
    const [status] = reply;
    if (status === 'ROOM_EXISTS') {
      throw new ProtocolError(ErrorCode.RoomExists, `Room ${room.roomId} already exists`);
    }
    if (status === 'ROOM_QUOTA') {
      throw RoomErrors.quota(Number(reply[1]), room.quota?.maxRooms ?? 0);
    }
    if (status === 'ROOM_LIMIT') {
      throw RoomErrors.roomLimit(maxRooms);
    }
  }

  private runCreate(room: NewRoom, config: RoomConfig, maxRooms: number): Promise<ScriptReply> {
    const hashPending = room.password !== undefined && room.password !== '' && !config.passwordHash;
    return this.run(
      this.scripts.gmsCreateRoom(
        ...this.head(room.roomId),
        maxRooms,
        room.createdAt,
        ...configArgs(config),
        this.initialState,
        ...quotaArgs(room.quota),
        hashPending ? '1' : '0',
      ),
    );
  }

  async join(request: JoinRequest): Promise<JoinOutcome> {
    const profile = encodeProfile({
      id: request.userId,
      name: request.name,
      ...(request.avatar ? { avatar: request.avatar } : {}),
      connected: true,
      lastSeen: request.now,
    });
    // Hashed only when the script says it creates the room; checked only against a room's hash.
    let newRoomHash = '';
    let checkedHash = '';
    let passwordOk = false;
    for (let attempt = 0; attempt < JOIN_ATTEMPTS; attempt++) {
      const reply = await this.run(
        this.scripts.gmsJoinRoom(
          ...this.head(request.roomId),
          request.userId,
          request.now,
          request.maxRooms,
          ...configArgs({ ...request.configForNewRoom, passwordHash: newRoomHash }),
          this.initialState,
          request.requestedRole ?? '',
          this.instanceId,
          profile,
          checkedHash,
          passwordOk ? '1' : '0',
          request.mayCreate === false ? '0' : '1',
          ...quotaArgs(request.quota),
          request.maxRole ?? '',
          request.restore ? '1' : '0',
          request.password ? '1' : '0',
        ),
      );
      const [status] = reply;
      switch (status) {
        case 'HASH':
          newRoomHash = await hashPassword(request.password ?? '');
          checkedHash = newRoomHash;
          passwordOk = true;
          continue;
        case 'VERIFY':
          checkedHash = String(reply[1]);
          passwordOk = await verifyPassword(request.password, checkedHash);
          continue;
        case 'ROOM_NOT_FOUND':
          throw ProtocolError.roomNotFound(request.roomId);
        case 'ROOM_QUOTA':
          throw RoomErrors.quota(Number(reply[1]), request.quota?.maxRooms ?? 0);
        case 'ROOM_LIMIT':
          throw RoomErrors.roomLimit(request.maxRooms);
        case 'KICKED':
          throw RoomErrors.kicked(request.roomId);
        case 'INVALID_PASSWORD':
          throw RoomErrors.invalidPassword();
        case 'ROOM_FULL':
          throw RoomErrors.roomFull();
        default:
          return joinOutcome(request, reply);
      }
    }
    throw storeUnavailable(`Room ${request.roomId} keeps changing; try again`);
  }

  /** Only while the member is on this instance: a session that moved elsewhere stays. */
  leave(roomId: string, userId: string, now: number): Promise<LeaveOutcome | undefined> {
    return this.leaveFrom(roomId, userId, now, this.instanceId);
  }

  /** Removes a member left behind by a dead instance, unless it has moved since. */
  removeGhost(
    roomId: string,
    userId: string,
    deadInstanceId: string,
    now: number,
  ): Promise<LeaveOutcome | undefined> {
    return this.leaveFrom(roomId, userId, now, deadInstanceId);
  }

  /**
   * Removes a member on record for this instance that no socket here holds (a join Redis ran
   * after its caller had given up on it), unless it moved to another instance meanwhile or its
   * seat is held for a resume: marked not connected less than `graceMs` ago.
   */
  removeStale(
    roomId: string,
    userId: string,
    now: number,
    graceMs: number,
  ): Promise<LeaveOutcome | undefined> {
    return this.leaveFrom(roomId, userId, now, this.instanceId, graceMs);
  }

  /** The `roomId\nuserId` entries of the members an instance joined. */
  async membersOf(instanceId: string): Promise<Array<{ roomId: string; userId: string }>> {
    const entries = await this.run(this.redis.smembers(this.keys.instanceMembers(instanceId)));
    return entries.map((entry) => {
      const [roomId, userId] = entry.split('\n');
      return { roomId, userId };
    });
  }

  /** The rooms a user is a member of, wherever it joined them (in join order). */
  roomsOf(userId: string): Promise<string[]> {
    return this.run(this.redis.zrange(this.keys.userRooms(userId), 0, '-1'));
  }

  private async leaveFrom(
    roomId: string,
    userId: string,
    now: number,
    instanceId: string,
    heldForMs?: number,
  ): Promise<LeaveOutcome | undefined> {
    const reply = await this.run(
      this.scripts.gmsRemoveMember(
        ...this.head(roomId),
        'leave',
        userId,
        now,
        instanceId,
        heldForMs ?? '',
      ),
    );
    return reply[0] === 'NONE' ? undefined : leaveOutcome(reply);
  }

  async setConnected(
    roomId: string,
    userId: string,
    connected: boolean,
    now: number,
  ): Promise<ConnectedSeat | undefined> {
    return this.markConnected(roomId, userId, connected, now, this.instanceId);
  }

  /**
   * setConnected for a member of `instanceId`: marked not connected only while it is still on
   * that instance (a dead one's, by presence); marked connected, it moves to this instance.
   */
  async markConnected(
    roomId: string,
    userId: string,
    connected: boolean,
    now: number,
    instanceId: string,
  ): Promise<ConnectedSeat | undefined> {
    const reply = await this.run(
      this.scripts.gmsSetConnected(
        ...this.head(roomId),
        userId,
        String(connected),
        now,
        connected ? this.instanceId : instanceId,
      ),
    );
    if (reply[0] === 'NONE') {
      return undefined;
    }
    const { roomInfo, user } = snapshotOf(roomId, userId, reply);
    return { roomInfo, user, changed: reply[1] === 1 };
  }

  /**
   * Gives a room without a host one (the longest-present member its cap allows), as a host's
   * departure does; answers the member promoted, if any. For rooms Redis lost, whose former host
   * did not register again (RedisRecoveryService).
   */
  async ensureHost(roomId: string): Promise<RoomUser | undefined> {
    const reply = await this.run(this.scripts.gmsEnsureHost(...this.head(roomId)));
    const promoted = reply[1];
    return typeof promoted === 'string' ? decodeMember(promoted).user : undefined;
  }

  async roleOf(roomId: string, userId: string): Promise<Role | undefined> {
    const room = this.keys.room(roomId);
    const [exists, record] = await this.transaction((multi) =>
      multi.exists(room.meta).hget(room.members, userId),
    );
    if (exists !== 1) {
      throw ProtocolError.roomNotFound(roomId);
    }
    return typeof record === 'string' ? decodeMember(record).user.role : undefined;
  }

  async setRole(
    roomId: string,
    targetUserId: string,
    role: Role,
    actor?: RoomActor,
  ): Promise<RoomUser[]> {
    const reply = await this.run(
      this.scripts.gmsSetRole(...this.head(roomId), targetUserId, role, ...actorArgs(actor)),
    );
    this.throwMembershipFailure(reply, roomId, targetUserId, actor);
    if (reply[0] === 'FORBIDDEN') {
      throw RoomErrors.roleCap(targetUserId, String(reply[1]) as Role);
    }
    return reply.slice(1).map((record) => decodeMember(String(record)).user);
  }

  async kick(
    roomId: string,
    targetUserId: string,
    bannedUntil: number,
    now: number,
    actor?: RoomActor,
  ): Promise<LeaveOutcome> {
    const reply = await this.run(
      this.scripts.gmsRemoveMember(
        ...this.head(roomId),
        'kick',
        targetUserId,
        now,
        bannedUntil,
        ...actorArgs(actor),
      ),
    );
    this.throwMembershipFailure(reply, roomId, targetUserId, actor);
    return leaveOutcome(reply);
  }

  async delete(roomId: string, actor?: RoomActor): Promise<string[]> {
    const reply = await this.run(
      this.scripts.gmsDeleteRoom(...this.head(roomId), 'delete', ...actorArgs(actor)),
    );
    this.throwMembershipFailure(reply, roomId, undefined, actor);
    return reply.slice(3).map(String);
  }

  /**
   * Compare-and-set on the version, linearizable across instances: reads the state, applies the
   * change in TypeScript, and commits only if nothing changed in between (else reads again).
   * The actor's role is read with the state (so it is refused before a stale version is) and
   * checked again by the commit. With an actor, the commit also publishes `state_updated` (no
   * requestId, except the actor) on the room's channel; the actor's reply is the caller's to
   * send. A commit whose answer is lost after its echo came counts as done, the echo having
   * answered the actor (CommitReplies).
   */
  async applyStateChange(
    roomId: string,
    change: StateChange,
    maxStateBytes: number,
    actor?: StateChangeActor,
  ): Promise<number> {
    const room = this.keys.room(roomId);
    for (let attempt = 1; attempt <= STATE_CHANGE_ATTEMPTS; attempt++) {
      const [epoch, json, actorRecord] = await this.transaction((multi) => {
        const read = multi.hget(room.meta, 'epoch').get(room.state);
        return actor ? read.hget(room.members, actor.userId) : read;
      });
      if (typeof epoch !== 'string' || typeof json !== 'string') {
        throw ProtocolError.roomNotFound(roomId);
      }
      if (actor) {
        assertRoleAtLeast(roomId, roleOfRecord(actorRecord), actor.minRole);
      }
      const state = JSON.parse(json) as RoomState;
      const next = applyStateChange(state, change, maxStateBytes);
      const commitId = actor ? this.commitReplies.open() : undefined;
      const envelope = actor
        ? this.stateEnvelope(roomId, change, next.version, actor, commitId)
        : '';
      const commit = this.scripts.gmsCommitState(
        ...this.head(roomId),
        epoch,
        state.version,
        next.version,
        JSON.stringify(next),
        Date.now(),
        roomChannel(this.keys.prefix, roomId),
        envelope,
        ...actorArgs(actor),
      );
      const reply = await this.settleCommit(commit, commitId);
      this.throwMembershipFailure(reply, roomId, undefined, actor);
      if (reply[0] === 'OK') {
        return next.version;
      }
      // Lost a race (or the room was replaced): spread the retries of a crowd a little.
      await sleep(Math.random() * attempt);
    }
    throw storeUnavailable(`The state of room ${roomId} is changing too fast; try again`);
  }

  async getState(roomId: string): Promise<RoomState> {
    const json = await this.run(this.redis.get(this.keys.room(roomId).state));
    if (json === null) {
      throw ProtocolError.roomNotFound(roomId);
    }
    return JSON.parse(json) as RoomState;
  }

  /** One atomic read: the join order and the records, so every listed member has its record. */
  async members(roomId: string): Promise<RoomUser[]> {
    const room = this.keys.room(roomId);
    const [createdAt, order, records] = (await this.transaction((multi) =>
      multi
        .hget(room.meta, 'createdAt')
        .zrange(room.order, 0, '-1', 'WITHSCORES')
        .hgetall(room.members),
    )) as [string | null, string[], Record<string, string>];
    if (createdAt === null) {
      throw ProtocolError.roomNotFound(roomId);
    }
    const users: RoomUser[] = [];
    for (let i = 0; i + 1 < order.length; i += 2) {
      const record = records[order[i]];
      if (record !== undefined) {
        users.push({ ...decodeMember(record).user, slot: slotOf(Number(order[i + 1])) });
      }
    }
    return users;
  }

  async shareRoom(userId: string, otherUserId: string, via?: string): Promise<string | undefined> {
    if (via !== undefined) {
      const [mine, theirs] = (await this.transaction((multi) =>
        multi
          .zscore(this.keys.userRooms(userId), via)
          .zscore(this.keys.userRooms(otherUserId), via),
      )) as [string | null, string | null];
      return mine !== null && theirs !== null ? via : undefined;
    }
    const [mine, theirs] = (await this.transaction((multi) =>
      multi
        .zrange(this.keys.userRooms(userId), 0, '-1')
        .zrange(this.keys.userRooms(otherUserId), 0, '-1'),
    )) as [string[], string[]];
    const shared = new Set(theirs);
    return mine.find((roomId) => shared.has(roomId));
  }

  /**
   * Never rejects: callers fire it and forget (one write per room per second of broadcasts), and
   * a lost activity mark only brings the idle timeout closer. An outage is logged once.
   */
  async touch(roomId: string, now: number): Promise<void> {
    try {
      await this.run(this.scripts.gmsTouchRoom(...this.head(roomId), now));
      this.touchFailing = false;
    } catch (error) {
      if (!this.touchFailing) {
        this.touchFailing = true;
        this.logger.warn(`Could not record activity in Redis: ${String(error)}`);
      }
    }
  }

  /** Reads the rooms in batches, each one atomic, so a large registry never blocks Redis long. */
  async list(): Promise<RoomSummary[]> {
    const roomIds = await this.run(this.redis.zrange(this.keys.global.registry, 0, '-1'));
    const summaries: RoomSummary[] = [];
    for (let start = 0; start < roomIds.length; start += LIST_BATCH) {
      const batch = roomIds.slice(start, start + LIST_BATCH);
      const replies = await this.transaction((multi) => {
        for (const roomId of batch) {
          const room = this.keys.room(roomId);
          multi
            .hmget(room.meta, 'name', 'persistent', 'createdAt', 'lastActivity', 'recoveredAt')
            .zcard(room.order);
        }
        return multi;
      });
      batch.forEach((roomId, index) => {
        const [name, persistent, createdAt, lastActivity, recoveredAt] = replies[2 * index] as (
          string | null
        )[];
        if (createdAt === null) {
          return; // deleted since the registry was read
        }
        summaries.push({
          roomId,
          ...(name ? { name } : {}),
          userCount: replies[2 * index + 1] as number,
          persistent: persistent === '1',
          createdAt: Number(createdAt),
          lastActivity: Number(lastActivity),
          ...(recoveredAt ? { recoveredAt: Number(recoveredAt) } : {}),
        });
      });
    }
    return summaries;
  }

  /**
   * Lists candidates from the expiry schedule, then claims each with a script that checks the
   * rules again: two instances sweeping at once never both report a room.
   */
  async deleteExpired(policy: ExpiryPolicy): Promise<ExpiredRoom[]> {
    const { expiryEmpty, expiryActivity, expiryPersistent } = this.keys.global;
    const persistentIdleMs = policy.persistentRoomIdleMs ?? 0;
    if (persistentIdleMs > 0) {
      this.startSchedulingPersistentRooms();
    }
    const idleBefore = policy.now - policy.roomTimeoutMs - LAST_ACTIVITY_RESOLUTION_MS;
    const persistentIdleBefore = policy.now - persistentIdleMs - LAST_ACTIVITY_RESOLUTION_MS;
    const [empty, idle, idlePersistent] = (await this.transaction((multi) => {
      multi
        .zrangebyscore(expiryEmpty, '-inf', policy.now - policy.emptyRoomTtlMs)
        .zrangebyscore(expiryActivity, '-inf', idleBefore);
      return persistentIdleMs > 0
        ? multi.zrangebyscore(expiryPersistent, '-inf', persistentIdleBefore)
        : multi;
    })) as [string[], string[], string[] | undefined];
    const candidates = [...new Set([...empty, ...idle, ...(idlePersistent ?? [])])];
    const claims = await Promise.all(
      candidates.map((roomId) =>
        this.run(
          this.scripts.gmsDeleteRoom(
            ...this.head(roomId),
            'expire',
            policy.now,
            policy.emptyRoomTtlMs,
            policy.roomTimeoutMs,
            LAST_ACTIVITY_RESOLUTION_MS,
            persistentIdleMs,
          ),
        ),
      ),
    );
    const expired: { epoch: number; room: ExpiredRoom }[] = [];
    claims.forEach((reply, index) => {
      if (reply[0] === 'OK') {
        expired.push({
          epoch: Number(reply[2]),
          room: {
            roomId: candidates[index],
            reason: reply[1] as ExpiredRoom['reason'],
            memberIds: reply.slice(3).map(String),
          },
        });
      }
    });
    // Creation order, as MemoryRoomStore reports them.
    return expired.sort((a, b) => a.epoch - b.epoch).map(({ room }) => room);
  }

  /** Schedules the persistent rooms an earlier version stored, without holding up the boot. */
  onApplicationBootstrap(): void {
    this.startSchedulingPersistentRooms();
  }

  /**
   * Runs schedulePersistentRooms in the background, once per store unless it fails: a departure
   * waits for a sweep, and later sweeps find those rooms.
   */
  private startSchedulingPersistentRooms(): void {
    if (this.schedulingPersistentRooms) {
      return;
    }
    this.schedulingPersistentRooms = this.schedulePersistentRooms().catch((error: unknown) => {
      this.schedulingPersistentRooms = undefined;
      this.logger.warn(`Could not schedule the idle expiry of persistent rooms: ${String(error)}`);
    });
  }

  /**
   * Puts the persistent rooms stored before the idle schedule existed (`expiry:persistent`) on
   * it, from their lastActivity. Started at boot, and by deleteExpired (with idle expiry on) if
   * that failed; harmless to run again.
   */
  async schedulePersistentRooms(): Promise<void> {
    const roomIds = await this.run(this.redis.zrange(this.keys.global.registry, 0, '-1'));
    for (let start = 0; start < roomIds.length; start += LIST_BATCH) {
      const batch = roomIds.slice(start, start + LIST_BATCH);
      const flags = await this.transaction((multi) => {
        for (const roomId of batch) {
          multi.hget(this.keys.room(roomId).meta, 'persistent');
        }
        return multi;
      });
      const persistent = batch.filter((_, index) => flags[index] === '1');
      await Promise.all(
        persistent.map((roomId) => this.run(this.scripts.gmsTouchRoom(...this.head(roomId), ''))),
      );
    }
  }

  /** KEYS then ARGV[1..2], the same for every room script. */
  private head(roomId: string): string[] {
    return [...this.keys.scriptKeys(roomId), this.keys.prefix, roomId];
  }

  /**
   * The commit script's reply. When its answer is lost (UNAVAILABLE) after its echo already
   * gave the actor its reply, the commit happened: 'OK', so that the request has one outcome.
   */
  private async settleCommit(
    commit: Promise<ScriptReply>,
    commitId?: string,
  ): Promise<ScriptReply> {
    let reply: ScriptReply;
    try {
      reply = await this.run(commit);
    } catch (error) {
      if (commitId !== undefined && this.commitReplies.answerLost(commitId)) {
        return ['OK'];
      }
      throw error;
    }
    if (commitId !== undefined) {
      this.commitReplies.answered(commitId);
    }
    return reply;
  }

  private stateEnvelope(
    roomId: string,
    change: StateChange,
    version: number,
    actor: StateChangeActor,
    commitId?: string,
  ): string {
    // The same data StateService sends; the actor's requestId travels beside it, for its reply.
    const message: ServerMessage<typeof ServerEvent.StateUpdated> = {
      event: ServerEvent.StateUpdated,
      data: {
        roomId,
        version,
        ...(change.patch ? { patch: change.patch } : {}),
        ...(change.ops ? { ops: change.ops } : {}),
        updatedBy: actor.userId,
      },
    };
    const envelope: RoomEnvelope = {
      origin: this.instanceId,
      except: actor.userId,
      to: null,
      ...(actor.requestId !== undefined ? { requestId: actor.requestId } : {}),
      ...(commitId !== undefined ? { commitId } : {}),
      message,
    };
    return encodeEnvelope(envelope);
  }

  /** ROOM_NOT_FOUND, the actor's refusal (see RoomActor), then USER_NOT_FOUND for the target. */
  private throwMembershipFailure(
    reply: ScriptReply,
    roomId: string,
    userId: string | undefined,
    actor: RoomActor | undefined,
  ): void {
    if (reply[0] === 'ROOM_NOT_FOUND') {
      throw ProtocolError.roomNotFound(roomId);
    }
    if (actor && reply[0] === 'ACTOR') {
      throw RoomErrors.actorRefused(roomId, roleOfRecord(reply[1]), actor.minRole);
    }
    if (reply[0] === 'USER_NOT_FOUND') {
      throw new ProtocolError(ErrorCode.UserNotFound, `${userId} is not in room ${roomId}`);
    }
  }

  /** One Redis round trip; its failures become UNAVAILABLE (see fromRedisError). */
  private async run<T>(call: Promise<T>): Promise<T> {
    try {
      return await call;
    } catch (error) {
      throw fromRedisError(error);
    }
  }

  /** Commands run as one MULTI/EXEC (an atomic read); answers their results. */
  private async transaction(
    build: (multi: ChainableCommander) => ChainableCommander,
  ): Promise<unknown[]> {
    const results = await this.run(build(this.redis.multi()).exec());
    if (!results) {
      throw storeUnavailable();
    }
    return results.map(([error, value]) => {
      if (error) {
        throw fromRedisError(error);
      }
      return value;
    });
  }
}

/** The actor ARGV of a write: its userId and minimum role, or '' '' for the server itself. */
function actorArgs(actor: RoomActor | undefined): [string, string] {
  return actor ? [actor.userId, actor.minRole] : ['', ''];
}

/** The role of a member record (or a bare role, as a refusal names it); undefined for none. */
function roleOfRecord(record: unknown): Role | undefined {
  if (typeof record !== 'string' || record === '') {
    return undefined;
  }
  return record.split('\n', 1)[0] as Role;
}

/** ARGV of a room config, as the create and join scripts read it. */
function configArgs(config: RoomConfig): string[] {
  return [
    config.persistent ? '1' : '0',
    String(config.maxUsers),
    config.defaultRole,
    config.name ?? '',
    config.passwordHash ?? '',
  ];
}

/** ARGV of a room quota, as the create and join scripts read it: owner or '', its maximum. */
function quotaArgs(quota: RoomQuota | undefined): string[] {
  return quota ? [`${quota.owner.kind}:${quota.owner.id}`, String(quota.maxRooms)] : ['', '0'];
}

/**
 * {status, created, createdAt, state JSON, history position, then per member its record and join
 * number}: the room and one member in it.
 */
function snapshotOf(
  roomId: string,
  userId: string,
  reply: ScriptReply,
): { roomInfo: RoomInfo; user: RoomUser } {
  const users: RoomUser[] = [];
  for (let i = 5; i + 1 < reply.length; i += 2) {
    const { user } = decodeMember(String(reply[i]));
    user.slot = slotOf(Number(reply[i + 1]));
    users.push(user);
  }
  const [epoch, seq] = String(reply[4]).split(' ');
  const roomInfo: RoomInfo = {
    roomId,
    users,
    state: JSON.parse(String(reply[3])) as RoomState,
    createdAt: Number(reply[2]),
    ...(epoch ? { epoch, seq: Number(seq) } : {}),
  };
  const user = users.find((member) => member.id === userId) as RoomUser;
  return { roomInfo, user };
}

/**
 * {'JOINED' | 'MEMBER' | 'DEMOTED', flag, createdAt, state JSON, position, members...}; the flag:
 * the room was created (JOINED), the member was on record for this instance already (others).
 */
function joinOutcome(request: JoinRequest, reply: ScriptReply): JoinOutcome {
  const { roomInfo, user } = snapshotOf(request.roomId, request.userId, reply);
  const alreadyMember = reply[0] !== 'JOINED';
  return {
    roomInfo,
    user: { ...user },
    alreadyMember,
    ...(reply[0] === 'DEMOTED' ? { roleChanged: true } : {}),
    ...(alreadyMember && reply[1] === 1 ? { onRecordHere: true } : {}),
    createdRoom: !alreadyMember && reply[1] === 1,
  };
}

/** {'OK', remaining[, promoted record]}. */
function leaveOutcome(reply: ScriptReply): LeaveOutcome {
  const remaining = Number(reply[1]);
  const promoted = reply[2];
  if (typeof promoted !== 'string') {
    return { remaining };
  }
  return { newHost: decodeMember(promoted).user, remaining };
}
