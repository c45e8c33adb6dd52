import { randomBytes } from 'node:crypto';
import { connect as connectTcp, createServer as createTcpServer, type Socket } from 'node:net';
import { ClientPool, useTestServer } from './support/fixtures.js';
import { ServerProcess } from './support/server-process.js';
import { jest } from '@jest/globals';
import { ResumeService } from '../src/resume/resume.service.js';
import { ShutdownService } from '../src/lifecycle/shutdown.service.js';
import { delay, TestClient, until, withTimeout } from './support/test-client.js';

const GOING_AWAY = 1001;

/**
 * A WebSocket client that completes the handshake and then never answers anything, in
 * particular not the server's close frame: it keeps a graceful shutdown waiting.
 */
class SilentClient {
  private buffer = Buffer.alloc(0);
  private upgraded = false;
  /** Close codes of the close frames received. */
  readonly closeCodes: number[] = [];
  readonly ended: Promise<void>;

  private constructor(private readonly socket: Socket) {
    this.ended = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.parse();
    });
  }

  static async connect(wsUrl: string, userId: string): Promise<SilentClient> {
    const url = new URL(wsUrl);
    const socket = connectTcp(Number(url.port), url.hostname);
    const client = new SilentClient(socket);
    socket.write(
      `GET /?userId=${userId} HTTP/1.1\r\n` +
        `Host: ${url.host}\r\n` +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
        'Sec-WebSocket-Version: 13\r\n\r\n',
    );
    const deadline = Date.now() + 2000;
    while (!client.upgraded) {
      if (Date.now() > deadline) {
        socket.destroy();
        throw new Error(`no 101 for ${userId}: ${client.buffer.toString()}`);
      }
      await delay(5);
    }
    return client;
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Reads the 101 response, then unmasked server frames (enough for small ones). */
  private parse(): void {
    if (!this.upgraded) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end === -1) {
        return;
      }
      if (!this.buffer.subarray(0, end).toString().startsWith('HTTP/1.1 101')) {
        return;
      }
      this.upgraded = true;
      this.buffer = this.buffer.subarray(end + 4);
    }
    while (this.buffer.length >= 2) {
      const opcode = this.buffer[0] & 0x0f;
      let length = this.buffer[1] & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.buffer.length < 4) {
          return;
        }
        length = this.buffer.readUInt16BE(2);
        offset = 4;
      }
      if (this.buffer.length < offset + length) {
        return;
      }
      const payload = this.buffer.subarray(offset, offset + length);
      if (opcode === 0x8 && payload.length >= 2) {
        this.closeCodes.push(payload.readUInt16BE(0));
      }
      this.buffer = this.buffer.subarray(offset + length);
    }
  }
}

/** A plain TCP client speaking as much HTTP/1.1 as a test writes, to leave requests half-sent. */
class RawHttp {
  private received = '';
  readonly ended: Promise<void>;

  private constructor(private readonly socket: Socket) {
    this.ended = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.setEncoding('utf8');
    socket.on('error', () => undefined);
    socket.on('data', (chunk: string) => {
      this.received += chunk;
    });
  }

  static async connect(port: number): Promise<RawHttp> {
    const socket = connectTcp(port, '127.0.0.1');
    await withTimeout(
      new Promise((resolve) => socket.once('connect', resolve)),
      2000,
      `a connection to port ${port}`,
    );
    return new RawHttp(socket);
  }

  write(text: string): void {
    this.socket.write(text);
  }

