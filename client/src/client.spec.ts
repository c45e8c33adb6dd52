import { GalleryClient } from './client.js';
import { GalleryError } from './errors.js';
import { FakeClock, FakeSocket, openClient, settle } from './testing/fakes.js';

beforeEach(() => {
  FakeSocket.instances = [];
});

describe('GalleryClient requests', () => {
  it('connects with userId and apiKey in the URL; close() sends 1000 and ends closed', async () => {
    const states: string[] = [];
    const { client, socket } = await openClient({ apiKey: 'k1' });
    client.on('connectionState', ({ state }) => states.push(state));
    expect(socket.query.get('userId')).toBe('me');
    expect(socket.query.get('apiKey')).toBe('k1');
    expect(socket.protocols).toEqual(['gallery']);
    expect(client.state).toBe('open');
    client.close();
    expect(states).toEqual(['closed']);
    expect(socket.closedWith).toEqual({ code: 1000, reason: 'Client closed' });
  });

  it('offers a token as the bearer subprotocol after an application protocol', async () => {
    const { socket } = await openClient({ getToken: () => Promise.resolve('jwt.a.b') });
    expect(socket.protocols).toEqual(['gallery', 'bearer.jwt.a.b']);
  });

  it('matches replies to requests by requestId, whatever their order', async () => {
    const { client, socket } = await openClient();
    const created = client.createRoom({ name: 'one' }, 'r1');
    const latency = client.ping();
    const [create, ping] = socket.sent;
    expect(create).toMatchObject({ action: 'create_room', roomId: 'r1', config: { name: 'one' } });
    expect(create.requestId).not.toBe(ping.requestId);

    socket.receive('pong', { requestId: ping.requestId, serverTime: 1 });
    socket.receive('room_created', { requestId: 'someone-else', roomId: 'nope' });
    socket.receive('room_created', { requestId: create.requestId, roomId: 'r1' });
    await expect(created).resolves.toBe('r1');
    await expect(latency).resolves.toBe(0);
  });

  it('rejects with a GalleryError carrying code, field and requestId on an error event', async () => {
    const { client, socket } = await openClient();
    const created = client.createRoom({ maxUsers: 9999 });
    const { requestId } = socket.lastSent('create_room');
    socket.receive('error', {
      code: 'VALIDATION_FAILED',
      message: 'config.maxUsers may be at most 50',
      field: 'config.maxUsers',
      requestId,
    });
    const error = await created.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GalleryError);
    expect(error).toMatchObject({ code: 'VALIDATION_FAILED', field: 'config.maxUsers', requestId });
  });

  it('emits every server event to on() handlers, replies included', async () => {
    const { client, socket } = await openClient();
    const seen: string[] = [];
    client.on('room_created', ({ roomId }) => seen.push(roomId));
    socket.receive('room_created', { roomId: 'x' });
    expect(seen).toEqual(['x']);
  });

  it('rejects a request with TIMEOUT after requestTimeoutMs (10 s by default)', async () => {
    const { client, clock } = await openClient();
    let outcome: unknown;
    client.ping().catch((error: unknown) => (outcome = error));
    clock.advance(9_999);
    await settle();
    expect(outcome).toBeUndefined();
    clock.advance(1);
    await settle();
    expect(outcome).toMatchObject({ code: 'TIMEOUT', requestId: 'c1' });
  });

  it('uses the configured timeout', async () => {
    const { client, clock } = await openClient({ requestTimeoutMs: 50 });
    const ping = client.ping();
    clock.advance(50);
    await expect(ping).rejects.toMatchObject({ code: 'TIMEOUT' });
  });

  it('rejects every pending request with CONNECTION_CLOSED when the socket closes', async () => {
    const { client, socket, clock } = await openClient();
    const ping = client.ping();
    const create = client.createRoom();
    socket.drop(1006);
    await expect(ping).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    await expect(create).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    expect(client.state).toBe('reconnecting');
    clock.advance(60_000); // the timeouts were cleared with the requests: nothing fires
    expect(clock.pendingTimers).toBe(0);
  });

  it('refuses requests while not open, with NOT_CONNECTED', async () => {
    const { client, socket } = await openClient();
    socket.drop(1006);
    await expect(client.ping()).rejects.toMatchObject({ code: 'NOT_CONNECTED' });
    expect(() => client.send('broadcast', { roomId: 'r', message: { type: 'x' } })).toThrow(
      GalleryError,
    );
  });

  it('refuses joinRoom while not open, leaving no request (nor its timeout) behind', async () => {
    const clock = new FakeClock();
    const client = new GalleryClient({ url: 'ws://server.test/', WebSocket: FakeSocket, clock });
    await expect(client.joinRoom('r1')).rejects.toMatchObject({ code: 'NOT_CONNECTED' });
    // A request left waiting would hold a timer, then reject with nobody to catch it.
    expect(clock.pendingTimers).toBe(0);
  });

  it('rejects connect() when the client is closed before the server answers', async () => {
    const { client } = await openClient();
    client.close();
    const again = client.connect();
    await settle();
    FakeSocket.last.drop(4000, 'Session replaced');
    await expect(again).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    expect(client.state).toBe('closed');
  });
});
