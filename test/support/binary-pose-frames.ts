/**
 * The binary pose channel's frames as docs/binary-poses.md lays them out, written and read here
 * by offset, independently of the server's codec, so the tests hold the server to the document.
 */
export interface PoseEntry {
  slot: number;
  flags: number;
  timestamp: number;
  position: number[];
  rotation: number[];
}

export interface ServerPoseFrame {
  type: number;
  flags: number;
  tick: number;
  roomId: string;
  entries: PoseEntry[];
}

export function readServerPoseFrame(frame: Buffer): ServerPoseFrame {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const count = view.getUint16(2, true);
  const roomIdLength = view.getUint8(8);
  const header = Math.ceil((9 + roomIdLength) / 4) * 4;
  const quantized = view.getUint8(1) === 1;
  const entryBytes = quantized ? 16 : 40;
  if (frame.length !== header + count * entryBytes) {
    throw new Error(
      `${count} entries make ${header + count * entryBytes} bytes, not ${frame.length}`,
    );
  }
  const entries: PoseEntry[] = [];
  for (let i = 0; i < count; i++) {
    const at = header + i * entryBytes;
    if (quantized) {
      entries.push(readQuantizedEntry(view, at));
      continue;
    }
    entries.push({
      slot: view.getUint16(at, true),
      flags: view.getUint16(at + 2, true),
      timestamp: view.getFloat64(at + 4, true),
      position: [0, 1, 2].map((k) => view.getFloat32(at + 12 + 4 * k, true)),
      rotation: [0, 1, 2, 3].map((k) => view.getFloat32(at + 24 + 4 * k, true)),
    });
  }
  return {
    type: view.getUint8(0),
    flags: view.getUint8(1),
    tick: view.getUint32(4, true),
    roomId: frame.toString('latin1', 9, 9 + roomIdLength),
    entries,
  };
}

export function clientPoseFrame(
  roomId: string,
  pose: { timestamp: number; position: number[]; rotation: number[] },
): Buffer {
  const header = Math.ceil((9 + roomId.length) / 4) * 4;
  const frame = Buffer.alloc(header + 40);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  view.setUint8(0, 2);
  view.setUint16(2, 1, true);
  view.setUint8(8, roomId.length);
  frame.write(roomId, 9, 'latin1');
  view.setFloat64(header + 4, pose.timestamp, true);
  pose.position.forEach((value, k) => view.setFloat32(header + 12 + 4 * k, value, true));
  pose.rotation.forEach((value, k) => view.setFloat32(header + 24 + 4 * k, value, true));
  return frame;
}

/** A number as a float32 reads back: what a binary pose carries of a JSON coordinate. */
export function float32(value: number): number {
  return Math.fround(value);
}

/** IEEE 754 half precision, read by hand. */
export function half(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  return exponent === 0
    ? sign * fraction * 2 ** -24
    : sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** A 16-byte entry; `timestamp` is the time field (the low 32 bits of the sender's ms). */
function readQuantizedEntry(view: DataView, at: number): PoseEntry {
  const packed = view.getUint32(at + 8, true);
  const largest = packed >>> 30;
  const rotation = [0, 0, 0, 0];
  let shift = 20;
  let sum = 0;
  for (let k = 0; k < 4; k++) {
    if (k !== largest) {
      const value = ((((packed >>> shift) & 0x3ff) / 1023) * 2 - 1) * Math.SQRT1_2;
      rotation[k] = value;
      sum += value * value;
      shift -= 10;
    }
  }
  rotation[largest] = Math.sqrt(1 - sum);
  return {
    slot: view.getUint16(at, true),
    flags: 0,
    timestamp: view.getUint32(at + 12, true),
    position: [0, 1, 2].map((k) => half(view.getUint16(at + 2 + 2 * k, true))),
    rotation,
  };
}