  /** The first response's status line and headers, once they have all arrived. */
  async response(timeoutMs = 2000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.received.includes('\r\n\r\n')) {
      if (Date.now() > deadline) {
        throw new Error(
          `no response within ${timeoutMs} ms; got: ${JSON.stringify(this.received)}`,
        );
      }
      await delay(5);
    }
    return this.received.slice(0, this.received.indexOf('\r\n\r\n'));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A port nothing listens on right now. */
async function freePort(): Promise<number> {
  const probe = createTcpServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

describe('graceful shutdown (in process)', () => {
  const silent: SilentClient[] = [];
  // Declared before the fixture's afterEach, so it runs first: no silent client keeps the
  // server's close waiting.
  afterEach(() => {
    silent.splice(0).forEach((client) => client.destroy());
  });
  const { start, connect } = useTestServer({ lazy: true });

  it('closes every client with 1001', async () => {
    const server = await start();
    const alice = await connect('alice');
    const bob = await connect('bob');
    const carol = await connect('carol');
    await alice.join('shutdown-room');
    await bob.join('shutdown-room');

    await server.close();
    for (const client of [alice, bob, carol]) {
      const closed = await client.waitForClose(1000);
      expect(closed.code).toBe(GOING_AWAY);
      expect(closed.reason).toBe('Server shutting down');
    }
    // The clients were told they are going away, not that someone left.
    expect(alice.received.filter((message) => message.event === 'user_left')).toEqual([]);
  });

  it('answers readiness with 503 and refuses new upgrades while shutting down', async () => {
    const server = await start({ SHUTDOWN_TIMEOUT_MS: '2000' });
    const { wsUrl, httpUrl } = server;
    expect((await fetch(`${httpUrl}/health/ready`)).status).toBe(200);
    const alice = await connect('alice');
    // It does not answer the close frame, so shutdown waits for it (up to half the budget).
    const slow = await SilentClient.connect(wsUrl, 'slow');
    silent.push(slow);

    const closing = server.close();
    expect((await alice.waitForClose(1000)).code).toBe(GOING_AWAY);

    const ready = await fetch(`${httpUrl}/health/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({
      status: 'error',
      details: { shutdown: { status: 'down' } },
    });
    expect(await TestClient.refusedStatus(wsUrl, { userId: 'latecomer' })).toBe(503);
    expect(slow.closeCodes).toEqual([GOING_AWAY]);

    await withTimeout(closing, 3000, 'the app to close');
    await withTimeout(slow.ended, 1000, 'the silent client to be dropped');
  });

  it('refuses an upgrade whose checks were still running when the shutdown began', async () => {
    const server = await start({ SHUTDOWN_TIMEOUT_MS: '2000' });
    // It does not answer its close, so the shutdown waits for it (half the budget): the
    // latecomer's check ends within that wait, while the server still accepts sockets.
    const slow = await SilentClient.connect(server.wsUrl, 'slow');
    silent.push(slow);
    const resume = server.app.get(ResumeService);
    // The upgrade's last check waits (in cluster mode, a Redis round trip) until released.
    let release = (): void => undefined;
    const checked = new Promise<void>((resolve) => {
      release = resolve;
    });
    let waiting = false;
    jest.spyOn(resume, 'prepareUpgrade').mockImplementation(async () => {
      waiting = true;
      await checked;
    });
    const latecomer = TestClient.refusedStatus(server.wsUrl, { userId: 'latecomer' });
    await until(() => waiting, 2000, 'the upgrade to reach its last check');

    const closing = server.close();
    await until(
      () => server.app.get(ShutdownService).isShuttingDown,
      1000,
      'the shutdown to begin',
    );
    release();
    expect(await latecomer).toBe(503);
    await withTimeout(closing, 3000, 'the app to close');
  });
});

// Each test spawns `node dist/main.js`: its boot alone can take seconds on a loaded machine.
describe('the server process', () => {
  const processes: ServerProcess[] = [];
  const clients = new ClientPool();
  const silent: SilentClient[] = [];

  const baseEnv = { HOST: '127.0.0.1', PORT: '0', LOG_FORMAT: 'json' };
  const start = (env: Record<string, string>) => {
    const server = ServerProcess.start(env);
    processes.push(server);
    return server;
  };

  afterEach(async () => {
    clients.closeAll();
    silent.splice(0).forEach((client) => client.destroy());
    await Promise.all(processes.splice(0).map((server) => server.stop()));
  });

  it('on SIGTERM closes every client with 1001 and exits 0 within SHUTDOWN_TIMEOUT_MS', async () => {
    const server = start({ ...baseEnv, SHUTDOWN_TIMEOUT_MS: '3000' });
    const port = await server.port();
    const wsUrl = `ws://127.0.0.1:${port}`;
    const alice = await clients.connect(wsUrl, { userId: 'alice' });
    const bob = await clients.connect(wsUrl, { userId: 'bob' });
    await alice.join('process-room');
    await bob.join('process-room');
    expect((await fetch(`http://127.0.0.1:${port}/health/ready`)).status).toBe(200);

    const signalledAt = Date.now();
    server.child.kill('SIGTERM');
    expect((await alice.waitForClose(3000)).code).toBe(GOING_AWAY);
    expect((await bob.waitForClose(3000)).code).toBe(GOING_AWAY);
    const exit = await server.waitForExit(3500);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(3000);
  }, 20_000);

  it('exits 0 within SHUTDOWN_TIMEOUT_MS even when a client never answers the close', async () => {
    const server = start({ ...baseEnv, SHUTDOWN_TIMEOUT_MS: '1000' });
    const port = await server.port();
    const slow = await SilentClient.connect(`ws://127.0.0.1:${port}`, 'slow');
    silent.push(slow);

    const signalledAt = Date.now();
    server.child.kill('SIGTERM');
    const exit = await server.waitForExit(5000);
    expect(exit).toEqual({ code: 0, signal: null });
    // SHUTDOWN_TIMEOUT_MS, plus up to a second for the signal and the exit to travel on a loaded
    // machine: far from the 30 s that ws would wait for the close answer, or the 8 s default.
    expect(Date.now() - signalledAt).toBeLessThan(1000 + 1000);
    expect(slow.closeCodes).toEqual([GOING_AWAY]);
  }, 20_000);

  describe('with HTTP connections open', () => {
    const sockets: RawHttp[] = [];
    afterEach(() => sockets.splice(0).forEach((socket) => socket.destroy()));
    const open = async (port: number) => {
      const socket = await RawHttp.connect(port);
      sockets.push(socket);
      return socket;
    };

    /** What a shutdown that ran every hook leaves: exit 0, the last line, no forced exit. */
    const expectCompleteShutdown = async (server: ServerProcess, signalledAt: number) => {
      expect(await server.waitForExit(6000)).toEqual({ code: 0, signal: null });
      // Well inside SHUTDOWN_TIMEOUT_MS (4 s): no socket kept Nest's teardown waiting.
      expect(Date.now() - signalledAt).toBeLessThan(2000);
      const log = server.stdoutLines.join('\n');
      expect(log).not.toContain('Shutdown took longer');
      expect(log).toMatch(/Shut down in \d+ ms/);
    };

    it('on SIGTERM closes a half-sent request and an idle keep-alive one, and runs every hook', async () => {
      const server = start({ ...baseEnv, SHUTDOWN_TIMEOUT_MS: '4000' });
      const port = await server.port();
      const idle = await open(port);
      idle.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n');
      expect(await idle.response()).toMatch(/^HTTP\/1\.1 200/);
      const partial = await open(port);
      partial.write('GET /health HTTP/1.1\r\nHost: x\r\n'); // the headers never end

      const signalledAt = Date.now();
      server.child.kill('SIGTERM');
      await expectCompleteShutdown(server, signalledAt);
      await withTimeout(partial.ended, 1000, 'the half-sent request to be closed');
      await withTimeout(idle.ended, 1000, 'the idle connection to be closed');
    }, 20_000);

    it('on SIGTERM still answers a request in progress that completes soon', async () => {
      const server = start({ ...baseEnv, SHUTDOWN_TIMEOUT_MS: '4000' });
      const port = await server.port();
      const slow = await open(port);
      // Whole headers, half a body: the JSON body parser waits for the rest.
      // (Not /health: Terminus answers 503 there once shutdown has begun.)
      slow.write(
        'GET /stats HTTP/1.1\r\nHost: x\r\n' +
          'Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{',
      );
      await delay(100);

      const signalledAt = Date.now();
      server.child.kill('SIGTERM');
      await server.line(/Shutting down/);
      await delay(300);
      slow.write('}');
      expect(await slow.response()).toMatch(/^HTTP\/1\.1 200/);
      await expectCompleteShutdown(server, signalledAt);
    }, 20_000);

    it('on SIGTERM closes a half-sent request on METRICS_PORT too', async () => {
      const metricsPort = await freePort();
      const server = start({
        ...baseEnv,
        SHUTDOWN_TIMEOUT_MS: '4000',
        METRICS_PORT: String(metricsPort),
      });
      await server.port();
      await server.line(/Metrics on/);
      const partial = await open(metricsPort);
      partial.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');

      const signalledAt = Date.now();
      server.child.kill('SIGTERM');
      await expectCompleteShutdown(server, signalledAt);
      await withTimeout(partial.ended, 1000, 'the half-sent metrics request to be closed');
    }, 20_000);
  });

  it('on SIGINT closes clients with 1001 and exits 0', async () => {
    const server = start({ ...baseEnv, SHUTDOWN_TIMEOUT_MS: '3000' });
    const port = await server.port();
    const alice = await clients.connect(`ws://127.0.0.1:${port}`, { userId: 'alice' });

    server.child.kill('SIGINT');
    expect((await alice.waitForClose(3000)).code).toBe(GOING_AWAY);
    expect(await server.waitForExit(3500)).toEqual({ code: 0, signal: null });
  }, 20_000);

  it('with LOG_FORMAT=json writes one JSON object per stdout line, logging events but not messages', async () => {
    const server = start({ ...baseEnv, SHUTDOWN_TIMEOUT_MS: '3000' });
    const port = await server.port();
    const wsUrl = `ws://127.0.0.1:${port}`;
    const alice = await clients.connect(wsUrl, { userId: 'alice' });
    const bob = await clients.connect(wsUrl, { userId: 'bob' });
    await alice.join('logged-room');
    await bob.join('logged-room');
    const marker = 'marker-d5c9a1';
    for (let i = 0; i < 5; i += 1) {
      alice.broadcast('logged-room', { type: marker, data: { text: marker } });
    }
    expect((await bob.next('message')).message.type).toBe(marker);
    alice.close();
    await bob.next('user_left');

    server.child.kill('SIGTERM');
    expect((await server.waitForExit(3500)).code).toBe(0);

    expect(server.stdoutLines.length).toBeGreaterThan(0);
    const entries = server.stdoutLines.map((line) => {
      try {
        return JSON.parse(line) as { severity?: unknown; message?: unknown };
      } catch {
        throw new Error(`stdout line is not JSON: ${line}`);
      }
    });
    for (const entry of entries) {
      // Cloud Logging's shape (docs/logging.md), no longer Nest's `level`.
      expect(['DEBUG', 'INFO', 'WARNING']).toContain(entry.severity);
      expect(typeof entry.message).toBe('string');
    }
    const messages = entries.map((entry) => entry.message as string);
    expect(messages).toContainEqual(expect.stringMatching(/^Listening on http:\/\/127\.0\.0\.1:/));
    expect(messages).toContainEqual(expect.stringMatching(/alice.*connected/));
    expect(messages).toContainEqual(expect.stringMatching(/logged-room.*created/));
    expect(messages.filter((message) => message.includes(marker))).toEqual([]);
  }, 20_000);

  it.each([
    ['PORT', 'abc'],
    ['MAX_ROOMS', '0'],
    ['LOG_LEVEL', 'loud'],
  ])(
    'refuses to boot with %s=%s, naming the variable',
    async (name, value) => {
      const server = start({ ...baseEnv, [name]: value });
      const exit = await server.waitForExit(5000);
      expect(exit.code).not.toBe(0);
      expect(exit.code).not.toBeNull();
      expect(server.stderr).toContain(name);
      expect(server.stderr).toContain(value);
      expect(server.stdoutLines.filter((line) => line.includes('Listening on'))).toEqual([]);
    },
    20_000,
  );

  it('refuses to boot with REQUIRE_API_KEY=true and no API_KEY, naming API_KEY', async () => {
    const server = start({ ...baseEnv, REQUIRE_API_KEY: 'true' });
    const exit = await server.waitForExit(5000);
    expect(exit.code).not.toBe(0);
    expect(exit.code).not.toBeNull();
    expect(server.stderr).toMatch(/\bAPI_KEY\b/);
    expect(server.stderr).toContain('REQUIRE_API_KEY');
    expect(server.stdoutLines.filter((line) => line.includes('Listening on'))).toEqual([]);
  }, 20_000);

  it('boots with REQUIRE_API_KEY=true and an API_KEY, and enforces it', async () => {
    const server = start({ ...baseEnv, REQUIRE_API_KEY: 'true', API_KEY: 'process-key' });
    const port = await server.port();
    const wsUrl = `ws://127.0.0.1:${port}`;
    expect(await TestClient.refusedStatus(wsUrl, { userId: 'alice' })).toBe(401);
    const alice = await clients.connect(wsUrl, { userId: 'alice', apiKey: 'process-key' });
    expect(alice.userId).toBe('alice');
  }, 20_000);
});
