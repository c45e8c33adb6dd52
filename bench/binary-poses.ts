// The binary pose channel (docs/binary-poses.md) as the bench speaks it: a client frame encoder
// for the simulated users, a server frame reader for what they receive, and the server frame
// writer of the baseline. Little-endian throughout; the header is padded to a multiple of 4.
// Written for the hot path: one reusable buffer per sender, and reads straight off the received
// bytes (a view into the TCP chunk) without allocating per entry. The quantized form
// (gallery.v2q: header flags 1, 16-byte entries) shares the header; its entries are built and
// read with quantized-poses.ts.
import {
  FLAG_QUANTIZED,
  packRotation,
  Q_POSITION_AT,
  Q_ROTATION_AT,
  Q_TIME_AT,
  QUANTIZED_ENTRY_BYTES,
  timeLow32,
  toHalf,
} from './quantized-poses.js';

/** The WebSocket subprotocol a client offers to get poses as binary frames. */
export const BINARY_SUBPROTOCOL = 'gallery.v2';
export const TYPE_SERVER_POSES = 1;
export const TYPE_CLIENT_POSE = 2;
export const ENTRY_BYTES = 40;
const COUNT_AT = 2;
const TICK_AT = 4;
const ROOM_ID_LENGTH_AT = 8;
const ROOM_ID_AT = 9;
/** Offsets inside an entry. */
const SLOT_AT = 0;
const TIMESTAMP_AT = 4;
const POSITION_AT = 12;
const ROTATION_AT = 24;

/** H: the header's length for a room id of `roomIdLength` bytes, padded to a multiple of 4. */
export function headerLength(roomIdLength: number): number {
  return (ROOM_ID_AT + roomIdLength + 3) & ~3;
}

/** Header bytes for room `roomId` (type, flags, count, tick 0, room id, zero padding). */
export function frameHeader(type: number, roomId: string, count: number, flags = 0): Buffer {
  const roomIdBytes = Buffer.from(roomId, 'latin1');
  const header = Buffer.alloc(headerLength(roomIdBytes.length));
  header[0] = type;
  header[1] = flags;
  header.writeUInt16LE(count, COUNT_AT);
  header[ROOM_ID_LENGTH_AT] = roomIdBytes.length;
  roomIdBytes.copy(header, ROOM_ID_AT);
  return header;
}

/**
 * Builds one user's pose frames (type 2, count 1, slot 0) with the same motion as the JSON
 * PoseFrames. build() rewrites the one buffer of this user and returns it: the socket copies
 * it into its frame before build() is called again.
 */
export class BinaryPoseFrames implements PoseFrameBuilder {
  private readonly frame: Buffer;
  private readonly entryAt: number;

  constructor(roomId: string) {
    const header = frameHeader(TYPE_CLIENT_POSE, roomId, 1);
    this.entryAt = header.length;
    this.frame = Buffer.alloc(header.length + ENTRY_BYTES);
    header.copy(this.frame);
    this.frame.writeFloatLE(1.7, this.entryAt + POSITION_AT + 4);
    this.frame.writeFloatLE(1, this.entryAt + ROTATION_AT + 12);
  }

  build(timestampMs: number, step: number): Buffer {
    const angle = step / 33;
    const frame = this.frame;
    const at = this.entryAt;
    frame.writeDoubleLE(timestampMs, at + TIMESTAMP_AT);
    frame.writeFloatLE(Math.cos(angle), at + POSITION_AT);
    frame.writeFloatLE(Math.sin(angle), at + POSITION_AT + 8);
    return frame;
  }
}

/** One user's pose frames, either form: build() answers the one buffer, rewritten. */
export interface PoseFrameBuilder {
  build(timestampMs: number, step: number): Buffer;
}

/**
 * --quantized: one user's quantized pose frames (type 2, flags 1, count 1, slot 0, 16-byte
 * entry), the same motion as BinaryPoseFrames: position f16, rotation smallest three (the
 * identity, packed once), time the low 32 bits of the ms timestamp.
 */
export class QuantizedPoseFrames implements PoseFrameBuilder {
  private readonly frame: Buffer;
  private readonly entryAt: number;

  constructor(roomId: string) {
    const header = frameHeader(TYPE_CLIENT_POSE, roomId, 1, FLAG_QUANTIZED);
    this.entryAt = header.length;
    this.frame = Buffer.alloc(header.length + QUANTIZED_ENTRY_BYTES);
    header.copy(this.frame);
    this.frame.writeUInt16LE(toHalf(1.7), this.entryAt + Q_POSITION_AT + 2);
    this.frame.writeUInt32LE(packRotation(0, 0, 0, 1), this.entryAt + Q_ROTATION_AT);
  }

