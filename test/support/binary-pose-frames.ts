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
  if (frame.length !== header + count * 40) {
    throw new Error(
      `a frame of ${count} entries is ${header + count * 40} bytes, not ${frame.length}`,
    );
  }
  const entries: PoseEntry[] = [];
  for (let i = 0; i < count; i++) {
    const at = header + i * 40;
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
