import { createHash } from 'node:crypto';
import { limitPasswordHashing, passwordHashingStats } from './password-hashing.js';
import { hashPassword, verifyPassword } from './password.js';

/** A hash as the server wrote them before scrypt: salted SHA-256, `<salt hex>:<digest hex>`. */
function legacyHash(password: string, salt = '0123456789abcdef0123456789abcdef'): string {
  return `${salt}:${createHash('sha256').update(salt).update(password).digest('hex')}`;
}

describe('room passwords', () => {
  it('hashes with scrypt (N=16384, r=8, p=1), a 16-byte salt and a 32-byte key', async () => {
    const hash = await hashPassword('s3cret');
    const [scheme, n, r, p, salt, key, ...rest] = hash.split('$');
    expect([scheme, n, r, p]).toEqual(['scrypt', '16384', '8', '1']);
    expect(Buffer.from(salt, 'base64')).toHaveLength(16);
    expect(Buffer.from(key, 'base64')).toHaveLength(32);
    expect(rest).toEqual([]);
    expect(hash).not.toContain('s3cret');
  });

  it('verifies the password it hashed, and nothing else', async () => {
    const hash = await hashPassword('s3cret');
    expect(await verifyPassword('s3cret', hash)).toBe(true);
    expect(await verifyPassword('s3cret ', hash)).toBe(false);
    expect(await verifyPassword('S3cret', hash)).toBe(false);
    expect(await verifyPassword('', hash)).toBe(false);
    expect(await verifyPassword(undefined, hash)).toBe(false);
  });

  it('salts every hash: the same password hashes differently each time', async () => {
    const [first, second] = await Promise.all([hashPassword('pw'), hashPassword('pw')]);
    expect(first).not.toBe(second);
    expect(await verifyPassword('pw', first)).toBe(true);
    expect(await verifyPassword('pw', second)).toBe(true);
  });

  it('hashes an empty or a non-ASCII password like any other', async () => {
    const empty = await hashPassword('');
    expect(await verifyPassword('', empty)).toBe(true);
    expect(await verifyPassword(undefined, empty)).toBe(false);
    const accented = await hashPassword('caf\u00e9 \u{1f510}');
    expect(await verifyPassword('caf\u00e9 \u{1f510}', accented)).toBe(true);
    // the same text, its accent composed differently
    expect(await verifyPassword('cafe\u0301 \u{1f510}', accented)).toBe(true);
  });

  it('still verifies the salted SHA-256 hashes written before (rooms on disk and in Redis)', async () => {
    const hash = legacyHash('old secret');
    expect(await verifyPassword('old secret', hash)).toBe(true);
    expect(await verifyPassword('wrong', hash)).toBe(false);
    expect(await verifyPassword(undefined, hash)).toBe(false);
  });

  it.each([
    ['an empty string', ''],
    ['garbage', 'not a hash'],
    ['a truncated legacy hash', legacyHash('pw').slice(0, 40)],
    ['an unknown scheme', 'bcrypt$10$abc'],
    ['an scrypt hash with an absurd cost', 'scrypt$1073741824$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA'],
    [
      'an scrypt hash whose N is not a power of two',
      'scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA',
    ],
  ])('matches nothing against %s', async (_label, stored) => {
    expect(await verifyPassword('pw', stored)).toBe(false);
  });
});

describe('the bound on password hashes at once (PASSWORD_HASH_CONCURRENCY, _QUEUE)', () => {
  afterEach(() => limitPasswordHashing({ concurrency: 2, queue: 64 }));

  it('runs at most so many scrypts at once, lets so many wait, and refuses the next', async () => {
    const hash = await hashPassword('pw');
    limitPasswordHashing({ concurrency: 1, queue: 2 });
    const before = passwordHashingStats();
    const checks = [1, 2, 3].map(() => verifyPassword('pw', hash));
    expect(passwordHashingStats()).toMatchObject({ running: 1, waiting: 2 });

    const refused = await verifyPassword('pw', hash).catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'UNAVAILABLE' });
    await expect(hashPassword('new')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    // What needs no scrypt takes no place.
    expect(await verifyPassword(undefined, hash)).toBe(false);
    expect(await verifyPassword('old secret', legacyHash('old secret'))).toBe(true);

    expect(await Promise.all(checks)).toEqual([true, true, true]);
    expect(passwordHashingStats()).toMatchObject({
      running: 0,
      waiting: 0,
      started: before.started + 3,
      refused: before.refused + 2,
    });
  });
});
