import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  exportJWK,
  exportSPKI,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JWTPayload,
} from 'jose';
import WebSocket from 'ws';
import { replyOf, useTestServer } from './support/fixtures.js';
import { delay, TestClient, withTimeout } from './support/test-client.js';
import { startTestServer } from './support/test-server.js';

const SECRET = 'e2e-jwt-secret-of-at-least-32-characters';
const JWT = { AUTH_MODE: 'jwt', JWT_SECRET: SECRET };

const nowS = () => Math.floor(Date.now() / 1000);

interface SignOptions {
  alg?: string;
  kid?: string;
  key?: CryptoKey | Uint8Array;
  /** Seconds from now; absent: no exp. */
  expiresIn?: number;
  issuer?: string;
  audience?: string;
}

async function sign(claims: JWTPayload, options: SignOptions = {}): Promise<string> {
  const jwt = new SignJWT(claims)
    .setProtectedHeader({
      alg: options.alg ?? 'HS256',
      ...(options.kid !== undefined ? { kid: options.kid } : {}),
    })
    .setIssuedAt();
  if (options.expiresIn !== undefined) {
    jwt.setExpirationTime(nowS() + options.expiresIn);
  }
  if (options.issuer !== undefined) {
    jwt.setIssuer(options.issuer);
  }
  if (options.audience !== undefined) {
    jwt.setAudience(options.audience);
  }
  return jwt.sign(options.key ?? new TextEncoder().encode(SECRET));
}

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

