import type { ResumedRoom } from '../../src/protocol/protocol.js';
import {
  ClusterClients,
  startInstanceProcess,
  startTestCluster,
  stopInstanceProcess,
  waitFor,
  type InstanceProcess,
  type TestCluster,
} from '../support/cluster.js';
import { replyOf } from '../support/fixtures.js';
import { delay, type TestClient } from '../support/test-client.js';

const PRESENCE_TTL_MS = 1500;
const GRACE_MS = 2500;
const env = { PRESENCE_TTL_MS: String(PRESENCE_TTL_MS), RECONNECT_GRACE_MS: String(GRACE_MS) };
const ROOM = 'gallery';

/** The events of `event` that `client` has received so far (without consuming them). */
const seen = (client: TestClient, event: string) =>
  client.received.filter((message) => message.event === event).map((message) => message.data);

describe('cluster: the members of an instance that dies keep their seats for the grace', () => {
  const clients = new ClusterClients();
  let survivors: TestCluster | undefined;
  let victim: InstanceProcess | undefined;

  afterEach(async () => {
    clients.closeAll();
    if (victim) {
      await stopInstanceProcess(victim);
      victim = undefined;
    }
    await survivors?.close();
    survivors = undefined;
  });

  /** alice (host) on a process that is then killed, bob on a survivor; join events consumed. */
  const aliceOnDeadInstance = async () => {
    survivors = await startTestCluster(2, env);
    victim = await startInstanceProcess(survivors.redisUrl, survivors.keyPrefix, env);
    const [a] = survivors.servers;
    const alice = await clients.connect(victim.wsUrl, 'alice');
    const bob = await clients.connect(a.wsUrl, 'bob');
    const aliceJoined = await alice.join(ROOM);
    await bob.join(ROOM);
    await alice.next('user_joined', 3000);
    victim.process.child.kill('SIGKILL');
    await victim.process.waitForExit(3000);
    await waitFor(
      () =>
        seen(bob, 'user_updated').some(
          (data) => (data as { user: { id: string; connected: boolean } }).user.connected === false,
        )
          ? true
          : undefined,
      3 * PRESENCE_TTL_MS,
      `bob to see alice's seat held (got ${JSON.stringify(bob.received)})`,
    );
    expect(seen(bob, 'user_updated')).toEqual([
      expect.objectContaining({
        user: expect.objectContaining({ id: 'alice', role: 'host', connected: false }),
      }),
    ]);
    expect(seen(bob, 'user_left')).toEqual([]);
    return { a, alice, aliceJoined, bob };
  };

  it('lets its clients resume on a survivor with what they missed', async () => {
    const { a, alice, aliceJoined, bob } = await aliceOnDeadInstance();
    const token = alice.connected?.resumeToken as string;
    bob.received.splice(0);
    const update = await bob.reply(
      bob.request('update_state', { roomId: ROOM, baseVersion: 0, patch: { sceneUrl: 'x.glb' } }),
    );
    expect(update.event).toBe('state_updated');

    const alice2 = await clients.connect(a.wsUrl, 'alice', { resume: token });
    expect(alice2.connected).toMatchObject({ userId: 'alice', resumed: true });
    const resumeId = alice2.request('resume', {
      rooms: [{ roomId: ROOM, epoch: aliceJoined.epoch, lastSeq: aliceJoined.seq }],
    });
    const resumed = await replyOf<{ rooms: ResumedRoom[] }>(alice2, resumeId, 'resumed');
    expect(resumed.rooms).toEqual([
      expect.objectContaining({ roomId: ROOM, recovered: true, epoch: aliceJoined.epoch }),
    ]);
    // bob's join (after alice's snapshot), then his update.
    expect(await alice2.next('user_joined', 3000)).toMatchObject({ user: { id: 'bob' } });
    expect(await alice2.next('state_updated', 3000)).toMatchObject({
      version: 1,
      updatedBy: 'bob',
    });
    expect(await bob.next('user_updated', 3000)).toMatchObject({
      user: { id: 'alice', role: 'host', connected: true },
    });
    // The grace of the dead instance ends: alice stays, she is on a live instance now.
    await delay(GRACE_MS + PRESENCE_TTL_MS);
    expect(seen(bob, 'user_left')).toEqual([]);
    await alice2.expectNothing(0);
  }, 20_000);

  it('removes them when the grace ends without a resume, and hands host over', async () => {
    const { bob } = await aliceOnDeadInstance();
    await waitFor(
      () => (seen(bob, 'user_left').length > 0 ? true : undefined),
      GRACE_MS + 2 * PRESENCE_TTL_MS,
      `bob to see alice leave once the grace is over (got ${JSON.stringify(bob.received)})`,
    );
    expect(seen(bob, 'user_left')).toEqual([expect.objectContaining({ userId: 'alice' })]);
    await waitFor(
      () =>
        seen(bob, 'user_updated').some(
          (data) => (data as { user: { id: string; role: string } }).user.role === 'host',
        )
          ? true
          : undefined,
      3000,
      'bob to become host',
    );
  }, 20_000);
});
