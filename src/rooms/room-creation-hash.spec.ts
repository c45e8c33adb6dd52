// create_room with a password: the refusals that cost nothing (ROOM_EXISTS, ROOM_QUOTA,
// ROOM_LIMIT) come before the password's scrypt hash, on both stores. A counting hasher stands
// in for scrypt, so that the test sees how many hashes each create cost.
import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';

const hashed: string[] = [];

jest.unstable_mockModule('./password.js', () => ({
  hashPassword: (password: string) => {
    hashed.push(password);
    return Promise.resolve(`hashed:${password}`);
  },
  verifyPassword: (password: string | undefined, stored: string) =>
    Promise.resolve(password !== undefined && stored === `hashed:${password}`),
}));

const { RoomsService } = await import('./rooms.service.js');
const { MemoryRoomStore } = await import('../standalone/memory-room-store.js');
const { RedisRoomStore } = await import('../cluster/redis-room-store.js');
const { ROOM_STORE_REDIS_OPTIONS } = await import('../cluster/redis-client-options.js');
const { loadAppConfig } = await import('../config/app.config.js');
const { RoomEvents } = await import('../extensions/room-events.service.js');
const { ProtocolError } = await import('../protocol/protocol-error.js');

type RoomStore = import('./room-store.js').RoomStore;
type RoomBus = import('../bus/room-bus.js').RoomBus;
type UsersService = import('../users/users.service.js').UsersService;
type RoomChangeDelivery = import('./room-changes.js').RoomChangeDelivery;

// The Redis store's cases run against a real Redis, as its own spec does (and fail without one).
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const RUN_PREFIX = `gms-test-hash-${process.pid}-${randomBytes(4).toString('hex')}:`;
let redis: Redis | undefined;
let keySpaces = 0;

async function redisStore(): Promise<RoomStore> {
  if (!redis) {
    const options = { ...ROOM_STORE_REDIS_OPTIONS, disconnectTimeout: 100, lazyConnect: true };
    redis = new Redis(REDIS_URL, options);
    // The store's options queue nothing while offline: connected before the first command.
    await redis.connect();
  }
  return new RedisRoomStore(redis, {
    keyPrefix: `${RUN_PREFIX}${++keySpaces}:`,
    instanceId: 'instance-a',
  });
}

beforeAll(() => {
  // The service logs each room it creates; nothing to read here.
  Logger.overrideLogger(['error']);
});

afterAll(async () => {
  if (!redis) {
    return;
  }
  const keys = await redis.keys(`${RUN_PREFIX}*`);
  if (keys.length > 0) {
    await redis.del(...keys);
  }
  redis.disconnect();
});

/** The service with `store` and nothing else that create() does not need. */
function roomsWith(store: RoomStore, env: Record<string, string> = {}) {
  const bus = {
    onMembershipEnded() {},
    onResyncNeeded() {},
    onLiveMemberLeft() {},
  } as unknown as RoomBus;
  const delivery = { deliver: () => Promise.resolve() } as unknown as RoomChangeDelivery;
  return new RoomsService(
    store,
    bus,
    loadAppConfig({ LOG_LEVEL: 'error', ...env }),
    {} as UsersService,
    delivery,
    new RoomEvents(),
  );
}

async function codeOf(action: Promise<unknown>): Promise<string> {
  try {
    await action;
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return (error as InstanceType<typeof ProtocolError>).code;
  }
  throw new Error('expected a ProtocolError');
}

const owner = { kind: 'user', id: 'alice' } as const;

describe.each([
  ['MemoryRoomStore', () => Promise.resolve<RoomStore>(new MemoryRoomStore())],
  ['RedisRoomStore', redisStore],
])('create_room with a password on the %s', (_name, newStore) => {
  let store: RoomStore;

  beforeEach(async () => {
    hashed.length = 0;
    store = await newStore();
  });

  it('refuses an existing room with ROOM_EXISTS before hashing', async () => {
    const rooms = roomsWith(store);
    await rooms.create({ roomId: 'vault' });
    expect(await codeOf(rooms.create({ roomId: 'vault', password: 'pw' }))).toBe('ROOM_EXISTS');
    expect(hashed).toEqual([]);
  });

  it("refuses a room past the owner's quota with ROOM_QUOTA before hashing", async () => {
    const rooms = roomsWith(store, { MAX_ROOMS_PER_USER: '1' });
    await rooms.create({ roomId: 'one', owner });
    expect(await codeOf(rooms.create({ roomId: 'two', password: 'pw', owner }))).toBe('ROOM_QUOTA');
    expect(hashed).toEqual([]);
  });

  it('refuses a room past MAX_ROOMS with ROOM_LIMIT before hashing', async () => {
    const rooms = roomsWith(store, { MAX_ROOMS: '1' });
    await rooms.create({ roomId: 'one' });
    expect(await codeOf(rooms.create({ roomId: 'two', password: 'pw' }))).toBe('ROOM_LIMIT');
    expect(hashed).toEqual([]);
  });

  it('hashes once for a room it creates, and joins must match the password', async () => {
    const rooms = roomsWith(store);
    await rooms.create({ roomId: 'vault', password: 'open sesame' });
    expect(hashed).toEqual(['open sesame']);
    const join = (password: string) =>
      store.join({
        roomId: 'vault',
        userId: 'bob',
        name: 'bob',
        password,
        now: Date.now(),
        configForNewRoom: { maxUsers: 50, persistent: false, defaultRole: 'editor' },
        maxRooms: 10,
      });
    expect(await codeOf(join('wrong'))).toBe('INVALID_PASSWORD');
    expect((await join('open sesame')).createdRoom).toBe(false);
  });

  it('creates a room once when two creates race, each hashing after the checks', async () => {
    const rooms = roomsWith(store);
    const results = await Promise.allSettled([
      rooms.create({ roomId: 'vault', password: 'first' }),
      rooms.create({ roomId: 'vault', password: 'second' }),
    ]);
    expect(results.map((result) => result.status).sort()).toEqual(['fulfilled', 'rejected']);
    const refused = results.find((result) => result.status === 'rejected');
    expect((refused?.reason as InstanceType<typeof ProtocolError>).code).toBe('ROOM_EXISTS');
  });
});
