// The wire protocol in one place: the server, the tests and the bench import these names.

export const ClientAction = {
  CreateRoom: 'create_room',
  JoinRoom: 'join_room',
  LeaveRoom: 'leave_room',
  Broadcast: 'broadcast',
  SendMessage: 'send_message',
  Ping: 'ping',
  UpdateState: 'update_state',
  GetState: 'get_state',
  SetRole: 'set_role',
  KickUser: 'kick_user',
  DeleteRoom: 'delete_room',
  /** AUTH_MODE=jwt: a fresh token for the same `sub` extends the session past the old `exp`. */
  RefreshToken: 'refresh_token',
  /** After a dropped connection: take the seat back and get what was missed (docs/resume.md). */
  Resume: 'resume',
  /** Turns on capabilities a client could not ask for in the upgrade, e.g. binary poses. */
  Hello: 'hello',
} as const;
export type ClientAction = (typeof ClientAction)[keyof typeof ClientAction];

export const ServerEvent = {
  Connected: 'connected',
  RoomCreated: 'room_created',
  RoomJoined: 'room_joined',
  RoomLeft: 'room_left',
  UserJoined: 'user_joined',
  UserLeft: 'user_left',
  UserUpdated: 'user_updated',
  Message: 'message',
  Pong: 'pong',
  StateUpdated: 'state_updated',
  State: 'state',
  Kicked: 'kicked',
  RoomDeleted: 'room_deleted',
  TokenRefreshed: 'token_refreshed',
  Resumed: 'resumed',
  Hello: 'hello',
  Error: 'error',
} as const;
export type ServerEvent = (typeof ServerEvent)[keyof typeof ServerEvent];

export const ErrorCode = {
  InvalidJson: 'INVALID_JSON',
  InvalidMessage: 'INVALID_MESSAGE',
  UnknownAction: 'UNKNOWN_ACTION',
  ValidationFailed: 'VALIDATION_FAILED',
  RoomFull: 'ROOM_FULL',
  RoomExists: 'ROOM_EXISTS',
  RoomNotFound: 'ROOM_NOT_FOUND',
  RoomLimit: 'ROOM_LIMIT',
  InvalidPassword: 'INVALID_PASSWORD',
  NotInRoom: 'NOT_IN_ROOM',
  Forbidden: 'FORBIDDEN',
  UserNotFound: 'USER_NOT_FOUND',
  StaleVersion: 'STALE_VERSION',
  ItemExists: 'ITEM_EXISTS',
  ItemNotFound: 'ITEM_NOT_FOUND',
  StateTooLarge: 'STATE_TOO_LARGE',
  Kicked: 'KICKED',
  TooManyRooms: 'TOO_MANY_ROOMS',
  InternalError: 'INTERNAL_ERROR',
  /** Redis did not answer in time (cluster mode), or too many passwords wait; retry later. */
  Unavailable: 'UNAVAILABLE',
  /** A creator's rooms that still exist reached MAX_ROOMS_PER_USER (or MAX_ROOMS_PER_IP). */
  RoomQuota: 'ROOM_QUOTA',
  /** Over a per-connection rate limit; `retryAfterMs` says when the request would fit. */
  RateLimited: 'RATE_LIMITED',
  /** AUTH_MODE=jwt: the token was refused (refresh_token). */
  InvalidToken: 'INVALID_TOKEN',
  /** `resume`: the token is unknown, expired, already used, or not this user's: join again. */
  ResumeFailed: 'RESUME_FAILED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export const CloseCode = {
  GoingAway: 1001,
  UnsupportedData: 1003,
  /** Sustained abuse: rate limits or malformed frames, again and again; or reading stalled. */
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  /** Something unexpected went wrong while handling this connection; the server keeps running. */
  InternalError: 1011,
  /** The client read too slowly: its pending output passed MAX_CLIENT_BUFFER_BYTES. */
  TryAgainLater: 1013,
  SessionReplaced: 4000,
  /** AUTH_MODE=jwt: the token's `exp` passed without a `refresh_token`. */
  TokenExpired: 4001,
  /**
   * The upgrade was refused (400 bad userId, 401 auth, 403 origin or a userId the token does not
   * hold) for a client that offered APP_SUBPROTOCOL: browsers cannot read an upgrade's HTTP
   * status, so such a client gets the socket opened and closed at once with 4000 + the status.
   */
  UpgradeBadRequest: 4400,
  UpgradeUnauthorized: 4401,
  UpgradeForbidden: 4403,
} as const;

