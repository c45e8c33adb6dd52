import { length } from 'class-validator';
import { ProtocolError } from '../protocol/protocol-error.js';
import { ID_PATTERN, POSE_UPDATE, type AppMessage } from '../protocol/protocol.js';
import { POSE_DATA_MESSAGE } from './dto/pose-data.dto.js';

// Lengths are counted with class-validator's own `length`, as the DTO counts them.
const MAX_TYPE_LENGTH = 64;
const MAX_SENDER_ID_LENGTH = 64;
/** OptionalRequestId's bound, which every DTO-checked action applies. */
const MAX_REQUEST_ID_LENGTH = 128;

export interface BroadcastRequest {
  roomId: string;
  message: AppMessage;
}

/**
 * The `broadcast` check, hand-written because it runs for every pose update: the same rules as
 * RoomRequestDto (requestId, roomId) and AppMessageDto (a spec holds them to the same cases), no
 * allocation on success.
 */
export function checkBroadcast(body: Record<string, unknown>): BroadcastRequest {
  checkRequestId(body.requestId);
  const roomId = body.roomId;
  if (typeof roomId !== 'string' || !ID_PATTERN.test(roomId)) {
    throw ProtocolError.validation('roomId', 'roomId must be 1-64 characters of [A-Za-z0-9._-]');
  }
  checkAppMessage(body.message);
  return body as unknown as BroadcastRequest;
}

/**
 * OptionalRequestId by hand, checked first as the DTOs name it first: without it a broadcast
 * relayed a requestId no other action takes, and an object one failed later without its field.
 * Absent (or null, which IsOptional skips) and short strings cost one or two typeof tests.
 */
function checkRequestId(requestId: unknown): void {
  if (requestId === undefined || requestId === null) {
    return;
  }
  if (typeof requestId !== 'string') {
    throw ProtocolError.validation('requestId', 'requestId must be a string');
  }
  if (!lengthWithin(requestId, 0, MAX_REQUEST_ID_LENGTH)) {
    throw ProtocolError.validation(
      'requestId',
      `requestId must be shorter than or equal to ${MAX_REQUEST_ID_LENGTH} characters`,
    );
  }
}

export function checkAppMessage(message: unknown): asserts message is AppMessage {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) {
    throw ProtocolError.validation('message', 'message must be an object');
  }
  const { type, senderId, timestamp, data } = message as Record<string, unknown>;
  if (typeof type !== 'string' || !lengthWithin(type, 1, MAX_TYPE_LENGTH)) {
    throw ProtocolError.validation(
      'message.type',
      'message.type must be a string of 1-64 characters',
    );
  }
  if (senderId !== undefined && !lengthWithin(senderId, 0, MAX_SENDER_ID_LENGTH)) {
    throw ProtocolError.validation('message.senderId', 'message.senderId must be a string');
  }
  if (timestamp !== undefined && (typeof timestamp !== 'number' || !Number.isFinite(timestamp))) {
    throw ProtocolError.validation('message.timestamp', 'message.timestamp must be a number');
  }
  if (data !== undefined && (typeof data !== 'object' || data === null || Array.isArray(data))) {
    throw ProtocolError.validation('message.data', 'message.data must be an object');
  }
  if (type === POSE_UPDATE && !isPoseData(data)) {
    throw ProtocolError.validation('message.data', POSE_DATA_MESSAGE);
  }
}

/**
 * class-validator's `length` (a surrogate pair counts as one character), without its regex
 * for the strings every pose carries: one of 1..max UTF-16 units is within 1..max characters.
 */
function lengthWithin(value: unknown, min: number, max: number): boolean {
  if (typeof value === 'string' && value.length >= Math.max(min, 1) && value.length <= max) {
    return true;
  }
  return length(value, min, max);
}

/** PoseDataDto, by hand: position [x, y, z] and rotation [x, y, z, w], finite numbers. */
function isPoseData(data: unknown): boolean {
  if (data === undefined) {
    return false;
  }
  const { position, rotation } = data as Record<string, unknown>;
  return isFiniteVector(position, 3) && isFiniteVector(rotation, 4);
}

function isFiniteVector(value: unknown, length: number): boolean {
  if (!Array.isArray(value) || value.length !== length) {
    return false;
  }
  for (let i = 0; i < length; i++) {
    const n: unknown = value[i];
    if (typeof n !== 'number' || !Number.isFinite(n)) {
      return false;
    }
  }
  return true;
}
