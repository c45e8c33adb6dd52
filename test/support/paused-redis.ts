import type { Redis } from 'ioredis';
import {
  ClusterClients,
  connectRedis,
  RedisServer,
  startTestCluster,
  type TestCluster,
} from './cluster.js';
import { withTimeout, type TestClient } from './test-client.js';

/**
 * How long Redis holds every write (CLIENT PAUSE WRITE): longer than the store waits for a
 * command (1.5 s), so a command sent meanwhile times out and is carried out when the pause ends.
 */
export const PAUSE_MS = 2500;

/** Where Redis keeps a room's members. */
export function membersKey(cluster: TestCluster, roomId: string): string {
  return `${cluster.keyPrefix}{${roomId}}:members`;
}

/** Sends `action` while Redis holds writes: its store command times out and runs later. */
export async function duringPause(
  redis: Redis,
  client: TestClient,
  action: string,
  fields: Record<string, unknown>,
) {
  await redis.call('CLIENT', 'PAUSE', String(PAUSE_MS), 'WRITE');
  return client.reply(client.request(action, fields), PAUSE_MS + 2000);
}

export interface PausableCluster {
  readonly cluster: TestCluster;
  /** A connection of the test's own to the cluster's Redis, to pause it and read its keys. */
  readonly redis: Redis;
  connect(instance: number, userId: string): Promise<TestClient>;
}

/**
 * Two instances on a redis-server of each test's own, so that pausing its writes makes nothing
 * else wait; started before each test and stopped after it.
 */
export function usePausableCluster(env: Record<string, string>): PausableCluster {
  const clients = new ClusterClients();
  let server: RedisServer | undefined;
  let cluster: TestCluster | undefined;
  let redis: Redis | undefined;

  beforeEach(async () => {
    server = await RedisServer.start();
    cluster = await startTestCluster(2, env, { redisUrl: server.url, keepKeys: true });
    redis = await connectRedis(server.url);
  }, 20_000);

  afterEach(async () => {
    clients.closeAll();
    await redis?.call('CLIENT', 'UNPAUSE').catch(() => undefined);
    redis?.disconnect();
    await withTimeout(cluster?.close() ?? Promise.resolve(), 10_000, 'the instances to close');
    await server?.stop('SIGKILL');
    server = undefined;
  }, 20_000);

  return {
    get cluster() {
      return cluster!;
    },
    get redis() {
      return redis!;
    },
    connect: (instance, userId) => clients.connect(cluster!.servers[instance].wsUrl, userId),
  };
}
