import { jest } from '@jest/globals';
import { EventEmitter } from 'node:events';
import { fakeClientLink } from '../../test/support/fake-client-link.js';
import { Connection } from './connection.js';
import { SessionExpiryService } from './session-expiry.service.js';

/** The WebSocket readyState values the fake goes through. */
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

class FakeSocket extends EventEmitter {
  readyState: number = OPEN;
  readonly closes: Array<[number, string]> = [];

  close(code: number, reason: string): void {
    this.closes.push([code, reason]);
    this.readyState = CLOSED;
  }

  send(): void {}
}

/** The link a transport gives for this socket: its state, its close and its close event. */
const linkOf = (socket: FakeSocket) =>
  fakeClientLink({
    isOpen: () => socket.readyState === OPEN,
    close: (code, reason) => socket.close(code, reason),
    onClose: (listener) => void socket.once('close', listener),
  });

describe('SessionExpiryService', () => {
  let expiry: SessionExpiryService;
  let socket: FakeSocket;
  let connection: Connection;

  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
    expiry = new SessionExpiryService();
    socket = new FakeSocket();
    connection = new Connection('alice', socket, linkOf(socket));
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  it('closes the connection with 4001 at the expiry, not before', () => {
    expiry.schedule(connection, Date.now() + 2000);
    jest.advanceTimersByTime(1999);
    expect(socket.closes).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(socket.closes).toEqual([[4001, 'Token expired']]);
    expect(expiry.size).toBe(0);
  });

  it('closes at once for an expiry already past', () => {
    expiry.schedule(connection, Date.now() - 1000);
    jest.advanceTimersByTime(0);
    expect(socket.closes).toEqual([[4001, 'Token expired']]);
  });

  it('moves the expiry when scheduled again (refresh)', () => {
    expiry.schedule(connection, Date.now() + 1000);
    expiry.schedule(connection, Date.now() + 5000);
    jest.advanceTimersByTime(4000);
    expect(socket.closes).toEqual([]);
    jest.advanceTimersByTime(1000);
    expect(socket.closes).toHaveLength(1);
    expect(socket.listenerCount('close')).toBe(1);
  });

  it('forgets the timer when the socket closes', () => {
    expiry.schedule(connection, Date.now() + 1000);
    socket.emit('close');
    expect(expiry.size).toBe(0);
    jest.advanceTimersByTime(2000);
    expect(socket.closes).toEqual([]);
  });

  it('schedules nothing for a socket already closing', () => {
    socket.readyState = CLOSING;
    expiry.schedule(connection, Date.now() + 1000);
    expect(expiry.size).toBe(0);
  });

  it('reaches an expiry beyond setTimeout range in steps', () => {
    const days = (n: number) => n * 24 * 3600 * 1000;
    expiry.schedule(connection, Date.now() + days(40));
    jest.advanceTimersByTime(days(39));
    expect(socket.closes).toEqual([]);
    jest.advanceTimersByTime(days(1));
    expect(socket.closes).toEqual([[4001, 'Token expired']]);
  });
});
