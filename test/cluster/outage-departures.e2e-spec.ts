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
import type { ServerEventMap } from '../../src/protocol/protocol.js';
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

    // Bob learns it one of two ways, both documented: the departure itself, or, when instance b
    // resynced the room after Redis came back (it may have missed envelopes), a fresh
    // room_joined snapshot taken after alice was removed.
    const deadline = Date.now() + 8000;
    let told = await bob.nextAny(8000);
    while (told.event !== 'user_left' && told.event !== 'room_joined') {
      told = await bob.nextAny(Math.max(1, deadline - Date.now()));
    }
    if (told.event === 'user_left') {
      expect(told.data).toEqual({ roomId: 'hall', userId: 'alice' });
    } else {
      const { roomInfo } = told.data as ServerEventMap['room_joined'];
      expect(roomInfo.roomId).toBe('hall');
      expect(roomInfo.users.map((user) => user.id).sort()).toEqual(['bob', 'carol']);
    }
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
