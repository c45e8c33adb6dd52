import { ROOM_BUS, type RoomBus } from '../../src/bus/room-bus.js';
import type { RoomInfo } from '../../src/protocol/protocol.js';
import { useTestCluster, waitFor } from '../support/cluster.js';
import { delay, type TestClient } from '../support/test-client.js';
import type { TestServer } from '../support/test-server.js';

/**
 * On one instance a joiner's snapshot and the room's `user_joined` / `user_left` come in one
 * order. With Redis, a join or a leave is committed by one script and announced by the next
 * publish, so another member's snapshot taken in between already holds it: its announcement must
 * not reach that member as news. The announcements are held back here (as a slow publish would)
 * so that the snapshot falls in between every time.
 */

/**
 * Holds back `instance`'s announcements of `event` by `ms`; answers when all went out, and from
 * then on lets them through at once (else the departures of the test's teardown would keep their
 * timers running past the test, and the worker alive past the run).
 */
function holdBack(instance: TestServer, event: string, ms: number): () => Promise<unknown> {
  const bus = instance.app.get<RoomBus>(ROOM_BUS);
  const publish = bus.publish.bind(bus);
  const sent: Promise<void>[] = [];
  bus.publish = (roomId, message, exceptUserId) => {
    if (message.event !== event) {
      publish(roomId, message, exceptUserId);
      return;
    }
    sent.push(delay(ms).then(() => publish(roomId, message, exceptUserId)));
  };
  return async () => {
    await Promise.all(sent);
    bus.publish = publish;
  };
}

/**
 * Walks what `client` got after its snapshot: the arrivals of users it had already and the
 * departures of users it did not have, and the users it has in the end.
 */
function rosterSeenBy(client: TestClient, snapshot: RoomInfo) {
  const users = new Set(snapshot.users.map((user) => user.id));
  const repeated: string[] = [];
  for (const { event, data } of client.received) {
    if (event === 'user_joined') {
      const { id } = (data as { user: { id: string } }).user;
      if (users.has(id)) {
        repeated.push(`user_joined ${id}`);
      }
      users.add(id);
    } else if (event === 'user_left') {
      const { userId } = data as { userId: string };
      if (!users.has(userId)) {
        repeated.push(`user_left ${userId}`);
      }
      users.delete(userId);
    }
  }
  return { repeated, users: [...users].sort() };
}

/** A chat `from` sends once the held-back announcements went out: the ones before it arrived. */
async function markerReached(from: TestClient, roomId: string, to: TestClient[]): Promise<void> {
  from.broadcast(roomId, { type: 'chat', data: { marker: true } });
  for (const client of to) {
    await waitFor(
      () => (client.received.some((message) => message.event === 'message') ? true : undefined),
      5000,
      `${client.userId} to get the marker (got ${JSON.stringify(client.received)})`,
    );
  }
}

describe.each([
  ['resume off', {}],
  ['resume on', { RECONNECT_GRACE_MS: '10000' }],
])('cluster (%s): arrivals and departures around a snapshot', (_mode, env) => {
  const fixture = useTestCluster({ instances: 2, env });

  it('does not announce to a joiner a user its snapshot already lists', async () => {
    const [a] = fixture.servers;
    const [alice, bob, carol] = await Promise.all([
      fixture.connect(0, 'alice'),
      fixture.connect(1, 'bob'),
      fixture.connect(0, 'carol'),
    ]);
    const announced = holdBack(a, 'user_joined', 400);

    await alice.join('hall');
    // Both join while alice's arrival is still to be announced: one on another instance (the
    // announcement comes over Redis), one on hers (it comes back from Redis numbered, or not).
    const bobSaw = await bob.join('hall');
    const carolSaw = await carol.join('hall');
    expect(bobSaw.users.map((user) => user.id)).toEqual(['alice', 'bob']);
    expect(carolSaw.users.map((user) => user.id)).toEqual(['alice', 'bob', 'carol']);
    await announced();
    await markerReached(alice, 'hall', [bob, carol]);

    expect(rosterSeenBy(bob, bobSaw)).toEqual({ repeated: [], users: ['alice', 'bob', 'carol'] });
    expect(rosterSeenBy(carol, carolSaw)).toEqual({
      repeated: [],
      users: ['alice', 'bob', 'carol'],
    });
  });

  it('does not announce to a joiner the departure of a user its snapshot lacks', async () => {
    const [a] = fixture.servers;
    const [alice, bob, dave] = await Promise.all([
      fixture.connect(0, 'alice'),
      fixture.connect(1, 'bob'),
      fixture.connect(0, 'dave'),
    ]);
    await alice.join('hall');
    await dave.join('hall');
    const bobSaw = await bob.join('hall');
    const announced = holdBack(a, 'user_left', 400);

    const left = await dave.reply(dave.request('leave_room', { roomId: 'hall' }));
    expect(left.event).toBe('room_left');
    const erin = await fixture.connect(1, 'erin');
    const erinSaw = await erin.join('hall');
    const frank = await fixture.connect(0, 'frank');
    const frankSaw = await frank.join('hall');
    expect(erinSaw.users.map((user) => user.id)).toEqual(['alice', 'bob', 'erin']);
    await announced();
    await markerReached(alice, 'hall', [bob, erin, frank]);

    // Bob had dave: he is told dave left. Erin and frank never had him.
    expect(rosterSeenBy(bob, bobSaw)).toEqual({
      repeated: [],
      users: ['alice', 'bob', 'erin', 'frank'],
    });
    expect(rosterSeenBy(erin, erinSaw)).toEqual({
      repeated: [],
      users: ['alice', 'bob', 'erin', 'frank'],
    });
    expect(rosterSeenBy(frank, frankSaw)).toEqual({
      repeated: [],
      users: ['alice', 'bob', 'erin', 'frank'],
    });
  });
});
