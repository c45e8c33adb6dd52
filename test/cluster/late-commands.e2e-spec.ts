import { waitFor } from '../support/cluster.js';
import { duringPause, membersKey, PAUSE_MS, usePausableCluster } from '../support/paused-redis.js';
import type { TestClient } from '../support/test-client.js';

/**
 * A command that times out (the store gives up after 1.5 s and the request fails with
 * UNAVAILABLE) may still be carried out by Redis afterwards, and nobody is told. Here Redis
 * holds every write for 2.5 s (CLIENT PAUSE WRITE, on a redis-server of the test's own, so that
 * nothing else waits), so a join or a kick sent meanwhile times out and is carried out when the
 * pause ends. Each instance's presence beat compares what Redis has for it with its live
 * sockets, and puts things right.
 */

/** Resume on, as deployed by default: a member's seat may be held, which must not count here. */
const env = { RECONNECT_GRACE_MS: '10000' };

const seen = (client: TestClient, event: string) =>
  client.received.filter((message) => message.event === event).map((message) => message.data);

describe('cluster: store commands that timed out but were carried out later', () => {
  const fixture = usePausableCluster(env);
  const connect = fixture.connect;

  it('removes the member a join left behind after its caller gave up', async () => {
    const { redis, cluster } = fixture;
    const alice = await connect(0, 'alice');
    await alice.join('hall');
    const ghost = await connect(0, 'ghost');

    const refused = await duringPause(redis, ghost, 'join_room', { roomId: 'hall' });
    expect(refused).toMatchObject({ event: 'error', data: { code: 'UNAVAILABLE' } });
    ghost.close();
    // Redis carries the join out once the pause is over: a member no socket holds.
    await waitFor(
      async () => ((await redis.hexists(membersKey(cluster, 'hall'), 'ghost')) ? true : undefined),
      PAUSE_MS + 2000,
      'the timed-out join to be carried out',
    );
    const bob = await connect(1, 'bob');
    expect((await bob.join('hall')).users.map((user) => user.id)).toEqual([
      'alice',
      'ghost',
      'bob',
    ]);

    // Gone within a few presence beats (every PRESENCE_TTL_MS / 6 = 2.5 s), as a departure.
    await waitFor(
      () => (seen(bob, 'user_left').length > 0 ? true : undefined),
      15_000,
      `bob to be told the ghost left (got ${JSON.stringify(bob.received)})`,
    );
    expect(seen(bob, 'user_left')).toEqual([expect.objectContaining({ userId: 'ghost' })]);
    expect((await redis.hkeys(membersKey(cluster, 'hall'))).sort()).toEqual(['alice', 'bob']);

    // Next in line when the host leaves, it would have been the host of the room.
    const left = await alice.reply(alice.request('leave_room', { roomId: 'hall' }));
    expect(left.event).toBe('room_left');
    const update = await bob.next('user_updated');
    expect(update.user).toMatchObject({ id: 'bob', role: 'host' });
  }, 30_000);

  it('tells a member kicked by a kick that timed out, and the room it left', async () => {
    const { redis, cluster } = fixture;
    const host = await connect(0, 'host');
    const target = await connect(1, 'target');
    const other = await connect(1, 'other');
    await host.join('hall');
    await target.join('hall');
    await other.join('hall');
    await host.next('user_joined');
    await host.next('user_joined');

    const refused = await duringPause(redis, host, 'kick_user', {
      roomId: 'hall',
      targetUserId: 'target',
    });
    expect(refused).toMatchObject({ event: 'error', data: { code: 'UNAVAILABLE' } });
    await waitFor(
      async () => ((await redis.hexists(membersKey(cluster, 'hall'), 'target')) ? undefined : true),
      PAUSE_MS + 2000,
      'the timed-out kick to be carried out',
    );

    // Its instance finds the membership refused at a beat: the member hears it was kicked...
    expect(await target.next('kicked', 15_000)).toMatchObject({ roomId: 'hall' });
    // ...and the others that it left, once each.
    for (const member of [host, other]) {
      const departure = await member.next('user_left', 5000);
      expect(departure).toMatchObject({ roomId: 'hall', userId: 'target' });
    }

    // It is out of the room here too: what it sends reaches nobody.
    const sent = target.request('broadcast', {
      roomId: 'hall',
      message: { type: 'chat', data: { from: 'kicked' } },
    });
    expect(await target.error(sent)).toMatchObject({ code: 'NOT_IN_ROOM' });
    other.broadcast('hall', { type: 'chat', data: { from: 'other' } });
    const chat = await host.next('message');
    expect(chat).toMatchObject({ senderId: 'other' });
    expect(seen(host, 'user_left')).toEqual([]);
  }, 30_000);
});
