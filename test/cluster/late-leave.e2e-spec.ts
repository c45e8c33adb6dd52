import { RedisRoomStore } from '../../src/cluster/redis-room-store.js';
import { statsRooms, useTestCluster, waitFor } from '../support/cluster.js';
import { delay, type TestClient } from '../support/test-client.js';

/**
 * The members `client` believes are in `roomId`: `known` (its join's snapshot, whose event was
 * consumed), then every event it got since, in order.
 */
function membersSeenBy(client: TestClient, roomId: string, known: string[]): string[] {
  const members = new Set(known);
  for (const message of client.received) {
    const data = message.data as {
      roomId?: string;
      roomInfo?: { roomId: string; users: { id: string }[] };
      user?: { id: string };
      userId?: string;
    };
    if (message.event === 'room_joined' && data.roomInfo?.roomId === roomId) {
      members.clear();
      data.roomInfo.users.forEach((user) => members.add(user.id));
    } else if (data.roomId !== roomId) {
      continue;
    } else if (message.event === 'user_joined' && data.user) {
      members.add(data.user.id);
    } else if (message.event === 'user_left' && data.userId) {
      members.delete(data.userId);
    }
  }
  return [...members].sort();
}

describe('cluster: a dropped socket whose leave is announced late', () => {
  const fixture = useTestCluster({ instances: 2 });

  it('does not take out the seat the same user took meanwhile on another instance', async () => {
    const [a] = fixture.servers;
    const alice = await fixture.connect(0, 'alice');
    const bob = await fixture.connect(1, 'bob');
    await alice.join('hall');
    const bobJoined = await bob.join('hall');
    // Instance a announces departures late: its store answered, its user_left is still to come.
    const store = a.app.get(RedisRoomStore);
    const leave = store.leave.bind(store);
    store.leave = async (...args: Parameters<RedisRoomStore['leave']>) => {
      const outcome = await leave(...args);
      await delay(500);
      return outcome;
    };

    alice.socket.terminate(); // no close frame: a dropped connection
    await delay(150); // instance a has removed alice from the store, not yet told anyone
    const back = await fixture.connect(1, 'alice');
    const backJoined = await back.join('hall');
    const known = new Map([
      [bob, bobJoined.users.map((user) => user.id)],
      [back, backJoined.users.map((user) => user.id)],
    ]);

    // The late user_left reaches everyone; what follows must put alice back for all of them.
    await waitFor(
      () => (bob.received.some((message) => message.event === 'user_left') ? true : undefined),
      3000,
      'the late user_left',
    );
    for (const member of [bob, back]) {
      await waitFor(
        () =>
          membersSeenBy(member, 'hall', known.get(member) ?? []).join() === 'alice,bob'
            ? true
            : undefined,
        3000,
        `${member.userId} to see alice and bob in the room`,
      ).catch((error: unknown) => {
        throw new Error(`${String(error)}; it got ${JSON.stringify(member.received)}`);
      });
    }
    const [room] = await statsRooms(a.httpUrl);
    expect(room).toMatchObject({ roomId: 'hall', userCount: 2 });
  });
});

describe('cluster: a dropped socket whose rooms are left one after another', () => {
  const fixture = useTestCluster({ instances: 2 });

  it('does not take out a seat the same user took again on the same instance meanwhile', async () => {
    const [a] = fixture.servers;
    const alice = await fixture.connect(0, 'alice');
    const bob = await fixture.connect(1, 'bob');
    await alice.join('first');
    await alice.join('second');
    await bob.join('second');
    // The first room's leave is slow to come back: a loop that sent the second room's leave only
    // after the first one's came back would send it after alice's new join below.
    const store = a.app.get(RedisRoomStore);
    const leave = store.leave.bind(store);
    store.leave = async (...args: Parameters<RedisRoomStore['leave']>) => {
      const outcome = await leave(...args);
      if (args[0] === 'first') {
        await delay(400);
      }
      return outcome;
    };

    alice.socket.terminate();
    await delay(150); // instance a saw the drop and is leaving alice's rooms
    const back = await fixture.connect(0, 'alice');
    const backJoined = await back.join('second');
    await delay(800); // every leave of the dropped socket has come back by now

    // bob saw alice leave and come back, in that order, and she is still in the room.
    const seen = bob.received
      .filter((message) => message.event === 'user_left' || message.event === 'user_joined')
      .map((message) => message.event);
    expect(seen.slice(-1)).toEqual(['user_joined']);
    expect(
      membersSeenBy(
        back,
        'second',
        backJoined.users.map((user) => user.id),
      ),
    ).toEqual(['alice', 'bob']);
    const state = back.request('get_state', { roomId: 'second' });
    expect((await back.reply(state)).event).toBe('state');
    const rooms = await statsRooms(a.httpUrl);
    expect(rooms.find((room) => room.roomId === 'second')).toMatchObject({ userCount: 2 });
  });
});
