import {
  ClusterClients,
  RedisServer,
  getJson,
  removeDir,
  startTestCluster,
  statsRooms,
  tempDir,
  waitFor,
  type TestCluster,
} from '../support/cluster.js';
import { delay } from '../support/test-client.js';

const PRESENCE_TTL_MS = 3000;

describe('cluster: a Redis outage that outlives the presence keys, with Redis keeping its data', () => {
  const clients = new ClusterClients();
  let redis: RedisServer | undefined;
  let cluster: TestCluster | undefined;
  let aofDir: string | undefined;

  afterEach(async () => {
    clients.closeAll();
    if (redis && !redis.running) {
      await redis.start().catch(() => undefined);
    }
    await cluster?.close();
    cluster = undefined;
    await redis?.stop('SIGKILL');
    redis = undefined;
    if (aofDir) {
      removeDir(aofDir);
      aofDir = undefined;
    }
  });

  it('removes a member whose socket closed meanwhile, and no live member of another instance', async () => {
    aofDir = tempDir('outage-aof');
    redis = await RedisServer.start({ aofDir });
    cluster = await startTestCluster(
      2,
      { PRESENCE_TTL_MS: String(PRESENCE_TTL_MS) },
      { redisUrl: redis.url, keepKeys: true },
    );
    const [a, b] = cluster.servers;
    const alice = await clients.connect(a.wsUrl, 'alice');
    const carol = await clients.connect(a.wsUrl, 'carol');
    const bob = await clients.connect(b.wsUrl, 'bob');
    for (const member of [alice, carol, bob]) {
      await member.join('hall');
    }
    await alice.next('user_joined'); // carol
    await alice.next('user_joined'); // bob: everyone is in
    bob.received.splice(0);

    await redis.stop();
    alice.close(); // its instance cannot tell Redis now
    // Longer than the presence keys live (PRESENCE_TTL_MS / 2): both instances look dead to Redis.
    await delay(PRESENCE_TTL_MS);
    await redis.start();

    expect(await bob.next('user_left', 8000)).toEqual({ roomId: 'hall', userId: 'alice' });
    // carol, alive on the other instance, stays: nobody takes instance a for dead.
    await delay(PRESENCE_TTL_MS);
    const left = bob.received.filter((message) => message.event === 'user_left');
    expect(left).toEqual([]);
    await waitFor(
      async () => ((await getJson(b.httpUrl, '/health/ready')).status === 200 ? true : undefined),
      5000,
      'instance b to be ready',
    );
    const [room] = await statsRooms(b.httpUrl);
    expect(room).toMatchObject({ roomId: 'hall', userCount: 2 });
  }, 40_000);
});
