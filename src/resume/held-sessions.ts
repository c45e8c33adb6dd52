export const HELD_SESSIONS = Symbol('HELD_SESSIONS');

/** The seats a dropped connection left held, under its resume token. */
export interface HeldSession {
  readonly userId: string;
  readonly roomIds: readonly string[];
}

/**
 * Where held sessions are found by token, and the one place that decides who takes them back:
 * the instance whose `claim` gets the session resumes it, and the grace's end releases the seats
 * only if it claims them itself. In this process (MemoryHeldSessions) or in Redis for a cluster
 * (RedisHeldSessions), so that a client may resume on any instance.
 */
export interface HeldSessions {
  /** Keeps the session under `token` for `ttlMs` (the grace). */
  hold(token: string, session: HeldSession, ttlMs: number): Promise<void>;
  /** Whose session the token holds, without taking it; undefined when none (any more). */
  userOf(token: string): Promise<string | undefined>;
  /** Takes the session: only one caller gets it, later ones undefined. */
  claim(token: string): Promise<HeldSession | undefined>;
}
