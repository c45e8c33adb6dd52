import { ID_PATTERN, POSE_UPDATE, type AppMessage } from './protocol.js';
import {
  QUANTIZED_ENTRY_BYTES,
  fromHalf,
  packRotation,
  restoreTimestamp,
  timeLow32,
  toHalf,
  unpackRotation,
} from './quantized-poses.js';

/**
 * The binary pose channel's frames (docs/binary-poses.md), little-endian: a header
 * `u8 type, u8 flags, u16 count, u32 tick, u8 roomIdLength, roomId, zero padding to 4`, then
 * `count` entries of `u16 slot, u16 flags, f64 timestamp, 3 x f32 position, 4 x f32 rotation`,
 * or, with the header flag Quantized, 16-byte entries (quantized-poses.ts).
 */
export const BinaryFrameType = {
  /** Server to client: the poses of one room. */
  ServerPoses: 1,
  /** Client to server: one pose of the sender, for one room. */
  ClientPose: 2,
} as const;

/** Header flags. */
export const PoseFrameFlag = {
  /** The entries are the 16-byte quantized form. */
  Quantized: 1,
} as const;

export const POSE_ENTRY_BYTES = 40;
/** The application message type a binary pose stands for. */
export const BINARY_POSE_TYPE = POSE_UPDATE;
/** The most entries one server frame holds; a bigger batch goes out as several frames. */
export const MAX_POSES_PER_FRAME = 1024;

const MAX_ROOM_ID_LENGTH = 64;
/** The largest finite float32: a coordinate beyond it would arrive as Infinity. */
const FLOAT32_MAX = 3.4028234663852886e38;

/** Header bytes for a room id of `roomIdLength` characters: 9 + L, padded to a multiple of 4. */
export function poseHeaderLength(roomIdLength: number): number {
  return (9 + roomIdLength + 3) & ~3;
}

/** Writes a header at `offset` (a zeroed pad included); returns where the first entry goes. */
export function writePoseHeader(
  target: Buffer,
  offset: number,
  type: number,
  roomId: string,
  count: number,
  tick: number,
  flags = 0,
): number {
  const end = offset + poseHeaderLength(roomId.length);
  target.fill(0, offset, end);
  target[offset] = type;
  target[offset + 1] = flags;
  target.writeUInt16LE(count, offset + 2);
  target.writeUInt32LE(tick >>> 0, offset + 4);
  target[offset + 8] = roomId.length;
  target.write(roomId, offset + 9, 'latin1');
  return end;
}

/**
 * Whether a message fits an entry with nothing lost: a `pose_update` whose data is exactly a
 * position of 3 and a rotation of 4 float32-sized numbers, and nothing else besides its
 * type, senderId and timestamp.
 */
export function fitsPoseEntry(message: AppMessage): boolean {
  const data = message.data;
  return (
    message.type === BINARY_POSE_TYPE &&
    data !== undefined &&
    isVector(data.position, 3) &&
    isVector(data.rotation, 4) &&
    keysWithin(message, MESSAGE_KEYS, 4) &&
    keysWithin(data, DATA_KEYS, 2)
  );
}

const MESSAGE_KEYS: ReadonlySet<string> = new Set(['type', 'senderId', 'timestamp', 'data']);
const DATA_KEYS: ReadonlySet<string> = new Set(['position', 'rotation']);

/** Whether every own key of `object` is one of `allowed` (at most `max` of them). */
function keysWithin(object: object, allowed: ReadonlySet<string>, max: number): boolean {
  let count = 0;
  for (const key in object) {
    if (++count > max || !allowed.has(key)) {
      return false;
    }
  }
  return true;
}

/**
 * Writes a `pose_update` message as an entry at `offset`; false (nothing written that counts)
 * when it does not fit one (fitsPoseEntry).
 */
export function writePoseEntry(
  target: Buffer,
  offset: number,
  slot: number,
  message: AppMessage,
): boolean {
  if (!fitsPoseEntry(message)) {
    return false;
  }
  writeFittingEntry(target, offset, slot, message);
  return true;
}

