import { TokenBucket } from './token-bucket.js';

export interface RateLimits {
  posesPerSec: number;
  posesBurst: number;
  actionsPerSec: number;
  actionsBurst: number;
  bytesPerSec: number;
  violationsBeforeClose: number;
}

/** RATE_VIOLATIONS_BEFORE_CLOSE refusals within any span this long close the connection. */
export const VIOLATION_WINDOW_MS = 10_000;

/**
 * WebSocket pings (control frames) a client may send, whatever the rate limits: a keepalive every
 * second or so fits many times over. Each is answered with a pong, a write of its own.
 */
export const CLIENT_PINGS_PER_SEC = 5;
export const CLIENT_PINGS_BURST = 10;

/**
 * One connection's inbound budget: throwaway broadcasts (poses), other actions and bytes, each a
 * token bucket (absent when its rate is 0), WebSocket pings (a bucket always there), plus the
 * count of refusals that ends a connection which keeps ignoring them. Everything is in memory and
 * per connection: nothing is shared, so clients behind one NAT address do not share a budget.
 */
export class ConnectionBudget {
  private readonly poses?: TokenBucket;
  private readonly actions?: TokenBucket;
  private readonly bytes?: TokenBucket;
  private readonly pings: TokenBucket;
  /**
   * When the last RATE_VIOLATIONS_BEFORE_CLOSE refusals came, a ring made at the first refusal.
   * A window restarted at each expiry would let nearly twice as many through across its edge.
   */
  private refusals?: Float64Array;
  private nextRefusal = 0;

  /** @param maxFrameBytes the largest frame allowed: the byte bucket always holds one. */
  constructor(
    private readonly limits: RateLimits,
    maxFrameBytes: number,
    now: number,
  ) {
    if (limits.posesPerSec > 0) {
      this.poses = new TokenBucket(limits.posesPerSec, limits.posesBurst, now);
    }
    if (limits.actionsPerSec > 0) {
      this.actions = new TokenBucket(limits.actionsPerSec, limits.actionsBurst, now);
    }
    if (limits.bytesPerSec > 0) {
      const burst = Math.max(limits.bytesPerSec, maxFrameBytes);
      this.bytes = new TokenBucket(limits.bytesPerSec, burst, now);
    }
    this.pings = new TokenBucket(CLIENT_PINGS_PER_SEC, CLIENT_PINGS_BURST, now);
  }

  /** Charges an inbound frame's bytes: 0 when they fit, else the milliseconds until they would. */
  chargeBytes(frameBytes: number, now: number): number {
    return this.bytes ? this.bytes.take(frameBytes, now) : 0;
  }

  /** Charges one message to the pose or the action bucket: 0, or the wait until it would fit. */
  chargeMessage(throwaway: boolean, now: number): number {
    const bucket = throwaway ? this.poses : this.actions;
    return bucket ? bucket.take(1, now) : 0;
  }

  /** Charges one WebSocket ping: 0 when it fits, else the milliseconds until it would. */
  chargePing(now: number): number {
    return this.pings.take(1, now);
  }

  /** Records a refusal; true once the connection has had too many within VIOLATION_WINDOW_MS. */
  violated(now: number): boolean {
    const limit = this.limits.violationsBeforeClose;
    if (limit === 0) {
      return false;
    }
    this.refusals ??= new Float64Array(limit).fill(-Infinity);
    this.refusals[this.nextRefusal] = now;
    this.nextRefusal = (this.nextRefusal + 1) % limit;
    // The slot written next holds the limit-th latest refusal, this one counted.
    return now - this.refusals[this.nextRefusal] < VIOLATION_WINDOW_MS;
  }
}
