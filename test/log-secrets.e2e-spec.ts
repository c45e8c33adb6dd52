import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { ServerProcess } from './support/server-process.js';
import { delay, TestClient } from './support/test-client.js';

const SECRET = 'log-secret-jwt-key-0123456789abcdef';
const API_KEY = 'log-secret-api-key-42';
const PASSWORD = 'log-secret-room-password';
const WRONG_PASSWORD = 'log-secret-wrong-password';

/** The status of a GET sent as written, request target and all (fetch would normalize it). */
function rawStatus(port: number, target: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    });
    let head = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (head += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0)));
  });
}

const sign = (sub: string, key = SECRET) =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(key));

describe('logs never carry a secret', () => {
  let server: ServerProcess | undefined;

  afterEach(async () => {
    await server?.stop();
  });

  it.each(['text', 'json'])(
    'writes no token, API key or password at LOG_LEVEL=debug and LOG_FORMAT=%s, whatever the clients do',
    async (logFormat) => {
      server = ServerProcess.start({
        LOG_FORMAT: logFormat,
        GOOGLE_CLOUD_PROJECT: 'gms-secrets-project',
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'debug',
        AUTH_MODE: 'jwt',
        JWT_SECRET: SECRET,
        API_KEY,
        DATA_DIR: mkdtempSync(join(tmpdir(), 'gms-log-secrets-')),
      });
      const port = await server.port();
      const wsUrl = `ws://127.0.0.1:${port}/`;
      const [aliceToken, bobToken, forgedToken, refreshToken] = await Promise.all([
        sign('alice'),
        sign('bob'),
        sign('mallory', 'a-different-key-that-is-32-chars-long'),
        sign('carol'),
      ]);

      // Tokens in every place, accepted and refused.
      // A trace header carrying a token is no trace: nothing of it is logged.
      const alice = await TestClient.connect(`${wsUrl}?token=${aliceToken}`, {
        headers: { traceparent: `00-${aliceToken}-00f067aa0ba902b7-01` },
      });
      const bob = await TestClient.connect(wsUrl, {
        headers: {
          authorization: `Bearer ${bobToken}`,
          'x-cloud-trace-context': `${'a'.repeat(32)}/1;o=1;${bobToken}`,
        },
      });
      expect(await TestClient.refusedStatus(`${wsUrl}?token=${forgedToken}`)).toBe(401);
      expect(
        await TestClient.refusedStatus(wsUrl, {
          headers: { authorization: `Bearer ${forgedToken}` },
        }),
      ).toBe(401);

      // Passwords, right and wrong; a refused refresh; /stats with the key and with a token.
      const created = alice.request('create_room', {
        roomId: 'vault',
        config: { password: PASSWORD },
      });
      expect((await alice.reply(created)).event).toBe('room_created');
      await alice.join('vault', { password: PASSWORD });
      const wrong = bob.request('join_room', { roomId: 'vault', password: WRONG_PASSWORD });
      expect((await bob.error(wrong)).code).toBe('INVALID_PASSWORD');
      const refresh = bob.request('refresh_token', { token: refreshToken });
      expect((await bob.error(refresh)).code).toBe('INVALID_TOKEN');
      const garbage = bob.request('refresh_token', { token: `${forgedToken}x` });
      expect((await bob.error(garbage)).code).toBe('INVALID_TOKEN');
      const stats = await fetch(`http://127.0.0.1:${port}/stats?apiKey=${API_KEY}`);
      expect(stats.status).toBe(200);
      const statsByToken = await fetch(`http://127.0.0.1:${port}/stats?token=${forgedToken}`);
      expect(statsByToken.status).toBe(200);
      // Request lines Express routes but URL cannot parse (a bad port): no 500, and so no error
      // log line quoting the URL with its key.
      for (const target of [
        `http://a:99999/stats?apiKey=${API_KEY}`,
        `http://a:99999/stats/rooms/vault?token=${aliceToken}`,
        `http://a:99999/demo?apiKey=${API_KEY}`,
      ]) {
        expect(await rawStatus(port, target)).not.toBe(500);
      }
      // Resume tokens: one used on an upgrade, one in the action, one that is not the user's.
      const aliceResume = alice.connected?.resumeToken as string;
      const bobResume = bob.connected?.resumeToken as string;
      expect(aliceResume).toBeDefined();
      alice.socket.terminate();
      await alice.waitForClose();
      const aliceBack = await TestClient.connect(
        `${wsUrl}?token=${aliceToken}&resume=${aliceResume}`,
      );
      expect(aliceBack.connected?.resumed).toBe(true);
      const stolen = aliceBack.request('resume', { token: bobResume, rooms: [] });
      expect((await aliceBack.error(stolen)).code).toBe('RESUME_FAILED');
      expect((await aliceBack.reply(aliceBack.request('resume', { rooms: [] }))).event).toBe(
        'resumed',
      );
      const aliceNewResume = aliceBack.connected?.resumeToken as string;
      aliceBack.close();
      bob.close();
      await delay(200);

      const log = server.stdoutLines.join('\n') + server.stderr;
      expect(log).toMatch(/User alice connected/);
      if (logFormat === 'json') {
        for (const line of log.split('\n').filter((text) => text.length > 0)) {
          expect(JSON.parse(line)).toHaveProperty('severity');
        }
      }
      for (const secret of [
        SECRET,
        API_KEY,
        PASSWORD,
        WRONG_PASSWORD,
        aliceToken,
        bobToken,
        forgedToken,
        refreshToken,
        aliceResume,
        bobResume,
        aliceNewResume,
      ]) {
        expect({ secret, found: log.includes(secret) }).toEqual({ secret, found: false });
      }
      // A token's signature alone is a secret too; so is its payload part in a URL.
      for (const token of [aliceToken, bobToken, forgedToken]) {
        expect(log.includes(token.split('.')[2])).toBe(false);
      }
    },
  );
});
