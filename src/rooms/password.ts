import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { runPasswordHash } from './password-hashing.js';

/** scrypt cost: N (CPU and memory), r (block size), p (parallelism); about 16 MiB per hash. */
const COST = { N: 16384, r: 8, p: 1 } as const;
const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** Room for the cost above with headroom; a stored hash asking for more is refused. */
const MAX_MEMORY = 64 * 1024 * 1024;
const SCRYPT_HASH = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;
/** Hashes written before scrypt: `<salt hex>:<sha256(salt + password) hex>`. */
const LEGACY_HASH = /^([0-9a-f]+):([0-9a-f]{64})$/;

/**
 * A room password as `scrypt$N$r$p$<salt base64>$<key base64>`, with a fresh 16-byte salt: slow
 * on purpose, so that a leaked hash (a room file, a Redis dump) does not give the password away.
 * Rejects with UNAVAILABLE when too many hashes are waiting already (see password-hashing.ts).
 */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, KEY_BYTES, COST);
  return `scrypt$${COST.N}$${COST.r}$${COST.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/**
 * Whether `password` matches a stored hash, compared in constant time. Reads hashPassword's
 * format and the older salted SHA-256 one; anything else, or no password, never matches. An
 * scrypt check rejects with UNAVAILABLE when too many wait already (see password-hashing.ts).
 */
export async function verifyPassword(
  password: string | undefined,
  stored: string,
): Promise<boolean> {
  if (password === undefined) {
    return false;
  }
  const scrypted = SCRYPT_HASH.exec(stored);
  if (scrypted) {
    const [, n, r, p, salt, expected] = scrypted;
    const cost = { N: Number(n), r: Number(r), p: Number(p) };
    const expectedKey = Buffer.from(expected, 'base64');
    if (!isSaneCost(cost) || expectedKey.length === 0 || expectedKey.length > 64) {
      return false;
    }
    const key = await derive(password, Buffer.from(salt, 'base64'), expectedKey.length, cost);
    return timingSafeEqual(key, expectedKey);
  }
  const legacy = LEGACY_HASH.exec(stored);
  if (legacy) {
    const [, salt, expected] = legacy;
    const digest = createHash('sha256').update(salt).update(password).digest();
    return timingSafeEqual(digest, Buffer.from(expected, 'hex'));
  }
  return false;
}

function isSaneCost({ N, r, p }: { N: number; r: number; p: number }): boolean {
  // A power of two above 1, and within the memory bound scrypt checks anyway.
  return (
    N > 1 && (N & (N - 1)) === 0 && r >= 1 && p >= 1 && p <= 16 && 128 * N * r <= MAX_MEMORY / 2
  );
}

function derive(
  password: string,
  salt: Buffer,
  length: number,
  cost: { N: number; r: number; p: number },
): Promise<Buffer> {
  const options: ScryptOptions = { ...cost, maxmem: MAX_MEMORY };
  return runPasswordHash(
    () =>
      new Promise<Buffer>((resolve, reject) => {
        scrypt(password.normalize('NFC'), salt, length, options, (error, key) =>
          error ? reject(error) : resolve(key),
        );
      }),
  );
}
