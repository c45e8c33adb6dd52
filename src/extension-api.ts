/**
 * Everything an extension module may import (docs/extending.md). Import from here rather than
 * from the files behind it: they may move, this list stays.
 */
export { AppModule, type AppModuleOptions } from './app.module.js';
export { configureApp } from './app.setup.js';
export type { Identity } from './auth/identity.js';
export { withRequestId } from './delivery/replies.js';
export { RoomMessenger } from './delivery/room-messenger.service.js';
export type {
  LeaveReason,
  RoomDeletedReason,
  RoomEventListener,
  RoomEventMap,
  RoomEventName,
} from './extensions/room-events.js';
export { RoomEvents } from './extensions/room-events.service.js';
export {
  HookRejection,
  RoomHooks,
  type BeforeJoinContext,
  type BeforeJoinHook,
  type BeforeStateCommitContext,
  type BeforeStateCommitHook,
  type JoinEnrichment,
  type StateCommitEnrichment,
} from './extensions/room-hooks.service.js';
export { ActionGateway } from './gateway/action-gateway.decorator.js';
export { RoomRequestDto } from './gateway/dto/room-request.dto.js';
export { protocolValidationPipe } from './gateway/protocol-validation.pipe.js';
export { RequireRoomRole } from './gateway/require-room-role.decorator.js';
export { Senders } from './gateway/senders.js';
export { ProtocolError } from './protocol/protocol-error.js';
export {
  ErrorCode,
  type Avatar,
  type Role,
  type RoomUser,
  type StateOp,
  type StatePatch,
} from './protocol/protocol.js';
export type { Connection } from './users/connection.js';
