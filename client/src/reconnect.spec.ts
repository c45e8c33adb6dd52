import { backoffDelay, isTerminalClose } from './backoff.js';
import { GalleryClient } from './client.js';
import { FakeClock, FakeSocket, joinRoom, openClient, roomInfo, settle } from './testing/fakes.js';

beforeEach(() => {
  FakeSocket.instances = [];
});

describe('backoffDelay (full jitter)', () => {
  const ceilings = [500, 1000, 2000, 4000, 8000, 16000, 20000, 20000];

  it('stays between 0 and a ceiling that doubles from 500 ms up to 20 s', () => {
    ceilings.forEach((ceiling, attempt) => {
      expect(backoffDelay(attempt, () => 0)).toBe(0);
      expect(backoffDelay(attempt, () => 0.999999)).toBe(ceiling - 1);
      expect(backoffDelay(attempt, () => 0.5)).toBe(ceiling / 2);
    });
    expect(backoffDelay(1000, () => 0.999999)).toBe(19_999);
  });

  it('takes other bounds', () => {
    expect(backoffDelay(0, () => 0.5, { minMs: 100, maxMs: 150 })).toBe(50);
    expect(backoffDelay(5, () => 0.5, { minMs: 100, maxMs: 150 })).toBe(75);
  });
});

describe('isTerminalClose', () => {
  it('is true for session replaced, token expired and refused upgrades (400, 401, 403)', () => {
    expect(isTerminalClose(4000, undefined)).toBe(true);
    expect(isTerminalClose(4001, undefined)).toBe(true);
    expect(isTerminalClose(1006, 401)).toBe(true);
    expect(isTerminalClose(1006, 403)).toBe(true);
    expect(isTerminalClose(1006, 400)).toBe(true);
    for (const code of [4400, 4401, 4403]) {
      expect(isTerminalClose(code, undefined)).toBe(true);
    }
  });

  it('is false for drops, shutdowns, overload and a full server', () => {
    for (const code of [1000, 1001, 1006, 1008, 1011, 1013]) {
      expect(isTerminalClose(code, undefined)).toBe(false);
    }
    expect(isTerminalClose(1006, 503)).toBe(false);
    expect(isTerminalClose(1006, 429)).toBe(false);
  });
});

describe('GalleryClient reconnects', () => {
  it('waits the jittered delay, then dials again with the resume token', async () => {
    const { client, socket, clock } = await openClient({ random: () => 0.5 });
    const states: string[] = [];
    client.on('connectionState', ({ state, code }) => states.push(`${state}:${code ?? ''}`));
    socket.drop(1006);
    expect(states).toEqual(['reconnecting:1006']);
    clock.advance(249); // first attempt: half of 500 ms
    await settle();
    expect(FakeSocket.instances).toHaveLength(1);
    clock.advance(1);
    await settle();
    expect(FakeSocket.instances).toHaveLength(2);
    expect(FakeSocket.last.query.get('resume')).toBe('T1');
    expect(FakeSocket.last.query.get('userId')).toBe('me');
  });

  it('grows the delay per failed attempt and starts over once connected', async () => {
    const { socket, clock } = await openClient({ random: () => 0.5 });
    socket.drop(1006);
    const dialTimes: number[] = [];
    let start = clock.now();
    for (let attempt = 0; attempt < 7; attempt++) {
      const sockets = FakeSocket.instances.length;
      while (FakeSocket.instances.length === sockets) {
        clock.advance(1);
        await settle();
      }
      dialTimes.push(clock.now() - start);
      start = clock.now();
      FakeSocket.last.drop(1006); // the server is still down
    }
    expect(dialTimes).toEqual([250, 500, 1000, 2000, 4000, 8000, 10000]);

    clock.advance(10_000);
    await settle();
    FakeSocket.last.receive('connected', { userId: 'me' });
    FakeSocket.last.drop(1006);
    const sockets = FakeSocket.instances.length;
    clock.advance(250);
    await settle();
    expect(FakeSocket.instances).toHaveLength(sockets + 1);
  });

  it.each([
    [4000, 'Session replaced'],
    [4001, 'Token expired'],
    [4401, 'Unauthorized'],
    [4403, 'Origin not allowed'],
  ])('does not reconnect after close code %i', async (code, reason) => {
    const { client, socket, clock } = await openClient();
    socket.drop(code, reason);
    expect(client.state).toBe('closed');
    clock.advance(120_000);
    await settle();
    expect(FakeSocket.instances).toHaveLength(1);
  });

  it('does not retry an upgrade refused with 401', async () => {
    const clock = new FakeClock();
    const client = new GalleryClient({ url: 'ws://server.test/', WebSocket: FakeSocket, clock });
    const connecting = client.connect();
    await settle();
    FakeSocket.last.drop(1006, '', 'Unexpected server response: 401');
    await expect(connecting).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    expect(client.state).toBe('closed');
    clock.advance(120_000);
    await settle();
    expect(FakeSocket.instances).toHaveLength(1);
  });

  it('keeps trying when the first connection fails for a reason a retry can fix (503)', async () => {
    const clock = new FakeClock();
    const client = new GalleryClient({
      url: 'ws://server.test/',
      WebSocket: FakeSocket,
      clock,
      random: () => 0,
    });
    const connecting = client.connect();
    await settle();
    FakeSocket.last.drop(1006, '', 'Unexpected server response: 503');
    expect(client.state).toBe('reconnecting');
    clock.advance(0);
    await settle();
    FakeSocket.last.receive('connected', { userId: 'user-1' });
    await expect(connecting).resolves.toBeUndefined();
    expect(client.userId).toBe('user-1');
  });

  it('does not reconnect with reconnect: false', async () => {
    const { client, socket, clock } = await openClient({ reconnect: false });
    socket.drop(1006);
    expect(client.state).toBe('closed');
    clock.advance(60_000);
    expect(FakeSocket.instances).toHaveLength(1);
  });

  it('ignores a late close of a socket it already replaced', async () => {
    const { client, socket, clock } = await openClient({ random: () => 0 });
    const stale = socket.onclose;
    socket.drop(1006);
    clock.advance(0);
    await settle();
    FakeSocket.last.receive('connected', { userId: 'me' });
    stale?.({ code: 4000, reason: 'Session replaced' }); // the old socket's close, late
    expect(client.state).toBe('open');
  });

  it('does not join a room again after being kicked from it', async () => {
    const { client, socket, clock } = await openClient({ random: () => 0 });
    const room = await joinRoom(client, socket, roomInfo('gallery'));
    const closed: string[] = [];
    room.on('closed', ({ reason }) => closed.push(reason));
    socket.receive('kicked', { roomId: 'gallery', seq: 4 });
    expect(closed).toEqual(['kicked']);
    expect(client.joinedRooms.size).toBe(0);
    socket.drop(1006);
    clock.advance(0);
    await settle();
    FakeSocket.last.receive('connected', { userId: 'me' });
    expect(FakeSocket.last.sent).toEqual([]);
  });
});

