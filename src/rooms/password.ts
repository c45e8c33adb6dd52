import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Room passwords are kept as salted SHA-256 and compared in constant time. */
export function hashPassword(password: string): string {
  const salt = randomBytes(16).toString('hex');
  return `${salt}:${digest(salt, password)}`;
}

export function verifyPassword(password: string | undefined, stored: string): boolean {
  const [salt, expected] = stored.split(':');
  if (password === undefined || !salt || !expected) {
    return false;
  }
  return timingSafeEqual(Buffer.from(digest(salt, password), 'hex'), Buffer.from(expected, 'hex'));
}

function digest(salt: string, password: string): string {
  return createHash('sha256').update(salt).update(password).digest('hex');
}
