import {
  ClusterClients,
  getJson,
  RedisServer,
  startTestCluster,
  statsRooms,
  waitFor,
  type TestCluster,
} from '../support/cluster.js';
import { withTimeout, type TestClient } from '../support/test-client.js';

/** While Redis is down, a request that needs it fails within this. */
const FAIL_FAST_MS = 2000;
/** After Redis is back, the cluster works again within this, without reconnecting clients. */
const RECOVERY_MS = 5000;

describe('cluster: Redis restarted under running instances', () => {
  const clients = new ClusterClients();
  let redis: RedisServer | undefined;
  let cluster: TestCluster | undefined;

  afterEach(async () => {
    clients.closeAll();
    // With its Redis back, an instance closes cleanly; the keys go with that Redis.
    if (redis && !redis.running) {
      await redis.start().catch(() => undefined);
      for (const server of cluster?.servers ?? []) {
        await waitFor(
          async () =>
            (await getJson(server.httpUrl, '/health/ready')).status === 200 ? true : undefined,
          5000,
          'the instance to be ready before closing it',
        ).catch(() => undefined);
      }
    }
    await withTimeout(cluster?.close() ?? Promise.resolve(), 10_000, 'the instances to close');
    cluster = undefined;
    await redis?.stop('SIGKILL');
    redis = undefined;
  });

  /**
   * Runs one check of the scenario and records its failure instead of stopping there, so that one
   * run reports everything that does not hold yet; the test fails at the end with the list.
   */
  const problems: string[] = [];
  const check = async (what: string, body: () => void | Promise<void>): Promise<void> => {
    try {
      await body();
    } catch (error) {
      problems.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };

  /** Sends a request and returns its reply and how long it took. */
  const timed = async (client: TestClient, action: string, fields: Record<string, unknown>) => {
    const sentAt = Date.now();
    const reply = await client.reply(client.request(action, fields), FAIL_FAST_MS + 3000);
    return { reply, ms: Date.now() - sentAt };
  };

  it('fails requests with UNAVAILABLE while it is down, keeps local traffic, and recovers without reconnects', async () => {
    problems.splice(0);
    redis = await RedisServer.start(); // no persistence: a restart loses every key
    cluster = await startTestCluster(
      2,
      { PRESENCE_TTL_MS: '3000' },
      { redisUrl: redis.url, keepKeys: true },
    );
    const [a, b] = cluster.servers;
    const alice = await clients.connect(a.wsUrl, 'alice');
    const bob = await clients.connect(a.wsUrl, 'bob');
    const carol = await clients.connect(b.wsUrl, 'carol');
    const dave = await clients.connect(b.wsUrl, 'dave');
    for (const member of [alice, bob, carol]) {
      await member.join('gallery');
    }
    alice.broadcast('gallery', { type: 'chat', data: { text: 'before' } });
    expect(await carol.next('message', 3000)).toMatchObject({ senderId: 'alice' });
    expect(await bob.next('message', 3000)).toMatchObject({ senderId: 'alice' });

    await redis.stop('SIGKILL');

    // Requests that need Redis fail fast with UNAVAILABLE.
    await check('update_state while Redis is down', async () => {
      const { reply, ms } = await timed(alice, 'update_state', {
        roomId: 'gallery',
        baseVersion: 0,
        patch: { sceneUrl: 'https://example.com/down.gltf' },
      });
      expect(reply).toMatchObject({ event: 'error', data: { code: 'UNAVAILABLE' } });
      expect(ms).toBeLessThan(FAIL_FAST_MS);
    });
    const joinWhileDown = dave.request('join_room', { roomId: 'other' });
    await check('join_room while Redis is down', async () => {
      const sentAt = Date.now();
      const reply = await dave.reply(joinWhileDown, FAIL_FAST_MS + 3000);
      expect(reply).toMatchObject({ event: 'error', data: { code: 'UNAVAILABLE' } });
      expect(Date.now() - sentAt).toBeLessThan(FAIL_FAST_MS);
    });

    await check('a pose between two members of instance A while Redis is down', async () => {
      bob.received.splice(0);
      const pose = {
        type: 'pose_update',
        senderId: 'alice',
        data: { position: [1, 2, 3], rotation: [0, 0, 0, 1] },
      };
      alice.broadcast('gallery', pose);
      expect(await bob.next('message', 2000)).toEqual({
        roomId: 'gallery',
        message: pose,
        senderId: 'alice',
      });
    });

    await check('/health/ready while Redis is down', async () => {
      await waitFor(
        async () => ((await getJson(a.httpUrl, '/health/ready')).status === 503 ? true : undefined),
        FAIL_FAST_MS,
        '/health/ready to answer 503',
      );
    });
    await check('/health/live while Redis is down', async () => {
      expect((await getJson(a.httpUrl, '/health/live')).status).toBe(200);
    });
    await check('/health while Redis is down', async () => {
      const health = await getJson(a.httpUrl, '/health');
      expect({ status: health.status, body: health.body }).toEqual({
        status: 200,
        body: expect.anything(),
      });
    });

    // Back on the same port, empty: the instances register their live members again.
    await redis.start();
    const restartedAt = Date.now();
    const left = () => Math.max(0, restartedAt + RECOVERY_MS - Date.now());

    await check('/stats after the restart', async () => {
      await waitFor(
        async () => {
          const rooms = await statsRooms(a.httpUrl);
          return rooms.some((room) => room.roomId === 'gallery' && room.userCount === 3)
            ? rooms
            : undefined;
        },
        left(),
        'the room and its three live members to be listed again',
        100,
      );
    });
    await check('/health/ready after the restart', async () => {
      for (const server of [a, b]) {
        await waitFor(
          async () =>
            (await getJson(server.httpUrl, '/health/ready')).status === 200 ? true : undefined,
          left(),
          '/health/ready to answer 200 again',
          100,
        );
      }
    });

    await check('a broadcast from instance A to B after the restart', async () => {
      carol.received.splice(0);
      let sent = 0;
      await waitFor(
        () => {
          if (carol.received.some((message) => message.event === 'message')) {
            return true;
          }
          sent += 1;
          alice.broadcast('gallery', { type: 'chat', data: { text: `after ${sent}` } });
          return undefined;
        },
        left(),
        'carol on B to get a broadcast of alice on A',
        200,
      );
    });

    await check('a state update from instance B to A after the restart', async () => {
      const updated = await waitFor(
        async () => {
          const { reply } = await timed(carol, 'update_state', {
            roomId: 'gallery',
            ops: [{ op: 'add', collection: 'annotations', id: 'after', item: { text: 'back' } }],
          });
          if (reply.event === 'state_updated') {
            return reply.data as { version: number };
          }
          expect(reply).toMatchObject({ event: 'error', data: { code: 'UNAVAILABLE' } });
          return undefined;
        },
        left(),
        'an update_state of carol to succeed',
        100,
      );
      for (const member of [alice, bob]) {
        expect(await member.next('state_updated', Math.max(left(), 500))).toMatchObject({
          roomId: 'gallery',
          version: updated.version,
          updatedBy: 'carol',
        });
      }
      expect(Date.now() - restartedAt).toBeLessThan(RECOVERY_MS);
    });

    await check('no client was disconnected', () => {
      for (const client of [alice, bob, carol, dave]) {
        expect({ userId: client.userId, closeCode: client.closeCode }).toEqual({
          userId: client.userId,
          closeCode: undefined,
        });
      }
    });

    await check('the join_room sent while Redis was down, if unanswered then', () => {
      const late = dave.received.filter(
        (message) => (message.data as { requestId?: string }).requestId === joinWhileDown,
      );
      expect({ answeredLateWith: late.map((message) => message.event) }).toEqual({
        answeredLateWith: [],
      });
    });

    expect(problems).toEqual([]);
  }, 40_000);
});
