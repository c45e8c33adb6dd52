import { CLUSTER, type Cluster } from '../../src/cluster/cluster.js';
import type { RoomInfo } from '../../src/protocol/protocol.js';
import { useTestCluster, waitFor } from '../support/cluster.js';
import type { TestServer } from '../support/test-server.js';
import { delay, type TestClient } from '../support/test-client.js';

const ROOM = 'gallery';

type MessageListener = (channel: string, payload: string) => void;

/**
 * An instance that misses room envelopes (its subscriber dropped them: an output-buffer limit, a
 * reconnect) finds out from the gap in the room's envelope numbers, or from the reconnect, and
 * gives its members the store's view instead of silently keeping a kicked member in the room.
 */
describe('cluster: an instance that misses envelopes resyncs its members', () => {
  const fixture = useTestCluster({ instances: 2, env: { KICK_BAN_MS: '60000' } });
  const clusterOf = (server: TestServer): Cluster => server.app.get<Cluster>(CLUSTER);

  /** alice (host) on instance 0; bob and carol on instance 1; join events consumed. */
  const members = async () => {
    const alice = await fixture.connect(0, 'alice');
    const bob = await fixture.connect(1, 'bob');
    const carol = await fixture.connect(1, 'carol');
    await alice.join(ROOM);
    await bob.join(ROOM);
    await alice.next('user_joined', 3000);
    await carol.join(ROOM);
    await alice.next('user_joined', 3000);
    await bob.next('user_joined', 3000);
    return { alice, bob, carol };
  };

  /** Makes instance 1's subscriber lose the next `count` messages of the room's channel. */
  const loseNextEnvelopes = (count: number) => {
    const { subscriber } = clusterOf(fixture.servers[1]);
    let toLose = count;
    const listeners = subscriber.listeners('message') as MessageListener[];
    subscriber.removeAllListeners('message');
    subscriber.on('message', (channel: string, payload: string) => {
      if (toLose > 0 && channel.endsWith(`{${ROOM}}:events`)) {
        toLose--;
        return;
      }
      for (const listener of listeners) {
        listener(channel, payload);
      }
    });
  };

  const kick = async (host: TestClient, targetUserId: string) => {
    const requestId = host.request('kick_user', { roomId: ROOM, targetUserId });
    expect((await host.reply(requestId, 3000)).event).toBe('user_left');
  };

  it('sees the gap at the next envelope: the kicked member is told, the others get a snapshot', async () => {
    const { alice, bob, carol } = await members();
    loseNextEnvelopes(2);
    // Both lost on instance 1: bob's kick notice and the user_left for him.
    await kick(alice, 'bob');
    await delay(100);
    alice.broadcast(ROOM, { type: 'chat', data: { text: 'after the kick' } });

    // bob is no member any more: it hears so, and nothing of the room after.
    expect(await bob.next('room_left', 3000)).toEqual({ roomId: ROOM });
    // carol gets the message that showed the gap, and the store's view of the room: bob is gone.
    await waitFor(
      () => (carol.received.some((message) => message.event === 'room_joined') ? true : undefined),
      3000,
      "carol's snapshot",
    );
    const carolGot = carol.received.splice(0);
    const snapshot = carolGot.find((message) => message.event === 'room_joined')?.data as {
      roomInfo: RoomInfo;
    };
    expect(snapshot.roomInfo.users.map((user) => user.id)).toEqual(['alice', 'carol']);
    expect(snapshot).not.toHaveProperty('requestId');
    expect(carolGot.filter((message) => message.event === 'message')).toEqual([
      expect.objectContaining({ data: expect.objectContaining({ senderId: 'alice' }) }),
    ]);
    alice.broadcast(ROOM, { type: 'chat', data: { text: 'later' } });
    expect(await carol.next('message', 3000)).toMatchObject({
      message: { data: { text: 'later' } },
    });
    await bob.expectNothing(200, 'message');
  });

  it('resyncs every watched room when its subscriber reconnects', async () => {
    const { alice, bob, carol } = await members();
    const { subscriber } = clusterOf(fixture.servers[1]);
    loseNextEnvelopes(2);
    await kick(alice, 'bob');
    // No envelope follows: only the reconnect tells instance 1 it may have missed some.
    subscriber.disconnect(true);
    await waitFor(() => subscriber.status === 'ready' || undefined, 5000, 'subscriber back');
    expect(await bob.next('room_left', 3000)).toEqual({ roomId: ROOM });
    const snapshot = (await carol.next('room_joined', 3000)).roomInfo;
    expect(snapshot.users.map((user) => user.id)).toEqual(['alice', 'carol']);
  });
});
