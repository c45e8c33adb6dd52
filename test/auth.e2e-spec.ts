import WebSocket from 'ws';
import { GalleryClient } from '../client/src/index.js';
import { useTestServer } from './support/fixtures.js';
import { TestClient, withTimeout } from './support/test-client.js';

const API_KEY = 'e2e-s3cret-key';

describe('API key', () => {
  const fixture = useTestServer({ lazy: true });
  const { start, connect } = fixture;

  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${fixture.server.httpUrl}${path}`, { headers });

  describe('with REQUIRE_API_KEY=true and API_KEY set', () => {
    beforeEach(async () => {
      await start({ REQUIRE_API_KEY: 'true', API_KEY });
    });

    it('refuses an upgrade without a key with 401', async () => {
      expect(await TestClient.refusedStatus(fixture.server.wsUrl, { userId: 'alice' })).toBe(401);
    });

    it('refuses an upgrade with a wrong key with 401, wherever the key is', async () => {
      const url = fixture.server.wsUrl;
      expect(await TestClient.refusedStatus(url, { userId: 'alice', apiKey: 'wrong' })).toBe(401);
      expect(await TestClient.refusedStatus(url, { apiKey: `${API_KEY}x` })).toBe(401);
      expect(await TestClient.refusedStatus(url, { apiKey: API_KEY.slice(0, -1) })).toBe(401);
      expect(await TestClient.refusedStatus(url, { headers: { 'x-api-key': 'wrong' } })).toBe(401);
      expect(
        await TestClient.refusedStatus(url, { headers: { authorization: 'Bearer wrong' } }),
      ).toBe(401);
      // The key in a non-Bearer scheme is not a key.
      expect(
        await TestClient.refusedStatus(url, { headers: { authorization: `Basic ${API_KEY}` } }),
      ).toBe(401);
    });

    it('tells a client offering the gallery subprotocol by close code 4401, never admitting it', async () => {
      const socket = new WebSocket(`${fixture.server.wsUrl}?userId=alice&apiKey=wrong`, [
        'gallery',
      ]);
      const frames: string[] = [];
      socket.on('message', (data: Buffer) => frames.push(data.toString()));
      socket.on('open', () =>
        socket.send(JSON.stringify({ action: 'join_room', roomId: 'r', requestId: 'j' })),
      );
      const closed = await withTimeout(
        new Promise<{ code: number; reason: string }>((resolve) =>
          socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
        ),
        3000,
        'the close',
      );
      expect(closed).toEqual({ code: 4401, reason: 'Unauthorized' });
      expect(frames).toEqual([]);
      const stats = (await (await get('/stats', { 'x-api-key': API_KEY })).json()) as {
        connections: number;
        totalRooms: number;
      };
      expect(stats).toMatchObject({ connections: 0, totalRooms: 0 });
    });

    it('lets the SDK stop at once on a wrong key, without retrying', async () => {
      let sockets = 0;
      class CountingWebSocket extends WebSocket {
        constructor(url: string, protocols?: string[]) {
          super(url, protocols);
          sockets += 1;
        }
      }
      // Told apart by the close code, as in a browser (the SDK reads no HTTP status from it).
      const client = new GalleryClient({
        url: fixture.server.wsUrl,
        userId: 'alice',
        apiKey: 'wrong',
        WebSocket: CountingWebSocket,
        backoff: { minMs: 10, maxMs: 20 },
      });
      await expect(client.connect()).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(client.state).toBe('closed');
      expect(sockets).toBe(1);
    });

    it('accepts the key in ?apiKey=', async () => {
      const alice = await connect('alice', { apiKey: API_KEY });
      expect(alice.userId).toBe('alice');
    });

    it('accepts the key in an x-api-key header', async () => {
      const bob = await connect('bob', { headers: { 'x-api-key': API_KEY } });
      expect(bob.userId).toBe('bob');
    });

    it('accepts the key as Authorization: Bearer', async () => {
      const carol = await connect('carol', { headers: { authorization: `Bearer ${API_KEY}` } });
      expect(carol.userId).toBe('carol');
    });

    it('counts an empty key as absent wherever it is, so it hides no key after it', async () => {
      const bearer = { authorization: `Bearer ${API_KEY}` };
      const alice = await connect('alice', { apiKey: '', headers: { 'x-api-key': API_KEY } });
      const bob = await connect('bob', { apiKey: '', headers: bearer });
      const carol = await connect('carol', { headers: { 'x-api-key': '', ...bearer } });
      expect([alice.userId, bob.userId, carol.userId]).toEqual(['alice', 'bob', 'carol']);
      expect((await get('/stats?apiKey=', { 'x-api-key': API_KEY })).status).toBe(200);
      expect((await get('/stats', { 'x-api-key': '', ...bearer })).status).toBe(200);
      // Empty everywhere is no key at all.
      const url = fixture.server.wsUrl;
      expect(
        await TestClient.refusedStatus(url, { apiKey: '', headers: { 'x-api-key': '' } }),
      ).toBe(401);
    });

    it('lets an authenticated client use the protocol', async () => {
      const alice = await connect('alice', { apiKey: API_KEY });
      const bob = await connect('bob', { headers: { 'x-api-key': API_KEY } });
      await alice.join('secure-room');
      await bob.join('secure-room');
      expect(await alice.next('user_joined')).toMatchObject({ user: { id: 'bob' } });
    });

    it('protects /stats: 401 without or with a wrong key, 200 with the key', async () => {
      expect((await get('/stats')).status).toBe(401);
      expect((await get('/stats', { 'x-api-key': 'wrong' })).status).toBe(401);
      expect((await get('/stats', { authorization: 'Bearer wrong' })).status).toBe(401);

      const withHeader = await get('/stats', { 'x-api-key': API_KEY });
      expect(withHeader.status).toBe(200);
      expect(await withHeader.json()).toMatchObject({ rooms: [], totalUsers: 0 });
      expect((await get('/stats', { authorization: `Bearer ${API_KEY}` })).status).toBe(200);
      expect((await get(`/stats?apiKey=${API_KEY}`)).status).toBe(200);
    });

    it("protects a room's members like /stats", async () => {
      const alice = await connect('alice', { apiKey: API_KEY });
      await alice.join('secure-room');
      expect((await get('/stats/rooms/secure-room')).status).toBe(401);
      expect((await get('/stats/rooms/secure-room', { 'x-api-key': 'wrong' })).status).toBe(401);
      const members = await get('/stats/rooms/secure-room', { 'x-api-key': API_KEY });
      expect(members.status).toBe(200);
      expect(await members.json()).toMatchObject({
        users: [expect.objectContaining({ id: 'alice' })],
      });
    });

    it('leaves /health, /health/live and /health/ready open', async () => {
      const health = await get('/health');
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok' });
      expect((await get('/health/live')).status).toBe(200);
      expect((await get('/health/ready')).status).toBe(200);
    });
  });

  describe('without REQUIRE_API_KEY', () => {
    it('lets anyone connect and read /stats', async () => {
      await start();
      const alice = await connect('alice');
      expect(alice.userId).toBe('alice');
      const anyKey = await connect('bob', { apiKey: 'anything' });
      expect(anyKey.userId).toBe('bob');
      expect((await get('/stats')).status).toBe(200);
      expect((await get('/health')).status).toBe(200);
    });

    it('does not require API_KEY when it is set but REQUIRE_API_KEY is not', async () => {
      await start({ API_KEY });
      const alice = await connect('alice');
      expect(alice.userId).toBe('alice');
      expect((await get('/stats')).status).toBe(200);
    });
  });
});

describe('userId at the upgrade', () => {
  const fixture = useTestServer();

  it.each([
    ['with a space', 'bad id'],
    ['of 65 characters', 'a'.repeat(65)],
    ['with a slash', 'a/b'],
    ['with a non-ASCII letter', 'usér'],
    ['with a prototype-ish name', '__proto__{}'],
  ])('refuses a userId %s with 400', async (_what, userId) => {
    expect(await TestClient.refusedStatus(fixture.server.wsUrl, { userId })).toBe(400);
  });

  it('accepts a userId of 64 characters of [A-Za-z0-9._-]', async () => {
    const userId = `Aa0._-${'x'.repeat(58)}`;
    expect(userId).toHaveLength(64);
    const client = await fixture.connect(userId);
    expect(client.userId).toBe(userId);
  });

  it('still serves after refusing bad userIds', async () => {
    expect(await TestClient.refusedStatus(fixture.server.wsUrl, { userId: 'bad id' })).toBe(400);
    const client = await fixture.connect('good');
    await client.join('after-refusal');
  });
});
