import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { joinRequest, T0 } from '../../test/support/room-store-contract.js';
import { ROOM_STORE_REDIS_OPTIONS } from './redis-client-options.js';
import { RedisRoomStore } from './redis-room-store.js';

// Against a real Redis, and fails (never skips) without one, as redis-room-store.spec.ts.
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `gms-test-${process.pid}-${randomBytes(4).toString('hex')}:stale:`;
const GRACE_MS = 10_000;

/** Deletes this spec's keys (SCAN, never KEYS: the Redis is shared). */
async function deleteKeys(redis: Redis): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
    if (keys.length > 0) {
      await redis.del(...keys);
    }
    cursor = next;
  } while (cursor !== '0');
}

describe('RedisRoomStore.removeStale: a member on record here that no socket here holds', () => {
  let redis: Redis;
  let here: RedisRoomStore;
  let there: RedisRoomStore;

  beforeAll(async () => {
    redis = new Redis(REDIS_URL, {
      ...ROOM_STORE_REDIS_OPTIONS,
      disconnectTimeout: 100,
      lazyConnect: true,
    });
    redis.on('error', () => undefined);
    await redis.connect();
    here = new RedisRoomStore(redis, { keyPrefix: PREFIX, instanceId: 'here' });
    there = new RedisRoomStore(redis, { keyPrefix: PREFIX, instanceId: 'there' });
  });

  afterAll(() => {
    redis.disconnect();
  });

  beforeEach(async () => {
    await here.join(joinRequest('r', 'host'));
    await here.join(joinRequest('r', 'ghost'));
  });

  afterEach(() => deleteKeys(redis));

  it('removes it as a departure, handing the host role over', async () => {
    expect(await here.removeStale('r', 'host', T0 + 1, GRACE_MS)).toEqual({
      newHost: expect.objectContaining({ id: 'ghost', role: 'host' }),
      remaining: 1,
    });
    expect(await here.membersOf('here')).toEqual([{ roomId: 'r', userId: 'ghost' }]);
  });

  it('leaves it alone once it moved to another instance', async () => {
    await there.join(joinRequest('r', 'ghost', { restore: true }));
    expect(await here.removeStale('r', 'ghost', T0 + 1, GRACE_MS)).toBeUndefined();
    expect((await here.members('r')).map((user) => user.id)).toEqual(['host', 'ghost']);
  });

  it('leaves a seat held for a resume alone until the grace is over', async () => {
    await here.setConnected('r', 'ghost', false, T0 + 1);
    expect(await here.removeStale('r', 'ghost', T0 + GRACE_MS, GRACE_MS)).toBeUndefined();
    expect(await here.removeStale('r', 'ghost', T0 + 1 + GRACE_MS, GRACE_MS)).toEqual({
      remaining: 1,
    });
  });
});
