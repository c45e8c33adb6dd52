/**
 * The seats held for one user after its connections dropped, each until its own grace ends. A
 * later drop holds its own rooms anew but never lengthens the grace of seats an earlier drop
 * left: otherwise a user whose connections keep dropping would keep every seat (a host's too)
 * for as long as it keeps coming back. At most `max` seats: a resume can take back no more than
 * one connection may hold, and holding more lets the longest-held go.
 */
export class HeldSeats {
  /** When each room's grace ends, in the order the seats were held (oldest first). */
  private readonly until = new Map<string, number>();

  constructor(private readonly max: number) {}

  get size(): number {
    return this.until.size;
  }

  roomIds(): string[] {
    return [...this.until.keys()];
  }

  /**
   * Holds `roomIds` until `deadline` (a room held already gets the new deadline and counts as
   * held last). Returns the seats let go to stay within the bound, oldest first.
   */
  hold(roomIds: Iterable<string>, deadline: number): string[] {
    for (const roomId of roomIds) {
      this.until.delete(roomId);
      this.until.set(roomId, deadline);
    }
    const over: string[] = [];
    for (const roomId of this.until.keys()) {
      if (this.until.size - over.length <= this.max) {
        break;
      }
      over.push(roomId);
    }
    for (const roomId of over) {
      this.until.delete(roomId);
    }
    return over;
  }

  /** Takes out and returns the seats whose grace is over at `now`. */
  takeDue(now: number): string[] {
    const due = [...this.until].filter(([, deadline]) => deadline <= now).map(([id]) => id);
    for (const roomId of due) {
      this.until.delete(roomId);
    }
    return due;
  }

  /** When the first grace still running ends; undefined when nothing is held. */
  nextDeadline(): number | undefined {
    return this.size === 0 ? undefined : Math.min(...this.until.values());
  }

  /** When the last grace ends; undefined when nothing is held. */
  lastDeadline(): number | undefined {
    return this.size === 0 ? undefined : Math.max(...this.until.values());
  }

  /** Takes out and returns every seat. */
  clear(): string[] {
    const roomIds = this.roomIds();
    this.until.clear();
    return roomIds;
  }
}
