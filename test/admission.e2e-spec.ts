import type { Server } from 'node:http';
import { connect as connectTcp, type Socket } from 'node:net';
import WebSocket from 'ws';
import { ConnectionAdmission } from '../src/limits/connection-admission.js';
import { waitFor } from './support/cluster.js';
import { ClientPool, useTestServer } from './support/fixtures.js';
import { delay, TestClient, withTimeout } from './support/test-client.js';

const API_KEY = 'e2e-admission-key';

/** A refused upgrade over raw TCP: the close code the server sent, and when the socket closed. */
interface SilentClient {
  closeCode: number;
  closed: Promise<void>;
}

/** The close code of the close frame right after a 101 answer, once it has all arrived. */
function closeCodeIn(received: Buffer): number | undefined {
  const end = received.indexOf('\r\n\r\n');
  if (end < 0) {
    return undefined;
  }
  const statusLine = received.subarray(0, received.indexOf('\r\n')).toString('latin1');
  if (!statusLine.includes(' 101 ')) {
    throw new Error(`expected 101 Switching Protocols, got ${statusLine}`);
  }
  const frame = received.subarray(end + 4);
  // 0x88: a final close frame; its payload starts with the code.
  return frame.length >= 4 && frame[0] === 0x88 ? frame.readUInt16BE(2) : undefined;
}

