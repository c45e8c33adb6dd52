import 'reflect-metadata';
import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
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
import { loadAppConfig } from '../config/app.config.js';
import { ConfigValidationError } from '../config/environment.js';
import { ApiKeyService } from './api-key.service.js';
import { AuthService, type AuthResult } from './auth.service.js';
import { bearerTokenOf } from './bearer-token.js';
import type { Identity } from './identity.js';
import { InvalidTokenError } from './invalid-token.error.js';

const SECRET = 'unit-test-secret-of-at-least-32-characters';
const ADDRESS = '203.0.113.7';

function serviceFor(env: Record<string, string>): AuthService {
  const config = loadAppConfig(env);
  return new AuthService(config, new ApiKeyService(config));
}

function request(url: string, headers: Record<string, string> = {}): IncomingMessage {
  return { url, headers } as unknown as IncomingMessage;
}

async function hs256(claims: JWTPayload, options: { secret?: string; exp?: number } = {}) {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt();
  if (options.exp !== undefined) {
    jwt.setExpirationTime(options.exp);
  }
  return jwt.sign(new TextEncoder().encode(options.secret ?? SECRET));
}

const nowS = () => Math.floor(Date.now() / 1000);

function refused(result: AuthResult): { status: number; message: string } {
  if (result.ok) {
    throw new Error(`expected a refusal, got ${JSON.stringify(result.identity)}`);
  }
  return { status: result.status, message: result.message };
}

function accepted(result: AuthResult): Identity {
  if (!result.ok) {
    throw new Error(`expected acceptance, got ${result.status} ${result.message}`);
  }
  return result.identity;
}

function bootError(env: Record<string, string>): string {
  try {
    serviceFor(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigValidationError);
    return (error as ConfigValidationError).message;
  }
  throw new Error('the service was expected to refuse its configuration');
}

beforeAll(() => {
  Logger.overrideLogger(false);
});

describe('bearerTokenOf', () => {
  it('reads ?token=', () => {
    expect(bearerTokenOf(request('/?userId=a&token=abc.def.ghi'))).toBe('abc.def.ghi');
  });

  it('reads Authorization: Bearer, whatever the case of the scheme', () => {
    expect(bearerTokenOf(request('/', { authorization: 'Bearer abc.def' }))).toBe('abc.def');
    expect(bearerTokenOf(request('/', { authorization: 'bearer abc.def' }))).toBe('abc.def');
  });

  it('ignores another Authorization scheme', () => {
    expect(bearerTokenOf(request('/', { authorization: 'Basic abc' }))).toBeUndefined();
  });

  it('reads a bearer.<token> entry of Sec-WebSocket-Protocol, wherever it is in the list', () => {
    const offered = (value: string) => request('/', { 'sec-websocket-protocol': value });
    expect(bearerTokenOf(offered('gallery, bearer.abc.def'))).toBe('abc.def');
    expect(bearerTokenOf(offered('bearer.xyz,gallery'))).toBe('xyz');
    expect(bearerTokenOf(offered('gallery'))).toBeUndefined();
    expect(bearerTokenOf(offered('bearer.'))).toBeUndefined();
  });

  it('prefers ?token= over the header, and the header over the subprotocol', () => {
    const headers = { authorization: 'Bearer header', 'sec-websocket-protocol': 'bearer.proto' };
    expect(bearerTokenOf(request('/?token=query', headers))).toBe('query');
    expect(bearerTokenOf(request('/', headers))).toBe('header');
  });

  it('finds nothing in a request without a token', () => {
    expect(bearerTokenOf(request('/?userId=alice'))).toBeUndefined();
  });
});

