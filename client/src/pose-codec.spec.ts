import {
  decodePoseFrame,
  encodeClientPose,
  encodePoseFrame,
  headerBytes,
  type PoseFrame,
} from './pose-codec.js';

/** A server frame built field by field from the table in docs/binary-poses.md, not the encoder. */
function handBuiltFrame(roomId: string, entries: number[][], tick = 7): ArrayBuffer {
  const start = Math.ceil((9 + roomId.length) / 4) * 4;
  const buffer = new ArrayBuffer(start + entries.length * 40);
  const view = new DataView(buffer);
  view.setUint8(0, 1);
  view.setUint8(1, 0);
  view.setUint16(2, entries.length, true);
  view.setUint32(4, tick, true);
  view.setUint8(8, roomId.length);
  [...roomId].forEach((char, i) => view.setUint8(9 + i, char.charCodeAt(0)));
  entries.forEach(([slot, timestamp, ...floats], i) => {
    const at = start + i * 40;
    view.setUint16(at, slot, true);
    view.setUint16(at + 2, 0, true);
    view.setFloat64(at + 4, timestamp, true);
    floats.forEach((n, k) => view.setFloat32(at + 12 + 4 * k, n, true));
  });
  return buffer;
}

describe('pose codec', () => {
  it('pads the header to a multiple of 4', () => {
    expect([1, 2, 3, 4, 5, 7, 8, 64].map(headerBytes)).toEqual([12, 12, 12, 16, 16, 16, 20, 76]);
  });

  it('decodes a hand-built server frame', () => {
    const buffer = handBuiltFrame('lobby', [
      [7, 1765000000123.5, 1.5, -2.25, 3, 0, 0, 0.5, 0.75],
      [65535, 2, 0.1, 0, 0, 0, 0, 0, 1],
    ]);
    expect(buffer.byteLength).toBe(16 + 2 * 40);
    expect(decodePoseFrame(buffer)).toEqual({
      type: 1,
      tick: 7,
      roomId: 'lobby',
      poses: [
        {
          slot: 7,
          timestamp: 1765000000123.5,
          position: [1.5, -2.25, 3],
          rotation: [0, 0, 0.5, 0.75],
        },
        {
          slot: 65535,
          timestamp: 2,
          position: [Math.fround(0.1), 0, 0],
          rotation: [0, 0, 0, 1],
        },
      ],
    });
  });

  it('decodes a Node Buffer view over a larger pool as well as an ArrayBuffer', () => {
    const frame = new Uint8Array(handBuiltFrame('abc', [[3, 10, 1, 2, 3, 0, 0, 0, 1]]));
    const pool = new Uint8Array(frame.length + 8);
    pool.set(frame, 5);
    const decoded = decodePoseFrame(pool.subarray(5, 5 + frame.length));
    expect(decoded?.poses).toEqual([
      { slot: 3, timestamp: 10, position: [1, 2, 3], rotation: [0, 0, 0, 1] },
    ]);
  });

  it('writes a client frame at the documented offsets: 52 bytes for a short room id', () => {
    const buffer = encodeClientPose('r1', 1765000000000, [1, 2, 3], [0, 0.6, 0, 0.8]);
    expect(buffer?.byteLength).toBe(52);
    const view = new DataView(buffer!);
    expect([view.getUint8(0), view.getUint8(1), view.getUint16(2, true)]).toEqual([2, 0, 1]);
    expect(view.getUint32(4, true)).toBe(0);
    expect(view.getUint8(8)).toBe(2);
    expect(String.fromCharCode(view.getUint8(9), view.getUint8(10))).toBe('r1');
    expect(view.getUint8(11)).toBe(0); // padding
    expect(view.getUint16(12, true)).toBe(0); // slot: the server fills in the sender's
    expect(view.getUint16(14, true)).toBe(0); // flags
    expect(view.getFloat64(16, true)).toBe(1765000000000);
    const floats = [0, 1, 2, 3, 4, 5, 6].map((k) => view.getFloat32(24 + 4 * k, true));
    expect(floats).toEqual([1, 2, 3, 0, Math.fround(0.6), 0, Math.fround(0.8)]);
  });

  it('is 116 bytes for a 64-character room id', () => {
    expect(encodeClientPose('x'.repeat(64), 0, [0, 0, 0], [0, 0, 0, 1])?.byteLength).toBe(116);
  });

  it('round-trips a frame, floats rounded to float32', () => {
    const frame: PoseFrame = {
      type: 1,
      tick: 0xfffffffe,
      roomId: 'room.with-dots_1',
      poses: [
        { slot: 1, timestamp: 123.25, position: [0.1, 0.2, 0.3], rotation: [0.1, 0.2, 0.3, 0.9] },
        { slot: 2, timestamp: 456, position: [-1e6, 0, 1e-3], rotation: [0, 0, 0, 1] },
      ],
    };
    const decoded = decodePoseFrame(encodePoseFrame(frame));
    const f32 = (values: number[]) => values.map((n) => Math.fround(n));
    expect(decoded).toEqual({
      ...frame,
      poses: frame.poses.map((pose) => ({
        ...pose,
        position: f32(pose.position),
        rotation: f32(pose.rotation),
      })),
    });
  });

  it('refuses to encode what the server would reject', () => {
    const ok = [0, 0, 0] as [number, number, number];
    const identity = [0, 0, 0, 1] as [number, number, number, number];
    expect(encodeClientPose('', 0, ok, identity)).toBeUndefined();
    expect(encodeClientPose('x'.repeat(65), 0, ok, identity)).toBeUndefined();
    expect(encodeClientPose('été', 0, ok, identity)).toBeUndefined();
    expect(encodeClientPose('r', 0, [NaN, 0, 0], identity)).toBeUndefined();
    expect(encodeClientPose('r', 0, ok, [0, 0, 0, Infinity])).toBeUndefined();
    expect(encodeClientPose('r', 0, [1e39, 0, 0], identity)).toBeUndefined(); // f32 overflow
  });

  it('rejects frames that do not follow the layout', () => {
    const good = handBuiltFrame('lobby', [[1, 0, 0, 0, 0, 0, 0, 0, 1]]);
    expect(decodePoseFrame(good)).toBeDefined();
    expect(decodePoseFrame(good.slice(0, good.byteLength - 1))).toBeUndefined();
    expect(decodePoseFrame(new ArrayBuffer(4))).toBeUndefined();
    expect(decodePoseFrame('{"event":"x"}')).toBeUndefined();
    const flagged = good.slice(0);
    new DataView(flagged).setUint8(1, 1);
    expect(decodePoseFrame(flagged)).toBeUndefined();
    const entryFlagged = good.slice(0);
    new DataView(entryFlagged).setUint16(16 + 2, 1, true);
    expect(decodePoseFrame(entryFlagged)?.poses).toEqual([]);
  });
});
