import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientPool, INITIAL_STATE } from './support/fixtures.js';
import { ServerProcess } from './support/server-process.js';
import { delay, until, type TestClient } from './support/test-client.js';

interface RoomStats {
  roomId: string;
  name?: string;
  userCount: number;
  persistent: boolean;
  createdAt: number;
  lastActivity: number;
}

const ROOM = 'gallery-1';
const PASSWORD = 'open sesame';

/** The state the updates in `editScene` leave, written out here rather than read back. */
const EDITED_STATE = {
  version: 5,
  sceneUrl: 'https://example.com/scene.gltf',
  sceneLoaded: true,
  treeViewState: { expanded: ['root', 'wing-a'], selected: 'statue' },
  annotations: [{ id: 'a1', text: 'Look here, closer', position: [1, 2, 3] }],
  focusPoints: [{ id: 'f1', target: [0, 1.5, -2] }],
  sessionSettings: { quality: 'high', lighting: { exposure: 1.2 } },
};

describe('durable rooms across restarts (real processes)', () => {
  const processes: ServerProcess[] = [];
  const clients = new ClientPool();
  let dataDir: string;

  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'durability-'));
  });

  afterEach(async () => {
    clients.closeAll();
    await Promise.all(processes.splice(0).map((server) => server.stop()));
    rmSync(dataDir, { recursive: true, force: true });
  });

  const boot = async (env: Record<string, string> = {}) => {
    const server = ServerProcess.start({
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_FORMAT: 'json',
      SHUTDOWN_TIMEOUT_MS: '3000',
      DATA_DIR: dataDir,
      ...env,
    });
    processes.push(server);
    const port = await server.port();
    return {
      server,
      wsUrl: `ws://127.0.0.1:${port}`,
      stats: async (): Promise<RoomStats[]> => {
        const response = await fetch(`http://127.0.0.1:${port}/stats`);
        expect(response.status).toBe(200);
        return ((await response.json()) as { rooms: RoomStats[] }).rooms;
      },
    };
  };

  const expectReply = async (client: TestClient, requestId: string, event: string) => {
    const reply = await client.reply(requestId);
    expect(reply.event).toBe(event);
    return reply.data as Record<string, unknown>;
  };

  const createRoom = (client: TestClient, roomId: string, config: Record<string, unknown>) =>
    expectReply(client, client.request('create_room', { roomId, config }), 'room_created');

  /** Five acknowledged updates: a patch of every section, then ops on both collections. */
  const editScene = async (client: TestClient, roomId: string) => {
    const update = (fields: Record<string, unknown>) =>
      expectReply(client, client.request('update_state', { roomId, ...fields }), 'state_updated');
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
      ops: [
        {
          op: 'add',
          collection: 'annotations',
          id: 'a1',
          item: { text: 'Look here', position: [1, 2, 3] },
        },
        { op: 'add', collection: 'annotations', id: 'a2', item: { text: 'Gone soon' } },
      ],
    });
    await update({
      ops: [{ op: 'add', collection: 'focusPoints', id: 'f1', item: { target: [0, 1.5, -2] } }],
    });
    await update({
      ops: [
        { op: 'update', collection: 'annotations', id: 'a1', item: { text: 'Look here, closer' } },
      ],
    });
    const last = await update({ ops: [{ op: 'remove', collection: 'annotations', id: 'a2' }] });
    expect(last.version).toBe(EDITED_STATE.version);
  };

  /** A persistent room with an edited scene, and a non-persistent one, on a fresh server. */
  const prepareRooms = async (wsUrl: string) => {
    const alice = await clients.connect(wsUrl, { userId: 'alice' });
    await createRoom(alice, ROOM, {
      name: 'Gallery Session',
      maxUsers: 5,
      password: PASSWORD,
      persistent: true,
      defaultRole: 'viewer',
    });
    await createRoom(alice, 'scratch', { persistent: false });
    await alice.join(ROOM, { password: PASSWORD });
    await alice.join('scratch');
    await editScene(alice, ROOM);
    return alice;
  };

  /** What a restarted server must show: the room, its config and state, and nobody in it. */
  const expectRestored = async (restarted: Awaited<ReturnType<typeof boot>>, createdAt: number) => {
    const rooms = await restarted.stats();
    expect(rooms.find((room) => room.roomId === ROOM)).toMatchObject({
      name: 'Gallery Session',
      userCount: 0,
      persistent: true,
      createdAt,
    });
    expect(rooms.map((room) => room.roomId)).not.toContain('scratch');

    const bob = await clients.connect(restarted.wsUrl, { userId: 'bob' });
    const wrong = await bob.error(bob.request('join_room', { roomId: ROOM, password: 'nope' }));
    expect(wrong.code).toBe('INVALID_PASSWORD');
    const joined = await bob.join(ROOM, { password: PASSWORD, userInfo: { role: 'editor' } });
    expect(joined.state).toEqual(EDITED_STATE);
    expect(joined.createdAt).toBe(createdAt);
    expect(joined.users.map((user) => [user.id, user.role])).toEqual([['bob', 'host']]);

    // The restored defaultRole caps the next joiner, and the room carries on from its version.
    const carol = await clients.connect(restarted.wsUrl, { userId: 'carol' });
    const carolJoined = await carol.join(ROOM, {
      password: PASSWORD,
      userInfo: { role: 'editor' },
    });
    expect(carolJoined.users.find((user) => user.id === 'carol')?.role).toBe('viewer');
    const next = await expectReply(
      bob,
      bob.request('update_state', { roomId: ROOM, baseVersion: 5, patch: { sceneLoaded: false } }),
      'state_updated',
    );
    expect(next.version).toBe(6);

    const scratch = await bob.error(bob.request('get_state', { roomId: 'scratch' }));
    expect(scratch.code).toBe('ROOM_NOT_FOUND');
  };

  const createdAtOf = async (first: Awaited<ReturnType<typeof boot>>) =>
    (await first.stats()).find((room) => room.roomId === ROOM)?.createdAt ?? -1;

  it('keeps a persistent room and its state over a SIGTERM and a restart, and drops the others', async () => {
    const first = await boot();
    await prepareRooms(first.wsUrl);
    const createdAt = await createdAtOf(first);

    first.server.child.kill('SIGTERM');
    expect(await first.server.waitForExit(5000)).toEqual({ code: 0, signal: null });

    await expectRestored(await boot(), createdAt);
  }, 20_000);

  it('answers a resume after a restart with a snapshot of each persistent room, in a new epoch', async () => {
    const first = await boot();
    const alice = await clients.connect(first.wsUrl, { userId: 'alice' });
    await createRoom(alice, 'museum', { persistent: true });
    await createRoom(alice, 'scratch', { persistent: false });
    const joined = await alice.join('museum');
    await alice.join('scratch');
    const update = await expectReply(
      alice,
      alice.request('update_state', {
        roomId: 'museum',
        baseVersion: 0,
        patch: { sceneLoaded: true },
      }),
      'state_updated',
    );
    const token = alice.connected?.resumeToken as string;
    first.server.child.kill('SIGKILL');
    await first.server.waitForExit(5000);

    const restarted = await boot();
    const back = await clients.connect(restarted.wsUrl, { userId: 'alice', resume: token });
    expect(back.connected).toMatchObject({ userId: 'alice', resumed: false });
    const resumeId = back.request('resume', {
      token,
      rooms: [
        { roomId: 'museum', epoch: joined.epoch, lastSeq: update.seq },
        { roomId: 'scratch', epoch: joined.epoch, lastSeq: 1 },
      ],
    });
    const resumed = await expectReply(back, resumeId, 'resumed');
    expect(resumed.rooms).toEqual([
      {
        roomId: 'museum',
        recovered: false,
        roomInfo: expect.objectContaining({
          state: expect.objectContaining({ version: 1, sceneLoaded: true }),
          users: [expect.objectContaining({ id: 'alice', connected: true })],
          epoch: expect.stringMatching(/^[0-9a-f]{16}$/),
        }),
      },
    ]);
    const [museum] = resumed.rooms as Array<{ roomInfo: { epoch: string } }>;
    expect(museum.roomInfo.epoch).not.toBe(joined.epoch);
    expect(resumed.lost).toEqual(['scratch']); // not persistent: gone with the process
  }, 20_000);

  it('loses no acknowledged change to a kill -9 right after the acknowledgement', async () => {
    const first = await boot();
    const alice = await prepareRooms(first.wsUrl);
    const createdAt = await createdAtOf(first);
    await createRoom(alice, 'born-last', { persistent: true });
    await alice.join('born-last');

    // Kill in the same tick the acknowledgement arrives, before the test does anything else.
    const lastId = 'last-update';
    alice.socket.on('message', (raw: Buffer) => {
      const message = JSON.parse(raw.toString()) as { data?: { requestId?: string } };
      if (message.data?.requestId === lastId) {
        first.server.child.kill('SIGKILL');
      }
    });
    alice.send({
      action: 'update_state',
      requestId: lastId,
      roomId: 'born-last',
      ops: [{ op: 'add', collection: 'annotations', id: 'n1', item: { text: 'last words' } }],
    });
    expect((await alice.reply(lastId)).event).toBe('state_updated');
    expect(await first.server.waitForExit(5000)).toEqual({ code: null, signal: 'SIGKILL' });

    const restarted = await boot();
    expect((await restarted.stats()).map((room) => room.roomId).sort()).toEqual([
      'born-last',
      ROOM,
    ]);
    const dave = await clients.connect(restarted.wsUrl, { userId: 'dave' });
    const born = await dave.join('born-last');
    expect(born.state).toEqual({
      ...INITIAL_STATE,
      version: 1,
      annotations: [{ id: 'n1', text: 'last words' }],
    });
    expect(born.users.map((user) => [user.id, user.role])).toEqual([['dave', 'host']]);
    await expectRestored(restarted, createdAt);
    // No half-written file was left for the restart to trip over.
    expect(readdirSync(dataDir).sort()).toEqual(['room-born-last.json', `room-${ROOM}.json`]);
  }, 20_000);

  it('removes the file of a deleted persistent room before acknowledging, and never writes a non-persistent one', async () => {
    const { wsUrl } = await boot();
    const alice = await clients.connect(wsUrl, { userId: 'alice' });
    await createRoom(alice, 'Doomed', { persistent: true });
    await createRoom(alice, 'ordinary', { persistent: false });
    await alice.join('ordinary');
    await expectReply(
      alice,
      alice.request('update_state', {
        roomId: 'ordinary',
        baseVersion: 0,
        patch: { sceneLoaded: true },
      }),
      'state_updated',
    );
    expect(readdirSync(dataDir)).toEqual(['room-~doomed.json']);

    await alice.join('Doomed');
    await expectReply(alice, alice.request('delete_room', { roomId: 'Doomed' }), 'room_deleted');
    expect(existsSync(join(dataDir, 'room-~doomed.json'))).toBe(false);
    expect(readdirSync(dataDir)).toEqual([]);
  }, 20_000);

  it('boots past a file it cannot read, naming it in the log', async () => {
    writeFileSync(join(dataDir, 'room-broken.json'), '{"format":1,"roomId":"bro');
    const { stats, server } = await boot();
    expect(await stats()).toEqual([]);
    const logged = `${server.stdoutLines.join('\n')}\n${server.stderr}`;
    expect(logged).toContain(join(dataDir, 'room-broken.json'));
  }, 20_000);

  describe('with a short PERSISTENT_ROOM_IDLE_MS', () => {
    // Its quarter (3 s) is how far behind the file's lastActivity may lag after a crash. Long
    // enough that the restart fits well inside it: the busy room's last activity (on disk up to
    // a second behind, a quarter more after a kill -9) plus a SIGTERM, a boot and a sweep must be
    // under the idle time, and a boot alone takes seconds on a loaded machine. At 6 s it did not.
    const IDLE_MS = 12_000;
    const IDLE_ENV = { PERSISTENT_ROOM_IDLE_MS: String(IDLE_MS) };
    const BUSY = 'busy-hall';

    const lastActivityOnDisk = () =>
      (JSON.parse(readFileSync(join(dataDir, `room-${BUSY}.json`), 'utf8')) as RoomStats)
        .lastActivity;

    /** A persistent room with a chat message every 500 ms for longer than the idle time. */
    const keepBusy = async (wsUrl: string) => {
      const alice = await clients.connect(wsUrl, { userId: 'alice' });
      await createRoom(alice, BUSY, { persistent: true });
      await alice.join(BUSY);
      for (let i = 0; i < IDLE_MS / 500 + 2; i += 1) {
        alice.broadcast(BUSY, { type: 'chat_message', data: { text: `still here ${i}` } });
        await delay(500);
      }
    };

    /** Boots again and lets the first idle sweeps (one a second) run. */
    const roomsAfterRestart = async () => {
      const restarted = await boot(IDLE_ENV);
      await delay(1200);
      return (await restarted.stats()).map((room) => room.roomId);
    };

    it('saves the newest activity of a busy room on SIGTERM, so a restart keeps it', async () => {
      const first = await boot(IDLE_ENV);
      await keepBusy(first.wsUrl);
      const [busy] = await first.stats();

      first.server.child.kill('SIGTERM');
      expect(await first.server.waitForExit(5000)).toEqual({ code: 0, signal: null });
      expect(lastActivityOnDisk()).toBeGreaterThanOrEqual(busy.lastActivity);

      expect(await roomsAfterRestart()).toEqual([BUSY]);
      expect(existsSync(join(dataDir, `room-${BUSY}.json`))).toBe(true);
    }, 45_000);

    it('after a kill -9 keeps a busy room, its activity on disk at most a quarter idle behind', async () => {
      const first = await boot(IDLE_ENV);
      await keepBusy(first.wsUrl);
      const [busy] = await first.stats();

      first.server.child.kill('SIGKILL');
      await first.server.waitForExit(5000);
      expect(lastActivityOnDisk()).toBeGreaterThan(busy.lastActivity - IDLE_MS / 4);

      expect(await roomsAfterRestart()).toEqual([BUSY]);
    }, 45_000);

    it('does not let a lastActivity in the future keep an idle room forever', async () => {
      const first = await boot();
      const alice = await clients.connect(first.wsUrl, { userId: 'alice' });
      await createRoom(alice, 'skewed', { persistent: true });
      first.server.child.kill('SIGTERM');
      await first.server.waitForExit(5000);
      // As a clock set a year ahead, or a hand edit, would have left it.
      const file = join(dataDir, 'room-skewed.json');
      const saved = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      writeFileSync(
        file,
        JSON.stringify({ ...saved, lastActivity: Date.now() + 365 * 86_400_000 }),
      );

      const bootedAt = Date.now();
      const { stats } = await boot({ PERSISTENT_ROOM_IDLE_MS: '1000' });
      // Idle time, lastActivity's resolution and a sweep: 3 s, plus slack for a busy machine.
      await until(() => !existsSync(file), 6000, 'the skewed room to be deleted as idle');
      expect(await stats()).toEqual([]);
      expect(Date.now() - bootedAt).toBeGreaterThanOrEqual(1000);
    }, 30_000);
  });

  it('refuses to boot with a DATA_DIR it cannot create, naming DATA_DIR', async () => {
    writeFileSync(join(dataDir, 'a-file'), '');
    const server = ServerProcess.start({
      HOST: '127.0.0.1',
      PORT: '0',
      DATA_DIR: join(dataDir, 'a-file', 'data'),
    });
    processes.push(server);
    const exit = await server.waitForExit(5000);
    expect(exit.code).toBe(1);
    expect(server.stderr).toMatch(
      /^Invalid configuration:\n {2}- DATA_DIR=".*a-file\/data": cannot create or write/,
    );
    expect(server.stdoutLines.filter((line) => line.includes('Listening on'))).toEqual([]);
  }, 20_000);
});
