import { Injectable } from '@nestjs/common';
import type { HeldSession, HeldSessions } from './held-sessions.js';

interface Entry {
  readonly session: HeldSession;
  readonly expiresAt: number;
}

/** Held sessions of a single instance: a map, each entry gone once its grace is over. */
@Injectable()
export class MemoryHeldSessions implements HeldSessions {
  private readonly byToken = new Map<string, Entry>();

  /** Nothing to keep: the connection dies with this process, and so do its seats. */
  register(): Promise<void> {
    return Promise.resolve();
  }

  hold(token: string, session: HeldSession, ttlMs: number): Promise<void> {
    this.pruneExpired();
    this.byToken.set(token, { session, expiresAt: Date.now() + ttlMs });
    return Promise.resolve();
  }

  userOf(token: string): Promise<string | undefined> {
    return Promise.resolve(this.live(token)?.userId);
  }

  claim(token: string): Promise<HeldSession | undefined> {
    const session = this.live(token);
    this.byToken.delete(token);
    return Promise.resolve(session);
  }

  private live(token: string): HeldSession | undefined {
    const entry = this.byToken.get(token);
    return entry && entry.expiresAt > Date.now() ? entry.session : undefined;
  }

  /** Sessions neither resumed nor released (a claim that never came) do not pile up. */
  private pruneExpired(): void {
    const now = Date.now();
    for (const [token, entry] of this.byToken) {
      if (entry.expiresAt <= now) {
        this.byToken.delete(token);
      }
    }
  }
}