describe('AuthService with AUTH_MODE=jwt and JWT_SECRET', () => {
  const auth = serviceFor({ AUTH_MODE: 'jwt', JWT_SECRET: SECRET });
  const connect = (url: string, headers?: Record<string, string>) =>
    auth.authenticate(request(url, headers), ADDRESS);

  it('accepts a valid token and remembers the identity for the request', async () => {
    const upgrade = request(`/?token=${await hs256({ sub: 'alice' })}`);
    const identity = accepted(await auth.authenticate(upgrade, ADDRESS));
    expect(identity).toEqual({
      userId: 'alice',
      verified: true,
      mayCreateRooms: true,
      admin: false,
      address: ADDRESS,
    });
    expect(auth.identityOf(upgrade)).toBe(identity);
    expect(auth.identityOf(request('/'))).toBeUndefined();
  });

  it('takes the token from each of the three places', async () => {
    const token = await hs256({ sub: 'alice' });
    expect(accepted(await connect(`/?token=${token}`)).userId).toBe('alice');
    expect(accepted(await connect('/', { authorization: `Bearer ${token}` })).userId).toBe('alice');
    const protocols = { 'sec-websocket-protocol': `gallery, bearer.${token}` };
    expect(accepted(await connect('/', protocols)).userId).toBe('alice');
  });

  it('reads the optional claims', async () => {
    const exp = nowS() + 60;
    const token = await hs256(
      {
        sub: 'alice',
        name: 'Alice A.',
        rooms: { 'room-1': 'viewer', constructor: 'editor' },
        createRooms: false,
        admin: true,
      },
      { exp },
    );
    const identity = accepted(await connect(`/?token=${token}`));
    expect(identity).toMatchObject({
      userId: 'alice',
      name: 'Alice A.',
      mayCreateRooms: false,
      admin: true,
      expiresAt: exp * 1000,
    });
    expect({ ...identity.roomRoles }).toEqual({ 'room-1': 'viewer', constructor: 'editor' });
    expect(identity.roomRoles?.toString).toBeUndefined();
  });

  it('accepts ?userId= equal to sub, and refuses another with 403', async () => {
    const token = await hs256({ sub: 'alice' });
    expect(accepted(await connect(`/?userId=alice&token=${token}`)).userId).toBe('alice');
    expect(refused(await connect(`/?userId=bob&token=${token}`))).toEqual({
      status: 403,
      message: 'userId does not match the token',
    });
  });

  it.each<[string, () => Promise<string>, RegExp]>([
    ['no token', () => Promise.resolve(''), /token is required/],
    ['a token that is not a JWT', () => Promise.resolve('not-a-jwt'), /Invalid token/],
    [
      'a token signed with another secret',
      () => hs256({ sub: 'alice' }, { secret: 'another-secret-of-at-least-32-characters' }),
      /signature verification failed/,
    ],
    [
      'an expired token (beyond the 5 s tolerance)',
      () => hs256({ sub: 'alice' }, { exp: nowS() - 10 }),
      /token expired/,
    ],
    [
      'a token not valid yet',
      () =>
        new SignJWT({ sub: 'alice' })
          .setProtectedHeader({ alg: 'HS256' })
          .setNotBefore(nowS() + 60)
          .sign(new TextEncoder().encode(SECRET)),
      /nbf/,
    ],
    [
      'an unsigned token (alg none)',
      () =>
        Promise.resolve(
          `${Buffer.from('{"alg":"none"}').toString('base64url')}.` +
            `${Buffer.from('{"sub":"alice"}').toString('base64url')}.`,
        ),
      /Invalid token/,
    ],
    ['a token without sub', () => hs256({}), /"sub" claim/],
    ['a sub that is not a userId', () => hs256({ sub: 'a b' }), /"sub" claim/],
    ['a name that is too long', () => hs256({ sub: 'a', name: 'n'.repeat(65) }), /"name"/],
    ['a name that is not a string', () => hs256({ sub: 'a', name: 7 }), /"name"/],
    ['rooms that is a list', () => hs256({ sub: 'a', rooms: ['r'] }), /"rooms"/],
    ['rooms with an unknown role', () => hs256({ sub: 'a', rooms: { r: 'owner' } }), /"rooms"/],
    ['rooms with a bad room id', () => hs256({ sub: 'a', rooms: { 'a b': 'host' } }), /"rooms"/],
    ['createRooms that is a string', () => hs256({ sub: 'a', createRooms: 'no' }), /createRooms/],
    ['admin that is a string', () => hs256({ sub: 'a', admin: 'yes' }), /"admin"/],
  ])('refuses %s with 401', async (_what, makeToken, message) => {
    const token = await makeToken();
    const result = refused(await connect(token ? `/?token=${token}` : '/'));
    expect(result.status).toBe(401);
    expect(result.message).toMatch(message);
    expect(result.message).not.toContain(token || '\u0000');
  });

  it('accepts a token that expired within the 5 s clock tolerance', async () => {
    const token = await hs256({ sub: 'alice' }, { exp: nowS() - 2 });
    expect(accepted(await connect(`/?token=${token}`)).userId).toBe('alice');
  });

  it('refuses a token longer than 8192 characters', async () => {
    const token = await hs256({ sub: 'alice', padding: 'x'.repeat(8200) });
    expect(refused(await connect(`/?token=${token}`))).toMatchObject({ status: 401 });
  });

  describe('refresh', () => {
    const current: Identity = {
      userId: 'alice',
      verified: true,
      mayCreateRooms: true,
      admin: false,
      address: ADDRESS,
    };

    it('gives the new claims for the same sub', async () => {
      const exp = nowS() + 600;
      const token = await hs256({ sub: 'alice', createRooms: false }, { exp });
      expect(await auth.refresh(current, token)).toEqual({
        userId: 'alice',
        verified: true,
        mayCreateRooms: false,
        admin: false,
        expiresAt: exp * 1000,
        address: ADDRESS,
      });
    });

    it('refuses a token for another sub, an invalid one, and one without exp', async () => {
      const other = await hs256({ sub: 'mallory' }, { exp: nowS() + 600 });
      await expect(auth.refresh(current, other)).rejects.toThrow('the token is for another user');
      await expect(auth.refresh(current, 'garbage')).rejects.toBeInstanceOf(InvalidTokenError);
      const forever = await hs256({ sub: 'alice' });
      await expect(auth.refresh(current, forever)).rejects.toThrow(/exp/);
    });
  });

  describe('isAdmin', () => {
    it('is true for a token with admin: true, as Bearer or ?token=', async () => {
      const token = await hs256({ sub: 'ops', admin: true });
      expect(await auth.isAdmin(request('/stats', { authorization: `Bearer ${token}` }))).toBe(
        true,
      );
      expect(await auth.isAdmin(request(`/stats?token=${token}`))).toBe(true);
    });

    it('is false for a token without admin, a bad token, or none', async () => {
      const token = await hs256({ sub: 'alice' });
      expect(await auth.isAdmin(request(`/stats?token=${token}`))).toBe(false);
      expect(await auth.isAdmin(request('/stats?token=garbage'))).toBe(false);
      expect(await auth.isAdmin(request('/stats'))).toBe(false);
    });
  });
});

