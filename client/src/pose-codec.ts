import type { Quat, Vec3 } from './room.js';

/**
 * The binary pose channel's frames (docs/binary-poses.md): a header padded to a multiple of 4,
 * then 40-byte entries, all little-endian.
 */
export const BINARY_SUBPROTOCOL = 'gallery.v2';
export const FRAME_SERVER_POSES = 1;
export const FRAME_CLIENT_POSE = 2;
export const ENTRY_BYTES = 40;

export interface PoseEntry {
  /** The sender's slot in the room (0 in a client's frame: the server fills in its own). */
  slot: number;
  /** The sender's clock, ms since the epoch. */
  timestamp: number;
  position: Vec3;
  rotation: Quat;
}

export interface PoseFrame {
  type: number;
  tick: number;
  roomId: string;
  poses: PoseEntry[];
}

/** Where the entries start: 9 header bytes and the room id, padded to a multiple of 4. */
export function headerBytes(roomIdLength: number): number {
  return Math.ceil((9 + roomIdLength) / 4) * 4;
}

/** A frame as bytes; undefined for a room id or coordinate (non-finite float32) it cannot carry. */
export function encodePoseFrame(frame: PoseFrame): ArrayBuffer | undefined {
  const { roomId, poses } = frame;
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(roomId) || poses.length > 0xffff) {
    return undefined;
  }
  const start = headerBytes(roomId.length);
  const buffer = new ArrayBuffer(start + poses.length * ENTRY_BYTES);
  const view = new DataView(buffer);
  view.setUint8(0, frame.type);
  view.setUint16(2, poses.length, true);
  view.setUint32(4, frame.tick >>> 0, true);
  view.setUint8(8, roomId.length);
  for (let i = 0; i < roomId.length; i++) {
    view.setUint8(9 + i, roomId.charCodeAt(i));
  }
  let offset = start;
  for (const pose of poses) {
    const floats = [...pose.position, ...pose.rotation];
    if (floats.length !== 7 || !floats.every((n) => Number.isFinite(Math.fround(n)))) {
      return undefined;
    }
    view.setUint16(offset, pose.slot, true);
    view.setFloat64(offset + 4, pose.timestamp, true);
    floats.forEach((n, k) => view.setFloat32(offset + 12 + 4 * k, n, true));
    offset += ENTRY_BYTES;
  }
  return buffer;
}

/** A client's pose frame: type 2, tick 0, one entry with slot 0. */
export function encodeClientPose(
  roomId: string,
  timestamp: number,
  position: Vec3,
  rotation: Quat,
): ArrayBuffer | undefined {
  const poses = [{ slot: 0, timestamp, position, rotation }];
  return encodePoseFrame({ type: FRAME_CLIENT_POSE, tick: 0, roomId, poses });
}

/** A frame from bytes, or undefined off the layout. Entries with nonzero flags are left out. */
export function decodePoseFrame(data: unknown): PoseFrame | undefined {
  const view = bytesOf(data);
  if (!view || view.byteLength < 12 || view.getUint8(1) !== 0) {
    return undefined;
  }
  const count = view.getUint16(2, true);
  const roomIdLength = view.getUint8(8);
  const start = headerBytes(roomIdLength);
  if (roomIdLength === 0 || view.byteLength !== start + count * ENTRY_BYTES) {
    return undefined;
  }
  let roomId = '';
  for (let i = 0; i < roomIdLength; i++) {
    roomId += String.fromCharCode(view.getUint8(9 + i));
  }
  const poses: PoseEntry[] = [];
  for (let offset = start; offset < view.byteLength; offset += ENTRY_BYTES) {
    if (view.getUint16(offset + 2, true) !== 0) {
      continue;
    }
    const float = (k: number) => view.getFloat32(offset + 12 + 4 * k, true);
    poses.push({
      slot: view.getUint16(offset, true),
      timestamp: view.getFloat64(offset + 4, true),
      position: [float(0), float(1), float(2)],
      rotation: [float(3), float(4), float(5), float(6)],
    });
  }
  return { type: view.getUint8(0), tick: view.getUint32(4, true), roomId, poses };
}

/** An ArrayBuffer or a typed array (Node's Buffer); not by instanceof, failing across realms. */
function bytesOf(data: unknown): DataView | undefined {
  if (ArrayBuffer.isView(data)) {
    return new DataView(data.buffer, data.byteOffset, data.byteLength);
  }
  if (Object.prototype.toString.call(data) === '[object ArrayBuffer]') {
    return new DataView(data as ArrayBuffer);
  }
  return undefined;
}
