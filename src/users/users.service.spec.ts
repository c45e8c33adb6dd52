import { Logger } from '@nestjs/common';
import { fakeClientLink } from '../../test/support/fake-client-link.js';
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

/** The link a transport would give for this socket: closing it closes the socket. */
const linkOf = (socket: FakeSocket) =>
  fakeClientLink({
    isOpen: () => socket.readyState === 1,
    close: (code, reason) => socket.close(code, reason),
    onPong: (listener) => void socket.on('pong', listener),
  });

describe('UsersService', () => {
  let users: UsersService;

  beforeAll(() => {
    Logger.overrideLogger(false);
  });

  beforeEach(() => {
    users = new UsersService();
  });

  const connectFresh = (userId: string) => {
    const socket = fakeSocket();
    return users.connect(userId, socket, linkOf(socket));
  };

  it('registers a connection by userId and by socket', () => {
    const socket = fakeSocket();
    const { connection, replaced } = users.connect('alice', socket, linkOf(socket));
    expect(replaced).toBeUndefined();
    expect(connection.userId).toBe('alice');
    expect(connection.handle).toBe(socket);
    expect(users.byUser('alice')).toBe(connection);
    expect(users.connectionOf(socket)).toBe(connection);
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
    const handle = fakeSocket();
    const alice = users.connect('alice', handle, linkOf(handle), identity);
    expect(alice.connection.identity).toBe(identity);
    const bob = connectFresh('bob').connection;
    expect(bob.identity).toMatchObject({ userId: 'bob', verified: false, mayCreateRooms: true });
  });

  it('keeps different users apart', () => {
    const alice = connectFresh('alice').connection;
    const bob = connectFresh('bob').connection;
    expect(users.count()).toBe(2);
    expect([...users.all()]).toEqual([alice, bob]);
  });

  it('marks a connection alive on pong', () => {
    const socket = fakeSocket();
    const { connection } = users.connect('alice', socket, linkOf(socket));
    connection.alive = false;
    socket.emit('pong');
    expect(connection.alive).toBe(true);
  });

  describe('connect listeners', () => {
    it('leave no connect work when none returns a promise', () => {
      users.onConnect(() => undefined);
      expect(connectFresh('alice').connection.connectWork).toBeUndefined();
    });

    it('give the connection work that settles once every listener has, failed ones too', async () => {
      let finish!: () => void;
      users.onConnect(() => new Promise<void>((resolve) => (finish = resolve)));
      users.onConnect(() => Promise.reject(new Error('Redis is down')));
      const work = connectFresh('alice').connection.connectWork;
      expect(work).toBeInstanceOf(Promise);
      let settled = false;
      void work!.then(() => (settled = true));
      await new Promise((resolve) => setImmediate(resolve));
      expect(settled).toBe(false);
      finish();
      await expect(work).resolves.toBeUndefined();
    });
  });

  describe('session replacement', () => {
    it('closes the older socket with 4000 "Session replaced" and keeps the new one', () => {
      const oldSocket = fakeSocket();
      const newSocket = fakeSocket();
      const first = users.connect('alice', oldSocket, linkOf(oldSocket)).connection;
      const second = users.connect('alice', newSocket, linkOf(newSocket));

      expect(second.replaced).toBe(first);
      expect(oldSocket.closes).toEqual([[4000, 'Session replaced']]);
      expect(newSocket.closes).toEqual([]);
      expect(users.byUser('alice')).toBe(second.connection);
      expect(users.count()).toBe(1);
      expect(users.connectionOf(oldSocket)).toBeUndefined();
    });

    it('moves the older connection’s rooms to the new one', () => {
      const first = connectFresh('alice').connection;
      users.membership.completeJoin(first, 'r1');
      users.membership.completeJoin(first, 'r2');
      const second = connectFresh('alice').connection;

      expect([...second.rooms].sort()).toEqual(['r1', 'r2']);
      expect(first.rooms.size).toBe(0);
      expect([...(users.membership.members('r1') ?? [])]).toEqual([second]);
    });

    it('returns undefined when the replaced socket disconnects, leaving the new one', () => {
      const oldSocket = fakeSocket();
      users.connect('alice', oldSocket, linkOf(oldSocket));
      const { connection } = connectFresh('alice');
      users.membership.completeJoin(connection, 'r');

      expect(users.disconnect(oldSocket)).toBeUndefined();
      expect(users.byUser('alice')).toBe(connection);
      expect(users.count()).toBe(1);
      expect(connection.rooms.has('r')).toBe(true);
    });
  });

  describe('disconnect', () => {
    it('returns the current connection once and forgets it', () => {
      const socket = fakeSocket();
      const { connection } = users.connect('alice', socket, linkOf(socket));
      expect(users.disconnect(socket)).toBe(connection);
      expect(users.byUser('alice')).toBeUndefined();
      expect(users.connectionOf(socket)).toBeUndefined();
      expect(users.count()).toBe(0);
      expect(users.disconnect(socket)).toBeUndefined();
    });

    it('returns undefined for a socket it never saw', () => {
      connectFresh('alice');
      expect(users.disconnect(fakeSocket())).toBeUndefined();
      expect(users.count()).toBe(1);
    });
  });
});
