import { TokenBucket } from './token-bucket.js';

describe('TokenBucket', () => {
  it('gives the burst at once, then refuses with the wait until the next token', () => {
    const bucket = new TokenBucket(10, 3, 0);
    expect([bucket.take(1, 0), bucket.take(1, 0), bucket.take(1, 0)]).toEqual([0, 0, 0]);
    expect(bucket.take(1, 0)).toBe(100);
    expect(bucket.take(1, 50)).toBe(50);
    expect(bucket.take(1, 100)).toBe(0);
  });

  it('refills at the rate, never beyond the burst', () => {
    const bucket = new TokenBucket(10, 3, 0);
    expect(bucket.take(3, 0)).toBe(0);
    expect(bucket.take(3, 10_000)).toBe(0);
    expect(bucket.take(1, 10_000)).toBe(100);
  });

  it('charges a cost larger than one token, and says how long the rest takes', () => {
    const bucket = new TokenBucket(1000, 1000, 0);
    expect(bucket.take(600, 0)).toBe(0);
    expect(bucket.take(600, 0)).toBe(200);
    expect(bucket.take(600, 200)).toBe(0);
  });

  it('ignores a clock that goes backwards', () => {
    const bucket = new TokenBucket(10, 1, 1000);
    expect(bucket.take(1, 1000)).toBe(0);
    expect(bucket.take(1, 500)).toBe(100);
    expect(bucket.take(1, 1100)).toBe(0);
  });
});
