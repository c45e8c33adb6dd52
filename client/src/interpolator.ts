import type { Quat, Room, Vec3 } from './room.js';

export interface PoseInterpolatorOptions {
  /** The server's tick (POSE_TICK_MS). Default 33. */
  tickMs?: number;
  /** How far behind the newest pose members are shown. Default 2 ticks (66 ms). */
  delayMs?: number;
  /** How long a member's last motion is carried on when its poses run out, before holding. Default 0. */
  maxExtrapolationMs?: number;
  /** Poses kept per member. Default 32. */
  bufferSize?: number;
  /** The clock arrival times and `sample` times are on. Default `Date.now`. */
  now?: () => number;
}

export interface InterpolatedPose {
  position: Vec3;
  rotation: Quat;
}

/** A pose as pushed: `timestamp` is the sender's clock (a PoseEvent's), when it has one. */
export interface TimedPose extends InterpolatedPose {
  timestamp?: number;
}

interface Sample extends InterpolatedPose {
  /** The sender's clock; the arrival time when the pose had no timestamp. */
  sent: number;
  received: number;
}

interface Track {
  samples: Sample[];
  /** Receiver time minus sender time: the least seen, creeping up by DRIFT of the time passed. */
  offset: number;
  /** When its last pose arrived. */
  received: number;
  /** The sender time last shown. */
  shown: number;
}

/** Offset growth per ms passed: follows a slower route, unseen, and slower than time. */
const DRIFT = 0.01;

/**
 * Shows members `delayMs` in the past, between the two poses around then. Poses are placed by
 * their sender's timestamps, moved onto this clock by the least arrival delay seen, so batching and
 * jitter neither make the motion uneven nor run it back. The first and last poses are held.
 */
export class PoseInterpolator {
  private readonly tracks = new Map<string, Track>();
  private readonly delayMs: number;
  private readonly maxExtrapolationMs: number;
  private readonly bufferSize: number;
  private readonly now: () => number;

  constructor(options: PoseInterpolatorOptions = {}) {
    this.delayMs = options.delayMs ?? 2 * (options.tickMs ?? 33);
    this.maxExtrapolationMs = options.maxExtrapolationMs ?? 0;
    this.bufferSize = Math.max(2, options.bufferSize ?? 32);
    this.now = options.now ?? Date.now;
  }

  /** A received pose; a pose older than the member's newest is ignored. */
  push(userId: string, pose: TimedPose, receivedAt = this.now()): void {
    let track = this.tracks.get(userId);
    if (!track) {
      track = { samples: [], offset: Infinity, received: receivedAt, shown: -Infinity };
      this.tracks.set(userId, track);
    }
    const { samples } = track;
    const sent = pose.timestamp ?? receivedAt;
    if (samples.length > 0 && sent <= samples[samples.length - 1].sent) {
      return;
    }
    // Not over the few buffered: jitter must not move it.
    const grown = track.offset + DRIFT * Math.max(0, receivedAt - track.received);
    track.offset = Math.min(receivedAt - sent, grown);
    track.received = receivedAt;
    samples.push({ sent, received: receivedAt, position: pose.position, rotation: pose.rotation });
    if (samples.length > this.bufferSize) {
      samples.shift();
    }
  }

  /** Where to show a member at `now`, or undefined before its first pose. */
  sample(userId: string, now = this.now()): InterpolatedPose | undefined {
    const track = this.tracks.get(userId);
    const samples = track?.samples ?? [];
    if (!track || samples.length === 0) {
      return undefined;
    }
    // After a gap the offset may grow more than time passed: held, not run back.
    const at = Math.max(now - this.delayMs - track.offset, track.shown);
    track.shown = at;
    const next = samples.findIndex((sample) => sample.sent > at);
    if (next === 0) {
      return blend(samples[0], samples[0], 0);
    }
    if (next === -1) {
      const last = samples[samples.length - 1];
      const previous = samples[samples.length - 2];
      const over = Math.min(at - last.sent, this.maxExtrapolationMs);
      return previous && over > 0
        ? blend(previous, last, 1 + over / (last.sent - previous.sent))
        : blend(last, last, 0);
    }
    samples.splice(0, next - 1); // the poses before the one behind `at` are done with
    const [from, to] = samples;
    return blend(from, to, (at - from.sent) / (to.sent - from.sent));
  }

  /** Forgets a member (it left). */
  remove(userId: string): void {
    this.tracks.delete(userId);
  }

  clear(): void {
    this.tracks.clear();
  }

  /**
   * Feeds a room's poses in, forgets members that leave; returns a function that stops it. One
   * interpolator per room: members are keyed by id only.
   */
  follow(room: Room): () => void {
    const offPose = room.on('pose', (pose) => this.push(pose.userId, pose));
    const offMember = room.on('member', (event) => {
      if (event.type === 'left') {
        this.remove(event.userId);
      } else if (event.type === 'reset') {
        // A snapshot: members that are not in it left while this client was away.
        const ids = new Set(event.members.map((member) => member.id));
        [...this.tracks.keys()].filter((id) => !ids.has(id)).forEach((id) => this.remove(id));
      }
    });
    return () => {
      offPose();
      offMember();
    };
  }
}

/** `from` to `to` by `k` (beyond 1: carried on): a lerp, and an nlerp on the shorter arc. */
export function blend(from: InterpolatedPose, to: InterpolatedPose, k: number): InterpolatedPose {
  const a = from.rotation;
  const b = to.rotation;
  // q and -q are one rotation: the one within 90° of `from`, or the blend goes the long way.
  const sign = a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3] < 0 ? -1 : 1;
  const rotation = a.map((n, i) => n + (sign * b[i] - n) * k) as Quat;
  const length = Math.hypot(...rotation);
  return {
    position: from.position.map((n, i) => n + (to.position[i] - n) * k) as Vec3,
    rotation: length > 0 ? (rotation.map((n) => n / length) as Quat) : to.rotation,
  };
}