/** writePoseEntry for a message the caller found to fit (fitsPoseEntry), not checked again. */
export function writeFittingEntry(
  target: Buffer,
  offset: number,
  slot: number,
  message: AppMessage,
): void {
  const { position, rotation } = message.data as { position: number[]; rotation: number[] };
  const timestamp = message.timestamp;
  target.writeUInt16LE(slot, offset);
  target.writeUInt16LE(0, offset + 2);
  // Without one, the server's clock: 0 would read as 1970, which the quantized form restores as
  // a time days off, and which stops an interpolator that orders a sender's poses by time.
  target.writeDoubleLE(
    typeof timestamp === 'number' && Number.isFinite(timestamp) ? timestamp : Date.now(),
    offset + 4,
  );
  for (let i = 0; i < 3; i++) {
    target.writeFloatLE(position[i], offset + 12 + 4 * i);
  }
  for (let i = 0; i < 4; i++) {
    target.writeFloatLE(rotation[i], offset + 24 + 4 * i);
  }
}

/** Writes the quantized form of the 40-byte entry at `source[from]` at `target[offset]`. */
export function writeQuantizedEntry(
  target: Buffer,
  offset: number,
  source: Buffer,
  from: number,
): void {
  target.writeUInt16LE(source.readUInt16LE(from), offset);
  for (let i = 0; i < 3; i++) {
    target.writeUInt16LE(toHalf(source.readFloatLE(from + 12 + 4 * i)), offset + 2 + 2 * i);
  }
  const rotation = packRotation(
    source.readFloatLE(from + 24),
    source.readFloatLE(from + 28),
    source.readFloatLE(from + 32),
    source.readFloatLE(from + 36),
  );
  target.writeUInt32LE(rotation, offset + 8);
  target.writeUInt32LE(timeLow32(source.readDoubleLE(from + 4)), offset + 12);
}

/** A client's pose frame, read: the room it is for and the message it stands for. */
export interface ClientPose {
  roomId: string;
  message: AppMessage;
}

/** A client's pose frame that checks out: the room it is for and where its one entry starts. */
export interface ClientPoseEntry {
  roomId: string;
  /** Offset of the entry in the frame. */
  at: number;
  /** The entry is the 16-byte quantized form. */
  quantized: boolean;
}

/**
 * Checks a client's binary frame (type 2, one entry, either form) where it lies, decoding no
 * more than the room id; a string says why it was refused. `knownRoomId`, a room id checked
 * before (the sender's last one), is returned as it is when the frame names it, rather than
 * decoded and checked again.
 */
export function checkClientPose(frame: Buffer, knownRoomId?: string): ClientPoseEntry | string {
  if (frame.length < 12) {
    return 'Binary frame too short';
  }
  const flags = frame[1];
  if (frame[0] !== BinaryFrameType.ClientPose || (flags & ~PoseFrameFlag.Quantized) !== 0) {
    return 'Unknown binary frame type or flags';
  }
  const quantized = flags === PoseFrameFlag.Quantized;
  if (frame.readUInt16LE(2) !== 1) {
    return 'A client pose frame holds exactly one pose';
  }
  const roomIdLength = frame[8];
  if (roomIdLength < 1 || roomIdLength > MAX_ROOM_ID_LENGTH) {
    return 'roomId must be 1-64 characters';
  }
  const at = poseHeaderLength(roomIdLength);
  const entryBytes = quantized ? QUANTIZED_ENTRY_BYTES : POSE_ENTRY_BYTES;
  if (frame.length !== at + entryBytes) {
    return `A client pose frame for this roomId is ${at + entryBytes} bytes`;
  }
  const known = knownRoomId !== undefined && namesRoom(frame, roomIdLength, knownRoomId);
  const roomId = known ? knownRoomId : frame.toString('latin1', 9, 9 + roomIdLength);
  if (!known && !ID_PATTERN.test(roomId)) {
    return 'roomId must be 1-64 characters of [A-Za-z0-9._-]';
  }
  if (quantized ? !quantizedEntryFinite(frame, at) : !fullEntryFinite(frame, at)) {
    return 'Pose numbers must be finite';
  }
  return { roomId, at, quantized };
}

/** Whether the frame's room id (its `length` bytes from offset 9) spells `roomId`. */
function namesRoom(frame: Buffer, length: number, roomId: string): boolean {
  if (roomId.length !== length) {
    return false;
  }
  for (let i = 0; i < length; i++) {
    if (frame[9 + i] !== roomId.charCodeAt(i)) {
      return false;
    }
  }
  return true;
}

/**
 * Writes the pose of a checked client frame as a 40-byte server entry of `slot` at `offset`: a
 * full entry is copied as it came, a quantized one expanded, its time restored as the timestamp
 * nearest to `now`.
 */
