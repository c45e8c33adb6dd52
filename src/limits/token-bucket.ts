/**
 * A token bucket: `burst` tokens at most, refilled at `ratePerSec`. Times are milliseconds from
 * one monotonic clock (performance.now), passed in so one reading serves every bucket of a frame.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.updatedAt = now;
  }

  /** Takes `cost` tokens: 0 when they were there, else the milliseconds until they will be. */
  take(cost: number, now: number): number {
    const elapsed = now - this.updatedAt;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.ratePerSec) / 1000);
      this.updatedAt = now;
    }
    if (this.tokens >= cost) {
      this.tokens -= cost;
      return 0;
    }
    return Math.max(1, Math.ceil(((cost - this.tokens) * 1000) / this.ratePerSec));
  }
}
