export const HELD_SESSIONS = Symbol('HELD_SESSIONS');

/** The seats a dropped connection left held, under its resume token. */
export interface HeldSession {
  readonly userId: string;
  /**
   * The rooms held; undefined for a connection registered while open whose instance died before
   * it could hold anything: then every room the user is still a member of.
   */
  readonly roomIds?: readonly string[];
}

/**
 * Where held sessions are found by token, and the one place that decides who takes them back:
 * the instance whose `claim` gets the session resumes it, and the grace's end releases the seats
 * only if it claims them itself. In this process (MemoryHeldSessions) or in Redis for a cluster
 * (RedisHeldSessions), so that a client may resume on any instance.
 */
export interface HeldSessions {
  /**
   * A connection opened with this token. Shared sessions (a cluster) keep it, so that the token
   * still resumes if the instance dies with the connection; one process has nothing to keep.
   */
  register(token: string, userId: string): Promise<void>;
  /** Keeps the session under `token` for `ttlMs` (the grace). */
  hold(token: string, session: HeldSession, ttlMs: number): Promise<void>;
  /** Whose session the token holds, without taking it; undefined when none (any more). */
  userOf(token: string): Promise<string | undefined>;
  /** Takes the session: only one caller gets it, later ones undefined. */
  claim(token: string): Promise<HeldSession | undefined>;
}
