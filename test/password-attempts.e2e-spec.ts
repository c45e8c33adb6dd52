// Guessing a room password: after PASSWORD_MAX_FAILURES wrong ones within the window, a client
// (its address, or its verified userId) is refused at once for that room, without a hash, while
// everyone else still gets in; and the process checks only so many passwords at a time.
import { SignJWT } from 'jose';
import { passwordHashingStats } from '../src/rooms/password-hashing.js';
import { ClientPool, replyOf, useTestServer } from './support/fixtures.js';
import { delay, type TestClient } from './support/test-client.js';

const SECRET = 'e2e-jwt-secret-of-at-least-32-characters';
const WINDOW_MS = 1500;
/** Three wrong passwords per window; the address comes from X-Forwarded-For (we are the proxy). */
const BACKOFF = {
  TRUST_PROXY: '127.0.0.1',
  PASSWORD_MAX_FAILURES: '3',
  PASSWORD_FAILURE_WINDOW_MS: String(WINDOW_MS),
};

const from = (address: string) => ({ headers: { 'x-forwarded-for': address } });

/** The error `client` gets for a join_room of `roomId` with `password`, with its requestId. */
async function joinRefusal(client: TestClient, roomId: string, password: string) {
  const requestId = client.request('join_room', { roomId, password });
  const error = await client.error(requestId);
  expect(error.requestId).toBe(requestId);
  return error;
}

/** Scrypt derivations this process has started (hashes and checks): they cost ~60 ms each. */
const hashesSoFar = () => passwordHashingStats().started;

// The backoff is kept per instance (docs/security.md): every client here goes to the first
// instance (`fixture.server`), also in the cluster project, whose store then checks the password
// against the room's hash in Redis.
describe('room password guessing', () => {
  const pool = new ClientPool();
  // Declared before the fixture's own, so the clients close before their server does.
  afterEach(() => pool.closeAll());
  const fixture = useTestServer({ lazy: true });

  const connect = (userId: string, options: { headers?: Record<string, string> } = {}) =>
    pool.connect(fixture.server.wsUrl, { ...options, userId });

  /** A room `vault` with the password `right`, its host in it. */
  const vault = async (host: TestClient) => {
    const created = host.request('create_room', { roomId: 'vault', config: { password: 'right' } });
    await replyOf(host, created, 'room_created');
    await host.join('vault', { password: 'right' });
  };

  it('refuses an address past PASSWORD_MAX_FAILURES at once, and only for that room', async () => {
    await fixture.start(BACKOFF);
    await vault(await connect('host', from('198.51.100.1')));
    const mallory = await connect('mallory', from('203.0.113.66'));
    for (const guess of ['guess-1', 'guess-2', 'guess-3']) {
      expect(await joinRefusal(mallory, 'vault', guess)).toMatchObject({
        code: 'INVALID_PASSWORD',
      });
    }

    const hashes = hashesSoFar();
    // Even the right password: while refused, nothing is checked, so nothing can be learnt.
    for (const guess of ['guess-4', 'right']) {
      const refused = await joinRefusal(mallory, 'vault', guess);
      expect(refused).toMatchObject({ code: 'RATE_LIMITED' });
      expect(refused.retryAfterMs).toBeGreaterThan(0);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(WINDOW_MS);
    }
    expect(hashesSoFar()).toBe(hashes);

    // Another address is not locked out, and mallory still gets into another room.
    const trent = await connect('trent', from('203.0.113.77'));
    expect((await trent.join('vault', { password: 'right' })).roomId).toBe('vault');
    expect((await mallory.join('lobby', { password: 'lobby-pw' })).roomId).toBe('lobby');
  });

  it('takes the right password again once the window has passed', async () => {
    await fixture.start(BACKOFF);
    await vault(await connect('host', from('198.51.100.1')));
    const mallory = await connect('mallory', from('203.0.113.66'));
    for (const guess of ['guess-1', 'guess-2', 'guess-3']) {
      await joinRefusal(mallory, 'vault', guess);
    }
    const refused = await joinRefusal(mallory, 'vault', 'right');
    expect(refused.code).toBe('RATE_LIMITED');

    await delay((refused.retryAfterMs ?? WINDOW_MS) + 50);
    expect((await mallory.join('vault', { password: 'right' })).roomId).toBe('vault');
  });

  it('keys a verified user by userId: others behind the same address still get in', async () => {
    await fixture.start({ ...BACKOFF, AUTH_MODE: 'jwt', JWT_SECRET: SECRET });
    const sign = (sub: string) =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(sub)
        .sign(new TextEncoder().encode(SECRET));
    const as = async (sub: string) =>
      pool.connect(fixture.server.wsUrl, {
        headers: { authorization: `Bearer ${await sign(sub)}` },
      });
    await vault(await as('host'));
    const eve = await as('eve');
    for (const guess of ['guess-1', 'guess-2', 'guess-3']) {
      await joinRefusal(eve, 'vault', guess);
    }
    expect((await joinRefusal(eve, 'vault', 'guess-4')).code).toBe('RATE_LIMITED');

    const bob = await as('bob');
    expect((await bob.join('vault', { password: 'right' })).roomId).toBe('vault');
  });

  it('refuses a check past PASSWORD_HASH_QUEUE with UNAVAILABLE, not queueing it', async () => {
    await fixture.start({
      PASSWORD_MAX_FAILURES: '0',
      PASSWORD_HASH_CONCURRENCY: '1',
      PASSWORD_HASH_QUEUE: '0',
    });
    await vault(await connect('host'));
    // Sent together: one is checked (~60 ms), the ones arriving meanwhile find no place.
    const guessers = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => connect(`guesser-${n}`)));
    const requests = guessers.map((client) => ({
      client,
      requestId: client.request('join_room', { roomId: 'vault', password: 'wrong' }),
    }));
    const errors = await Promise.all(
      requests.map(({ client, requestId }) => client.error(requestId)),
    );
    const codes = errors.map((error) => error.code);
    expect(codes).toContain('INVALID_PASSWORD');
    expect(codes).toContain('UNAVAILABLE');
    expect(errors.every((error, i) => error.requestId === requests[i].requestId)).toBe(true);
  });
});
