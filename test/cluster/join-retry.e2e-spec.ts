import { waitFor } from '../support/cluster.js';
import { duringPause, membersKey, PAUSE_MS, usePausableCluster } from '../support/paused-redis.js';
import { delay, type TestClient } from '../support/test-client.js';

/**
 * A `join_room` that timed out (UNAVAILABLE) may still be carried out by Redis afterwards: the
 * user is on record, and nobody was told. When its client tries again, the store finds a member
 * already: the room must still hear of the arrival, once, as the presence beat would have told
 * it of the departure had the ghost been removed. As in late-commands.e2e-spec.ts, Redis holds
 * every write for 2.5 s (CLIENT PAUSE WRITE, on a redis-server of the test's own).
 */

/** Resume on, as deployed by default. */
const env = { RECONNECT_GRACE_MS: '10000' };

/** The presence beat runs every PRESENCE_TTL_MS / 6 = 2.5 s; a ghost goes after two. */
const BEATS_MS = 8000;

const joinsOf = (client: TestClient, userId: string) =>
  client.received.filter(
    (message) =>
      message.event === 'user_joined' &&
      (message.data as { user: { id: string } }).user.id === userId,
  );

const leavesOf = (client: TestClient, userId: string) =>
  client.received.filter(
    (message) =>
      message.event === 'user_left' && (message.data as { userId: string }).userId === userId,
  );

describe('cluster: a join tried again after it timed out but was carried out', () => {
  const fixture = usePausableCluster(env);
  const connect = fixture.connect;

  it('announces the member to the room once when the same socket joins again', async () => {
    const { redis, cluster } = fixture;
    const alice = await connect(0, 'alice');
    const bob = await connect(1, 'bob');
    await alice.join('hall');
    await bob.join('hall');
    await alice.next('user_joined');
    const carol = await connect(0, 'carol');

    const refused = await duringPause(redis, carol, 'join_room', { roomId: 'hall' });
    expect(refused).toMatchObject({ event: 'error', data: { code: 'UNAVAILABLE' } });
    await waitFor(
      async () => ((await redis.hexists(membersKey(cluster, 'hall'), 'carol')) ? true : undefined),
      PAUSE_MS + 2000,
      'the timed-out join to be carried out',
    );

    const roomInfo = await carol.join('hall');
    expect(roomInfo.users.map((user) => user.id)).toEqual(['alice', 'bob', 'carol']);
    for (const member of [alice, bob]) {
      await waitFor(
        () => (joinsOf(member, 'carol').length > 0 ? true : undefined),
        3000,
        `a member to be told carol joined (got ${JSON.stringify(member.received)})`,
      );
    }

    // Held by its socket now: the presence beat leaves it, and nobody hears of it twice.
    await delay(BEATS_MS);
    for (const member of [alice, bob]) {
      expect(joinsOf(member, 'carol')).toHaveLength(1);
      expect(leavesOf(member, 'carol')).toEqual([]);
    }
    expect(joinsOf(carol, 'carol')).toEqual([]);
    expect((await redis.hkeys(membersKey(cluster, 'hall'))).sort()).toEqual([
      'alice',
      'bob',
      'carol',
    ]);
    carol.broadcast('hall', { type: 'chat', data: { from: 'carol' } });
    expect(await bob.next('message')).toMatchObject({ senderId: 'carol' });
  }, 30_000);

  it('still tells nobody when a member sends join_room again', async () => {
    const alice = await connect(0, 'alice');
    const bob = await connect(1, 'bob');
    await alice.join('hall');
    await bob.join('hall');
    await waitFor(
      () => (joinsOf(alice, 'bob').length > 0 ? true : undefined),
      3000,
      'alice to be told bob joined',
    );

    const again = await bob.join('hall');
    expect(again.users.map((user) => user.id)).toEqual(['alice', 'bob']);
    await delay(500);
    expect(joinsOf(alice, 'bob')).toHaveLength(1);
    expect(joinsOf(bob, 'bob')).toEqual([]);
  }, 30_000);
});
