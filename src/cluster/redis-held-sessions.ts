import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { HeldSession, HeldSessions } from '../resume/held-sessions.js';
import { CLUSTER, type Cluster } from './cluster.js';
import { fromRedisError } from './store-unavailable.js';

/**
 * Held sessions of a cluster, in Redis: `P resume:<sha256 of the token>` holds the session as
 * JSON until the grace ends, so any instance finds and claims it (GETDEL: one winner). Open
 * connections are registered too, so a token still resumes after its instance died. The key
 * is a hash, so reading Redis's keys gives nobody a token.
 */
@Injectable()
export class RedisHeldSessions implements HeldSessions {
  constructor(@Inject(CLUSTER) private readonly cluster: Cluster) {}

  /** Kept while the connection may live; a clean close or a drop replaces or ends it. */
  async register(token: string, userId: string): Promise<void> {
    await this.hold(token, { userId }, OPEN_SESSION_TTL_MS);
  }

  async hold(token: string, session: HeldSession, ttlMs: number): Promise<void> {
    await this.cluster.publisher
      .set(this.keyOf(token), JSON.stringify(session), 'PX', Math.max(1, ttlMs))
      .catch(rethrow);
  }

  async userOf(token: string): Promise<string | undefined> {
    const json = await this.cluster.publisher.get(this.keyOf(token)).catch(rethrow);
    return json === null ? undefined : parse(json)?.userId;
  }

  async claim(token: string): Promise<HeldSession | undefined> {
    const json = await this.cluster.publisher.getdel(this.keyOf(token)).catch(rethrow);
    return json === null ? undefined : parse(json);
  }

  private keyOf(token: string): string {
    return `${this.cluster.keyPrefix}resume:${createHash('sha256').update(token).digest('hex')}`;
  }
}

/** An open connection's registration outlives any sane connection (Cloud Run cuts at 60 min). */
const OPEN_SESSION_TTL_MS = 24 * 60 * 60 * 1000;

function parse(json: string): HeldSession | undefined {
  const session = JSON.parse(json) as Partial<HeldSession>;
  if (typeof session.userId !== 'string') {
    return undefined;
  }
  return Array.isArray(session.roomIds)
    ? { userId: session.userId, roomIds: session.roomIds.filter((id) => typeof id === 'string') }
    : { userId: session.userId };
}

function rethrow(error: unknown): never {
  throw fromRedisError(error);
}