// Admission is per instance: every client here goes to the first one (`fixture.server`), also in
// the cluster project, so that its counts are the ones these tests fill.
describe('connection admission at the upgrade', () => {
  const pool = new ClientPool();
  // Declared before the fixture's own, so the clients close before their server does.
  afterEach(() => pool.closeAll());
  const fixture = useTestServer({ lazy: true });
  const { start } = fixture;

  const connect = (headers: Record<string, string> = {}) =>
    pool.connect(fixture.server.wsUrl, { headers });
  const refused = (headers: Record<string, string> = {}) =>
    TestClient.refusedStatus(fixture.server.wsUrl, { headers });
  const openOnServer = () => fixture.server.app.get(ConnectionAdmission).openConnections();
  /** TCP sockets the server still has open (upgraded ones included). */
  const tcpOnServer = () =>
    new Promise<number>((resolve, reject) =>
      (fixture.server.app.getHttpServer() as Server).getConnections((error, count) =>
        error ? reject(error) : resolve(count),
      ),
    );

  const rawSockets: Socket[] = [];
  afterEach(() => rawSockets.splice(0).forEach((socket) => socket.destroy()));

  /**
   * An upgrade offering the `gallery` subprotocol, from a client that reads the close frame of
   * its refusal but never answers it (nor closes the TCP connection).
   */
  const silentUpgrade = (headers: Record<string, string> = {}) =>
    new Promise<SilentClient>((resolve, reject) => {
      const socket = connectTcp(Number(new URL(fixture.server.wsUrl).port), '127.0.0.1');
      rawSockets.push(socket);
      const closed = new Promise<void>((resolveClose) => socket.once('close', resolveClose));
      const lines = [
        'GET / HTTP/1.1',
        'Host: 127.0.0.1',
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
        'Sec-WebSocket-Protocol: gallery',
        ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
      ];
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      let received = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        try {
          const closeCode = closeCodeIn(received);
          if (closeCode !== undefined) {
            resolve({ closeCode, closed });
          }
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
      socket.on('error', () => undefined);
      void closed.then(() => reject(new Error('closed before a close frame')));
    });

  /** Closes `client` and waits until the server has counted it out. */
  const closeAndWait = async (client: TestClient) => {
    const before = openOnServer();
    client.close();
    await client.waitForClose();
    await waitFor(
      () => (openOnServer() < before ? true : undefined),
      2000,
      'the server to count the close',
      10,
    );
  };

  describe('ALLOWED_ORIGINS', () => {
    beforeEach(async () => {
      await start({ ALLOWED_ORIGINS: 'https://app.example' });
    });

    it('refuses a browser Origin not in the list with 403', async () => {
      expect(await refused({ origin: 'https://evil.example' })).toBe(403);
      expect(await refused({ origin: 'http://app.example' })).toBe(403);
      expect(await refused({ origin: 'https://app.example.evil.example' })).toBe(403);
      expect(await refused({ origin: 'null' })).toBe(403);
      expect(openOnServer()).toBe(0);
    });

    it('admits an Origin in the list, and a request without an Origin', async () => {
      const browser = await connect({ origin: 'https://app.example' });
      const tool = await connect();
      for (const client of [browser, tool]) {
        expect((await client.reply(client.request('ping'))).event).toBe('pong');
      }
      expect(openOnServer()).toBe(2);
    });
  });

  describe('MAX_CONNECTIONS', () => {
    beforeEach(async () => {
      await start({ MAX_CONNECTIONS: '2' });
    });

    it('refuses the connection past the limit with 503, and admits one again after a close', async () => {
      const first = await connect();
      await connect();
      expect(await refused()).toBe(503);
      expect(await refused()).toBe(503);

      await closeAndWait(first);
      const third = await connect();
      expect((await third.reply(third.request('ping'))).event).toBe('pong');
      expect(await refused()).toBe(503);
    });

    it('admits exactly the limit out of concurrent upgrades', async () => {
      const sockets: WebSocket[] = [];
      try {
        const outcomes = await Promise.all(
          Array.from(
            { length: 6 },
            () =>
              new Promise<number | 'open'>((resolve) => {
                const socket = new WebSocket(fixture.server.wsUrl);
                sockets.push(socket);
                socket.on('open', () => resolve('open'));
                socket.on('unexpected-response', (_request, response) =>
                  resolve(response.statusCode ?? 0),
                );
                socket.on('error', () => undefined);
              }),
          ),
        );
        expect(outcomes.filter((outcome) => outcome === 'open')).toHaveLength(2);
        expect(outcomes.filter((outcome) => outcome === 503)).toHaveLength(4);
        expect(openOnServer()).toBe(2);
      } finally {
        sockets.forEach((socket) => socket.terminate());
      }
    });
  });

  describe('an upgrade refused by a close code (a client offering gallery)', () => {
    it('gives its place back at once; cut off within a second if it does not answer', async () => {
      await start({ MAX_CONNECTIONS: '2', REQUIRE_API_KEY: 'true', API_KEY });
      const silent = [await silentUpgrade(), await silentUpgrade({ 'x-api-key': 'wrong' })];
      expect(silent.map((client) => client.closeCode)).toEqual([4401, 4401]);
      // Never a connection: a client with the key is admitted while they still hang on.
      expect(openOnServer()).toBe(0);
      const member = await connect({ 'x-api-key': API_KEY });
      expect((await member.reply(member.request('ping'))).event).toBe('pong');
      await withTimeout(
        Promise.all(silent.map((client) => client.closed)),
        2500,
        'the server to cut off the refused sockets',
      );
      // Their TCP close gives nothing back a second time.
      await delay(50);
      expect(openOnServer()).toBe(1);
    });

    it('cuts off a flood of them within seconds, not after the 30 s close timeout', async () => {
      await start({ ALLOWED_ORIGINS: 'https://app.example' });
      const flood = await Promise.all(
        Array.from({ length: 50 }, () => silentUpgrade({ origin: 'https://evil.example' })),
      );
      expect(new Set(flood.map((client) => client.closeCode))).toEqual(new Set([4403]));
      await withTimeout(
        Promise.all(flood.map((client) => client.closed)),
        3000,
        'the server to cut off the refused sockets',
      );
      await waitFor(async () => ((await tcpOnServer()) === 0 ? true : undefined), 1000, 'no TCP');
      expect(openOnServer()).toBe(0);
    });
  });

  describe('MAX_CONNECTIONS_PER_IP', () => {
    it('refuses the third connection from one address with 429, and admits one after a close', async () => {
      await start({ MAX_CONNECTIONS_PER_IP: '2' });
      const first = await connect();
      await connect();
      expect(await refused()).toBe(429);

      await closeAndWait(first);
      await connect();
      expect(await refused()).toBe(429);
    });

    it('ignores X-Forwarded-For without TRUST_PROXY', async () => {
      await start({ MAX_CONNECTIONS_PER_IP: '2' });
      await connect({ 'x-forwarded-for': '203.0.113.1' });
      await connect({ 'x-forwarded-for': '203.0.113.2' });
      expect(await refused({ 'x-forwarded-for': '203.0.113.3' })).toBe(429);
      expect(await refused()).toBe(429);
    });

    it('with TRUST_PROXY, gives each forwarded address its own share', async () => {
      await start({ MAX_CONNECTIONS_PER_IP: '2', TRUST_PROXY: '127.0.0.1' });
      const one = { 'x-forwarded-for': '203.0.113.1' };
      const two = { 'x-forwarded-for': '203.0.113.2' };
      await connect(one);
      await connect(one);
      expect(await refused(one)).toBe(429);
      await connect(two);
      await connect(two);
      expect(await refused(two)).toBe(429);
      // The proxy itself (no X-Forwarded-For) has a share of its own.
      await connect();
      expect(openOnServer()).toBe(5);
    });

    it('with TRUST_PROXY, takes the nearest untrusted hop, not what the client wrote before it', async () => {
      await start({ MAX_CONNECTIONS_PER_IP: '2', TRUST_PROXY: '127.0.0.1,10.0.0.0/8' });
      const full = { 'x-forwarded-for': '203.0.113.1' };
      await connect(full);
      await connect(full);
      // A client that prepends an address of its choice is still 203.0.113.1.
      expect(await refused({ 'x-forwarded-for': '198.51.100.7, 203.0.113.1' })).toBe(429);
      // Trusted proxies on the right are skipped.
      expect(await refused({ 'x-forwarded-for': '203.0.113.1, 10.1.2.3' })).toBe(429);
      // Another client behind the same proxies is admitted.
      await connect({ 'x-forwarded-for': '203.0.113.1, 198.51.100.7, 10.1.2.3' });
      expect(openOnServer()).toBe(3);
    });
  });

  describe('defaults', () => {
    it('admit 50 connections from one address (load tests, clients behind a NAT)', async () => {
      await start();
      const clients = await Promise.all(Array.from({ length: 50 }, () => connect()));
      expect(new Set(clients.map((client) => client.userId)).size).toBe(50);
      expect(openOnServer()).toBe(50);
      const last = clients[49];
      expect((await last.reply(last.request('ping'))).event).toBe('pong');
    });
  });
});
