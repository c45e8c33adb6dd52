import type { Redis } from 'ioredis';
import {
  ClusterClients,
  connectRedis,
  startInstanceProcess,
  startTestCluster,
  statsRooms,
  stopInstanceProcess,
  waitFor,
  type InstanceProcess,
  type TestCluster,
} from '../support/cluster.js';

// The default PRESENCE_TTL_MS (15 s): a SIGTERM handover must not wait for it.
describe('cluster: channels per room and the SIGTERM handover', () => {
  const clients = new ClusterClients();
  let cluster: TestCluster | undefined;
  let leaving: InstanceProcess | undefined;
  let redis: Redis | undefined;

  afterEach(async () => {
    clients.closeAll();
    if (leaving) {
      await stopInstanceProcess(leaving);
      leaving = undefined;
    }
    await cluster?.close();
    cluster = undefined;
    redis?.disconnect();
    redis = undefined;
  });

  /** How many connections subscribe to the room's channel. */
  const subscribers = async (roomId: string): Promise<number> => {
    const reply = (await redis!.call(
      'PUBSUB',
      'NUMSUB',
      `${cluster!.keyPrefix}{${roomId}}:events`,
    )) as [string, number];
    return Number(reply[1]);
  };

  it('subscribes an instance to a room only while it has members there', async () => {
    cluster = await startTestCluster(2);
    redis = await connectRedis(cluster.redisUrl);
    const [a, b] = cluster.servers;
    const alice = await clients.connect(a.wsUrl, 'alice');
    const bob = await clients.connect(a.wsUrl, 'bob');
    await alice.join('lobby');
    await bob.join('lobby');
    // Only instance a has members: instance b never hears the lobby's poses.
    expect(await subscribers('lobby')).toBe(1);

    const carol = await clients.connect(b.wsUrl, 'carol');
    await carol.join('lobby');
    expect(await subscribers('lobby')).toBe(2);

    carol.request('leave_room', { roomId: 'lobby' });
    await carol.next('room_left');
    await waitFor(
      async () => ((await subscribers('lobby')) === 1 ? true : undefined),
      2000,
      'instance b to unsubscribe from the lobby',
    );
  });

  it('on SIGTERM closes its sockets with 1001 and removes its members at once', async () => {
    cluster = await startTestCluster(1);
    leaving = await startInstanceProcess(cluster.redisUrl, cluster.keyPrefix);
    const [stay] = cluster.servers;
    const host = await clients.connect(leaving.wsUrl, 'host');
    const guest = await clients.connect(stay.wsUrl, 'guest');
    await host.join('gallery');
    await guest.join('gallery');
    await host.next('user_joined');

    const signalledAt = Date.now();
    leaving.process.child.kill('SIGTERM');
    expect((await host.waitForClose(5000)).code).toBe(1001);
    expect(await guest.next('user_left', 5000)).toEqual({ roomId: 'gallery', userId: 'host' });
    expect(await guest.next('user_updated', 2000)).toMatchObject({
      roomId: 'gallery',
      user: { id: 'guest', role: 'host' },
    });
    // Far sooner than the presence timeout (15 s) that a crashed instance would need.
    expect(Date.now() - signalledAt).toBeLessThan(5000);
    expect((await leaving.process.exited).code).toBe(0);
    const [room] = await statsRooms(stay.httpUrl);
    expect(room).toMatchObject({ roomId: 'gallery', userCount: 1 });
  });
});
