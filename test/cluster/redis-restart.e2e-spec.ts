import { CLUSTER, type Cluster } from '../../src/cluster/cluster.js';
import { RedisRecoveryService } from '../../src/cluster/redis-recovery.service.js';
import { RedisRoomStore } from '../../src/cluster/redis-room-store.js';
import type { JoinRequest } from '../../src/rooms/room-store.js';
import {
  ClusterClients,
  connectRedis,
  getJson,
  RedisServer,
  startTestCluster,
  statsRooms,
  waitFor,
  type TestCluster,
} from '../support/cluster.js';
import { delay, withTimeout, type TestClient } from '../support/test-client.js';
import { startClusterWithExtension, type EmittedEvent } from './extension-fixture.js';

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

  /** Kills Redis and starts it again on the same port with nothing in it. */
  const restartEmpty = async (): Promise<void> => {
    await redis!.stop('SIGKILL');
    await redis!.start();
  };

  /** A member's role as Redis has it, once the room is back; undefined while it is not. */
  const storedRole = async (roomId: string, userId: string): Promise<string | undefined> => {
    const client = await connectRedis(redis!.url);
    try {
      const record = await client.hget(`${cluster!.keyPrefix}{${roomId}}:members`, userId);
      return record === null ? undefined : record.slice(0, record.indexOf('\n'));
    } finally {
      client.disconnect();
    }
  };

  it('registers a member demoted on another instance with its current role after an empty restart', async () => {
    redis = await RedisServer.start();
    cluster = await startTestCluster(
      2,
      { PRESENCE_TTL_MS: '3000' },
      { redisUrl: redis.url, keepKeys: true },
    );
    const [a, b] = cluster.servers;
    const alice = await clients.connect(a.wsUrl, 'alice');
    const bob = await clients.connect(b.wsUrl, 'bob');
    await alice.join('hall');
    await bob.join('hall');
    await alice.reply(
      alice.request('set_role', { roomId: 'hall', targetUserId: 'bob', role: 'viewer' }),
    );
    expect(await bob.next('user_updated', 3000)).toMatchObject({
      user: { id: 'bob', role: 'viewer' },
    });

    await restartEmpty();

    // Whoever registers first, the host stays host and the viewer a viewer.
    await waitFor(() => storedRole('hall', 'alice'), RECOVERY_MS, 'alice to be registered again');
    expect(await storedRole('hall', 'alice')).toBe('host');
    const role = await waitFor(
      () => storedRole('hall', 'bob'),
      RECOVERY_MS,
      'bob to be registered again',
    );
    expect(role).toBe('viewer');
    const refused = await waitFor(
      async () => {
        const reply = await bob.reply(
          bob.request('update_state', {
            roomId: 'hall',
            ops: [{ op: 'add', collection: 'annotations', id: 'mine', item: {} }],
          }),
          FAIL_FAST_MS + 1000,
        );
        const code = (reply.data as { code?: string }).code;
        return code === 'UNAVAILABLE' ? undefined : reply;
      },
      RECOVERY_MS,
      'the store to answer bob',
    );
    expect(refused).toMatchObject({ event: 'error', data: { code: 'FORBIDDEN' } });
  }, 30_000);

  it('tells every member the room as the store has it once all are registered, even when registering is slow', async () => {
    redis = await RedisServer.start();
    cluster = await startTestCluster(
      2,
      { PRESENCE_TTL_MS: '3000' },
      { redisUrl: redis.url, keepKeys: true },
    );
    const [a, b] = cluster.servers;
    const alice = await clients.connect(a.wsUrl, 'alice');
    const carol = await clients.connect(a.wsUrl, 'carol');
    const bob = await clients.connect(b.wsUrl, 'bob');
    await alice.join('hall');
    await carol.join('hall');
    await bob.join('hall');
    for (const id of ['one', 'two']) {
      await alice.reply(
        alice.request('update_state', {
          roomId: 'hall',
          ops: [{ op: 'add', collection: 'annotations', id, item: {} }],
        }),
      );
    }
    await bob.next('state_updated'); // version 2: bob has the room as it is
    await bob.next('state_updated');
    // Instance b registers its members again slowly (a loaded Redis, many members): longer than
    // its subscriber takes to come back.
    const store = b.app.get(RedisRoomStore);
    const join = store.join.bind(store);
    store.join = async (request: JoinRequest) => {
      if (request.restore) {
        await delay(800);
      }
      return join(request);
    };

    await redis.stop('SIGKILL');
    carol.close(); // leaves while Redis is away
    await delay(200);
    for (const member of [alice, bob]) {
      member.received.splice(0);
    }
    await redis.start();

    const snapshotOf = (member: TestClient) =>
      waitFor(
        () => {
          const left = member.received.find((message) => message.event === 'room_left');
          if (left) {
            throw new Error(`${member.userId} was told it left: ${JSON.stringify(left)}`);
          }
          const joined = member.received.filter((message) => message.event === 'room_joined');
          return joined.at(-1)?.data as
            { roomInfo: { users: { id: string }[]; state: { version: number } } } | undefined;
        },
        RECOVERY_MS,
        `${member.userId} to get the room as it is now`,
      ).catch((error: unknown) => {
        throw new Error(`${String(error)}; got ${JSON.stringify(member.received)}`);
      });
    const bobSees = await snapshotOf(bob);
    expect({
      users: bobSees.roomInfo.users.map((user) => user.id).sort(),
      version: bobSees.roomInfo.state.version,
    }).toEqual({ users: ['alice', 'bob'], version: 0 });
    const aliceSees = await snapshotOf(alice);
    expect(aliceSees.roomInfo.state.version).toBe(0);
    // alice's snapshot may come before bob is back, then bob's return follows; carol is gone.
    await waitFor(
      () => {
        const members = new Set(aliceSees.roomInfo.users.map((user) => user.id));
        for (const message of alice.received.slice(
          alice.received.findLastIndex((m) => m.event === 'room_joined'),
        )) {
          const data = message.data as { user?: { id: string }; userId?: string };
          if (message.event === 'user_joined' && data.user) {
            members.add(data.user.id);
          } else if (message.event === 'user_left' && data.userId) {
            members.delete(data.userId);
          }
        }
        return [...members].sort().join() === 'alice,bob' ? true : undefined;
      },
      RECOVERY_MS,
      'alice to see alice and bob in the room',
    );
    await waitFor(
      async () => ((await storedRole('hall', 'bob')) ? true : undefined),
      RECOVERY_MS,
      'bob to be on record',
    );
  }, 30_000);

  it('says in /stats that Redis was recovered and which rooms were created again', async () => {
    redis = await RedisServer.start();
    cluster = await startTestCluster(
      1,
      { PRESENCE_TTL_MS: '3000' },
      { redisUrl: redis.url, keepKeys: true },
    );
    const [a] = cluster.servers;
    const alice = await clients.connect(a.wsUrl, 'alice');
    await alice.join('hall');
    const before = await getJson<Record<string, unknown>>(a.httpUrl, '/stats');
    expect(before.body).toMatchObject({ redisRecoveries: 0 });
    expect(before.body).not.toHaveProperty('lastRedisRecoveryAt');
    expect((before.body.rooms as Record<string, unknown>[])[0]).not.toHaveProperty('recoveredAt');

    const restartedAt = Date.now();
    await restartEmpty();

    const after = await waitFor(
      async () => {
        const { status, body } = await getJson<Record<string, unknown>>(a.httpUrl, '/stats');
        return status === 200 && body.redisRecoveries === 1 ? body : undefined;
      },
      RECOVERY_MS,
      '/stats to count the recovery',
      100,
    );
    expect(after.lastRedisRecoveryAt).toBeGreaterThanOrEqual(restartedAt);
    expect(after.rooms).toEqual([
      expect.objectContaining({ roomId: 'hall', userCount: 1, recoveredAt: expect.any(Number) }),
    ]);
  }, 30_000);

  it('gives a room whose host left while Redis was away a new host, and tells the room', async () => {
    redis = await RedisServer.start();
    cluster = await startTestCluster(
      2,
      { PRESENCE_TTL_MS: '3000' },
      { redisUrl: redis.url, keepKeys: true },
    );
    const [a, b] = cluster.servers;
    const alice = await clients.connect(a.wsUrl, 'alice');
    const bob = await clients.connect(b.wsUrl, 'bob');
    await alice.join('hall');
    await bob.join('hall');

    await redis.stop('SIGKILL');
    alice.close();
    await delay(200);
    await redis.start();

    expect(await bob.next('user_updated', RECOVERY_MS)).toEqual({
      roomId: 'hall',
      user: expect.objectContaining({ id: 'bob', role: 'host' }),
    });
    expect(await storedRole('hall', 'bob')).toBe('host');
  }, 30_000);

  it('fires no member.joined for the members it registers again after Redis lost its data', async () => {
    redis = await RedisServer.start();
    const emitted: EmittedEvent[] = [];
    // Presence beats far apart: the instances notice the loss through their reconnect below,
    // not through a beat finding them unlisted (which is what being taken for dead looks like).
    cluster = await startClusterWithExtension(
      2,
      { PRESENCE_TTL_MS: '60000' },
      { redisUrl: redis.url, emitted, keepKeys: true },
    );
    const [a, b] = cluster.servers;
    const alice = await clients.connect(a.wsUrl, 'alice');
    const bob = await clients.connect(b.wsUrl, 'bob');
    await alice.join('hall');
    await bob.join('hall');
    await alice.next('user_joined', 3000);
    expect(emitted.map(({ instance, name }) => [instance, name])).toEqual([
      [0, 'member.joined'],
      [1, 'member.joined'],
    ]);
    emitted.length = 0;

    // Redis loses everything (this test's own redis-server), and each instance's commands
    // connection reconnects to it, as after a restart without persistence.
    const client = await connectRedis(redis.url);
    try {
      await client.flushall();
    } finally {
      client.disconnect();
    }
    for (const server of cluster.servers) {
      server.app.get<Cluster>(CLUSTER).publisher.disconnect(true);
    }
    for (const server of cluster.servers) {
      await waitFor(
        () => (server.app.get(RedisRecoveryService).recovered.count === 1 ? true : undefined),
        RECOVERY_MS,
        'the recovery pass of every instance',
      );
    }
    expect(await storedRole('hall', 'alice')).toBe('host');
    expect(await storedRole('hall', 'bob')).toBe('editor');
    await delay(300);
    // Nothing changed for the extensions: neither a departure nor an arrival.
    expect(emitted).toEqual([]);
  }, 30_000);
});