/**
 * The subprotocol the SDK offers on every connection. A client offering it is told of a refused
 * upgrade by a close code (CloseCode.Upgrade*) instead of an HTTP status.
 */
export const APP_SUBPROTOCOL = 'gallery';

/**
 * APP_SUBPROTOCOL plus the binary pose channel (docs/binary-poses.md): poses travel as binary
 * frames, everything else stays JSON.
 */
export const BINARY_POSES_SUBPROTOCOL = 'gallery.v2';

/** The binary pose channel with the server's frames in the quantized form (16-byte poses). */
export const QUANTIZED_POSES_SUBPROTOCOL = 'gallery.v2q';

/**
 * What a `hello` may turn on, for clients that cannot offer a subprotocol (docs/protocol.md).
 * `binary_poses` is the binary pose channel of `gallery.v2`; `binary_poses_quantized` the same
 * channel with the server's frames in the quantized form, as `gallery.v2q`. Names the server
 * does not know are ignored, so a client may offer more than an older server has.
 */
export const Capability = {
  BinaryPoses: 'binary_poses',
  BinaryPosesQuantized: 'binary_poses_quantized',
} as const;
export type Capability = (typeof Capability)[keyof typeof Capability];

/** A `hello` lists at most this many capabilities, each at most MAX_CAPABILITY_LENGTH long. */
export const MAX_CAPABILITIES = 16;
export const MAX_CAPABILITY_LENGTH = 64;

export const CloseReason = {
  GoingAway: 'Server shutting down',
  UnsupportedData: 'Binary frames are not supported',
  SessionReplaced: 'Session replaced',
  TryAgainLater: 'Client too slow: output buffer full',
  PolicyViolation: 'Too many refused messages',
  StalledInput: 'Too many messages waiting to be handled',
  InternalError: 'Internal server error',
  TokenExpired: 'Token expired',
} as const;

