import type {
  Avatar,
  Role,
  RoomInfo,
  RoomState,
  RoomUser,
  StateOp,
  StatePatch,
} from '../protocol/protocol.js';

export const ROOM_STORE = Symbol('ROOM_STORE');

/**
 * Slots a room has (u16, docs/binary-poses.md): a member's slot is unique among the room's
 * members, so a room whose members hold them all is full, whatever its maxUsers.
 */
export const SLOT_COUNT = 65536;

export type GrantableRole = Exclude<Role, 'host'>;

export interface RoomConfig {
  name?: string;
  maxUsers: number;
  /** A salted hash, never the password itself. */
  passwordHash?: string;
  persistent: boolean;
  defaultRole: GrantableRole;
}

/** Who a room counts against for the room quota: a verified user, or a client IP. */
export interface RoomOwner {
  kind: 'user' | 'ip';
  id: string;
}

/**
 * The owner a new room is recorded against, and how many rooms that owner may have at once:
 * the rooms it created that still exist. `maxRooms` 0 records the room without a limit.
 */
export interface RoomQuota {
  owner: RoomOwner;
  maxRooms: number;
}

export interface NewRoom {
  roomId: string;
  config: RoomConfig;
  createdAt: number;
  /**
   * The room's password, which the store hashes into the config's passwordHash only once the
   * room passed its checks: a refused create costs no hash (scrypt, about 16 MiB and 60 ms).
   */
  password?: string;
  /** ROOM_QUOTA when the owner has its maximum already. */
  quota?: RoomQuota;
}

/** A member marked connected or not (setConnected), and the room as it is now. */
export interface ConnectedSeat {
  user: RoomUser;
  roomInfo: RoomInfo;
  /** False when the member already was (not) connected. */
  changed: boolean;
}

export interface JoinRequest {
  roomId: string;
  userId: string;
  name: string;
  avatar?: Avatar;
  requestedRole?: Role;
  /** The highest role this membership may hold, kept with it (never sent to clients). */
  maxRole?: Role;
  password?: string;
  now: number;
  /**
   * Used when the join creates the room. Such a room is protected by the joiner's `password`,
   * which the store hashes only then.
   */
  configForNewRoom: Omit<RoomConfig, 'passwordHash'>;
  /** False: a missing room is ROOM_NOT_FOUND rather than created. Default true. */
  mayCreate?: boolean;
  /** The quota a room created by this join counts against. */
  quota?: RoomQuota;
  maxRooms: number;
  /**
   * Registering a live membership again (after a Redis outage, or after another instance took
   * this one for dead): a member on record is answered
   * as it is, without the admission checks and without touching its cap.
   */
  restore?: boolean;
}

export interface JoinOutcome {
  roomInfo: RoomInfo;
  user: RoomUser;
  /** The user was a member already: nothing changed but, maybe, its role (see roleChanged). */
  alreadyMember: boolean;
  /** A member joining again with a lower maxRole was demoted to it. */
  roleChanged?: boolean;
  /**
   * A member already, on record for this instance before this join (a store shared by instances
   * says so; not moved here from another): if no socket here holds it, nobody announced it.
   */
  onRecordHere?: boolean;
  createdRoom: boolean;
}

export interface LeaveOutcome {
  /** A member promoted to host because the host left. */
  newHost?: RoomUser;
  remaining: number;
}

export interface StateChange {
  baseVersion?: number;
  patch?: StatePatch;
  ops?: StateOp[];
}

/**
 * The member a write is made for and the role it needs. The store checks both in the same step
 * as the write (NOT_IN_ROOM, FORBIDDEN): a role the gateway saw may be gone by then (the member
 * was demoted or kicked while its request was on its way).
 */
export interface RoomActor {
  userId: string;
  minRole: Role;
}

/** The member making a state change; a shared store publishes `state_updated` in its name. */
export interface StateChangeActor extends RoomActor {
  /** The actor's request, so that the instance it is on can send its reply in commit order. */
  requestId?: string;
}

export interface RoomSummary {
  roomId: string;
  name?: string;
  userCount: number;
  persistent: boolean;
  createdAt: number;
  lastActivity: number;
  /**
   * Cluster mode: when the room was created again from its live members after Redis came back
   * without it (state from version 0, no password); absent otherwise.
   */
  recoveredAt?: number;
}

