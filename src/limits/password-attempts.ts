import { addressBlockOf } from './client-address.js';

/** PASSWORD_MAX_FAILURES (0: off) within PASSWORD_FAILURE_WINDOW_MS, per client and room. */
export interface PasswordAttemptLimits {
  maxFailures: number;
  windowMs: number;
  /** Most clients and rooms tracked at once; beyond it the oldest is forgotten. */
  maxEntries?: number;
}

/** How a password attempt ended: the join went through, the password was wrong, or neither. */
export type AttemptOutcome = 'accepted' | 'wrong' | 'inconclusive';

/** A reserved attempt, to settle once with its outcome (later calls do nothing). */
export interface PasswordAttempt {
  settle(outcome: AttemptOutcome): void;
}

/** An attempt may go ahead, or not for `retryAfterMs` more. */
export type AttemptReservation =
  ({ ok: true } & PasswordAttempt) | { ok: false; retryAfterMs: number };

/** Who makes an attempt: the fields of the connection's Identity this needs. */
export interface AttemptClient {
  verified: boolean;
  userId?: string;
  address: string;
}

/**
 * Well above what the hash bound lets wrong passwords fill in a default window (~33 checks a
 * second, 2,000 a minute); an entry is a key of at most ~140 characters and three numbers, so the
 * map stays under ~20 MiB even when full.
 */
const DEFAULT_MAX_ENTRIES = 50_000;

const ALWAYS: AttemptReservation = { ok: true, settle: () => undefined };

interface Entry {
  /** When the window began: the first attempt while there was no entry. */
  startedAt: number;
  failures: number;
  /** Attempts reserved and not settled yet: they count, so a burst cannot outrun the count. */
  pending: number;
}

/**
 * Failed-password backoff: a client that got the password of a room wrong `maxFailures` times
 * within `windowMs` of its first attempt is refused for that room until the window ends, before
 * any hash is computed. A right password ends the window early. Only that client (see
 * attemptKeyOf) is refused, never the room: others keep joining. Kept in memory, per instance.
 */
export class PasswordAttempts {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;

  constructor(private readonly limits: PasswordAttemptLimits) {
    this.maxEntries = limits.maxEntries ?? DEFAULT_MAX_ENTRIES;
  }

  /**
   * Reserves an attempt for `key` at `now` (ms, one monotonic clock), or says how long until one
   * would be allowed. Attempts still running count as failures until settled.
   */
  reserve(key: string, now: number): AttemptReservation {
    if (this.limits.maxFailures <= 0) {
      return ALWAYS;
    }
    const entry = this.liveEntry(key, now) ?? this.insert(key, now);
    if (entry.failures + entry.pending >= this.limits.maxFailures) {
      const left = entry.startedAt + this.limits.windowMs - now;
      return { ok: false, retryAfterMs: Math.max(1, Math.ceil(left)) };
    }
    entry.pending++;
    let settled = false;
    return {
      ok: true,
      settle: (outcome) => {
        if (!settled) {
          settled = true;
          this.settle(key, entry, outcome);
        }
      },
    };
  }

  /** Clients and rooms tracked now (expired ones may linger until they are looked at). */
  size(): number {
    return this.entries.size;
  }

  private settle(key: string, entry: Entry, outcome: AttemptOutcome): void {
    entry.pending--;
    if (outcome === 'wrong') {
      entry.failures++;
    }
    // An entry that expired or was forgotten meanwhile is no longer this client's count.
    if (this.entries.get(key) !== entry) {
      return;
    }
    if (outcome === 'accepted' || (entry.failures === 0 && entry.pending === 0)) {
      this.entries.delete(key);
    }
  }

  private liveEntry(key: string, now: number): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry && this.expired(entry, now)) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  /**
   * A new entry at the end of the map. Entries go in as their windows begin, so the oldest are
   * first: expired ones are dropped from there, and when the map is still full, the oldest live
   * one is forgotten (its client may guess again early; filling the map costs a hash per entry).
   */
  private insert(key: string, now: number): Entry {
    for (const [oldKey, oldEntry] of this.entries) {
      if (this.entries.size < this.maxEntries && !this.expired(oldEntry, now)) {
        break;
      }
      this.entries.delete(oldKey);
    }
    const entry: Entry = { startedAt: now, failures: 0, pending: 0 };
    this.entries.set(key, entry);
    return entry;
  }

  private expired(entry: Entry, now: number): boolean {
    return now - entry.startedAt >= this.limits.windowMs;
  }
}

/**
 * Whose attempts count together for `roomId`: a verified user's own (AUTH_MODE=jwt), wherever
 * it connects from, so that people sharing an address do not share a lockout; otherwise the
 * client's address (its /64 for IPv6, which one host typically holds whole).
 */
export function attemptKeyOf(client: AttemptClient, roomId: string): string {
  const who =
    client.verified && client.userId !== undefined
      ? `user:${client.userId}`
      : `addr:${addressBlockOf(client.address)}`;
  return `${who}\n${roomId}`;
}