describe('AUTH_MODE=jwt', () => {
  const fixture = useTestServer({ lazy: true });
  const { start } = fixture;
  /** Sockets opened outside the fixture's pool, closed after each test. */
  const extra: WebSocket[] = [];

  afterEach(() => {
    extra.splice(0).forEach((socket) => socket.terminate());
  });

  /** Connects with the token as Authorization: Bearer; `userId` adds ?userId=. */
  const connectAs = async (token: string, userId?: string) =>
    fixture.connect(userId, bearer(token));

  const refusedStatus = (token: string | undefined, userId?: string) =>
    TestClient.refusedStatus(fixture.server.wsUrl, {
      userId,
      ...(token !== undefined ? bearer(token) : {}),
    });

  /** A raw socket offering `protocols`; resolves with its `connected` userId and chosen protocol. */
  const openWithProtocols = async (url: string, protocols: string[]) => {
    const socket = new WebSocket(url, protocols);
    extra.push(socket);
    const connected = await withTimeout(
      new Promise<{ userId: string }>((resolve, reject) => {
        socket.once('message', (raw) => {
          const message = JSON.parse((raw as Buffer).toString()) as {
            event: string;
            data: { userId: string };
          };
          if (message.event === 'connected') {
            resolve(message.data);
          } else {
            reject(new Error(`expected connected, got ${message.event}`));
          }
        });
        socket.once('unexpected-response', (_request, response) =>
          reject(new Error(`upgrade refused: ${response.statusCode}`)),
        );
        socket.once('error', reject);
      }),
      2000,
      'connected',
    );
    return { userId: connected.userId, protocol: socket.protocol };
  };

  describe('with JWT_SECRET (HS256)', () => {
    beforeEach(async () => {
      await start(JWT);
    });

    it('connects with the userId of the token', async () => {
      const alice = await connectAs(await sign({ sub: 'alice' }));
      expect(alice.userId).toBe('alice');
      const again = await connectAs(await sign({ sub: 'bob' }), 'bob');
      expect(again.userId).toBe('bob');
    });

    it('takes the token from ?token=', async () => {
      const token = await sign({ sub: 'alice' });
      const alice = await TestClient.connect(`${fixture.server.wsUrl}/?token=${token}`);
      extra.push(alice.socket);
      expect(alice.userId).toBe('alice');
    });

    it('takes the token from Sec-WebSocket-Protocol bearer.<token>, choosing the app protocol', async () => {
      const token = await sign({ sub: 'alice' });
      const url = fixture.server.wsUrl;
      expect(await openWithProtocols(url, ['gallery', `bearer.${token}`])).toEqual({
        userId: 'alice',
        protocol: 'gallery',
      });
      const bob = await sign({ sub: 'bob' });
      expect(await openWithProtocols(url, [`bearer.${bob}`, 'gallery'])).toEqual({
        userId: 'bob',
        protocol: 'gallery',
      });
    });

    it('counts an empty token as absent, so it hides no token after it', async () => {
      const url = fixture.server.wsUrl;
      const alice = await sign({ sub: 'alice' });
      const viaHeader = await TestClient.connect(`${url}/?token=`, bearer(alice));
      extra.push(viaHeader.socket);
      expect(viaHeader.userId).toBe('alice');
      const bob = await sign({ sub: 'bob' });
      expect(
        await openWithProtocols(`${url}/?token=`, ['gallery', 'bearer.', `bearer.${bob}`]),
      ).toEqual({ userId: 'bob', protocol: 'gallery' });
      expect(await refusedStatus(undefined, 'alice')).toBe(401);
    });

    it('echoes the bearer protocol when it is the only one offered', async () => {
      const token = await sign({ sub: 'alice' });
      expect(await openWithProtocols(fixture.server.wsUrl, [`bearer.${token}`])).toEqual({
        userId: 'alice',
        protocol: `bearer.${token}`,
      });
    });

    it('refuses a missing, malformed or badly signed token with 401', async () => {
      expect(await refusedStatus(undefined)).toBe(401);
      expect(await refusedStatus(undefined, 'alice')).toBe(401);
      expect(await refusedStatus('not-a-token', 'alice')).toBe(401);
      const forged = await sign(
        { sub: 'alice' },
        { key: new TextEncoder().encode('another-secret-of-at-least-32-chars!') },
      );
      expect(await refusedStatus(forged)).toBe(401);
      const wrongAlg = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(
        '{"sub":"alice"}',
      ).toString('base64url')}.`;
      expect(await refusedStatus(wrongAlg)).toBe(401);
    });

    it('refuses an expired token with 401', async () => {
      expect(await refusedStatus(await sign({ sub: 'alice' }, { expiresIn: -60 }))).toBe(401);
    });

    it('refuses a sub that is not a userId, and malformed optional claims, with 401', async () => {
      for (const claims of [
        { sub: 'not a user id' },
        { sub: 'alice', name: 'x'.repeat(65) },
        { sub: 'alice', rooms: { gallery: 'owner' } },
        { sub: 'alice', createRooms: 'no' },
        { sub: 'alice', admin: 1 },
      ]) {
        expect(await refusedStatus(await sign(claims))).toBe(401);
      }
    });

    it('refuses ?userId= that differs from sub with 403', async () => {
      expect(await refusedStatus(await sign({ sub: 'alice' }), 'bob')).toBe(403);
    });

    it('does not let another identity take over a session: 403, the session untouched', async () => {
      const alice = await connectAs(await sign({ sub: 'alice' }));
      await alice.join('gallery');
      const mallory = await sign({ sub: 'mallory' });
      for (const server of fixture.servers) {
        expect(
          await TestClient.refusedStatus(server.wsUrl, { userId: 'alice', ...bearer(mallory) }),
        ).toBe(403);
        expect(
          await TestClient.refusedStatus(`${server.wsUrl}/?token=${mallory}`, { userId: 'alice' }),
        ).toBe(403);
      }
      // mallory's own session is mallory, and does not touch alice's.
      const asMallory = await connectAs(mallory);
      expect(asMallory.userId).toBe('mallory');
      await delay(100);
      expect(alice.closeCode).toBeUndefined();
      expect(
        await replyOf(alice, alice.request('get_state', { roomId: 'gallery' }), 'state'),
      ).toMatchObject({ roomId: 'gallery', version: 0 });
    });

    it('lets the same verified sub replace its own session (4000)', async () => {
      const token = await sign({ sub: 'alice' });
      const first = await connectAs(token);
      await first.join('gallery');
      const second = await connectAs(token);
      // Asked at once: in cluster mode the room moves from the other instance meanwhile, and the
      // request waits for that rather than finding the new socket in no room.
      const state = second.request('get_state', { roomId: 'gallery' });
      expect(await replyOf(second, state, 'state')).toMatchObject({ roomId: 'gallery' });
      expect(await first.waitForClose()).toMatchObject({ code: 4000 });
    });

    it('uses the name claim as the default display name', async () => {
      const alice = await connectAs(await sign({ sub: 'alice', name: 'Alice Liddell' }));
      const bob = await connectAs(await sign({ sub: 'bob', name: 'Bob' }));
      const room = await alice.join('gallery');
      expect(room.users).toEqual([expect.objectContaining({ id: 'alice', name: 'Alice Liddell' })]);
      await bob.join('gallery', { userInfo: { name: 'Robert' } });
      expect(await alice.next('user_joined')).toMatchObject({
        user: { id: 'bob', name: 'Robert' },
      });
    });

    describe('session expiry and refresh_token', () => {
      // exp is in whole seconds: a token signed `expiresIn: 3` lives 2 to 3 s, time enough for a
      // loaded machine to connect, join and refresh before it runs out.
      const SHORT_S = 3;

      it('closes the session with 4001 at exp', async () => {
        const alice = await connectAs(await sign({ sub: 'alice' }, { expiresIn: SHORT_S }));
        expect(await alice.waitForClose(SHORT_S * 1000 + 3000)).toEqual({
          code: 4001,
          reason: 'Token expired',
        });
      });

      it('extends the session past the old exp with a fresh token for the same sub', async () => {
        const alice = await connectAs(await sign({ sub: 'alice' }, { expiresIn: SHORT_S }));
        await alice.join('gallery');
        const fresh = await sign({ sub: 'alice' }, { expiresIn: 60 });
        const refreshed = await replyOf<{ expiresAt: number }>(
          alice,
          alice.request('refresh_token', { token: fresh }),
          'token_refreshed',
        );
        expect(refreshed.expiresAt).toBeGreaterThan(Date.now() + 50_000);
        // Past the old exp (at most SHORT_S after it was signed, before the refresh).
        await delay(SHORT_S * 1000 + 500);
        expect(alice.closeCode).toBeUndefined();
        expect(
          await replyOf(alice, alice.request('get_state', { roomId: 'gallery' }), 'state'),
        ).toMatchObject({ roomId: 'gallery' });
      });

      it('refuses a token for another sub or an invalid one with INVALID_TOKEN, session unchanged', async () => {
        const alice = await connectAs(await sign({ sub: 'alice' }, { expiresIn: SHORT_S }));
        const other = await sign({ sub: 'mallory' }, { expiresIn: 60 });
        for (const token of [other, 'garbage', await sign({ sub: 'alice' }, { expiresIn: -60 })]) {
          const error = await alice.error(alice.request('refresh_token', { token }));
          expect(error.code).toBe('INVALID_TOKEN');
        }
        expect(await alice.waitForClose(SHORT_S * 1000 + 3000)).toMatchObject({ code: 4001 });
      });

      it('validates the refresh_token message', async () => {
        const alice = await connectAs(await sign({ sub: 'alice' }));
        for (const token of [undefined, 42, '', 'x'.repeat(8193)]) {
          const error = await alice.error(alice.request('refresh_token', { token }));
          expect(error).toMatchObject({ code: 'VALIDATION_FAILED', field: 'token' });
        }
      });

      it('applies the refreshed claims to later joins', async () => {
        const alice = await connectAs(await sign({ sub: 'alice' }, { expiresIn: 60 }));
        const capped = await sign({ sub: 'alice', rooms: { stage: 'viewer' } }, { expiresIn: 60 });
        await replyOf(alice, alice.request('refresh_token', { token: capped }), 'token_refreshed');
        const room = await alice.join('stage');
        expect(room.users).toEqual([expect.objectContaining({ id: 'alice', role: 'viewer' })]);
      });
    });

    describe('per-room role caps (the rooms claim)', () => {
      it('makes a capped first member a viewer, not host; a viewer cannot update_state', async () => {
        const alice = await connectAs(await sign({ sub: 'alice', rooms: { gallery: 'viewer' } }));
        const room = await alice.join('gallery');
        expect(room.users).toEqual([expect.objectContaining({ id: 'alice', role: 'viewer' })]);
        const error = await alice.error(
          alice.request('update_state', {
            roomId: 'gallery',
            baseVersion: 0,
            patch: { sceneLoaded: true },
          }),
        );
        expect(error.code).toBe('FORBIDDEN');
      });

      it('caps a requested role, and leaves rooms not listed alone', async () => {
        const [bob, alice] = [
          await connectAs(await sign({ sub: 'bob' })),
          await connectAs(await sign({ sub: 'alice', rooms: { gallery: 'viewer' } })),
        ];
        await bob.join('gallery');
        const room = await alice.join('gallery', { userInfo: { role: 'editor' } });
        expect(room.users.find((user) => user.id === 'alice')?.role).toBe('viewer');
        const other = await alice.join('elsewhere');
        expect(other.users).toEqual([expect.objectContaining({ id: 'alice', role: 'host' })]);
      });

      it('refuses set_role above the target cap with FORBIDDEN', async () => {
        const bob = await connectAs(await sign({ sub: 'bob' }));
        const alice = await connectAs(await sign({ sub: 'alice', rooms: { gallery: 'viewer' } }));
        await bob.join('gallery');
        await alice.join('gallery');
        await bob.next('user_joined');
        const error = await bob.error(
          bob.request('set_role', { roomId: 'gallery', targetUserId: 'alice', role: 'editor' }),
        );
        expect(error.code).toBe('FORBIDDEN');
      });

      it('skips a member capped below host in the host handover', async () => {
        const bob = await connectAs(await sign({ sub: 'bob' }));
        const alice = await connectAs(await sign({ sub: 'alice', rooms: { gallery: 'editor' } }));
        const carol = await connectAs(await sign({ sub: 'carol' }));
        await bob.join('gallery');
        await alice.join('gallery');
        await carol.join('gallery');
        await replyOf(bob, bob.request('leave_room', { roomId: 'gallery' }), 'room_left');
        const promoted = await carol.next('user_updated');
        expect(promoted.user).toMatchObject({ id: 'carol', role: 'host' });
      });
    });

    describe('createRooms: false', () => {
      it('may join an existing room, not create one', async () => {
        const bob = await connectAs(await sign({ sub: 'bob' }));
        const alice = await connectAs(await sign({ sub: 'alice', createRooms: false }));
        await bob.join('gallery');
        expect((await alice.join('gallery')).roomId).toBe('gallery');
        const joinMissing = await alice.error(alice.request('join_room', { roomId: 'new-room' }));
        expect(joinMissing.code).toBe('ROOM_NOT_FOUND');
        const create = await alice.error(alice.request('create_room', { roomId: 'new-room' }));
        expect(create.code).toBe('FORBIDDEN');
      });
    });

    describe('bans and passwords follow the verified identity', () => {
      it('keeps a kicked sub out, on the same socket and on a new one', async () => {
        const alice = await connectAs(await sign({ sub: 'alice' }));
        await alice.join('gallery');
        const bob = await connectAs(await sign({ sub: 'bob' }));
        await bob.join('gallery');
        await replyOf(
          alice,
          alice.request('kick_user', { roomId: 'gallery', targetUserId: 'bob' }),
          'user_left',
        );
        await bob.next('kicked');
        expect((await bob.error(bob.request('join_room', { roomId: 'gallery' }))).code).toBe(
          'KICKED',
        );
        const bobAgain = await connectAs(await sign({ sub: 'bob', name: 'Bob, again' }));
        expect(
          (await bobAgain.error(bobAgain.request('join_room', { roomId: 'gallery' }))).code,
        ).toBe('KICKED');
      });

      it('checks the room password again when a member joins again', async () => {
        const alice = await connectAs(await sign({ sub: 'alice' }));
        await replyOf(
          alice,
          alice.request('create_room', { roomId: 'locked', config: { password: 'p4ssw0rd' } }),
          'room_created',
        );
        await alice.join('locked', { password: 'p4ssw0rd' });
        const again = await alice.error(alice.request('join_room', { roomId: 'locked' }));
        expect(again.code).toBe('INVALID_PASSWORD');
        expect((await alice.join('locked', { password: 'p4ssw0rd' })).roomId).toBe('locked');
      });
    });

    describe('/stats and /health', () => {
      const get = (path: string, headers: Record<string, string> = {}) =>
        fetch(`${fixture.server.httpUrl}${path}`, { headers });

      beforeEach(async () => {
        const alice = await connectAs(await sign({ sub: 'alice' }));
        await alice.join('secret-room', { password: 'pw' });
      });

      it('gives an anonymous caller or a non-admin token the counts only', async () => {
        const nonAdmin = await sign({ sub: 'alice' });
        for (const response of [
          await get('/stats'),
          await get('/stats', { authorization: `Bearer ${nonAdmin}` }),
          await get(`/stats?token=${nonAdmin}`),
          await get('/stats', { authorization: 'Bearer garbage' }),
        ]) {
          expect(response.status).toBe(200);
          const body = (await response.json()) as Record<string, unknown>;
          expect(body).toMatchObject({ totalRooms: 1, totalUsers: 1 });
          expect(body).not.toHaveProperty('rooms');
          expect(JSON.stringify(body)).not.toContain('secret-room');
        }
      });

      it('gives a token with admin: true the rooms', async () => {
        const admin = await sign({ sub: 'ops', admin: true });
        for (const response of [
          await get('/stats', { authorization: `Bearer ${admin}` }),
          await get(`/stats?token=${admin}`),
        ]) {
          expect(response.status).toBe(200);
          expect(await response.json()).toMatchObject({
            rooms: [expect.objectContaining({ roomId: 'secret-room', userCount: 1 })],
            totalRooms: 1,
          });
        }
      });

      it("gives a room's members to an admin token only", async () => {
        const nonAdmin = await sign({ sub: 'alice' });
        for (const response of [
          await get('/stats/rooms/secret-room'),
          await get('/stats/rooms/secret-room', { authorization: `Bearer ${nonAdmin}` }),
          await get('/stats/rooms/secret-room', { authorization: 'Bearer garbage' }),
        ]) {
          expect(response.status).toBe(403);
          expect(await response.text()).not.toContain('alice');
        }
        const admin = await sign({ sub: 'ops', admin: true });
        const response = await get('/stats/rooms/secret-room', {
          authorization: `Bearer ${admin}`,
        });
        expect(response.status).toBe(200);
        expect(await response.json()).toMatchObject({
          roomId: 'secret-room',
          users: [expect.objectContaining({ id: 'alice', role: 'host' })],
        });
      });

      it('says nothing about rooms in /health beyond counts', async () => {
        const response = await get('/health');
        expect(response.status).toBe(200);
        const body = (await response.json()) as Record<string, unknown>;
        expect(body).toMatchObject({ status: 'ok', rooms: 1 });
        expect(JSON.stringify(body)).not.toContain('secret-room');
      });
    });
  });

  describe('/stats with AUTH_MODE=jwt and API_KEY', () => {
    it('gives the API key the rooms', async () => {
      await start({ ...JWT, API_KEY: 'ops-key-1234' });
      const alice = await connectAs(await sign({ sub: 'alice' }));
      await alice.join('gallery');
      const response = await fetch(`${fixture.server.httpUrl}/stats`, {
        headers: { 'x-api-key': 'ops-key-1234' },
      });
      expect(await response.json()).toMatchObject({
        rooms: [expect.objectContaining({ roomId: 'gallery' })],
      });
    });
  });

  describe('JWT_ROOMS_REQUIRED=true', () => {
    it('refuses a room the token does not list with FORBIDDEN', async () => {
      await start({ ...JWT, JWT_ROOMS_REQUIRED: 'true' });
      const alice = await connectAs(await sign({ sub: 'alice', rooms: { gallery: 'host' } }));
      expect((await alice.join('gallery')).users).toEqual([
        expect.objectContaining({ id: 'alice', role: 'host' }),
      ]);
      const error = await alice.error(alice.request('join_room', { roomId: 'other' }));
      expect(error.code).toBe('FORBIDDEN');
      const noRooms = await connectAs(await sign({ sub: 'bob' }));
      expect((await noRooms.error(noRooms.request('join_room', { roomId: 'gallery' }))).code).toBe(
        'FORBIDDEN',
      );
    });
  });

  describe('MAX_ROOMS_PER_USER with verified users', () => {
    it('counts rooms against the token sub, not the shared address', async () => {
      await start({ ...JWT, MAX_ROOMS_PER_USER: '1' });
      const alice = await connectAs(await sign({ sub: 'alice' }));
      const bob = await connectAs(await sign({ sub: 'bob' }));
      await alice.join('alice-1');
      expect((await alice.error(alice.request('join_room', { roomId: 'alice-2' }))).code).toBe(
        'ROOM_QUOTA',
      );
      await bob.join('bob-1');
    });
  });

  describe('with JWT_ISSUER and JWT_AUDIENCE', () => {
    it('accepts the right issuer and audience, refuses others with 401', async () => {
      await start({ ...JWT, JWT_ISSUER: 'https://id.example.com', JWT_AUDIENCE: 'gallery' });
      const right = { issuer: 'https://id.example.com', audience: 'gallery' };
      expect((await connectAs(await sign({ sub: 'alice' }, right))).userId).toBe('alice');
      expect(await refusedStatus(await sign({ sub: 'a' }, { ...right, issuer: 'https://x' }))).toBe(
        401,
      );
      expect(await refusedStatus(await sign({ sub: 'a' }, { ...right, audience: 'other' }))).toBe(
        401,
      );
      expect(await refusedStatus(await sign({ sub: 'a' }))).toBe(401);
    });
  });

  describe('with JWT_PUBLIC_KEY', () => {
    it.each(['RS256', 'ES256'])('accepts %s tokens of the key and nothing else', async (alg) => {
      const pair = await generateKeyPair(alg);
      const pem = await exportSPKI(pair.publicKey);
      await start({ AUTH_MODE: 'jwt', JWT_PUBLIC_KEY: pem });
      const alice = await connectAs(await sign({ sub: 'alice' }, { alg, key: pair.privateKey }));
      expect(alice.userId).toBe('alice');
      const stranger = await generateKeyPair(alg);
      expect(await refusedStatus(await sign({ sub: 'a' }, { alg, key: stranger.privateKey }))).toBe(
        401,
      );
      // HS256 keyed with the public key's own text: the algorithm is pinned, so no.
      const confused = await sign({ sub: 'a' }, { key: new TextEncoder().encode(pem) });
      expect(await refusedStatus(confused)).toBe(401);
      expect(await refusedStatus(await sign({ sub: 'a' }))).toBe(401);
    });
  });

  describe('with JWT_JWKS_FILE', () => {
    let dir: string;

    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'gms-jwks-e2e-'));
    });

    afterEach(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('picks the key by kid among two', async () => {
      const rsa = await generateKeyPair('RS256', { extractable: true });
      const ec = await generateKeyPair('ES256', { extractable: true });
      const file = join(dir, 'jwks.json');
      await writeFile(
        file,
        JSON.stringify({
          keys: [
            { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-2025', alg: 'RS256', use: 'sig' },
            { ...(await exportJWK(ec.publicKey)), kid: 'ec-2025', alg: 'ES256', use: 'sig' },
          ],
        }),
      );
      await start({ AUTH_MODE: 'jwt', JWT_JWKS_FILE: file });
      const alice = await connectAs(
        await sign({ sub: 'alice' }, { alg: 'RS256', kid: 'rsa-2025', key: rsa.privateKey }),
      );
      const bob = await connectAs(
        await sign({ sub: 'bob' }, { alg: 'ES256', kid: 'ec-2025', key: ec.privateKey }),
      );
      expect([alice.userId, bob.userId]).toEqual(['alice', 'bob']);
      const unknownKid = await sign(
        { sub: 'carol' },
        { alg: 'ES256', kid: 'ec-2024', key: ec.privateKey },
      );
      expect(await refusedStatus(unknownKid)).toBe(401);
      const expired = await sign(
        { sub: 'carol' },
        { alg: 'ES256', kid: 'ec-2025', key: ec.privateKey, expiresIn: -60 },
      );
      expect(await refusedStatus(expired)).toBe(401);
    });
  });
});

// One in-process server, also in the cluster project: Redis clients made before the failing
// provider would outlive a boot that never returns an app to close.
describe('a bad JWT key source stops the boot', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gms-jwt-boot-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('names JWT_PUBLIC_KEY for a value that is not a PEM public key', async () => {
    await expect(
      startTestServer({ AUTH_MODE: 'jwt', JWT_PUBLIC_KEY: 'nope', DATA_DIR: dir }),
    ).rejects.toThrow(/JWT_PUBLIC_KEY: not a PEM public key/);
  });

  it('names JWT_JWKS_FILE and the key for an RSA key under 2048 bits, quoting no key', async () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const jwk = publicKey.export({ format: 'jwk' });
    const file = join(dir, 'jwks.json');
    await writeFile(file, JSON.stringify({ keys: [{ ...jwk, kid: 'short-1', alg: 'RS256' }] }));
    const boot = startTestServer({ AUTH_MODE: 'jwt', JWT_JWKS_FILE: file, DATA_DIR: dir });
    const error = (await boot.then(
      (server) => server.close().then(() => new Error('the boot was not refused')),
      (refusal: unknown) => refusal,
    )) as Error;
    expect(error.message).toMatch(
      /JWT_JWKS_FILE: key 0 \(kid short-1\): an RSA key needs at least 2048 bits/,
    );
    expect(error.message).not.toContain(jwk.n);
  });

  it('names JWT_JWKS_FILE for a file that cannot be read', async () => {
    const file = join(dir, 'missing.json');
    await expect(
      startTestServer({ AUTH_MODE: 'jwt', JWT_JWKS_FILE: file, DATA_DIR: dir }),
    ).rejects.toThrow(/JWT_JWKS_FILE: cannot read/);
  });
});

describe('refresh_token without AUTH_MODE=jwt', () => {
  const fixture = useTestServer();

  it('answers FORBIDDEN', async () => {
    const alice = await fixture.connect('alice');
    const error = await alice.error(alice.request('refresh_token', { token: 'x.y.z' }));
    expect(error).toMatchObject({
      code: 'FORBIDDEN',
      message: 'refresh_token needs AUTH_MODE=jwt',
    });
  });
});
