import {
  BinaryFrameType,
  PoseFrameFlag,
  checkClientPose,
  fitsPoseEntry,
  poseHeaderLength,
  readClientPose,
  readEntryMessage,
  writeClientEntry,
  writePoseEntry,
  writePoseHeader,
  writeQuantizedEntry,
} from './binary-poses.js';
import { packRotation, toHalf, unpackRotation } from './quantized-poses.js';

const pose = {
  type: 'pose_update',
  timestamp: 1765000000123.25,
  data: { position: [1.5, -2, 3.25], rotation: [0, 0.5, 0, 0.75] },
};

/** A client frame laid out by hand, per docs/binary-poses.md. */
function clientFrame(roomId: string, overrides: (frame: Buffer, entry: number) => void = () => {}) {
  const entry = Math.ceil((9 + roomId.length) / 4) * 4;
  const frame = Buffer.alloc(entry + 40);
  frame[0] = 2;
  frame.writeUInt16LE(1, 2);
  frame[8] = roomId.length;
  frame.write(roomId, 9, 'latin1');
  frame.writeDoubleLE(pose.timestamp, entry + 4);
  pose.data.position.forEach((v, i) => frame.writeFloatLE(v, entry + 12 + 4 * i));
  pose.data.rotation.forEach((v, i) => frame.writeFloatLE(v, entry + 24 + 4 * i));
  overrides(frame, entry);
  return frame;
}

/** A quantized client frame for room `r`, laid out by hand. */
function quantizedFrame(position: number[], time: number): Buffer {
  const frame = Buffer.alloc(12 + 16);
  frame[0] = 2;
  frame[1] = PoseFrameFlag.Quantized;
  frame.writeUInt16LE(1, 2);
  frame[8] = 1;
  frame.write('r', 9, 'latin1');
  position.forEach((v, i) => frame.writeUInt16LE(toHalf(v), 14 + 2 * i));
  frame.writeUInt32LE(packRotation(0, 0, 0, 1), 20);
  frame.writeUInt32LE(time, 24);
  return frame;
}

function withBits(frame: Buffer, at: number, bits: number): Buffer {
  frame.writeUInt16LE(bits, at);
  return frame;
}

