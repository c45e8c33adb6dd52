// `/stats/rooms/:roomId` (a room's members, for /admin) and, in cluster mode, `/stats`'s
// instance list. The cluster project runs it too: the members then sit on different instances,
// and every instance answers the same list.
import { waitFor } from './support/cluster.js';
import { useTestServer } from './support/fixtures.js';
import { drop } from './support/test-client.js';

describe('/stats/rooms/:roomId', () => {
  const fixture = useTestServer({ env: { RECONNECT_GRACE_MS: '5000' } });

  const get = (path: string, index = 0) =>
    fetch(`${fixture.servers[index % fixture.servers.length].httpUrl}${path}`);

  it('lists the members in join order with roles and connection state, on every instance', async () => {
    const [alice, bob, carol] = await fixture.connectAll('alice', 'bob', 'carol');
    await alice.join('gallery', { userInfo: { name: 'Alice' } });
    await bob.join('gallery');
    await carol.join('gallery', { userInfo: { role: 'viewer' } });
    await drop(bob);

    for (let index = 0; index < fixture.servers.length; index += 1) {
      const body = await waitFor(
        async () => {
          const response = await get('/stats/rooms/gallery', index);
          expect(response.status).toBe(200);
          const room = (await response.json()) as { users: { connected: boolean }[] };
          return room.users[1]?.connected === false ? room : undefined;
        },
        3000,
        'bob to show as disconnected',
      );
      expect(body).toEqual({
        roomId: 'gallery',
        userCount: 3,
        droppedMessages: 0,
        users: [
          expect.objectContaining({ id: 'alice', name: 'Alice', role: 'host', connected: true }),
          expect.objectContaining({ id: 'bob', role: 'editor', connected: false }),
          expect.objectContaining({ id: 'carol', role: 'viewer', connected: true }),
        ],
      });
    }

    expect(await carol.reply(carol.request('leave_room', { roomId: 'gallery' }))).toMatchObject({
      event: 'room_left',
    });
    const after = (await (await get('/stats/rooms/gallery')).json()) as { users: { id: string }[] };
    expect(after.users.map((user) => user.id)).toEqual(['alice', 'bob']);
  });

  it('answers 404 for a room that does not exist and 400 for an id that cannot be one', async () => {
    const missing = await get('/stats/rooms/nowhere');
    expect(missing.status).toBe(404);
    const bad = await get(`/stats/rooms/${encodeURIComponent('a b')}`);
    expect(bad.status).toBe(400);
    const long = await get(`/stats/rooms/${'x'.repeat(65)}`);
    expect(long.status).toBe(400);
  });

  it('lists the live instances in /stats in cluster mode, and none on one instance', async () => {
    const [alice, bob] = await fixture.connectAll('alice', 'bob');
    await alice.join('gallery');
    await bob.join('gallery');
    const servers = fixture.servers;
    if (servers.length === 1) {
      const stats = (await (await get('/stats')).json()) as Record<string, unknown>;
      expect(stats).not.toHaveProperty('instanceList');
      expect(stats).not.toHaveProperty('instances');
      return;
    }
    const list = await waitFor(
      async () => {
        const stats = (await (await get('/stats')).json()) as {
          instanceList: { instanceId: string; connections: number; startedAt: number }[];
        };
        const connected = stats.instanceList.filter((instance) => instance.connections === 1);
        return stats.instanceList.length === servers.length && connected.length === 2
          ? stats.instanceList
          : undefined;
      },
      5000,
      'every instance to report, two with one connection each',
    );
    expect(list.map((instance) => instance.connections).sort()).toEqual([0, 1, 1]);
    for (const instance of list) {
      expect(instance.instanceId).toEqual(expect.any(String));
      expect(instance.startedAt).toBeLessThanOrEqual(Date.now());
    }
    expect(new Set(list.map((instance) => instance.instanceId)).size).toBe(servers.length);
  });
});
