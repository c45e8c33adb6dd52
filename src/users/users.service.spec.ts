import { Logger } from '@nestjs/common';
import type { WebSocket } from 'ws';
import { UsersService } from './users.service.js';

interface FakeSocket {
  readyState: number;
  closes: Array<[number | undefined, string | undefined]>;
  handlers: Map<string, Array<() => void>>;
  close(code?: number, reason?: string): void;
  on(event: string, handler: () => void): FakeSocket;
  emit(event: string): void;
}

function fakeSocket(): FakeSocket {
  const socket: FakeSocket = {
    readyState: 1,
    closes: [],
    handlers: new Map(),
    close(code, reason) {
      socket.closes.push([code, reason]);
      socket.readyState = 3;
    },
    on(eventName, handler) {
      socket.handlers.set(eventName, [...(socket.handlers.get(eventName) ?? []), handler]);
      return socket;
    },
    emit(eventName) {
      socket.handlers.get(eventName)?.forEach((handler) => handler());
    },
  };
  return socket;
}

const asWebSocket = (socket: FakeSocket) => socket as unknown as WebSocket;

describe('UsersService', () => {
  let users: UsersService;

  beforeAll(() => {
    Logger.overrideLogger(false);
  });

  beforeEach(() => {
    users = new UsersService();
  });

  it('registers a connection by userId and by socket', () => {
    const socket = fakeSocket();
    const { connection, replaced } = users.connect('alice', asWebSocket(socket));
    expect(replaced).toBeUndefined();
    expect(connection.userId).toBe('alice');
    expect(connection.socket).toBe(socket);
    expect(users.byUser('alice')).toBe(connection);
    expect(users.connectionOf(asWebSocket(socket))).toBe(connection);
    expect(users.count()).toBe(1);
    expect(socket.closes).toEqual([]);
  });

  it('keeps the identity the upgrade gave, or an unverified one for the userId', () => {
    const identity = {
      userId: 'alice',
      verified: true,
      mayCreateRooms: false,
      admin: false,
      address: '203.0.113.7',
    };
    const alice = users.connect('alice', asWebSocket(fakeSocket()), undefined, identity);
    expect(alice.connection.identity).toBe(identity);
    const bob = users.connect('bob', asWebSocket(fakeSocket())).connection;
    expect(bob.identity).toMatchObject({ userId: 'bob', verified: false, mayCreateRooms: true });
  });

  it('keeps different users apart', () => {
    const alice = users.connect('alice', asWebSocket(fakeSocket())).connection;
    const bob = users.connect('bob', asWebSocket(fakeSocket())).connection;
    expect(users.count()).toBe(2);
    expect([...users.all()]).toEqual([alice, bob]);
  });

  it('marks a connection alive on pong', () => {
    const socket = fakeSocket();
    const { connection } = users.connect('alice', asWebSocket(socket));
    connection.alive = false;
    socket.emit('pong');
    expect(connection.alive).toBe(true);
  });

  describe('session replacement', () => {
    it('closes the older socket with 4000 "Session replaced" and keeps the new one', () => {
      const oldSocket = fakeSocket();
      const newSocket = fakeSocket();
      const first = users.connect('alice', asWebSocket(oldSocket)).connection;
      const second = users.connect('alice', asWebSocket(newSocket));

      expect(second.replaced).toBe(first);
      expect(oldSocket.closes).toEqual([[4000, 'Session replaced']]);
      expect(newSocket.closes).toEqual([]);
      expect(users.byUser('alice')).toBe(second.connection);
      expect(users.count()).toBe(1);
      expect(users.connectionOf(asWebSocket(oldSocket))).toBeUndefined();
    });

    it('moves the older connection’s rooms to the new one', () => {
      const first = users.connect('alice', asWebSocket(fakeSocket())).connection;
      users.membership.completeJoin(first, 'r1');
      users.membership.completeJoin(first, 'r2');
      const second = users.connect('alice', asWebSocket(fakeSocket())).connection;

      expect([...second.rooms].sort()).toEqual(['r1', 'r2']);
      expect(first.rooms.size).toBe(0);
      expect([...(users.membership.members('r1') ?? [])]).toEqual([second]);
    });

    it('returns undefined when the replaced socket disconnects, leaving the new one', () => {
      const oldSocket = fakeSocket();
      users.connect('alice', asWebSocket(oldSocket));
      const { connection } = users.connect('alice', asWebSocket(fakeSocket()));
      users.membership.completeJoin(connection, 'r');

      expect(users.disconnect(asWebSocket(oldSocket))).toBeUndefined();
      expect(users.byUser('alice')).toBe(connection);
      expect(users.count()).toBe(1);
      expect(connection.rooms.has('r')).toBe(true);
    });
  });

  describe('disconnect', () => {
    it('returns the current connection once and forgets it', () => {
      const socket = fakeSocket();
      const { connection } = users.connect('alice', asWebSocket(socket));
      expect(users.disconnect(asWebSocket(socket))).toBe(connection);
      expect(users.byUser('alice')).toBeUndefined();
      expect(users.connectionOf(asWebSocket(socket))).toBeUndefined();
      expect(users.count()).toBe(0);
      expect(users.disconnect(asWebSocket(socket))).toBeUndefined();
    });

    it('returns undefined for a socket it never saw', () => {
      users.connect('alice', asWebSocket(fakeSocket()));
      expect(users.disconnect(asWebSocket(fakeSocket()))).toBeUndefined();
      expect(users.count()).toBe(1);
    });
  });
});
