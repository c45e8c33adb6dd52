// The worked example of docs/extending.md (examples/audit-log/), loaded into the real app the way
// a team would load its own: one module in AppModule.forRoot's `imports`.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLogModule } from '../examples/audit-log/audit-log.module.js';
import {
  assertRedisAnswers,
  clusterInstanceCount,
  deleteKeysWithPrefix,
  statsRooms,
  TEST_REDIS_URL,
  uniqueKeyPrefix,
  waitFor,
} from './support/cluster.js';
import { ClientPool, replyOf } from './support/fixtures.js';
import type { TestClient } from './support/test-client.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const ALLOWED_SCENE = 'https://assets.example.com/galleries/atrium.glb';
const FOREIGN_SCENE = 'https://elsewhere.example.net/atrium.glb';
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * useTestServer's behaviour, plus the extension module: one in-process server, or in the
 * `cluster` project three instances on Redis (clients round-robin), each loading
 * AuditLogModule and appending to this test's one audit file. useTestServer and
 * startTestCluster take no `imports`, hence this small copy of them.
 */
function useAuditLogServer() {
  const instances = clusterInstanceCount();
  const pool = new ClientPool();
  let dir = '';
  let servers: TestServer[] = [];
  let keyPrefix: string | undefined;
  let connections = 0;

  const fixture = {
    auditFile: '',
    get server(): TestServer {
      return servers[0];
    },
    /** Starts this test's server(s); `EMPTY_ROOM_TTL_MS=0` so that an emptied room goes at once. */
    async start(env: Record<string, string> = {}): Promise<void> {
      const options = {
        imports: [
          AuditLogModule.forRoot({
            file: fixture.auditFile,
            blockedUserIds: ['mallory'],
            allowedSceneHosts: ['assets.example.com'],
          }),
        ],
      };
      const fullEnv = { EMPTY_ROOM_TTL_MS: '0', ...env };
      if (instances === 0) {
        servers = [await startTestServer(fullEnv, options)];
        return;
      }
      await assertRedisAnswers();
      keyPrefix = uniqueKeyPrefix();
      const clusterEnv = { ...fullEnv, REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: keyPrefix };
      const started = await Promise.allSettled(
        Array.from({ length: instances }, () => startTestServer(clusterEnv, options)),
      );
      servers = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
      const failure = started.find((result) => result.status === 'rejected');
      if (failure) {
        throw failure.reason;
      }
    },
    /** Connects `userId`, starting the server(s) with the default env if the test did not. */
    async connect(userId: string): Promise<TestClient> {
      const index = connections++;
      if (servers.length === 0) {
        await fixture.start();
      }
      return pool.connect(servers[index % servers.length].wsUrl, { userId });
    },
    async connectAll(...userIds: string[]): Promise<TestClient[]> {
      const clients: TestClient[] = [];
      for (const userId of userIds) {
        clients.push(await fixture.connect(userId));
      }
      return clients;
    },
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gms-audit-'));
    fixture.auditFile = join(dir, 'audit.jsonl');
  });

  afterEach(async () => {
    pool.closeAll();
    await Promise.allSettled(servers.map((server) => server.close()));
    servers = [];
    connections = 0;
    if (keyPrefix !== undefined) {
      await deleteKeysWithPrefix(TEST_REDIS_URL, keyPrefix);
      keyPrefix = undefined;
    }
    await rm(dir, { recursive: true, force: true });
  });

  return fixture;
}

/** Consumes `client`'s events up to the next custom `event` (not in the protocol's typed map). */
async function nextCustom(client: TestClient, event: string): Promise<Record<string, unknown>> {
  for (;;) {
    const message = await client.nextAny();
    if ((message.event as string) === event) {
      return message.data as Record<string, unknown>;
    }
  }
}

