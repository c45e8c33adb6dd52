import type { Redis } from 'ioredis';

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