describe('binary pose frames', () => {
  it('pads the header to a multiple of 4', () => {
    expect([1, 2, 3, 4, 7, 64].map(poseHeaderLength)).toEqual([12, 12, 12, 16, 16, 76]);
  });

  it('writes a server header and entry at the documented offsets', () => {
    const frame = Buffer.alloc(12 + 40, 0xff);
    const entryAt = writePoseHeader(frame, 0, BinaryFrameType.ServerPoses, 'lob', 1, 2 ** 32 + 7);
    expect(entryAt).toBe(12);
    expect(writePoseEntry(frame, entryAt, 513, pose)).toBe(true);
    expect([...frame.subarray(0, 12)]).toEqual([1, 0, 1, 0, 7, 0, 0, 0, 3, 0x6c, 0x6f, 0x62]);
    expect(frame.readUInt16LE(12)).toBe(513);
    expect(frame.readUInt16LE(14)).toBe(0);
    expect(frame.readDoubleLE(16)).toBe(pose.timestamp);
    expect([0, 1, 2].map((i) => frame.readFloatLE(24 + 4 * i))).toEqual(pose.data.position);
    expect([0, 1, 2, 3].map((i) => frame.readFloatLE(36 + 4 * i))).toEqual(pose.data.rotation);
  });

  it("stamps an entry with the server's clock when its JSON pose has no timestamp", () => {
    const untimed = { type: pose.type, data: pose.data };
    const entry = Buffer.alloc(40);
    const before = Date.now();
    expect(writePoseEntry(entry, 0, 513, untimed)).toBe(true);
    const stamped = entry.readDoubleLE(4);
    expect(stamped).toBeGreaterThanOrEqual(before);
    expect(stamped).toBeLessThanOrEqual(Date.now());
  });

  it('reads a client pose as the pose_update it stands for', () => {
    expect(readClientPose(clientFrame('room-1'), 'alice')).toEqual({
      roomId: 'room-1',
      message: { ...pose, senderId: 'alice' },
    });
  });

  it('writes the quantized form of an entry at the documented offsets', () => {
    const full = Buffer.alloc(40);
    writePoseEntry(full, 0, 513, pose);
    const quantized = Buffer.alloc(16);
    writeQuantizedEntry(quantized, 0, full, 0);
    expect(quantized.readUInt16LE(0)).toBe(513);
    expect([2, 4, 6].map((at) => quantized.readUInt16LE(at))).toEqual(
      pose.data.position.map(toHalf),
    );
    expect(quantized.readUInt32LE(8)).toBe(packRotation(0, 0.5, 0, 0.75));
    expect(quantized.readUInt32LE(12)).toBe(Math.floor(pose.timestamp) % 2 ** 32);
  });

  it('reads a quantized client pose, its time restored near the server clock', () => {
    const frame = quantizedFrame([1.5, -2, 3.25], Math.floor(pose.timestamp) % 2 ** 32);
    const read = readClientPose(frame, 'alice', pose.timestamp + 40);
    if (typeof read === 'string') {
      throw new Error(read);
    }
    expect(read.roomId).toBe('r');
    expect(read.message.timestamp).toBe(Math.floor(pose.timestamp));
    expect(read.message.data?.position).toEqual([1.5, -2, 3.25]);
    const rotation = read.message.data?.rotation as number[];
    expect(rotation[3]).toBeCloseTo(1, 5);
    // The full form's length with the quantized flag, and the reverse, are refused.
    const fullLength = clientFrame('r', (f) => (f[1] = PoseFrameFlag.Quantized));
    expect(typeof readClientPose(fullLength, 'alice')).toBe('string');
  });

  it('checks a client frame where it lies: its room, where the entry starts, which form', () => {
    expect(checkClientPose(clientFrame('room-1'))).toEqual({
      roomId: 'room-1',
      at: 16,
      quantized: false,
    });
    expect(checkClientPose(quantizedFrame([1, 2, 3], 0))).toEqual({
      roomId: 'r',
      at: 12,
      quantized: true,
    });
  });

  it('reuses a room id checked before when the frame names the same room, and only then', () => {
    const known = 'room-1';
    const same = checkClientPose(clientFrame('room-1'), known);
    expect(typeof same !== 'string' && same.roomId).toBe(known);
    const other = checkClientPose(clientFrame('room-2'), known);
    expect(typeof other !== 'string' && other.roomId).toBe('room-2');
    const longer = checkClientPose(clientFrame('room-10'), known);
    expect(typeof longer !== 'string' && longer.roomId).toBe('room-10');
    // Bytes that differ from the known id are checked as ever, whatever it was.
    expect(typeof checkClientPose(clientFrame('room!1'), known)).toBe('string');
  });

  it('copies a full client entry as it came into a server entry of the given slot', () => {
    const frame = clientFrame('room-1');
    const checked = checkClientPose(frame);
    if (typeof checked === 'string') {
      throw new Error(checked);
    }
    const entry = Buffer.alloc(40, 0xff);
    writeClientEntry(entry, 0, 777, frame, checked);
    expect(entry.readUInt16LE(0)).toBe(777);
    expect(entry.readUInt16LE(2)).toBe(0);
    expect(entry.subarray(4)).toEqual(frame.subarray(16 + 4));
    expect(readEntryMessage(entry, 0, 'alice')).toEqual({ ...pose, senderId: 'alice' });
  });

  it('expands a quantized client entry to the numbers it stands for', () => {
    const frame = quantizedFrame([1.5, -2, 3.25], Math.floor(pose.timestamp) % 2 ** 32);
    const checked = checkClientPose(frame);
    if (typeof checked === 'string') {
      throw new Error(checked);
    }
    const entry = Buffer.alloc(48, 0xff);
    writeClientEntry(entry, 8, 5, frame, checked, pose.timestamp + 40);
    const message = readEntryMessage(entry, 8, 'alice');
    expect(entry.readUInt16LE(8)).toBe(5);
    expect(message.timestamp).toBe(Math.floor(pose.timestamp));
    // The rotation as the 32 bits decode, stored as float32s.
    const rotation = unpackRotation(packRotation(0, 0, 0, 1), [0, 0, 0, 0]).map(Math.fround);
    expect(message.data).toEqual({ position: [1.5, -2, 3.25], rotation });
  });

  it.each<[string, Buffer]>([
    ['too short', Buffer.alloc(8)],
    ['a server frame type', clientFrame('r', (f) => (f[0] = 1))],
    ['unknown flags', clientFrame('r', (f) => (f[1] = 2))],
    ['two poses', clientFrame('r', (f) => f.writeUInt16LE(2, 2))],
    ['an empty roomId', clientFrame('r', (f) => (f[8] = 0))],
    ['a roomId longer than the frame', clientFrame('r', (f) => (f[8] = 5))],
    ['a roomId of bad characters', clientFrame('a b')],
    ['a trailing byte', Buffer.concat([clientFrame('r'), Buffer.alloc(1)])],
    ['a NaN coordinate', clientFrame('r', (f, e) => f.writeFloatLE(Number.NaN, e + 12))],
    ['an infinite rotation', clientFrame('r', (f, e) => f.writeFloatLE(Infinity, e + 36))],
    ['an infinite timestamp', clientFrame('r', (f, e) => f.writeDoubleLE(Infinity, e + 4))],
    ['an infinite half position', withBits(quantizedFrame([1, 2, 3], 0), 16, 0x7c00)],
    ['a NaN half position', withBits(quantizedFrame([1, 2, 3], 0), 14, 0x7e00)],
  ])('refuses %s', (_what, frame) => {
    expect(typeof checkClientPose(frame)).toBe('string');
    expect(typeof readClientPose(frame, 'alice')).toBe('string');
  });

  it('fits only a plain pose_update of float32-sized numbers into an entry', () => {
    const rotation = [0, 0, 0, 1];
    expect(fitsPoseEntry(pose)).toBe(true);
    expect(fitsPoseEntry({ type: 'pose_update', data: { position: [1, 2, 3], rotation } })).toBe(
      true,
    );
    for (const message of [
      { ...pose, type: 'cursor' },
      { type: 'pose_update' },
      { type: 'pose_update', data: { position: [1, 2], rotation } },
      { type: 'pose_update', data: { position: [1, 2, 3], rotation: [0, 0, 1] } },
      { type: 'pose_update', data: { position: [1e39, 0, 0], rotation } },
      { type: 'pose_update', data: { position: [1, 2, 3], rotation, velocity: [0, 0, 0] } },
      { ...pose, extra: true },
    ]) {
      expect(fitsPoseEntry(message)).toBe(false);
    }
  });
});
