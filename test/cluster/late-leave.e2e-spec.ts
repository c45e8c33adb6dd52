import { RedisRoomStore } from '../../src/cluster/redis-room-store.js';
import { statsRooms, useTestCluster, waitFor } from '../support/cluster.js';
import type { TestClient } from '../support/test-client.js';

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

/**
 * A gate a stubbed store call waits at until the test opens it, so that what the test does
 * meanwhile happens before the call returns however slow the machine. Never for longer than
 * `maxMs`: a failed test must not leave its cluster's close waiting.
 */
function gate(maxMs = 5000): { passed: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const passed = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, maxMs).unref();
    open = () => {
      clearTimeout(timer);
      resolve();
    };
  });
  return { passed, open };
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
    // Held until alice is back in the room.
    const store = a.app.get(RedisRoomStore);
    const leave = store.leave.bind(store);
    const announce = gate();
    let removed = false;
    store.leave = async (...args: Parameters<RedisRoomStore['leave']>) => {
      const outcome = await leave(...args);
      removed = true;
      await announce.passed;
      return outcome;
    };

    alice.socket.terminate(); // no close frame: a dropped connection
    await waitFor(
      () => (removed ? true : undefined),
      3000,
      'instance a to remove alice from the store',
    );
    // Instance a has removed alice from the store, not yet told anyone.
    const back = await fixture.connect(1, 'alice');
    const backJoined = await back.join('hall');
    announce.open();
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
    // The first room's leave comes back only once alice has joined again: a loop that sent the
    // second room's leave only after the first one's came back would send it after that join.
    const store = a.app.get(RedisRoomStore);
    const leave = store.leave.bind(store);
    const firstBack = gate();
    let firstLeft = false;
    let returned = 0;
    store.leave = async (...args: Parameters<RedisRoomStore['leave']>) => {
      const outcome = await leave(...args);
      if (args[0] === 'first') {
        firstLeft = true;
        await firstBack.passed;
      }
      returned += 1;
      return outcome;
    };
    const sawAliceLeave = () =>
      bob.received.some(
        (message) =>
          message.event === 'user_left' && (message.data as { userId?: string }).userId === 'alice',
      );

    alice.socket.terminate();
    // Instance a saw the drop and is leaving alice's rooms: the first one's leave is held, the
    // second's is done and told (which a loop stuck on the first would not get to).
    await waitFor(
      () => (firstLeft && sawAliceLeave() ? true : undefined),
      3000,
      'instance a to leave both rooms of the dropped socket, the second without waiting',
    );
    const back = await fixture.connect(0, 'alice');
    const backJoined = await back.join('second');
    firstBack.open();
    await waitFor(
      () => (returned >= 2 ? true : undefined),
      3000,
      'every leave of the dropped socket to come back',
    );

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
