import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { HeldSession, HeldSessions } from '../resume/held-sessions.js';
import { CLUSTER, type Cluster } from './cluster.js';
import { fromRedisError } from './store-unavailable.js';

/**
 * Held sessions of a cluster, in Redis: `P resume:<sha256 of the token>` holds the session as
 * JSON until the grace ends, so any instance finds and claims it (GETDEL: one winner). The key
 * is a hash, so reading Redis's keys gives nobody a token.
 */
@Injectable()
export class RedisHeldSessions implements HeldSessions {
  constructor(@Inject(CLUSTER) private readonly cluster: Cluster) {}

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

function parse(json: string): HeldSession | undefined {
  const session = JSON.parse(json) as Partial<HeldSession>;
  return typeof session.userId === 'string' && Array.isArray(session.roomIds)
    ? { userId: session.userId, roomIds: session.roomIds.filter((id) => typeof id === 'string') }
    : undefined;
}

function rethrow(error: unknown): never {
  throw fromRedisError(error);
}
