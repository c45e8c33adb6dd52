import { Logger } from '@nestjs/common';
import type { AppConfig } from '../config/app.config.js';
import type { Redis } from 'ioredis';
import type { Cluster } from './cluster.js';
import { ROOM_STORE_REDIS_OPTIONS } from './redis-client-options.js';

/** How long the boot waits for Redis before it gives up, naming REDIS_URL. */
const BOOT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Connects the two Redis connections of this instance and names it. A failed attempt is retried
 * (each connection's retryStrategy) until both are ready; the boot fails, naming REDIS_URL and
 * the last error, when that takes more than 10 s. One attempt is not enough: a Redis that starts
 * a moment after the server (compose, a pod) refuses the first, and on a busy machine a connect
 * can overrun its 2 s `connectTimeout` while the event loop is held up elsewhere.
 */
export async function connectCluster(config: AppConfig): Promise<Cluster> {
  if (!config.redisUrl) {
    throw new Error('REDIS_URL: the cluster module needs it');
  }
  const logger = new Logger('Cluster');
  // Loaded only in cluster mode: ioredis costs ~20 MB of memory that one instance never needs.
  const { Redis } = await import('ioredis');
  const publisher = new Redis(config.redisUrl, {
    ...ROOM_STORE_REDIS_OPTIONS,
    lazyConnect: true,
    connectionName: 'gms-commands',
  });
  // The subscriber queues while reconnecting and resubscribes its channels by itself.
  const subscriber = new Redis(config.redisUrl, {
    lazyConnect: true,
    connectionName: 'gms-subscriber',
    retryStrategy: (times: number) => Math.min(times * 100, 1000),
  });
  let lastError: Error | undefined;
  for (const [name, connection] of [
    ['commands', publisher],
    ['subscriber', subscriber],
  ] as const) {
    let failing = false;
    connection.on('error', (error: Error) => {
      lastError = error;
      if (!failing) {
        failing = true;
        logger.warn(`Redis ${name} connection: ${error.message}`);
      }
    });
    connection.on('ready', () => {
      if (failing) {
        failing = false;
        logger.log(`Redis ${name} connection is back`);
      }
    });
  }
  try {
    await withTimeout(Promise.all([whenReady(publisher), whenReady(subscriber)]));
  } catch (error) {
    publisher.disconnect();
    subscriber.disconnect();
    const reason = lastError ? `${String(error)}; last error: ${lastError.message}` : String(error);
    throw new Error(
      `REDIS_URL: cannot connect to Redis at ${redactedUrl(config.redisUrl)} (${reason})`,
      { cause: error },
    );
  }
  const { instanceId } = config;
  logger.log(`Cluster mode: instance ${instanceId}, key prefix "${config.redisKeyPrefix}"`);
  return { instanceId, keyPrefix: config.redisKeyPrefix, publisher, subscriber };
}

/**
 * Resolves once the connection is ready. Its first attempt's failure is not the end: the
 * connection retries by itself (retryStrategy), and the caller's timeout bounds the wait.
 */
function whenReady(connection: Redis): Promise<void> {
  return new Promise((resolve) => {
    connection.once('ready', () => resolve());
    connection.connect().catch(() => undefined);
  });
}

function withTimeout<T>(promise: Promise<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no answer within ${BOOT_CONNECT_TIMEOUT_MS} ms`)),
      BOOT_CONNECT_TIMEOUT_MS,
    );
    promise.then(resolve, reject).finally(() => clearTimeout(timer));
  });
}

/**
 * The URL without its password, for logs: the one before the host, and any in the query, where
 * ioredis reads options such as `?password=` or `?sentinelPassword=` as well.
 */
export function redactedUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) {
    parsed.password = '***';
  }
  for (const name of [...parsed.searchParams.keys()]) {
    if (/pass/i.test(name)) {
      parsed.searchParams.set(name, '***');
    }
  }
  return parsed.toString();
}
