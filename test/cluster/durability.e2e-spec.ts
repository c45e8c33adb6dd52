import {
  ClusterClients,
  RedisServer,
  removeDir,
  startInstanceProcess,
  statsRooms,
  stopInstanceProcess,
  tempDir,
  uniqueKeyPrefix,
  waitFor,
  type InstanceProcess,
} from '../support/cluster.js';
import type { TestClient } from '../support/test-client.js';

const ROOM = 'kept';
const PRESENCE_TTL_MS = 3000;

/** The state the updates in `editScene` leave, written out here rather than read back. */
const EDITED_STATE = {
  version: 3,
  sceneUrl: 'https://example.com/scene.gltf',
  sceneLoaded: true,
  treeViewState: { expanded: ['root'] },
  annotations: [{ id: 'a1', text: 'Look here' }],
  focusPoints: [{ id: 'f1', target: [0, 1.5, -2] }],
  sessionSettings: { quality: 'high' },
};

describe('cluster: persistent rooms in Redis with AOF (real processes)', () => {
  const clients = new ClusterClients();
  const instances: InstanceProcess[] = [];
  let redis: RedisServer | undefined;
  let aofDir: string | undefined;

  afterEach(async () => {
    clients.closeAll();
    await Promise.all(instances.splice(0).map((instance) => stopInstanceProcess(instance)));
    await redis?.stop('SIGKILL'); // its data lives only in aofDir, removed below
    redis = undefined;
    if (aofDir) {
      removeDir(aofDir);
      aofDir = undefined;
    }
  });

  const startInstance = async (keyPrefix: string) => {
    const instance = await startInstanceProcess(redis!.url, keyPrefix, {
      PRESENCE_TTL_MS: String(PRESENCE_TTL_MS),
    });
    instances.push(instance);
    return instance;
  };

  /** Records a failed check and goes on, so that one run lists everything that does not hold. */
  const problems: string[] = [];
  const check = async (what: string, body: () => Promise<void>): Promise<void> => {
    try {
      await body();
    } catch (error) {
      problems.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };

  const expectReply = async (
    client: TestClient,
    action: string,
    fields: Record<string, unknown>,
    event: string,
  ) => {
    const reply = await client.reply(client.request(action, fields), 5000);
    if (reply.event !== event) {
      throw new Error(`${action} answered ${JSON.stringify(reply)}, not ${event}`);
    }
    return reply.data as Record<string, unknown>;
  };

  const editScene = async (client: TestClient) => {
    const update = (fields: Record<string, unknown>) =>
      expectReply(client, 'update_state', { roomId: ROOM, ...fields }, 'state_updated');
    await update({
      baseVersion: 0,
      patch: {
        sceneUrl: EDITED_STATE.sceneUrl,
        sceneLoaded: true,
        treeViewState: EDITED_STATE.treeViewState,
        sessionSettings: EDITED_STATE.sessionSettings,
      },
    });
    await update({
      ops: [{ op: 'add', collection: 'annotations', id: 'a1', item: { text: 'Look here' } }],
    });
    const last = await update({
      ops: [{ op: 'add', collection: 'focusPoints', id: 'f1', item: { target: [0, 1.5, -2] } }],
    });
    expect(last.version).toBe(EDITED_STATE.version);
  };

  /** Joins ROOM, retrying while the instance answers UNAVAILABLE, within `timeoutMs`. */
  const joinWhenAvailable = (client: TestClient, timeoutMs: number) =>
    waitFor(
      async () => {
        const reply = await client.reply(client.request('join_room', { roomId: ROOM }), 3000);
        if (reply.event === 'room_joined') {
          return (reply.data as { roomInfo: { state: unknown; users: Array<{ id: string }> } })
            .roomInfo;
        }
        if ((reply.data as { code?: string }).code !== 'UNAVAILABLE') {
          throw new Error(`join_room answered ${JSON.stringify(reply)}`);
        }
        return undefined;
      },
      timeoutMs,
      `${client.userId} to join ${ROOM}`,
      200,
    );

  it('keeps a persistent room and its state across a restart of every instance, then of Redis', async () => {
    problems.splice(0);
    aofDir = tempDir('redis-aof');
    redis = await RedisServer.start({ aofDir });
    const keyPrefix = uniqueKeyPrefix();
    const [first, second] = await Promise.all([startInstance(keyPrefix), startInstance(keyPrefix)]);

    const alice = await clients.connect(first.wsUrl, 'alice');
    await expectReply(
      alice,
      'create_room',
      { roomId: ROOM, config: { name: 'Kept', persistent: true, maxUsers: 20 } },
      'room_created',
    );
    await alice.join(ROOM);
    await editScene(alice);
    const bob = await clients.connect(second.wsUrl, 'bob');
    expect((await bob.join(ROOM)).state).toEqual(EDITED_STATE);

    // Every instance goes: one cleanly, one killed.
    first.process.child.kill('SIGTERM');
    expect(await first.process.waitForExit(5000)).toEqual({ code: 0, signal: null });
    second.process.child.kill('SIGKILL');
    await second.process.waitForExit(3000);
    clients.closeAll();

    // New instances, with DATA_DIRs of their own: whatever they know comes from Redis.
    const [third, fourth] = await Promise.all([startInstance(keyPrefix), startInstance(keyPrefix)]);
    await check('the room after every instance restarted', async () => {
      const carol = await clients.connect(third.wsUrl, 'carol');
      const roomInfo = await joinWhenAvailable(carol, 5000);
      expect(roomInfo.state).toEqual(EDITED_STATE);
      const rooms = await statsRooms(fourth.httpUrl);
      expect(rooms).toEqual([
        expect.objectContaining({ roomId: ROOM, name: 'Kept', persistent: true }),
      ]);
      // The version goes on from where it was.
      const next = await expectReply(
        carol,
        'update_state',
        { roomId: ROOM, baseVersion: EDITED_STATE.version, patch: { sceneLoaded: false } },
        'state_updated',
      );
      expect(next.version).toBe(EDITED_STATE.version + 1);
    });
    await check("the killed instance's member (bob) is removed by the new instances", async () => {
      let last: unknown;
      await waitFor(
        async () => {
          const rooms = await statsRooms(fourth.httpUrl);
          last = rooms;
          return rooms.find((room) => room.roomId === ROOM)?.userCount === 1 ? true : undefined;
        },
        PRESENCE_TTL_MS + 2000,
        `${ROOM} to list carol alone`,
        100,
      ).catch((error: Error) => {
        throw new Error(`${error.message}; /stats rooms: ${JSON.stringify(last)}`, {
          cause: error,
        });
      });
    });

    // Redis restarts from its AOF under the running instances.
    await redis.stop('SIGTERM');
    await redis.start();
    await check('the room after Redis restarted', async () => {
      const dave = await clients.connect(fourth.wsUrl, 'dave');
      const roomInfo = await joinWhenAvailable(dave, 5000);
      expect(roomInfo.state).toEqual({
        ...EDITED_STATE,
        version: EDITED_STATE.version + 1,
        sceneLoaded: false,
      });
      expect(await statsRooms(third.httpUrl)).toEqual([
        expect.objectContaining({ roomId: ROOM, name: 'Kept', persistent: true }),
      ]);
    });

    expect(problems).toEqual([]);
  }, 60_000);
});
