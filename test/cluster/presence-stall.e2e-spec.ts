import { CLUSTER, type Cluster } from '../../src/cluster/cluster.js';
import {
  ClusterClients,
  startInstanceProcess,
  startTestCluster,
  statsRooms,
  stopInstanceProcess,
  waitFor,
  type InstanceProcess,
  type TestCluster,
} from '../support/cluster.js';
import { delay, type TestClient } from '../support/test-client.js';

/** The shortest TTL there is: the alive key lives 750 ms, instances beat and sweep every 250 ms. */
const PRESENCE_TTL_MS = 1500;
const env = { PRESENCE_TTL_MS: String(PRESENCE_TTL_MS) };

/** The events of `event` that `client` has received so far (without consuming them). */
const seen = (client: TestClient, event: string) =>
  client.received.filter((message) => message.event === event).map((message) => message.data);

const leftUserIds = (client: TestClient) =>
  seen(client, 'user_left').map((data) => (data as { userId: string }).userId);

const joinedUserIds = (client: TestClient) =>
  seen(client, 'user_joined').map((data) => (data as { user: { id: string } }).user.id);

describe('cluster: a slow sweep or a stalled instance does not cost it its live members', () => {
  const clients = new ClusterClients();
  let cluster: TestCluster | undefined;
  let stalled: InstanceProcess | undefined;

  afterEach(async () => {
    clients.closeAll();
    if (stalled) {
      stalled.process.child.kill('SIGCONT');
      await stopInstanceProcess(stalled);
      stalled = undefined;
    }
    await cluster?.close();
    cluster = undefined;
  });

  it('keeps renewing its presence while its own sweep is slower than half the TTL', async () => {
    // Twice the shortest TTL: all three instances share this test's process, so a pause of the
    // process itself (a busy CI machine, a long GC) of 500 ms would outlive the 750 ms alive key
    // and be taken for the very gap this test rules out. With 3000 it takes a 1 s pause.
    const ttlMs = 2 * PRESENCE_TTL_MS;
    cluster = await startTestCluster(3, { PRESENCE_TTL_MS: String(ttlMs) });
    const [slow, b] = cluster.servers;
    const alice = await clients.connect(slow.wsUrl, 'alice');
    const bob = await clients.connect(b.wsUrl, 'bob');
    await alice.join('gallery');
    await bob.join('gallery');
    await alice.next('user_joined');

    // The slow instance's sweep reads the list of instances twice as long as its alive key lives
    // (a slow Redis, or many instances and ghosts to go through).
    const { publisher, keyPrefix } = slow.app.get<Cluster>(CLUSTER);
    const smembers = publisher.smembers.bind(publisher);
    let slowSweeps = 0;
    publisher.smembers = async (key: string) => {
      if (key === `${keyPrefix}instances`) {
        slowSweeps += 1;
        await delay(ttlMs);
      }
      return smembers(key);
    };

    // Long enough for the others to sweep many times over a gap in its presence, were there one.
    await delay(3 * ttlMs);

    expect(slowSweeps).toBeGreaterThanOrEqual(2); // its sweep kept running, slowly
    expect(leftUserIds(bob)).toEqual([]);
    const gallery = (await statsRooms(b.httpUrl)).find((room) => room.roomId === 'gallery');
    expect(gallery?.userCount).toBe(2);
  }, 30_000);

  it('registers its live members again when the others took it for dead during a stall', async () => {
    cluster = await startTestCluster(2, env);
    const [a, b] = cluster.servers;
    stalled = await startInstanceProcess(cluster.redisUrl, cluster.keyPrefix, env);
    const alice = await clients.connect(stalled.wsUrl, 'alice');
    const bob = await clients.connect(a.wsUrl, 'bob');
    await bob.join('gallery');
    await alice.join('gallery');
    await bob.next('user_joined');

    // A stall of its whole process (a long GC pause, a starved VM) past its alive key's life:
    // the others remove its members, as they must for an instance that stopped answering.
    stalled.process.child.kill('SIGSTOP');
    await waitFor(
      () => (leftUserIds(bob).includes('alice') ? true : undefined),
      3 * PRESENCE_TTL_MS,
      `bob to get user_left for alice while her instance is stalled (got ${JSON.stringify(bob.received)})`,
    );
    const resumedAt = Date.now();
    stalled.process.child.kill('SIGCONT');

    // Alice's socket never closed: once her instance runs again, she is a member again.
    const backWithin = 2 * PRESENCE_TTL_MS;
    await waitFor(
      () => (joinedUserIds(bob).includes('alice') ? true : undefined),
      backWithin,
      `bob to get user_joined for alice within ${backWithin} ms of the stall's end ` +
        `(got ${JSON.stringify(bob.received)})`,
    );
    expect(Date.now() - resumedAt).toBeLessThan(backWithin);
    expect(seen(bob, 'user_joined')).toEqual([
      { roomId: 'gallery', user: expect.objectContaining({ id: 'alice', role: 'editor' }) },
    ]);

    // The store lists her for everyone, and her requests work as a member's.
    const carol = await clients.connect(b.wsUrl, 'carol');
    const roomInfo = await carol.join('gallery');
    expect(roomInfo.users.map((user) => user.id)).toEqual(['bob', 'alice', 'carol']);
    const update = await alice.reply(
      alice.request('update_state', {
        roomId: 'gallery',
        baseVersion: 0,
        patch: { sessionSettings: { units: 'm' } },
      }),
    );
    expect(update.event).toBe('state_updated');
    await waitFor(
      () =>
        seen(bob, 'state_updated').some(
          (data) => (data as { updatedBy: string }).updatedBy === 'alice',
        )
          ? true
          : undefined,
      3000,
      "bob to get alice's state update",
    );
    // Once back, she stays: no second removal, no second return.
    await delay(PRESENCE_TTL_MS);
    expect(leftUserIds(bob).filter((id) => id === 'alice')).toHaveLength(1);
    expect(joinedUserIds(bob).filter((id) => id === 'alice')).toHaveLength(1);
  }, 30_000);

  it('with resume on, holds its members during a stall and shows them connected again after', async () => {
    const withGrace = { ...env, RECONNECT_GRACE_MS: '10000' };
    cluster = await startTestCluster(2, withGrace);
    const [a] = cluster.servers;
    stalled = await startInstanceProcess(cluster.redisUrl, cluster.keyPrefix, withGrace);
    const alice = await clients.connect(stalled.wsUrl, 'alice');
    const bob = await clients.connect(a.wsUrl, 'bob');
    await bob.join('gallery');
    await alice.join('gallery');
    await bob.next('user_joined');

    stalled.process.child.kill('SIGSTOP');
    const connectedFlags = () =>
      seen(bob, 'user_updated')
        .map((data) => data as { user: { id: string; connected: boolean } })
        .filter((data) => data.user.id === 'alice')
        .map((data) => data.user.connected);
    await waitFor(
      () => (connectedFlags().includes(false) ? true : undefined),
      3 * PRESENCE_TTL_MS,
      `bob to see alice's seat held while her instance is stalled (got ${JSON.stringify(bob.received)})`,
    );
    stalled.process.child.kill('SIGCONT');
    await waitFor(
      () => (connectedFlags().at(-1) === true ? true : undefined),
      3 * PRESENCE_TTL_MS,
      `bob to see alice connected again (got ${JSON.stringify(bob.received)})`,
    );
    expect(connectedFlags()).toEqual([false, true]);
    expect(leftUserIds(bob)).toEqual([]);
    expect(joinedUserIds(bob)).toEqual([]); // no removal, so no second join either
  }, 30_000);
});