export function writeClientEntry(
  target: Buffer,
  offset: number,
  slot: number,
  frame: Buffer,
  pose: ClientPoseEntry,
  now?: number,
): void {
  target.writeUInt16LE(slot, offset);
  target.writeUInt16LE(0, offset + 2);
  const at = pose.at;
  if (!pose.quantized) {
    copyBytes(frame, at + 4, target, offset + 4, POSE_ENTRY_BYTES - 4);
    return;
  }
  target.writeDoubleLE(
    restoreTimestamp(frame.readUInt32LE(at + 12), now ?? Date.now()),
    offset + 4,
  );
  for (let i = 0; i < 3; i++) {
    target.writeFloatLE(fromHalf(frame.readUInt16LE(at + 2 + 2 * i)), offset + 12 + 4 * i);
  }
  const rotation = unpackRotation(frame.readUInt32LE(at + 8), scratchRotation);
  for (let i = 0; i < 4; i++) {
    target.writeFloatLE(rotation[i], offset + 24 + 4 * i);
  }
}

/**
 * Copies `length` bytes. For an entry's 40 bytes a plain loop takes about half the time of
 * Buffer#copy, which validates its arguments and makes a view of the source on every call.
 */
export function copyBytes(
  source: Buffer,
  from: number,
  target: Buffer,
  to: number,
  length: number,
): void {
  for (let i = 0; i < length; i++) {
    target[to + i] = source[from + i];
  }
}

/** Reused by writeClientEntry, which reads it back at once. */
const scratchRotation = [0, 0, 0, 1];

/** The `pose_update` message a 40-byte entry at `offset` stands for: its JSON members' form. */
export function readEntryMessage(entries: Buffer, offset: number, senderId: string): AppMessage {
  const position = [0, 0, 0];
  const rotation = [0, 0, 0, 0];
  for (let i = 0; i < 3; i++) {
    position[i] = entries.readFloatLE(offset + 12 + 4 * i);
  }
  for (let i = 0; i < 4; i++) {
    rotation[i] = entries.readFloatLE(offset + 24 + 4 * i);
  }
  const timestamp = entries.readDoubleLE(offset + 4);
  return { type: BINARY_POSE_TYPE, senderId, timestamp, data: { position, rotation } };
}

/**
 * Reads a client's binary frame (type 2, one entry, either form); a string says why it was
 * refused. The message gets the sender's id from the caller, which knows who sent it; a quantized
 * entry's time is restored as the timestamp nearest to `now`.
 */
export function readClientPose(frame: Buffer, senderId: string, now?: number): ClientPose | string {
  const pose = checkClientPose(frame);
  if (typeof pose === 'string') {
    return pose;
  }
  if (!pose.quantized) {
    return { roomId: pose.roomId, message: readEntryMessage(frame, pose.at, senderId) };
  }
  const entry = Buffer.allocUnsafe(POSE_ENTRY_BYTES);
  writeClientEntry(entry, 0, 0, frame, pose, now);
  return { roomId: pose.roomId, message: readEntryMessage(entry, 0, senderId) };
}

/** Whether a 40-byte entry's timestamp and seven floats are all finite. */
function fullEntryFinite(frame: Buffer, at: number): boolean {
  if (!Number.isFinite(frame.readDoubleLE(at + 4))) {
    return false;
  }
  for (let offset = at + 12; offset < at + POSE_ENTRY_BYTES; offset += 4) {
    if (!Number.isFinite(frame.readFloatLE(offset))) {
      return false;
    }
  }
  return true;
}

/**
 * Whether a 16-byte entry's positions are finite (no half-precision Infinity or NaN, exponent
 * 31); its rotation and time decode to finite numbers whatever their bits.
 */
function quantizedEntryFinite(frame: Buffer, at: number): boolean {
  for (let i = 0; i < 3; i++) {
    if (((frame.readUInt16LE(at + 2 + 2 * i) >> 10) & 0x1f) === 0x1f) {
      return false;
    }
  }
  return true;
}

function isVector(value: unknown, length: number): value is number[] {
  if (!Array.isArray(value) || value.length !== length) {
    return false;
  }
  for (const item of value) {
    if (typeof item !== 'number' || !(Math.abs(item) <= FLOAT32_MAX)) {
      return false;
    }
  }
  return true;
}
