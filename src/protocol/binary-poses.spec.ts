import {
  BinaryFrameType,
  fitsPoseEntry,
  poseHeaderLength,
  readClientPose,
  writePoseEntry,
  writePoseHeader,
} from './binary-poses.js';

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

  it('reads a client pose as the pose_update it stands for', () => {
    expect(readClientPose(clientFrame('room-1'), 'alice')).toEqual({
      roomId: 'room-1',
      message: { ...pose, senderId: 'alice' },
    });
  });

  it.each<[string, Buffer]>([
    ['too short', Buffer.alloc(8)],
    ['a server frame type', clientFrame('r', (f) => (f[0] = 1))],
    ['unknown flags', clientFrame('r', (f) => (f[1] = 1))],
    ['two poses', clientFrame('r', (f) => f.writeUInt16LE(2, 2))],
    ['an empty roomId', clientFrame('r', (f) => (f[8] = 0))],
    ['a roomId longer than the frame', clientFrame('r', (f) => (f[8] = 5))],
    ['a roomId of bad characters', clientFrame('a b')],
    ['a trailing byte', Buffer.concat([clientFrame('r'), Buffer.alloc(1)])],
    ['a NaN coordinate', clientFrame('r', (f, e) => f.writeFloatLE(Number.NaN, e + 12))],
    ['an infinite rotation', clientFrame('r', (f, e) => f.writeFloatLE(Infinity, e + 36))],
    ['an infinite timestamp', clientFrame('r', (f, e) => f.writeDoubleLE(Infinity, e + 4))],
  ])('refuses %s', (_what, frame) => {
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