describe('AuthService with AUTH_MODE=jwt and API_KEY', () => {
  it('treats the API key as admin for HTTP', async () => {
    const auth = serviceFor({ AUTH_MODE: 'jwt', JWT_SECRET: SECRET, API_KEY: 'ops-key' });
    expect(await auth.isAdmin(request('/stats', { 'x-api-key': 'ops-key' }))).toBe(true);
    expect(await auth.isAdmin(request('/stats', { 'x-api-key': 'wrong' }))).toBe(false);
  });
});

describe('AuthService with AUTH_MODE=jwt and JWT_ISSUER, JWT_AUDIENCE', () => {
  const auth = serviceFor({
    AUTH_MODE: 'jwt',
    JWT_SECRET: SECRET,
    JWT_ISSUER: 'https://id.example.com',
    JWT_AUDIENCE: 'gallery',
  });
  const sign = (issuer: string, audience: string) =>
    new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(issuer)
      .setAudience(audience)
      .sign(new TextEncoder().encode(SECRET));

  it('accepts the right issuer and audience', async () => {
    const token = await sign('https://id.example.com', 'gallery');
    expect(accepted(await auth.authenticate(request(`/?token=${token}`), ADDRESS)).userId).toBe(
      'alice',
    );
  });

  it('refuses a wrong issuer or audience with 401', async () => {
    for (const token of [
      await sign('https://evil.example.com', 'gallery'),
      await sign('https://id.example.com', 'other-app'),
    ]) {
      const result = refused(await auth.authenticate(request(`/?token=${token}`), ADDRESS));
      expect(result.status).toBe(401);
      expect(result.message).toMatch(/"iss"|"aud"/);
    }
  });
});