describe('example extension: AuditLogModule', () => {
  const fixture = useAuditLogServer();
  const { connect, connectAll } = fixture;

  /** The audit file's lines so far, parsed; none while the file does not exist yet. */
  const auditLines = async (): Promise<Array<Record<string, unknown>>> => {
    const text = await readFile(fixture.auditFile, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  };

  /** Polls the audit file until it has `count` lines; returns them. */
  const auditLinesUntil = (count: number) =>
    waitFor(
      async () => {
        const lines = await auditLines();
        return lines.length >= count ? lines : undefined;
      },
      5000,
      `${count} lines in the audit file`,
      20,
    );

  /** alice (host) and bob (viewer) in `gallery`, alice's user_joined consumed. */
  const hostAndViewer = async () => {
    const [alice, bob] = await connectAll('alice', 'bob');
    await alice.join('gallery');
    await bob.join('gallery', { userInfo: { role: 'viewer' } });
    await alice.next('user_joined');
    return { alice, bob };
  };

  describe('raise_hand', () => {
    it('tells the other members hand_raised and answers the viewer with its requestId', async () => {
      const { alice, bob } = await hostAndViewer();
      const raise = bob.request('raise_hand', { roomId: 'gallery' });
      expect(await bob.reply(raise)).toStrictEqual({
        event: 'hand_raised',
        data: { requestId: raise, roomId: 'gallery', userId: 'bob', raised: true },
      });
      expect(await nextCustom(alice, 'hand_raised')).toStrictEqual({
        roomId: 'gallery',
        userId: 'bob',
        raised: true,
      });

      const lower = bob.request('raise_hand', { roomId: 'gallery', raised: false });
      expect((await bob.reply(lower)).data).toStrictEqual({
        requestId: lower,
        roomId: 'gallery',
        userId: 'bob',
        raised: false,
      });
      expect(await nextCustom(alice, 'hand_raised')).toStrictEqual({
        roomId: 'gallery',
        userId: 'bob',
        raised: false,
      });
      // The sender's reply is its only copy.
      await bob.expectNothing(100);
      await alice.expectNothing(0);
    });

    it('refuses a non-member with NOT_IN_ROOM', async () => {
      const [alice, carol] = await connectAll('alice', 'carol');
      await alice.join('gallery');
      const raise = carol.request('raise_hand', { roomId: 'gallery' });
      expect(await carol.error(raise)).toMatchObject({ code: 'NOT_IN_ROOM', requestId: raise });
      await alice.expectNothing(100);
    });

    it('refuses an invalid body with VALIDATION_FAILED naming the field', async () => {
      const { alice, bob } = await hostAndViewer();
      const invalid: Array<[Record<string, unknown>, string]> = [
        [{ roomId: 'gallery', raised: 'yes' }, 'raised'],
        [{ roomId: 'gallery', raised: null }, 'raised'],
        [{}, 'roomId'],
        [{ roomId: 'no spaces allowed' }, 'roomId'],
      ];
      for (const [fields, field] of invalid) {
        const requestId = bob.request('raise_hand', fields);
        expect(await bob.error(requestId)).toMatchObject({
          code: 'VALIDATION_FAILED',
          field,
          requestId,
          message: expect.stringContaining(field),
        });
      }
      await alice.expectNothing(100);
    });

    it('is rate limited like every other action', async () => {
      // A burst of 5 actions, refilled at one a second: the join takes one.
      await fixture.start({ RATE_ACTIONS_PER_SEC: '1', RATE_ACTIONS_BURST: '5' });
      const bob = await connect('bob');
      await bob.join('gallery');
      const requestIds = Array.from({ length: 8 }, () =>
        bob.request('raise_hand', { roomId: 'gallery' }),
      );
      const outcomes: string[] = [];
      for (const requestId of requestIds) {
        const reply = await bob.reply(requestId);
        if (reply.event === 'error') {
          expect(reply.data).toMatchObject({
            code: 'RATE_LIMITED',
            requestId,
            retryAfterMs: expect.any(Number),
          });
          outcomes.push('RATE_LIMITED');
        } else {
          expect(reply.event).toBe('hand_raised');
          outcomes.push('hand_raised');
        }
      }
      // Four fit in the burst (five if a token came back meanwhile); the rest are refused.
      const accepted = outcomes.filter((outcome) => outcome === 'hand_raised').length;
      expect(accepted).toBeGreaterThanOrEqual(4);
      expect(accepted).toBeLessThanOrEqual(5);
      expect(outcomes).toEqual([
        ...Array<string>(accepted).fill('hand_raised'),
        ...Array<string>(8 - accepted).fill('RATE_LIMITED'),
      ]);
    });
  });

  it('leaves unknown actions unknown and the built-in actions working', async () => {
    const { alice, bob } = await hostAndViewer();
    const unknown = bob.request('lower_hand', { roomId: 'gallery' });
    expect(await bob.error(unknown)).toMatchObject({ code: 'UNKNOWN_ACTION', requestId: unknown });

    const ping = bob.request('ping');
    expect(await replyOf(bob, ping, 'pong')).toMatchObject({ serverTime: expect.any(Number) });

    bob.broadcast('gallery', { type: 'chat', data: { text: 'hello' } });
    expect(await alice.next('message')).toMatchObject({
      roomId: 'gallery',
      senderId: 'bob',
      message: { type: 'chat', data: { text: 'hello' } },
    });

    const state = alice.request('get_state', { roomId: 'gallery' });
    expect(await replyOf(alice, state, 'state')).toMatchObject({ roomId: 'gallery', version: 0 });
  });

  describe('the beforeJoin hook', () => {
    it("vetoes a revoked seat's join with SEAT_REVOKED and leaves the room as it was", async () => {
      const [alice, mallory] = await connectAll('alice', 'mallory');
      await alice.join('gallery');
      const join = mallory.request('join_room', { roomId: 'gallery' });
      expect(await mallory.error(join)).toStrictEqual({
        code: 'SEAT_REVOKED',
        message: 'The seat license of mallory was revoked',
        requestId: join,
      });
      await alice.expectNothing(100);
      expect((await alice.join('gallery')).users.map((user) => user.id)).toEqual(['alice']);

      // Nor is a room created for it.
      const elsewhere = mallory.request('join_room', { roomId: 'annex' });
      expect(await mallory.error(elsewhere)).toMatchObject({ code: 'SEAT_REVOKED' });
      const rooms = await statsRooms(fixture.server.httpUrl);
      expect(rooms.map((room) => room.roomId)).toEqual(['gallery']);

      const raise = mallory.request('raise_hand', { roomId: 'gallery' });
      expect(await mallory.error(raise)).toMatchObject({ code: 'NOT_IN_ROOM', requestId: raise });
    });
  });

  describe('the beforeStateCommit hook', () => {
    const sceneUpdate = (sceneUrl: string | null, baseVersion: number) => ({
      roomId: 'gallery',
      baseVersion,
      patch: { sceneUrl, sceneLoaded: false },
    });

    it('vetoes a scene on a foreign host with SCENE_URL_NOT_ALLOWED; the version stays', async () => {
      const { alice, bob } = await hostAndViewer();
      for (const url of [FOREIGN_SCENE, 'atrium.glb', 'https://assets.example.com.evil.net/a']) {
        const update = alice.request('update_state', sceneUpdate(url, 0));
        expect(await alice.error(update)).toStrictEqual({
          code: 'SCENE_URL_NOT_ALLOWED',
          message: 'Scenes may only be loaded from assets.example.com',
          requestId: update,
        });
      }
      const state = alice.request('get_state', { roomId: 'gallery' });
      expect(await replyOf(alice, state, 'state')).toMatchObject({
        version: 0,
        state: { version: 0, sceneUrl: null },
      });
      await bob.expectNothing(100);
    });

    it('lets an allowed scene, a cleared scene and ops-only changes commit', async () => {
      const { alice, bob } = await hostAndViewer();
      const allowed = alice.request('update_state', sceneUpdate(ALLOWED_SCENE, 0));
      expect(await replyOf(alice, allowed, 'state_updated')).toMatchObject({
        version: 1,
        patch: { sceneUrl: ALLOWED_SCENE },
      });
      expect(await bob.next('state_updated')).toMatchObject({ version: 1 });

      const cleared = alice.request('update_state', sceneUpdate(null, 1));
      expect(await replyOf(alice, cleared, 'state_updated')).toMatchObject({ version: 2 });

      const ops = alice.request('update_state', {
        roomId: 'gallery',
        ops: [{ op: 'add', collection: 'annotations', id: 'a1', item: { text: 'Look' } }],
      });
      expect(await replyOf(alice, ops, 'state_updated')).toMatchObject({ version: 3 });
    });
  });

  it('appends every room event and hand_raised to the audit file, in order', async () => {
    const [alice, bob] = await connectAll('alice', 'bob');
    await alice.join('gallery');
    await auditLinesUntil(2);
    await bob.join('gallery', { userInfo: { name: 'Bob', role: 'viewer' } });
    await auditLinesUntil(3);
    const promote = alice.request('set_role', {
      roomId: 'gallery',
      targetUserId: 'bob',
      role: 'editor',
    });
    await replyOf(alice, promote, 'user_updated');
    await auditLinesUntil(4);
    const update = bob.request('update_state', {
      roomId: 'gallery',
      baseVersion: 0,
      patch: { sceneUrl: ALLOWED_SCENE, sceneLoaded: true },
      ops: [{ op: 'add', collection: 'annotations', id: 'a1', item: { text: 'private note' } }],
    });
    await replyOf(bob, update, 'state_updated');
    await auditLinesUntil(5);
    await replyOf(bob, bob.request('raise_hand', { roomId: 'gallery' }), 'hand_raised');
    await auditLinesUntil(6);
    await replyOf(bob, bob.request('leave_room', { roomId: 'gallery' }), 'room_left');
    await auditLinesUntil(7);
    alice.close();

    const lines = await auditLinesUntil(9);
    for (const line of lines) {
      expect(line.time).toMatch(ISO_TIME);
    }
    const user = (id: string, name: string, role: string) => ({
      id,
      name,
      role,
      connected: true,
      lastSeen: expect.any(Number),
      slot: expect.any(Number),
    });
    expect(lines.map(({ time: _time, ...rest }) => rest)).toStrictEqual([
      { event: 'room.created', roomId: 'gallery', persistent: false, createdBy: 'alice' },
      { event: 'member.joined', roomId: 'gallery', user: user('alice', 'alice', 'host') },
      { event: 'member.joined', roomId: 'gallery', user: user('bob', 'Bob', 'viewer') },
      {
        event: 'member.role_changed',
        roomId: 'gallery',
        userId: 'bob',
        role: 'editor',
        by: 'alice',
      },
      {
        event: 'state.committed',
        roomId: 'gallery',
        version: 1,
        updatedBy: 'bob',
        patchKeys: ['sceneUrl', 'sceneLoaded'],
        ops: [{ op: 'add', collection: 'annotations' }],
      },
      { event: 'hand_raised', roomId: 'gallery', userId: 'bob', raised: true },
      { event: 'member.left', roomId: 'gallery', userId: 'bob', reason: 'left' },
      { event: 'member.left', roomId: 'gallery', userId: 'alice', reason: 'disconnected' },
      { event: 'room.deleted', roomId: 'gallery', reason: 'empty' },
    ]);
    // What the state holds stays out of the audit trail.
    const text = await readFile(fixture.auditFile, 'utf8');
    expect(text).not.toContain('private note');
    expect(text).not.toContain(ALLOWED_SCENE);
  });
});