  build(timestampMs: number, step: number): Buffer {
    const angle = step / 33;
    const frame = this.frame;
    const at = this.entryAt;
    frame.writeUInt32LE(timeLow32(timestampMs), at + Q_TIME_AT);
    frame.writeUInt16LE(toHalf(Math.cos(angle)), at + Q_POSITION_AT);
    frame.writeUInt16LE(toHalf(Math.sin(angle)), at + Q_POSITION_AT + 4);
    return frame;
  }
}

/**
 * Reads the server pose frames (type 1) of one room. entriesAt() checks the header and
 * returns where entry 0 starts; the entries are then read in place with slotAt/timestampAt.
 */
export class ServerPoseReader {
  private readonly header: Buffer;
  private readonly flags: number;
  /** Bytes per entry: 40, or 16 for the quantized form. */
  readonly entryBytes: number;

  /** `quantized`: the frames must have flags 1 and 16-byte entries. */
  constructor(roomId: string, quantized = false) {
    this.flags = quantized ? FLAG_QUANTIZED : 0;
    this.entryBytes = quantized ? QUANTIZED_ENTRY_BYTES : ENTRY_BYTES;
    this.header = frameHeader(TYPE_SERVER_POSES, roomId, 0, this.flags);
  }

  /**
   * The offset of entry 0 in a server pose frame of this room, or -1 when the frame is not one
   * (type, flags, room id or a length that does not fit its count).
   */
  entriesAt(frame: Buffer): number {
    const header = this.header;
    const length = header.length;
    if (
      frame.length < length ||
      frame[0] !== TYPE_SERVER_POSES ||
      frame[1] !== this.flags ||
      frame.length !== length + countOf(frame) * this.entryBytes ||
      frame.compare(header, ROOM_ID_LENGTH_AT, length, ROOM_ID_LENGTH_AT, length) !== 0
    ) {
      return -1;
    }
    return length;
  }
}

export function countOf(frame: Buffer): number {
  return frame[COUNT_AT] | (frame[COUNT_AT + 1] << 8);
}

export function slotAt(frame: Buffer, entryAt: number): number {
  return frame[entryAt + SLOT_AT] | (frame[entryAt + SLOT_AT + 1] << 8);
}

export function timestampAt(frame: Buffer, entryAt: number): number {
  return frame.readDoubleLE(entryAt + TIMESTAMP_AT);
}

/** A quantized entry's time: the low 32 bits of the sender's ms timestamp (restoreTimestamp). */
export function quantizedTimeAt(frame: Buffer, entryAt: number): number {
  return frame.readUInt32LE(entryAt + Q_TIME_AT);
}

// --- the baseline's side -------------------------------------------------------------------------

/**
 * A client pose frame's room id, or undefined when the frame is not a client pose (type 2,
 * count 1, length H + entryBytes: 40, or 16 quantized). The baseline validates no more than it
 * needs to route the frame.
 */
export function clientPoseRoomId(frame: Buffer, entryBytes = ENTRY_BYTES): string | undefined {
  if (frame.length < ROOM_ID_AT || frame[0] !== TYPE_CLIENT_POSE || countOf(frame) !== 1) {
    return undefined;
  }
  const roomIdLength = frame[ROOM_ID_LENGTH_AT];
  if (frame.length !== headerLength(roomIdLength) + entryBytes) {
    return undefined;
  }
  return frame.toString('latin1', ROOM_ID_AT, ROOM_ID_AT + roomIdLength);
}

/** Where a client pose frame's one entry (of entryBytes) starts. */
export function clientEntryAt(frame: Buffer, entryBytes = ENTRY_BYTES): number {
  return frame.length - entryBytes;
}

/**
 * Writes a server pose frame's header at `at` of `target`: the room header (from frameHeader,
 * built once per room, flags included) with its count and tick filled in.
 */
export function writeServerHeader(
  target: Buffer,
  at: number,
  roomHeader: Buffer,
  count: number,
  tick: number,
): void {
  roomHeader.copy(target, at);
  target[at] = TYPE_SERVER_POSES;
  target.writeUInt16LE(count, at + COUNT_AT);
  target.writeUInt32LE(tick >>> 0, at + TICK_AT);
}

/** Sets an entry's slot (a client sends 0; the server fills in the sender's). */
export function writeSlot(target: Buffer, entryAt: number, slot: number): void {
  target.writeUInt16LE(slot, entryAt + SLOT_AT);
}
