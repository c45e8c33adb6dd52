import { redactedUrl } from './redis-connection.js';

describe('redactedUrl', () => {
  it('hides the password before the host and keeps the rest', () => {
    expect(redactedUrl('redis://admin:hunter2@redis.internal:6380/2')).toBe(
      'redis://admin:***@redis.internal:6380/2',
    );
  });

  it('hides a password given in the query, as ioredis reads it there too', () => {
    const shown = redactedUrl('rediss://redis:6379/?password=hunter2&sentinelPassword=s3&db=1');
    expect(shown).not.toContain('hunter2');
    expect(shown).not.toContain('s3&');
    expect(new URL(shown).searchParams.get('password')).toBe('***');
    expect(new URL(shown).searchParams.get('sentinelPassword')).toBe('***');
    expect(new URL(shown).searchParams.get('db')).toBe('1');
  });

  it('leaves a URL without a password as it was', () => {
    expect(redactedUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
  });
});
