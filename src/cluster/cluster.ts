import type { Redis } from 'ioredis';
import type { AppConfig } from '../config/app.config.js';

export const CLUSTER = Symbol('CLUSTER');

/**
 * This instance's place in a cluster (REDIS_URL set): its id, the key prefix and the two Redis
 * connections. Provided by ClusterModule only.
 */
export interface Cluster {
  /** Unique per process: member records and envelopes name the instance they come from. */
  readonly instanceId: string;
  readonly keyPrefix: string;
  /** Commands and PUBLISH; fails fast while Redis is unreachable (ROOM_STORE_REDIS_OPTIONS). */
  readonly publisher: Redis;
  /** SUBSCRIBE only: a connection in subscriber mode can run nothing else. */
  readonly subscriber: Redis;
}

/** Events kept per room in Redis for resuming clients (RESUME_HISTORY_EVENTS); none with resume off. */
export function historyCapOf(config: AppConfig): number {
  return config.resume.graceMs > 0 ? config.resume.historyEvents : 0;
}
