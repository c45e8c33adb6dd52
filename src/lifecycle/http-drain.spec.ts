import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { HttpDrain } from './http-drain.js';

/** A raw client socket with what it received, to leave a request half-sent. */
interface Raw {
  socket: Socket;
  received: () => string;
  closed: Promise<void>;
}

const openRaw = async (port: number): Promise<Raw> => {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (received += chunk));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise((resolve) => socket.once('connect', resolve));
  return { socket, received: () => received, closed };
};

const settled = (promise: Promise<void>, ms: number): Promise<boolean> =>
  Promise.race([
    promise.then(() => true),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms)),
  ]);

const waitFor = async (condition: () => boolean): Promise<void> => {
  const deadline = Date.now() + 2000;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error('timed out');
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

describe('HttpDrain', () => {
  let server: Server;
  let drain: HttpDrain;
  let port: number;
  /** Requests to /slow are answered only when the test calls `answerSlow`. */
  let slow: ServerResponse[];
  const raws: Raw[] = [];

  const open = async () => {
    const raw = await openRaw(port);
    raws.push(raw);
    return raw;
  };
  const answerSlow = () => slow.splice(0).forEach((response) => response.end('done'));

  beforeEach(async () => {
    slow = [];
    server = createServer((request: IncomingMessage, response: ServerResponse) => {
      if (request.url === '/slow') {
        slow.push(response);
        return;
      }
      response.end('ok');
    });
    drain = new HttpDrain(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });

  afterEach(async () => {
    raws.splice(0).forEach((raw) => raw.socket.destroy());
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('closes a half-sent request and an idle keep-alive connection, so close() completes', async () => {
    const partial = await open();
    partial.socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
    const idle = await open();
    idle.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => idle.received().includes('ok'));

    const closing = new Promise<void>((resolve) => server.close(() => resolve()));
    expect(await settled(closing, 200)).toBe(false);
    drain.drain(10_000);
    expect(await settled(closing, 1000)).toBe(true);
    await partial.closed;
    await idle.closed;
  });

  it('answers a request in progress, then closes its connection', async () => {
    const busy = await open();
    busy.socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => slow.length === 1);

    drain.drain(10_000);
    expect(await settled(busy.closed, 100)).toBe(false);
    answerSlow();
    await busy.closed;
    expect(busy.received()).toMatch(/^HTTP\/1\.1 200[\s\S]*done$/);
  });

  it('closes a request still in progress once the grace time is up', async () => {
    const busy = await open();
    busy.socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => slow.length === 1);

    drain.drain(100);
    expect(await settled(busy.closed, 1000)).toBe(true);
    expect(busy.received()).toBe('');
  });

  it('closes a connection that arrives while draining', async () => {
    drain.drain(10_000);
    const late = await open();
    await late.closed;
  });
});