describe('GalleryClient tokens and dials', () => {
  it('reconnects with the token given to refreshToken, the first one having expired', async () => {
    const { client, socket, clock } = await openClient({ token: 'jwt.old', random: () => 0 });
    const refreshed = client.refreshToken('jwt.new');
    const { requestId } = socket.lastSent('refresh_token');
    socket.receive('token_refreshed', { requestId, expiresAt: 2_000_000 });
    await expect(refreshed).resolves.toBe(2_000_000);
    socket.drop(1006);
    clock.advance(0);
    await settle();
    expect(FakeSocket.last.protocols).toEqual(['gallery', 'bearer.jwt.new']);
  });

  it('keeps the first token when the refresh is refused, and getToken over a refreshed one', async () => {
    const { client, socket, clock } = await openClient({ token: 'jwt.old', random: () => 0 });
    const refused = client.refreshToken('jwt.bad');
    const { requestId } = socket.lastSent('refresh_token');
    socket.receive('error', { code: 'INVALID_TOKEN', message: 'Invalid token', requestId });
    await expect(refused).rejects.toMatchObject({ code: 'INVALID_TOKEN' });
    socket.drop(1006);
    clock.advance(0);
    await settle();
    expect(FakeSocket.last.protocols).toEqual(['gallery', 'bearer.jwt.old']);

    const fresh = await openClient({ getToken: () => 'jwt.fetched', random: () => 0 });
    const refresh = fresh.client.refreshToken('jwt.new');
    const refreshId = fresh.socket.lastSent('refresh_token').requestId;
    fresh.socket.receive('token_refreshed', { requestId: refreshId, expiresAt: 1 });
    await refresh;
    fresh.socket.drop(1006);
    fresh.clock.advance(0);
    await settle();
    expect(FakeSocket.last.protocols).toEqual(['gallery', 'bearer.jwt.fetched']);
  });

  it('opens one socket when close() and connect() come while a token is fetched', async () => {
    const tokens: Array<(token: string) => void> = [];
    const client = new GalleryClient({
      url: 'ws://server.test/',
      WebSocket: FakeSocket,
      clock: new FakeClock(),
      getToken: () => new Promise<string>((resolve) => tokens.push(resolve)),
    });
    const first = client.connect();
    await settle();
    client.close();
    await expect(first).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    const second = client.connect();
    await settle();
    tokens.forEach((resolve) => resolve('jwt'));
    await settle();
    expect(FakeSocket.instances).toHaveLength(1);
    FakeSocket.last.receive('connected', { userId: 'me' });
    await expect(second).resolves.toBeUndefined();
  });

  it('does not start reconnecting when a token fetch fails after close()', async () => {
    let fail: (error: Error) => void = () => undefined;
    const clock = new FakeClock();
    const client = new GalleryClient({
      url: 'ws://server.test/',
      WebSocket: FakeSocket,
      clock,
      getToken: () => new Promise<string>((_, reject) => (fail = reject)),
    });
    client.connect().catch(() => undefined);
    await settle();
    client.close();
    fail(new Error('offline'));
    await settle();
    expect(client.state).toBe('closed');
    clock.advance(60_000);
    await settle();
    expect(FakeSocket.instances).toHaveLength(0);
  });
});
