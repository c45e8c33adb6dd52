import type { RedisOptions } from 'ioredis';

/**
 * The ioredis options for the connection a RedisRoomStore uses, so that while Redis is
 * unreachable every store call fails within 2 s with UNAVAILABLE instead of waiting:
 *
 * - `enableOfflineQueue: false`: a command issued while disconnected (or before the first
 *   connection is ready) fails at once instead of waiting for a reconnect.
 * - `commandTimeout: 1500`: a command sent on a connection that went silent fails after 1.5 s.
 *   A store call makes at most a couple of round trips, so it ends well within 2 s.
 * - `maxRetriesPerRequest: 0`: commands in flight when the connection drops fail at once rather
 *   than after some reconnect attempts.
 * - `autoResendUnfulfilledCommands: false`: a script whose reply was lost is not run a second time
 *   after a reconnect (a join or a state change is not idempotent); its caller got UNAVAILABLE.
 * - `retryStrategy`: keep reconnecting in the background, at least once a second.
 *
 * Because of `enableOfflineQueue: false`, connect with `lazyConnect: true` and `await
 * redis.connect()` before serving (or wait for `ready`). Keep an `error` listener on the client:
 * ioredis reports each failed reconnect there. A pub/sub subscriber connection needs none of this.
 */
export const ROOM_STORE_REDIS_OPTIONS = {
  enableOfflineQueue: false,
  commandTimeout: 1500,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  connectTimeout: 2000,
  retryStrategy: (times: number) => Math.min(times * 100, 1000),
} satisfies RedisOptions;
