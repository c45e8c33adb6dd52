// The quantized pose entry of the binary channel (gallery.v2q, docs/binary-poses.md), 16 bytes:
// `u16 slot, 3 x f16 position, u32 rotation (smallest three), u32 time (ms, low 32 bits)`,
// in frames whose header flags byte is 1. The bench does not import src/, so the few functions
// it needs are copied from src/protocol/quantized-poses.ts (keep them the same).

/** The WebSocket subprotocol a client offers to get its poses in the quantized form. */
export const QUANTIZED_SUBPROTOCOL = 'gallery.v2q';
/** The header flag of frames whose entries are quantized. */
export const FLAG_QUANTIZED = 1;
export const QUANTIZED_ENTRY_BYTES = 16;
/** Offsets inside a quantized entry. */
export const Q_POSITION_AT = 2;
export const Q_ROTATION_AT = 8;
export const Q_TIME_AT = 12;

const HALF_MAX = 65504;
const TWO_POW_32 = 4294967296;
/** Each of the three smaller components of a unit quaternion lies within +-1/sqrt(2). */
const COMPONENT_RANGE = Math.SQRT1_2;
const COMPONENT_STEPS = 1023;

/**
 * IEEE 754 half-precision bits of `value` (finite), rounded to nearest with ties to even (as
 * IEEE 754 and Math.f16round round), clamped to +-65,504.
 */
export function toHalf(value: number): number {
  const sign = value < 0 ? 0x8000 : 0;
  const abs = Math.min(Math.abs(value), HALF_MAX);
  if (abs < 2 ** -14) {
    // Subnormal; a value that rounds up to 2^-14 comes out as its normal encoding, 0x0400.
    return sign | roundTiesToEven(abs * 2 ** 24);
  }
  let exponent = Math.floor(Math.log2(abs));
  if (abs / 2 ** exponent >= 2) {
    exponent++;
  } else if (abs / 2 ** exponent < 1) {
    exponent--;
  }
  let mantissa = roundTiesToEven((abs / 2 ** exponent - 1) * 1024);
  if (mantissa === 1024) {
    exponent++;
    mantissa = 0;
  }
  if (exponent > 15) {
    return sign | 0x7bff;
  }
  return sign | ((exponent + 15) << 10) | mantissa;
}

/**
 * `value` (not negative) rounded to the nearest integer, an exact tie to the even one. Exact ties
 * are seen as such: the values rounded here are scaled by powers of two, which loses nothing.
 */
function roundTiesToEven(value: number): number {
  const rounded = Math.round(value);
  return rounded - value === 0.5 && rounded % 2 === 1 ? rounded - 1 : rounded;
}

/**
 * A rotation quaternion in 32 bits, "smallest three": bits 30-31 name the component largest in
 * magnitude (0-3 for x, y, z, w), left out (the quaternion negated so that it is not negative);
 * the other three follow in x, y, z, w order as 10-bit fields (bits 20-29, 10-19, 0-9), each
 * mapping [-1/sqrt(2), 1/sqrt(2)] to 0-1023. A zero quaternion is taken as the identity.
 */
export function packRotation(x: number, y: number, z: number, w: number): number {
  const norm = Math.hypot(x, y, z, w);
  if (norm === 0) {
    return packRotation(0, 0, 0, 1);
  }
  const q = [x / norm, y / norm, z / norm, w / norm];
  let largest = 0;
  for (let i = 1; i < 4; i++) {
    if (Math.abs(q[i]) > Math.abs(q[largest])) {
      largest = i;
    }
  }
  const flip = q[largest] < 0 ? -1 : 1;
  let packed = largest;
  for (let i = 0; i < 4; i++) {
    if (i !== largest) {
      packed = packed * 1024 + componentCode(q[i] * flip);
    }
  }
  return packed >>> 0;
}

/** The low 32 bits of a millisecond timestamp, as the quantized entry carries it. */
export function timeLow32(timestamp: number): number {
  const ms = Math.floor(timestamp);
  return ((ms % TWO_POW_32) + TWO_POW_32) % TWO_POW_32;
}

/** The timestamp nearest to `now` whose low 32 bits are `low` (the sender's clock, restored). */
export function restoreTimestamp(low: number, now: number): number {
  const candidate = Math.floor(now) - timeLow32(now) + low;
  if (candidate - now > TWO_POW_32 / 2) {
    return candidate - TWO_POW_32;
  }
  if (now - candidate > TWO_POW_32 / 2) {
    return candidate + TWO_POW_32;
  }
  return candidate;
}

function componentCode(value: number): number {
  const code = Math.round(((value / COMPONENT_RANGE + 1) / 2) * COMPONENT_STEPS);
  return Math.min(COMPONENT_STEPS, Math.max(0, code));
}
