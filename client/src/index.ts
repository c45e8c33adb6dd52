export { GalleryClient } from './client.js';
export type {
  ClientEvents,
  ConnectionState,
  ConnectionStateEvent,
  GalleryClientOptions,
} from './client.js';
export { Room } from './room.js';
export type {
  JoinOptions,
  MemberEvent,
  OutgoingPose,
  PoseEvent,
  Quat,
  RoomCloseReason,
  RoomEvents,
  RoomMessageEvent,
  StateChange,
  StateEvent,
  UpdateOptions,
  Vec3,
} from './room.js';
export { PoseInterpolator } from './interpolator.js';
export type { InterpolatedPose, PoseInterpolatorOptions, TimedPose } from './interpolator.js';
export { BINARY_SUBPROTOCOL, decodePoseFrame, encodePoseFrame } from './pose-codec.js';
export type { PoseEntry, PoseFrame } from './pose-codec.js';
export { ClientErrorCode, GalleryError } from './errors.js';
export type { GalleryErrorDetails } from './errors.js';
export { backoffDelay, isTerminalClose } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export type { Clock, SocketConstructor, SocketLike } from './socket.js';
export type { Handler } from './emitter.js';
export { WebSocketTransport } from './transport.js';
export type { TransportConnectOptions } from './transport.js';
// The server's own protocol names and types (src/protocol/protocol.ts), compiled into this package.
export {
  ClientAction,
  CloseCode,
  ErrorCode,
  POSE_UPDATE,
  ServerEvent,
} from '../../src/protocol/protocol.js';
export type {
  AppMessage,
  Avatar,
  ErrorPayload,
  ResumePosition,
  ResumedRoom,
  Role,
  RoomConfig,
  RoomInfo,
  RoomState,
  RoomUser,
  ServerEventMap,
  ServerMessage,
  StateItem,
  StateOp,
  StatePatch,
  UserInfo,
} from '../../src/protocol/protocol.js';