describe('AuthService with AUTH_MODE=jwt and JWT_PUBLIC_KEY', () => {
  let rsa: { privateKey: CryptoKey; publicKey: CryptoKey };
  let ec: { privateKey: CryptoKey; publicKey: CryptoKey };

  beforeAll(async () => {
    rsa = await generateKeyPair('RS256');
    ec = await generateKeyPair('ES256');
  });

  const sign = (alg: string, key: CryptoKey | Uint8Array) =>
    new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg }).sign(key);

  it('pins RS256 for an RSA key', async () => {
    const auth = serviceFor({ AUTH_MODE: 'jwt', JWT_PUBLIC_KEY: await exportSPKI(rsa.publicKey) });
    const good = await sign('RS256', rsa.privateKey);
    expect(accepted(await auth.authenticate(request(`/?token=${good}`), ADDRESS)).userId).toBe(
      'alice',
    );
    // The classic confusion: an HMAC keyed with the public key's text.
    const pem = await exportSPKI(rsa.publicKey);
    const confused = await sign('HS256', new TextEncoder().encode(pem));
    expect(refused(await auth.authenticate(request(`/?token=${confused}`), ADDRESS))).toEqual({
      status: 401,
      message: expect.stringMatching(/alg/) as string,
    });
  });

  it('pins ES256 for a P-256 key, with \\n escapes read as newlines', async () => {
    const pem = (await exportSPKI(ec.publicKey)).replace(/\n/g, '\\n');
    const auth = serviceFor({ AUTH_MODE: 'jwt', JWT_PUBLIC_KEY: pem });
    const good = await sign('ES256', ec.privateKey);
    expect(accepted(await auth.authenticate(request(`/?token=${good}`), ADDRESS)).userId).toBe(
      'alice',
    );
    const rsaSigned = await sign('RS256', rsa.privateKey);
    expect(refused(await auth.authenticate(request(`/?token=${rsaSigned}`), ADDRESS)).status).toBe(
      401,
    );
  });

  it('stops the boot for a value that is not a PEM public key', () => {
    expect(bootError({ AUTH_MODE: 'jwt', JWT_PUBLIC_KEY: 'not a key' })).toMatch(
      /JWT_PUBLIC_KEY: not a PEM public key/,
    );
  });

  it('stops the boot for a private key, without quoting it', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    const message = bootError({ AUTH_MODE: 'jwt', JWT_PUBLIC_KEY: pem });
    expect(message).toMatch(/JWT_PUBLIC_KEY: is a private key/);
    expect(message).not.toContain(pem.split('\n')[1]);
  });

  it('stops the boot for a key type we do not pin (Ed25519, P-384, short RSA)', () => {
    const pemOf = (pair: { publicKey: { export(o: object): string | Buffer } }) =>
      pair.publicKey.export({ format: 'pem', type: 'spki' }) as string;
    for (const pair of [
      generateKeyPairSync('ed25519'),
      generateKeyPairSync('ec', { namedCurve: 'secp384r1' }),
      generateKeyPairSync('rsa', { modulusLength: 1024 }),
    ]) {
      expect(bootError({ AUTH_MODE: 'jwt', JWT_PUBLIC_KEY: pemOf(pair) })).toMatch(
        /JWT_PUBLIC_KEY: .*(not supported|at least 2048)/,
      );
    }
  });
});

