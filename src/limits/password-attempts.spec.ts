import {
  attemptKeyOf,
  PasswordAttempts,
  type AttemptOutcome,
  type AttemptReservation,
} from './password-attempts.js';

const LIMITS = { maxFailures: 3, windowMs: 1000 };

/** Reserves and settles one attempt at `now`; the reservation, for its refusal. */
function attempt(
  attempts: PasswordAttempts,
  key: string,
  now: number,
  outcome: AttemptOutcome = 'wrong',
): AttemptReservation {
  const reservation = attempts.reserve(key, now);
  if (reservation.ok) {
    reservation.settle(outcome);
  }
  return reservation;
}

describe('PasswordAttempts', () => {
  it('refuses a key after maxFailures wrong passwords until the window ends', () => {
    const attempts = new PasswordAttempts(LIMITS);
    expect([0, 10, 20].map((now) => attempt(attempts, 'a', now).ok)).toEqual([true, true, true]);
    expect(attempts.reserve('a', 400)).toEqual({ ok: false, retryAfterMs: 600 });
    expect(attempts.reserve('a', 999)).toEqual({ ok: false, retryAfterMs: 1 });
    expect(attempts.reserve('a', 1000).ok).toBe(true);
  });

  it('keeps keys apart: one client locked out leaves the others alone', () => {
    const attempts = new PasswordAttempts(LIMITS);
    for (const now of [0, 1, 2]) {
      attempt(attempts, 'mallory', now);
    }
    expect(attempts.reserve('mallory', 3).ok).toBe(false);
    expect(attempt(attempts, 'alice', 3, 'accepted').ok).toBe(true);
  });

  it('forgets the failures of a key whose password was then right', () => {
    const attempts = new PasswordAttempts(LIMITS);
    attempt(attempts, 'a', 0);
    attempt(attempts, 'a', 1);
    attempt(attempts, 'a', 2, 'accepted');
    expect(attempts.size()).toBe(0);
    for (const now of [3, 4]) {
      attempt(attempts, 'a', now);
    }
    expect(attempts.reserve('a', 5).ok).toBe(true);
  });

  it('counts attempts still running, so a burst cannot outrun the failures', () => {
    const attempts = new PasswordAttempts(LIMITS);
    const running = [0, 0, 0].map((now) => attempts.reserve('a', now));
    expect(running.every((reservation) => reservation.ok)).toBe(true);
    expect(attempts.reserve('a', 0).ok).toBe(false);
    // One ended without a verdict (the store was unavailable): its place comes back.
    if (running[0].ok) {
      running[0].settle('inconclusive');
      running[0].settle('wrong');
    }
    expect(attempt(attempts, 'a', 1).ok).toBe(true);
    expect(attempts.reserve('a', 2).ok).toBe(false);
  });

  it('keeps no entry for attempts that were neither wrong nor pending', () => {
    const attempts = new PasswordAttempts(LIMITS);
    attempt(attempts, 'a', 0, 'inconclusive');
    attempt(attempts, 'b', 0, 'accepted');
    expect(attempts.size()).toBe(0);
  });

  it('stays within maxEntries: expired entries go first, then the oldest', () => {
    const attempts = new PasswordAttempts({ ...LIMITS, maxEntries: 3 });
    attempt(attempts, 'old', 0);
    attempt(attempts, 'b', 500);
    attempt(attempts, 'c', 600);
    attempt(attempts, 'd', 1100); // 'old' expired at 1000
    expect(attempts.size()).toBe(3);
    attempt(attempts, 'e', 1200); // full of live entries: 'b', the oldest, goes
    expect(attempts.size()).toBe(3);
    for (const now of [1201, 1202]) {
      attempt(attempts, 'c', now);
    }
    expect(attempts.reserve('c', 1203).ok).toBe(false);
  });

  it('lets everything through with maxFailures 0', () => {
    const attempts = new PasswordAttempts({ maxFailures: 0, windowMs: 1000 });
    for (let now = 0; now < 100; now++) {
      expect(attempt(attempts, 'a', now).ok).toBe(true);
    }
    expect(attempts.size()).toBe(0);
  });
});

describe('attemptKeyOf', () => {
  it('keys a verified user by userId, whatever its address', () => {
    const key = (address: string) =>
      attemptKeyOf({ verified: true, userId: 'eve', address }, 'vault');
    expect(key('203.0.113.1')).toBe(key('198.51.100.2'));
    expect(key('203.0.113.1')).not.toBe(
      attemptKeyOf({ verified: true, userId: 'bob', address: '203.0.113.1' }, 'vault'),
    );
  });

  it('keys an unverified client by its address, whatever userId it declared', () => {
    const key = (userId: string) =>
      attemptKeyOf({ verified: false, userId, address: '203.0.113.1' }, 'vault');
    expect(key('eve')).toBe(key('eve-2'));
    expect(key('eve')).not.toBe(
      attemptKeyOf({ verified: false, userId: 'eve', address: '203.0.113.2' }, 'vault'),
    );
  });

  it('keys each room apart', () => {
    const client = { verified: false, address: '203.0.113.1' };
    expect(attemptKeyOf(client, 'a')).not.toBe(attemptKeyOf(client, 'b'));
  });

  it('counts an IPv6 /64 as one client', () => {
    const key = (address: string) => attemptKeyOf({ verified: false, address }, 'vault');
    expect(key('2001:db8:0:1::1')).toBe(key('2001:0db8:0000:0001:ffff:1:2:3'));
    expect(key('2001:db8:0:1::1')).not.toBe(key('2001:db8:0:2::1'));
  });
});
