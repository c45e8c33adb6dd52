import type { Clock } from './socket.js';

/**
 * Keeps pose sends within RATE_POSES_PER_SEC, evenly spaced: one too soon waits, replaced by any
 * newer one of its room, as a pose is worth nothing once a newer one exists.
 */
export class PoseLimiter {
  private readonly intervalMs: number;
  private nextSlot = 0;
  private readonly waiting = new Map<string, () => void>();
  private timer: unknown;

  constructor(
    private readonly clock: Clock,
    perSecond: number,
  ) {
    this.intervalMs = perSecond > 0 ? 1000 / perSecond : 0;
  }

  submit(key: string, send: () => void): void {
    if (this.waiting.size === 0 && this.clock.now() >= this.nextSlot) {
      this.sendNow(send);
      return;
    }
    this.waiting.delete(key); // re-inserted last: rooms take turns
    this.waiting.set(key, send);
    this.schedule();
  }

  /** Forgets waiting poses: of one room (it was left), or all (the connection closed). */
  clear(key?: string): void {
    if (key === undefined) {
      this.waiting.clear();
    } else {
      this.waiting.delete(key);
    }
    if (this.waiting.size === 0 && this.timer !== undefined) {
      this.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private sendNow(send: () => void): void {
    this.nextSlot = this.clock.now() + this.intervalMs;
    send();
  }

  private schedule(): void {
    if (this.timer !== undefined) {
      return;
    }
    const wait = Math.max(0, this.nextSlot - this.clock.now());
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      const next = this.waiting.entries().next();
      if (next.done) {
        return;
      }
      this.waiting.delete(next.value[0]);
      this.sendNow(next.value[1]);
      if (this.waiting.size > 0) {
        this.schedule();
      }
    }, wait);
  }
}