describe('AuthService with AUTH_MODE=jwt and JWT_JWKS_FILE', () => {
  let dir: string;
  let rsa: { privateKey: CryptoKey; publicKey: CryptoKey };
  let ec: { privateKey: CryptoKey; publicKey: CryptoKey };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gms-jwks-'));
    rsa = await generateKeyPair('RS256', { extractable: true });
    ec = await generateKeyPair('ES256', { extractable: true });
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const writeJwks = (name: string, content: unknown) => {
    const file = join(dir, name);
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    return file;
  };

  it('picks the key by kid', async () => {
    const file = writeJwks('two.json', {
      keys: [
        { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
        { ...(await exportJWK(ec.publicKey)), kid: 'ec-1' },
      ],
    });
    const auth = serviceFor({ AUTH_MODE: 'jwt', JWT_JWKS_FILE: file });
    for (const [alg, kid, key] of [
      ['RS256', 'rsa-1', rsa.privateKey],
      ['ES256', 'ec-1', ec.privateKey],
    ] as const) {
      const token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg, kid }).sign(key);
      expect(accepted(await auth.authenticate(request(`/?token=${token}`), ADDRESS)).userId).toBe(
        'alice',
      );
    }
    const wrongKid = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'ES256', kid: 'rsa-1' })
      .sign(ec.privateKey);
    expect(refused(await auth.authenticate(request(`/?token=${wrongKid}`), ADDRESS))).toEqual({
      status: 401,
      message: expect.stringMatching(/no key in JWT_JWKS_FILE/) as string,
    });
  });

  it.each<[string, () => Promise<unknown>, RegExp]>([
    ['a file that is not JSON', () => Promise.resolve('{ nope'), /is not valid JSON/],
    ['a file without keys', () => Promise.resolve({ keys: [] }), /non-empty "keys" array/],
    [
      'a private key',
      async () => ({ keys: [await exportJWK(ec.privateKey)] }),
      /key 0 is a private key/,
    ],
    [
      'a secret',
      () => Promise.resolve({ keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 's' }] }),
      /key 0 \(kid s\) is a secret/,
    ],
    [
      'a broken public key',
      () => Promise.resolve({ keys: [{ kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' }] }),
      /key 0 is not a valid public key/,
    ],
  ])('stops the boot for %s', async (_what, content, message) => {
    const file = writeJwks('bad.json', await content());
    expect(bootError({ AUTH_MODE: 'jwt', JWT_JWKS_FILE: file })).toMatch(
      new RegExp(`JWT_JWKS_FILE: .*${message.source}`),
    );
  });

  it('stops the boot for a file that cannot be read', () => {
    expect(bootError({ AUTH_MODE: 'jwt', JWT_JWKS_FILE: join(dir, 'missing.json') })).toMatch(
      /JWT_JWKS_FILE: cannot read/,
    );
  });
});

describe('AuthService boot warning', () => {
  const warnings = (env: Record<string, string>) => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      serviceFor(env).onModuleInit();
      return warn.mock.calls.map(([message]) => String(message));
    } finally {
      warn.mockRestore();
    }
  };

  it('warns loudly with AUTH_MODE=none on an address other than loopback', () => {
    expect(warnings({ HOST: '0.0.0.0' })).toEqual([expect.stringMatching(/AUTH_MODE=none/)]);
  });

  it.each(['127.0.0.1', '::1', 'localhost'])('stays quiet on %s', (host) => {
    expect(warnings({ HOST: host })).toEqual([]);
  });

  it('stays quiet with AUTH_MODE=jwt', () => {
    expect(warnings({ AUTH_MODE: 'jwt', JWT_SECRET: SECRET })).toEqual([]);
  });
});

describe('AuthService without JWT', () => {
  it('AUTH_MODE=none: the declared userId, unverified', async () => {
    const auth = serviceFor({});
    expect(accepted(await auth.authenticate(request('/?userId=alice'), ADDRESS))).toEqual({
      userId: 'alice',
      verified: false,
      mayCreateRooms: true,
      admin: false,
      address: ADDRESS,
    });
    expect(accepted(await auth.authenticate(request('/'), ADDRESS)).userId).toBeUndefined();
    expect(refused(await auth.authenticate(request('/?userId=a%20b'), ADDRESS))).toEqual({
      status: 400,
      message: 'userId must be 1-64 characters of [A-Za-z0-9._-]',
    });
  });

  it('AUTH_MODE=api-key: 401 without the key, the declared userId with it', async () => {
    const auth = serviceFor({ AUTH_MODE: 'api-key', API_KEY: 'k3y' });
    expect(refused(await auth.authenticate(request('/?userId=alice'), ADDRESS)).status).toBe(401);
    const identity = accepted(
      await auth.authenticate(request('/?userId=alice&apiKey=k3y'), ADDRESS),
    );
    expect(identity).toMatchObject({ userId: 'alice', verified: false });
    expect(await auth.isAdmin(request('/stats', { 'x-api-key': 'k3y' }))).toBe(true);
    expect(await auth.isAdmin(request('/stats'))).toBe(false);
  });

  it('refuses a token in refresh', async () => {
    const identity = { verified: false, mayCreateRooms: true, admin: false, address: ADDRESS };
    await expect(serviceFor({}).refresh(identity, 'x')).rejects.toBeInstanceOf(InvalidTokenError);
  });
});