export type ExpiryReason = 'empty' | 'idle_timeout';

/**
 * Broadcasts write a room's lastActivity at most this often, so a stored value may lag the real
 * last activity by up to this much; the idle check allows for it.
 */
export const LAST_ACTIVITY_RESOLUTION_MS = 1000;

export interface ExpiredRoom {
  roomId: string;
  reason: ExpiryReason;
  memberIds: string[];
}

export interface ExpiryPolicy {
  now: number;
  emptyRoomTtlMs: number;
  roomTimeoutMs: number;
  /**
   * A persistent room without activity (joins, leaves, state changes, broadcasts) for this long
   * is deleted, reason `idle_timeout`; 0 or absent: never.
   */
  persistentRoomIdleMs?: number;
}

/**
 * Rooms, memberships, roles and state. Every check-and-write is one method so that a shared
 * implementation can make it atomic. Methods throw ProtocolError for rule violations.
 */
export interface RoomStore {
  /** ROOM_EXISTS, ROOM_QUOTA, ROOM_LIMIT. */
  create(room: NewRoom, maxRooms: number): Promise<void>;
  /**
   * Creates the room when missing (ROOM_NOT_FOUND when it may not; ROOM_QUOTA, ROOM_LIMIT).
   * KICKED, INVALID_PASSWORD, then ROOM_FULL: a member joining again passes the first two again.
   * A newcomer gets a slot no member holds (held seats included).
   */
  join(request: JoinRequest): Promise<JoinOutcome>;
  /** undefined when the user was not a member. */
  leave(roomId: string, userId: string, now: number): Promise<LeaveOutcome | undefined>;
  /**
   * Marks a member connected or not (its connection dropped and its seat is held, or it came
   * back); answers the member and the room as they are now, or undefined when it is no member
   * (or the room is gone). Touches nothing else.
   */
  setConnected(
    roomId: string,
    userId: string,
    connected: boolean,
    now: number,
  ): Promise<ConnectedSeat | undefined>;
  /** ROOM_NOT_FOUND; undefined when the user is not a member. */
  roleOf(roomId: string, userId: string): Promise<Role | undefined>;
  /**
   * Returns the users whose role changed, in the order they changed; the target comes last.
   * FORBIDDEN above the target's maxRole. Every write below takes the `actor` it is made for
   * (see RoomActor), checked after ROOM_NOT_FOUND and before anything else; none: the server.
   */
  setRole(roomId: string, targetUserId: string, role: Role, actor?: RoomActor): Promise<RoomUser[]>;
  /** Removes the target and bans it until `bannedUntil`. USER_NOT_FOUND. */
  kick(
    roomId: string,
    targetUserId: string,
    bannedUntil: number,
    now: number,
    actor?: RoomActor,
  ): Promise<LeaveOutcome>;
  /** Returns the ids of the members it had; ROOM_NOT_FOUND. */
  delete(roomId: string, actor?: RoomActor): Promise<string[]>;
  /**
   * Compare-and-set on the version; returns the new version. With an actor, a shared store also
   * publishes the `state_updated` to the other instances in the same atomic step (so every member
   * sees versions in order); the RoomBus provided with it knows that (deliverCommitted).
   */
  applyStateChange(
    roomId: string,
    change: StateChange,
    maxStateBytes: number,
    actor?: StateChangeActor,
  ): Promise<number>;
  getState(roomId: string): Promise<RoomState>;
  /** The members as they are now, in join order (for operators: /stats); ROOM_NOT_FOUND. */
  members(roomId: string): Promise<RoomUser[]>;
  /** The rooms the user is a member of, in join order. */
  roomsOf(userId: string): Promise<string[]>;
  /**
   * A room two users share (the first the user joined), or `via` when both are in it; undefined
   * when they share none (or not `via`).
   */
  shareRoom(userId: string, otherUserId: string, via?: string): Promise<string | undefined>;
  touch(roomId: string, now: number): Promise<void>;
  list(): Promise<RoomSummary[]>;
  /** Claims and deletes the rooms that expired under the policy. */
  deleteExpired(policy: ExpiryPolicy): Promise<ExpiredRoom[]>;
}
