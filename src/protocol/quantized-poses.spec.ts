import {
  fromHalf,
  packRotation,
  restoreTimestamp,
  timeLow32,
  toHalf,
  unpackRotation,
} from './quantized-poses.js';

/** The angle in degrees between two rotations (q and -q are the same one). */
function angleBetween(a: number[], b: number[]): number {
  const dot = Math.abs(a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3]);
  return (2 * Math.acos(Math.min(1, dot)) * 180) / Math.PI;
}

function normalized(q: number[]): number[] {
  const norm = Math.hypot(...q);
  return q.map((v) => v / norm);
}

describe('quantized poses', () => {
  it.each<[number, number]>([
    [0, 0x0000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff],
    [1e6, 0x7bff],
    [-1e6, 0xfbff],
    [2 ** -24, 0x0001],
    [2 ** -14, 0x0400],
    [0.1, 0x2e66],
    [1.7, 0x3ecd],
  ])('encodes %p as half 0x%s', (value, bits) => {
    expect(toHalf(value)).toBe(bits);
  });

  it.each<[string, number, number]>([
    ['1 + 2^-11, halfway between 0x3c00 and 0x3c01', 1 + 2 ** -11, 0x3c00],
    ['1 + 3 * 2^-11, halfway between 0x3c01 and 0x3c02', 1 + 3 * 2 ** -11, 0x3c02],
    ['-(1 + 2^-11)', -(1 + 2 ** -11), 0xbc00],
    ['2 - 2^-11, halfway between 0x3fff and 0x4000', 2 - 2 ** -11, 0x4000],
    ['2^-25, halfway between 0 and the least subnormal', 2 ** -25, 0x0000],
    ['3 * 2^-25, halfway between subnormals 1 and 2', 3 * 2 ** -25, 0x0002],
    ['1 + 2^-11 + 2^-30, just past halfway', 1 + 2 ** -11 + 2 ** -30, 0x3c01],
  ])('rounds %s to even (IEEE 754), as Math.f16round does', (_name, value, bits) => {
    expect(toHalf(value)).toBe(bits);
  });

  it('keeps positions within half precision: about 1 part in 2048', () => {
    for (const value of [0.001, 0.37, 1.7, -3.3, 12.345, 99.9, -1234.5, 30000]) {
      const back = fromHalf(toHalf(value));
      expect(Math.abs(back - value)).toBeLessThanOrEqual(Math.abs(value) / 2048 + 2 ** -25);
    }
    expect(fromHalf(0x7c00)).toBe(Infinity);
    expect(fromHalf(0x7e00)).toBeNaN();
  });

  it('packs rotations into 32 bits within 0.2 degrees, whatever the sign', () => {
    const rotations = [
      [0, 0, 0, 1],
      [0, 0, 0, -1],
      [0, 0.6, 0, 0.8],
      [0.5, -0.5, 0.5, -0.5],
      [-0.9, 0.1, 0.3, 0.2],
      [0.2, 0.2, -0.9, 0.1],
      [1, 2, 3, 4],
    ];
    for (const rotation of rotations) {
      const packed = packRotation(rotation[0], rotation[1], rotation[2], rotation[3]);
      expect(packed).toBeGreaterThanOrEqual(0);
      expect(packed).toBeLessThan(2 ** 32);
      const back = unpackRotation(packed, [0, 0, 0, 0]);
      expect(Math.hypot(...back)).toBeCloseTo(1, 3);
      expect(angleBetween(back, normalized(rotation))).toBeLessThan(0.2);
    }
  });

  it('takes a zero quaternion as the identity', () => {
    const back = unpackRotation(packRotation(0, 0, 0, 0), [0, 0, 0, 0]);
    expect(angleBetween(back, [0, 0, 0, 1])).toBeLessThan(0.2);
  });

  it('restores a timestamp from its low 32 bits near the receiver clock, across a wrap', () => {
    const sent = 1765000000123;
    expect(restoreTimestamp(timeLow32(sent), sent + 250)).toBe(sent);
    expect(restoreTimestamp(timeLow32(sent), sent - 5000)).toBe(sent);
    const beforeWrap = 2 ** 32 * 411 - 10;
    expect(restoreTimestamp(timeLow32(beforeWrap), beforeWrap + 20)).toBe(beforeWrap);
    expect(restoreTimestamp(timeLow32(beforeWrap + 20), beforeWrap)).toBe(beforeWrap + 20);
    expect(timeLow32(-1)).toBe(2 ** 32 - 1);
  });
});
