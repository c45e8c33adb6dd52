import { WebSocketTransport } from './transport.js';
import { FakeClock, FakeSocket, roomInfo, settle } from './testing/fakes.js';

beforeEach(() => {
  FakeSocket.instances = [];
});

describe('WebSocketTransport (the original client API)', () => {
  it('connect({serverUrl, userId, apiKey}), createRoom(config), joinRoom(roomId, userInfo)', async () => {
    const transport = new WebSocketTransport({ WebSocket: FakeSocket, clock: new FakeClock() });
    const connected = transport.connect({
      serverUrl: 'ws://localhost:8080',
      userId: 'user-123',
      apiKey: 'optional-api-key',
    });
    await settle();
    const socket = FakeSocket.last;
    expect(socket.query.get('userId')).toBe('user-123');
    expect(socket.query.get('apiKey')).toBe('optional-api-key');
    socket.receive('connected', { userId: 'user-123' });
    await connected;
    expect(transport.isConnected()).toBe(true);

    const created = transport.createRoom({
      roomId: 'room-abc',
      name: 'My Gallery Session',
      maxUsers: 20,
    });
    const create = socket.lastSent('create_room');
    expect(create).toMatchObject({
      roomId: 'room-abc',
      config: { name: 'My Gallery Session', maxUsers: 20 },
    });
    socket.receive('room_created', { requestId: create.requestId, roomId: 'room-abc' });
    await expect(created).resolves.toBe('room-abc');

    const joined = transport.joinRoom('room-abc', {
      userId: 'user-123',
      name: 'Alice',
      role: 'editor',
    });
    const join = socket.lastSent('join_room');
    expect(join).toMatchObject({ userInfo: { name: 'Alice', role: 'editor' } });
    const info = roomInfo('room-abc');
    socket.receive('room_joined', { requestId: join.requestId, roomInfo: info });
    await expect(joined).resolves.toEqual(info);

    const messages: unknown[] = [];
    transport.on('message', (data) => messages.push(data.message));
    socket.receive('message', { roomId: 'room-abc', senderId: 'bob', message: { type: 'chat' } });
    expect(messages).toEqual([{ type: 'chat' }]);

    transport.broadcast('room-abc', { type: 'chat', senderId: 'user-123' });
    expect(socket.lastSent('broadcast')).toMatchObject({ roomId: 'room-abc' });
    transport.disconnect();
    expect(transport.isConnected()).toBe(false);
  });

  it('refuses joinRoom while reconnecting, leaving only the reconnect timer', async () => {
    const clock = new FakeClock();
    const transport = new WebSocketTransport({ WebSocket: FakeSocket, clock });
    const connected = transport.connect({ serverUrl: 'ws://localhost:8080', userId: 'u' });
    await settle();
    FakeSocket.last.receive('connected', { userId: 'u' });
    await connected;
    FakeSocket.last.drop(1006);
    expect(clock.pendingTimers).toBe(1);
    await expect(transport.joinRoom('r1')).rejects.toMatchObject({ code: 'NOT_CONNECTED' });
    expect(clock.pendingTimers).toBe(1);
    transport.disconnect();
  });

  it('throws NOT_CONNECTED before connect', () => {
    const transport = new WebSocketTransport({ WebSocket: FakeSocket });
    expect(() => transport.broadcast('r', { type: 'x' })).toThrow(/connect\(\) first/);
  });
});