export const ROLES = ['host', 'editor', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

/** Higher rank = more rights; used to cap the role a joiner may ask for. */
export const ROLE_RANK: Record<Role, number> = { viewer: 0, editor: 1, host: 2 };

/**
 * The lowest role each room action that writes needs (the others need membership only). The
 * gateway refuses early with it; the store checks it again in the same step as the write.
 */
export const MIN_ROLE = {
  [ClientAction.UpdateState]: 'editor',
  [ClientAction.SetRole]: 'host',
  [ClientAction.KickUser]: 'host',
  [ClientAction.DeleteRoom]: 'host',
} as const satisfies Partial<Record<ClientAction, Role>>;

/** Room ids and user ids: 1-64 characters of [A-Za-z0-9._-]. */
export const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

export const STATE_COLLECTIONS = ['annotations', 'focusPoints'] as const;
export type StateCollection = (typeof STATE_COLLECTIONS)[number];

export const STATE_PATCH_SECTIONS = [
  'sceneUrl',
  'sceneLoaded',
  'treeViewState',
  'sessionSettings',
] as const;
export type StatePatchSection = (typeof STATE_PATCH_SECTIONS)[number];

export const STATE_OPS = ['add', 'update', 'remove'] as const;
export type StateOpKind = (typeof STATE_OPS)[number];

export type JsonObject = { [key: string]: unknown };

export interface Avatar {
  type?: string;
  color?: string;
  displayName?: string;
  modelUrl?: string;
}

/** `create_room`'s `config` (docs/protocol.md#create_room); every field optional. */
export interface RoomConfig {
  name?: string;
  maxUsers?: number;
  password?: string;
  persistent?: boolean;
  defaultRole?: 'editor' | 'viewer';
}

/** `join_room`'s `userInfo`: the profile and the role asked for; every field optional. */
export interface UserInfo {
  userId?: string;
  name?: string;
  role?: Role;
  avatar?: Avatar;
}

export interface RoomUser {
  id: string;
  name: string;
  role: Role;
  avatar?: Avatar;
  connected: boolean;
  lastSeen: number;
  /**
   * The member's number in the room's binary pose frames (0-65535, unique among the members):
   * in room_joined and user_joined, and in user_updated when the store knows it.
   */
  slot?: number;
}

export interface StateItem extends JsonObject {
  id: string;
}

export interface RoomState {
  version: number;
  sceneUrl: string | null;
  sceneLoaded: boolean;
  treeViewState: JsonObject;
  annotations: StateItem[];
  focusPoints: StateItem[];
  sessionSettings: JsonObject;
}

export interface StatePatch {
  sceneUrl?: string | null;
  sceneLoaded?: boolean;
  treeViewState?: JsonObject;
  sessionSettings?: JsonObject;
}

export interface StateOp {
  op: StateOpKind;
  collection: StateCollection;
  id: string;
  item?: JsonObject;
}

export interface RoomInfo {
  roomId: string;
  users: RoomUser[];
  state: RoomState;
  createdAt: number;
  /** The room's history: changes when it is lost (a restart). Absent when resume is off. */
  epoch?: string;
  /** The `seq` of the room's last event this snapshot includes. Absent when resume is off. */
  seq?: number;
}

/** What a resuming client says it has of one room. */
export interface ResumePosition {
  roomId: string;
  epoch?: string;
  lastSeq?: number;
}

/**
 * One room of a `resumed` reply: either the missed events follow in order (recovered), or the
 * snapshot replaces what the client had.
 */
export type ResumedRoom =
  | { roomId: string; recovered: true; epoch: string; seq: number }
  | { roomId: string; recovered: false; roomInfo: RoomInfo };

/** The application message type of avatar poses: the throwaway hot-path traffic by default. */
export const POSE_UPDATE = 'pose_update';

/** An application message as relayed by `broadcast` and `send_message`. */
export interface AppMessage {
  type: string;
  senderId?: string;
  timestamp?: number;
  data?: JsonObject;
}

export interface ErrorPayload {
  message: string;
  code: ErrorCode;
  requestId?: string;
  field?: string;
  currentVersion?: number;
  /** RATE_LIMITED: how long until the request would be accepted. */
  retryAfterMs?: number;
}

export type RoomDeletedReason = 'deleted' | 'idle_timeout';

/** Every server event and its payload: `send` helpers are typed against this map. */
export interface ServerEventMap {
  /**
   * `resumeToken` (RECONNECT_GRACE_MS > 0): keep it to `resume` after a dropped connection; a new
   * one comes with every connect. `resumed`: whether the upgrade's `?resume=` token was taken.
   */
  connected: { userId: string; resumeToken?: string; reconnectGraceMs?: number; resumed?: boolean };
  room_created: { requestId?: string; roomId: string };
  room_joined: { requestId?: string; roomInfo: RoomInfo };
  room_left: { requestId?: string; roomId: string };
  user_joined: { roomId: string; user: RoomUser; seq?: number };
  user_left: { requestId?: string; roomId: string; userId: string; seq?: number };
  user_updated: { requestId?: string; roomId: string; user: RoomUser; seq?: number };
  /**
   * `roomId`: the broadcast's room, or the room a direct message went through (`seq` counts
   * there). Always sent; optional in the type as the SDK still takes servers that left it out.
   */
  message: { roomId?: string; message: AppMessage; senderId: string; seq?: number };
  pong: { requestId?: string; serverTime: number };
  hello: { requestId?: string; capabilities: Capability[] };
  state_updated: {
    requestId?: string;
    roomId: string;
    version: number;
    patch?: StatePatch;
    ops?: StateOp[];
    updatedBy: string;
    seq?: number;
  };
  state: { requestId?: string; roomId: string; version: number; state: RoomState };
  kicked: { roomId: string; requestId?: string; seq?: number };
  room_deleted: { requestId?: string; roomId: string; reason: RoomDeletedReason; seq?: number };
  /** The session now ends at `expiresAt` (ms since the epoch). */
  token_refreshed: { requestId?: string; expiresAt: number };
  /** The rooms taken back (each followed by its missed events when recovered) and those lost. */
  resumed: { requestId?: string; rooms: ResumedRoom[]; lost: string[] };
  error: ErrorPayload;
}

export type ServerMessage<E extends ServerEvent = ServerEvent> = {
  [K in E]: { event: K; data: ServerEventMap[K] };
}[E];
