import {
  ClientAction,
  ErrorCode,
  POSE_UPDATE,
  type AppMessage,
  type ResumePosition,
  type Role,
  type RoomInfo,
  type RoomState,
  type RoomUser,
  type ServerEvent,
  type ServerEventMap,
  type ServerMessage,
  type StateOp,
  type StatePatch,
  type UserInfo,
} from '../../src/protocol/protocol.js';
import { Emitter, type Handler } from './emitter.js';
import { GalleryError } from './errors.js';
import { applyStateUpdate, type StateUpdate } from './room-state.js';

export type Vec3 = [number, number, number];
export type Quat = [number, number, number, number];

export interface PoseEvent {
  userId: string;
  position: Vec3;
  rotation: Quat;
  timestamp?: number;
  message: AppMessage;
}

export type MemberEvent =
  | { type: 'joined' | 'updated'; user: RoomUser }
  | { type: 'left'; userId: string; user?: RoomUser }
  /** A snapshot (a join again, an unrecovered resume) replaced the whole member list. */
  | { type: 'reset'; members: RoomUser[] };

export interface StateEvent {
  state: RoomState;
  /** The change applied, or absent when a snapshot replaced the state (join, resync, resume). */
  update?: StateUpdate;
}

export interface RoomMessageEvent {
  senderId: string;
  message: AppMessage;
}

/** Why a room object stopped following its room; it is not rejoined after any of these. */
export type RoomCloseReason = 'left' | 'kicked' | 'deleted' | 'lost' | 'disconnected';

export interface RoomEvents {
  pose: PoseEvent;
  member: MemberEvent;
  state: StateEvent;
  message: RoomMessageEvent;
  closed: { reason: RoomCloseReason; error?: GalleryError };
}

export interface StateChange {
  patch?: StatePatch;
  ops?: StateOp[];
  /** For a patch: the version it was made against. Default: the version this room object has. */
  baseVersion?: number;
}

export interface UpdateOptions {
  /** On STALE_VERSION, send the same change again against the current version (up to 3 times). */
  retryOnStale?: boolean;
}

/** What a room needs of its client. */
export interface RoomLink {
  request<E extends ServerEvent>(
    action: ClientAction,
    body: object,
    expect: E,
  ): Promise<ServerEventMap[E]>;
  send(action: ClientAction, body: object): void;
  sendPose(roomId: string, pose: OutgoingPose): void;
  leave(roomId: string): Promise<unknown>;
  forget(room: Room): void;
}

/** A pose on its way out, JSON or binary (the client chooses when it is sent). */
export interface OutgoingPose {
  position: Vec3;
  rotation: Quat;
  timestamp: number;
}

export interface JoinOptions {
  userInfo?: UserInfo;
  password?: string;
}

const STALE_RETRIES = 3;

/**
 * A joined room, kept current from events: `state`, `members`, the resume position (`epoch`,
 * `lastSeq`). From `GalleryClient.joinRoom`; the same object survives reconnects.
 */
export class Room {
  private readonly events = new Emitter<RoomEvents>();
  private current: RoomState;
  private readonly users = new Map<string, RoomUser>();
  /** Who a binary frame's slot stands for. */
  private readonly slots = new Map<number, string>();
  private closedReason?: RoomCloseReason;
  createdAt: number;
  epoch?: string;
  lastSeq?: number;

  constructor(
    readonly id: string,
    info: RoomInfo,
    /** What the join asked for, sent again by a join after a reconnect. */
    readonly joinOptions: JoinOptions,
    private readonly link: RoomLink,
  ) {
    this.current = info.state;
    this.createdAt = info.createdAt;
    this.applySnapshot(info);
  }

  get state(): RoomState {
    return this.current;
  }

  get members(): ReadonlyMap<string, RoomUser> {
    return this.users;
  }

  get closed(): RoomCloseReason | undefined {
    return this.closedReason;
  }

  on<K extends keyof RoomEvents>(event: K, handler: Handler<RoomEvents[K]>): () => void {
    return this.events.on(event, handler);
  }

  off<K extends keyof RoomEvents>(event: K, handler: Handler<RoomEvents[K]>): void {
    this.events.off(event, handler);
  }

  /** Set by leave(). */
  leaving = false;

  /** While reconnecting: resolves at once; the server hears of it once back. */
  async leave(): Promise<void> {
    this.leaving = true;
    try {
      await this.link.leave(this.id);
    } finally {
      this.close('left');
    }
  }

  /** To every other member; throwaway types (poses) may be dropped for slow members. */
  broadcast(message: AppMessage): void {
    this.link.send(ClientAction.Broadcast, { roomId: this.id, message });
  }

  /** At most the pose budget per second; a pose sent too soon waits, replaced by newer ones. */
  sendPose(position: Vec3, rotation: Quat): void {
    this.link.sendPose(this.id, { position, rotation, timestamp: Date.now() });
  }

  /** A direct message to one member, through this room: it reaches them as this room's. */
  sendMessage(userId: string, message: AppMessage): void {
    this.link.send(ClientAction.SendMessage, { targetUserId: userId, roomId: this.id, message });
  }

  /** Resolves once applied, with `room.state` already showing the change. */
  async updateState(change: StateChange, options: UpdateOptions = {}): Promise<StateUpdate> {
    let baseVersion = change.baseVersion ?? this.current.version;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.link.request(
          ClientAction.UpdateState,
          { roomId: this.id, patch: change.patch, ops: change.ops, baseVersion },
          'state_updated',
        );
      } catch (error) {
        if (!isStale(error) || !options.retryOnStale || attempt >= STALE_RETRIES) {
          throw error;
        }
        baseVersion = error.currentVersion ?? baseVersion;
      }
    }
  }

  /** Fetches the whole state again (get_state) and replaces `room.state` with it. */
  async refresh(): Promise<RoomState> {
    const reply = await this.link.request(ClientAction.GetState, { roomId: this.id }, 'state');
    this.replaceState(reply.state);
    return reply.state;
  }

  async setRole(userId: string, role: Role): Promise<void> {
    const body = { roomId: this.id, targetUserId: userId, role };
    await this.link.request(ClientAction.SetRole, body, 'user_updated');
  }

  async kick(userId: string): Promise<void> {
    const body = { roomId: this.id, targetUserId: userId };
    await this.link.request(ClientAction.KickUser, body, 'user_left');
  }

  async delete(): Promise<void> {
    await this.link.request(ClientAction.DeleteRoom, { roomId: this.id }, 'room_deleted');
  }

  /** The room as `room_joined` describes it, from what this object has now. */
  info(): RoomInfo {
    const { id: roomId, createdAt, epoch, lastSeq: seq } = this;
    return { roomId, users: [...this.users.values()], state: this.current, createdAt, epoch, seq };
  }

  /** @internal The resume request's entry for this room. */
  position(): ResumePosition {
    return { roomId: this.id, epoch: this.epoch, lastSeq: this.lastSeq };
  }

  /** @internal A `resumed` reply that recovered the room: its missed events follow. */
  setPosition(epoch: string, seq: number): void {
    this.epoch = epoch;
    this.lastSeq = seq;
  }

  /** @internal room_joined, or an unrecovered room of `resumed`: replaces what the room had. */
  applySnapshot(info: RoomInfo): void {
    this.users.clear();
    this.slots.clear();
    for (const user of info.users) {
      this.setUser(user);
    }
    this.createdAt = info.createdAt;
    this.epoch = info.epoch;
    this.lastSeq = info.seq;
    this.current = info.state;
    this.events.emit('member', { type: 'reset', members: info.users });
    this.events.emit('state', { state: info.state });
  }

  /** @internal An event of this room, live or replayed after a resume. */
  handle(message: ServerMessage): void {
    this.dispatch(message);
    const seq = (message.data as { seq?: unknown }).seq;
    if (typeof seq === 'number') {
      // The highest, not the last: held-back events may come after a newer snapshot.
      this.lastSeq = Math.max(this.lastSeq ?? 0, seq);
    }
  }

  /** @internal The room is over for this client; no more events, no rejoin. */
  close(reason: RoomCloseReason, error?: GalleryError): void {
    if (this.closedReason) {
      return;
    }
    this.closedReason = reason;
    this.link.forget(this);
    this.events.emit('closed', { reason, error });
  }

  private dispatch(message: ServerMessage): void {
    switch (message.event) {
      case 'user_joined':
      case 'user_updated':
        this.events.emit('member', {
          type: message.event === 'user_joined' ? 'joined' : 'updated',
          user: this.setUser(message.data.user),
        });
        return;
      case 'user_left':
        this.onUserLeft(message.data.userId);
        return;
      case 'message':
        this.onMessage(message.data);
        return;
      case 'state_updated':
        this.onStateUpdated(message.data);
        return;
      case 'state':
        this.replaceState(message.data.state);
        return;
      case 'kicked':
        this.close('kicked');
        return;
      case 'room_deleted':
        this.close('deleted');
        return;
      case 'connected':
      case 'room_created':
      case 'room_joined':
      case 'room_left':
      case 'pong':
      case 'hello':
      case 'token_refreshed':
      case 'resumed':
      case 'error':
        return; // not room events: the client handles them
    }
  }

  /** @internal The member a binary frame's slot stands for, if this room knows it. */
  userAt(slot: number): string | undefined {
    return this.slots.get(slot);
  }

  /** A member as this room keeps it: an update without a slot keeps the one it had. */
  private setUser(incoming: RoomUser): RoomUser {
    const known = this.users.get(incoming.id);
    const slot = incoming.slot ?? known?.slot;
    const user: RoomUser = slot === undefined ? incoming : { ...incoming, slot };
    this.users.set(user.id, user);
    if (known?.slot !== undefined && this.slots.get(known.slot) === user.id) {
      this.slots.delete(known.slot);
    }
    if (slot !== undefined) {
      this.slots.set(slot, user.id);
    }
    return user;
  }

  private onUserLeft(userId: string): void {
    const user = this.users.get(userId);
    this.users.delete(userId);
    if (user?.slot !== undefined && this.slots.get(user.slot) === userId) {
      this.slots.delete(user.slot);
    }
    this.events.emit('member', { type: 'left', userId, user });
  }

  private onMessage(data: ServerEventMap['message']): void {
    const pose = data.message.type === POSE_UPDATE ? poseOf(data) : undefined;
    if (pose) {
      this.events.emit('pose', pose);
    } else {
      this.events.emit('message', { senderId: data.senderId, message: data.message });
    }
  }

  private onStateUpdated(update: StateUpdate): void {
    if (update.version <= this.current.version) {
      return; // already in the snapshot this room has
    }
    if (update.version !== this.current.version + 1) {
      // A version was missed (each update adds exactly 1): fetch the whole state instead.
      this.refresh().catch(() => undefined);
      return;
    }
    this.current = applyStateUpdate(this.current, update);
    this.events.emit('state', { state: this.current, update });
  }

  private replaceState(state: RoomState): void {
    if (state.version < this.current.version) {
      return; // an older answer than what events already brought
    }
    this.current = state;
    this.events.emit('state', { state });
  }
}

function isStale(error: unknown): error is GalleryError {
  return error instanceof GalleryError && error.code === ErrorCode.StaleVersion;
}

function poseOf(data: ServerEventMap['message']): PoseEvent | undefined {
  const { position, rotation } = data.message.data ?? {};
  if (!isNumbers(position, 3) || !isNumbers(rotation, 4)) {
    return undefined;
  }
  return {
    userId: data.senderId,
    position,
    rotation,
    timestamp: data.message.timestamp,
    message: data.message,
  };
}

function isNumbers<N extends 3 | 4>(value: unknown, length: N): value is N extends 3 ? Vec3 : Quat {
  return (
    Array.isArray(value) && value.length === length && value.every((n) => typeof n === 'number')
  );
}
