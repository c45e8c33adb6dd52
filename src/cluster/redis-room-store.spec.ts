import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { Redis, type RedisOptions } from 'ioredis';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  config,
  describeRoomStoreContract,
  joinRequest,
  quota,
  rejection,
  T0,
} from '../../test/support/room-store-contract.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import { ErrorCode } from '../protocol/protocol.js';
import { encodeProfile } from './member-record.js';
import { ROOM_STORE_REDIS_OPTIONS } from './redis-client-options.js';
import { RedisKeys } from './redis-keys.js';
import { RedisRoomStore } from './redis-room-store.js';
import { decodeEnvelope, roomChannel, type RoomEnvelope } from './room-envelope.js';
import { UNAVAILABLE } from './store-unavailable.js';

// Runs against a real Redis, and fails (never skips) without one: CI starts one (.ci/run).
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Every key of this run starts with it; each test adds its own number, so tests share nothing. */
const RUN_PREFIX = `gms-test-${process.pid}-${randomBytes(4).toString('hex')}:`;

/** Every client a test opens, closed after all tests. */
const clients: Redis[] = [];

/**
 * The store's client options. A short disconnectTimeout: ioredis otherwise keeps a 2 s timer when
 * a client that is between reconnects is disconnected, and jest waits for it.
 */
const TEST_CLIENT_OPTIONS = { ...ROOM_STORE_REDIS_OPTIONS, disconnectTimeout: 100 };

/** A client configured as the store expects, connected (rejects when Redis does not answer). */
async function connect(url = REDIS_URL, options: RedisOptions = {}): Promise<Redis> {
  const client = new Redis(url, { ...TEST_CLIENT_OPTIONS, lazyConnect: true, ...options });
  client.on('error', () => undefined); // failed reconnects; the calls report them
  clients.push(client);
  await client.connect();
  return client;
}

let admin: Redis;

beforeAll(async () => {
  try {
    admin = await connect();
    await admin.ping();
  } catch (error) {
    throw new Error(
      `RedisRoomStore spec: no Redis answers at ${REDIS_URL} (${String(error)}). ` +
        'Start one (redis-server) or point TEST_REDIS_URL at one; these tests do not skip.',
      { cause: error },
    );
  }
});

/** The keys matching a SCAN pattern. */
async function scanKeys(pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

async function deleteKeys(pattern: string): Promise<void> {
  const keys = await scanKeys(pattern);
  if (keys.length > 0) {
    await admin.del(...keys);
  }
}

afterAll(async () => {
  if (admin?.status === 'ready') {
    await deleteKeys(`${RUN_PREFIX}*`);
  }
  for (const client of clients) {
    // Disconnecting an ended client again would leave ioredis' force-close timer running.
    if (client.status !== 'end') {
      client.disconnect();
    }
  }
});

let testNumber = 0;
let prefix: string;
let store: RedisRoomStore;

/** A store of this test's key space, as another instance would have it. */
const storeOn = (client: Redis, instanceId: string) =>
  new RedisRoomStore(client, { keyPrefix: prefix, instanceId });

/** Gives the test a key space of its own, and instance-a's store on it. */
function newKeySpace(): RedisRoomStore {
  prefix = `${RUN_PREFIX}${++testNumber}:`;
  store = storeOn(admin, 'instance-a');
  return store;
}

// The behaviour it shares with MemoryRoomStore, each case in a key space of its own, deleted after
// it (afterAll deletes whatever a failed cleanup left).
describeRoomStoreContract(
  () => {
    const own = newKeySpace();
    const ownPrefix = prefix;
    return Promise.resolve({ store: own, cleanup: () => deleteKeys(`${ownPrefix}*`) });
  },
  { name: 'RedisRoomStore' },
);

/** All keys of this test's key space. */
async function keysOfTest(): Promise<string[]> {
  return (await scanKeys(`${prefix}*`)).sort();
}

/** Outcomes of racing calls: how many succeeded, and the error codes of the others. */
async function settle<T>(calls: Promise<T>[]): Promise<{ values: T[]; codes: string[] }> {
  const results = await Promise.allSettled(calls);
  const values: T[] = [];
  const codes: string[] = [];
  for (const result of results) {
    if (result.status === 'fulfilled') {
      values.push(result.value);
    } else {
      expect(result.reason).toBeInstanceOf(ProtocolError);
      codes.push((result.reason as ProtocolError).code);
    }
  }
  return { values, codes };
}

/** Stores on `count` separate connections, one instance id each: instances racing. */
async function instances(count: number): Promise<RedisRoomStore[]> {
  const connections = await Promise.all(Array.from({ length: count }, () => connect()));
  return connections.map((client, index) => storeOn(client, `instance-${index}`));
}

/** Subscribes a separate connection to a room's channel and collects its envelopes. */
async function subscribe(roomId: string): Promise<RoomEnvelope[]> {
  const subscriber = await connect(REDIS_URL, { enableOfflineQueue: true });
  const received: RoomEnvelope[] = [];
  subscriber.on('message', (_channel: string, payload: string) => {
    received.push(decodeEnvelope(payload));
  });
  await subscriber.subscribe(roomChannel(prefix, roomId));
  return received;
}

async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error('timed out waiting');
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const addAnnotation = (id: string) => ({
  ops: [{ op: 'add' as const, collection: 'annotations' as const, id, item: { id } }],
});

// Its own: the key layout, instances racing on separate connections, what it publishes, ghosts of
// dead instances, and Redis being unreachable.
describe('RedisRoomStore in Redis', () => {
  beforeEach(() => {
    newKeySpace();
  });

  describe('keys', () => {
    it('starts every key with the prefix and tags every room key with the room id', async () => {
      await store.create({ roomId: 'r1', config: config({ name: 'One' }), createdAt: T0 }, 10);
      await store.join(joinRequest('r1', 'alice'));
      await store.join(joinRequest('r1', 'bob'));
      await store.kick('r1', 'bob', T0 + 60_000, T0);
      await store.applyStateChange('r1', addAnnotation('a'), 262144);

      const roomKey = new RegExp(
        `^${prefix.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')}\\{r1\\}:(meta|state|order|members|bans)$`,
      );
      const globalKeys = [
        `${prefix}rooms`,
        `${prefix}rooms:seq`,
        `${prefix}expiry:activity`,
        `${prefix}user:alice:rooms`,
        `${prefix}instance:instance-a:members`,
      ];
      const keys = await keysOfTest();
      expect(keys.filter((key) => !roomKey.test(key)).sort()).toEqual(globalKeys.sort());
      expect(keys.filter((key) => roomKey.test(key))).toHaveLength(5);
      expect(new RedisKeys(prefix).room('r1').meta).toBe(`${prefix}{r1}:meta`);
    });

    it('records the instance that joined each member and forgets it when the member goes', async () => {
      const [a, b] = await instances(2);
      await a.join(joinRequest('r', 'alice'));
      await b.join(joinRequest('r', 'bob'));
      await b.join(joinRequest('s', 'bob'));
      const keys = new RedisKeys(prefix);
      expect(await admin.smembers(keys.instanceMembers('instance-0'))).toEqual(['r\nalice']);
      expect((await admin.smembers(keys.instanceMembers('instance-1'))).sort()).toEqual([
        'r\nbob',
        's\nbob',
      ]);
      expect(await admin.zrange(keys.userRooms('bob'), 0, '-1')).toEqual(['r', 's']);

      await b.leave('s', 'bob', T0 + 1);
      await a.delete('r');
      expect(await admin.smembers(keys.instanceMembers('instance-0'))).toEqual([]);
      expect(await admin.smembers(keys.instanceMembers('instance-1'))).toEqual([]);
      expect(await admin.exists(keys.userRooms('alice'), keys.userRooms('bob'))).toBe(0);
    });

    it('leaves nothing behind when the last room goes', async () => {
      await store.join(joinRequest('r', 'alice'));
      await store.join(joinRequest('r', 'bob'));
      await store.applyStateChange('r', addAnnotation('a'), 262144);
      await store.kick('r', 'bob', T0 + 60_000, T0);
      await store.delete('r');
      expect(await keysOfTest()).toEqual([`${prefix}rooms:seq`]);
    });

    it('keeps owners and caps in keys of their own, and leaves nothing of them behind', async () => {
      const keys = new RedisKeys(prefix);
      await store.join(joinRequest('r', 'alice', { quota: quota('ann', 5) }));
      await store.join(joinRequest('r', 'bob', { maxRole: 'viewer' }));
      expect(await admin.smembers(keys.ownerRooms('user', 'ann'))).toEqual(['r']);
      expect(await admin.hget(keys.room('r').meta, 'owner')).toBe('user:ann');
      expect(await admin.hgetall(keys.room('r').caps)).toEqual({ bob: 'viewer' });
      expect(await admin.hget(keys.room('r').members, 'bob')).toMatch(/^viewer\n/);

      await store.leave('r', 'bob', T0 + 1);
      expect(await admin.exists(keys.room('r').caps)).toBe(0);
      await store.join(joinRequest('r', 'bob', { maxRole: 'editor' }));
      await store.delete('r');
      expect(await keysOfTest()).toEqual([`${prefix}rooms:seq`]);
    });

    it('checks the ban of a member that joins again, too', async () => {
      await store.join(joinRequest('r', 'alice'));
      await store.join(joinRequest('r', 'bob'));
      // a ban on record for a member: the rejoin must not slip past it
      await admin.hset(new RedisKeys(prefix).room('r').bans, 'bob', T0 + 60_000);
      const error = await rejection(() => store.join(joinRequest('r', 'bob')));
      expect(error.code).toBe(ErrorCode.Kicked);
      const after = await store.join(joinRequest('r', 'bob', { now: T0 + 60_000 }));
      expect(after.alreadyMember).toBe(true);
    });

    it('drops rooms that are gone from a full owner set instead of counting them', async () => {
      const keys = new RedisKeys(prefix);
      await store.create(
        { roomId: 'real', config: config(), createdAt: T0, quota: quota('ann', 2) },
        10,
      );
      // what a deletion path that forgot the owner would leave behind
      await admin.sadd(keys.ownerRooms('user', 'ann'), 'ghost');
      await store.create(
        { roomId: 'second', config: config(), createdAt: T0, quota: quota('ann', 2) },
        10,
      );
      expect((await admin.smembers(keys.ownerRooms('user', 'ann'))).sort()).toEqual([
        'real',
        'second',
      ]);
    });

    it('gives persistent rooms no expiry in Redis', async () => {
      await store.create({ roomId: 'p', config: config({ persistent: true }), createdAt: T0 }, 10);
      await store.applyStateChange('p', addAnnotation('a'), 262144);
      for (const key of await keysOfTest()) {
        expect(await admin.pttl(key)).toBe(-1);
      }
      const fresh = storeOn(await connect(), 'instance-b');
      expect((await fresh.getState('p')).annotations).toEqual([{ id: 'a' }]);
    });

    it('lists more rooms than one read batch, in creation order', async () => {
      const roomIds = Array.from({ length: 1201 }, (_, i) => `room-${i}`);
      for (const roomId of roomIds) {
        await store.create({ roomId, config: config(), createdAt: T0 }, 2000);
      }
      await store.delete('room-600');
      const listed = await store.list();
      expect(listed.map((room) => room.roomId)).toEqual(roomIds.filter((id) => id !== 'room-600'));
    });

    it('refuses a prefix with braces, which would break the hash tags', () => {
      expect(() => new RedisRoomStore(admin, { keyPrefix: 'a{b}:', instanceId: 'i' })).toThrow();
    });
  });

  describe('races between instances', () => {
    it('admits exactly maxUsers of 100 joins racing from several instances', async () => {
      await store.create({ roomId: 'r', config: config({ maxUsers: 10 }), createdAt: T0 }, 10);
      const racers = await instances(5);
      const { values, codes } = await settle(
        Array.from({ length: 100 }, (_, i) =>
          racers[i % racers.length].join(joinRequest('r', `user-${i}`)),
        ),
      );
      expect(values).toHaveLength(10);
      expect(codes).toEqual(Array(90).fill(ErrorCode.RoomFull));
      expect(values.filter((outcome) => outcome.user.role === 'host')).toHaveLength(1);
      expect((await store.list())[0].userCount).toBe(10);
      // Join order is the order the store admitted them in: each saw the ones before it.
      const seen = values.map((outcome) => outcome.roomInfo.users.length).sort((a, b) => a - b);
      expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    });

    it('holds MAX_ROOMS across instances creating rooms at once, by create and by join', async () => {
      const racers = await instances(5);
      const { values, codes } = await settle<unknown>(
        Array.from({ length: 60 }, (_, i) => {
          const racer = racers[i % racers.length];
          return i % 2 === 0
            ? racer.create({ roomId: `room-${i}`, config: config(), createdAt: T0 }, 10)
            : racer.join(joinRequest(`room-${i}`, `user-${i}`, { maxRooms: 10 }));
        }),
      );
      expect(values).toHaveLength(10);
      expect(codes).toEqual(Array(50).fill(ErrorCode.RoomLimit));
      expect(await store.list()).toHaveLength(10);
    });

    it("holds an owner's room quota across instances creating rooms at once", async () => {
      const racers = await instances(5);
      const { values, codes } = await settle<unknown>(
        Array.from({ length: 30 }, (_, i) => {
          const racer = racers[i % racers.length];
          return i % 2 === 0
            ? racer.create(
                { roomId: `room-${i}`, config: config(), createdAt: T0, quota: quota('ann', 3) },
                100,
              )
            : racer.join(joinRequest(`room-${i}`, 'ann', { quota: quota('ann', 3) }));
        }),
      );
      expect(values).toHaveLength(3);
      expect(codes).toEqual(Array(27).fill(ErrorCode.RoomQuota));
      expect(await store.list()).toHaveLength(3);
    });

    it('accepts one of several changes with the same baseVersion', async () => {
      await store.join(joinRequest('r', 'alice'));
      const racers = await instances(8);
      const { values, codes } = await settle(
        racers.map((racer, i) =>
          racer.applyStateChange('r', { baseVersion: 0, patch: { sceneUrl: `s${i}` } }, 262144),
        ),
      );
      expect(values).toEqual([1]);
      expect(codes).toEqual(Array(7).fill(ErrorCode.StaleVersion));
      expect((await store.getState('r')).version).toBe(1);
    });

    it('applies every concurrent ops change once and publishes versions in order', async () => {
      await store.join(joinRequest('r', 'alice'));
      for (let i = 0; i < 4; i++) {
        await store.join(joinRequest('r', `user-${i}`));
      }
      const received = await subscribe('r');
      const racers = await instances(4);
      const versions = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          racers[i % racers.length].applyStateChange('r', addAnnotation(`a${i}`), 262144, {
            userId: `user-${i % racers.length}`,
            minRole: 'editor',
          }),
        ),
      );
      expect([...versions].sort((a, b) => a - b)).toEqual(
        Array.from({ length: 40 }, (_, i) => i + 1),
      );
      const state = await store.getState('r');
      expect(state.version).toBe(40);
      expect(state.annotations.map((item) => item.id).sort()).toEqual(
        Array.from({ length: 40 }, (_, i) => `a${i}`).sort(),
      );
      await until(() => received.length === 40);
      expect(
        received.map((envelope) => (envelope.message.data as { version: number }).version),
      ).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    });

    it('reports an expired room once when instances sweep at the same time', async () => {
      await store.create({ roomId: 'r', config: config(), createdAt: T0 }, 10);
      const racers = await instances(4);
      const sweeps = await Promise.all(
        racers.map((racer) =>
          racer.deleteExpired({ now: T0 + 30_000, emptyRoomTtlMs: 30_000, roomTimeoutMs: 1000 }),
        ),
      );
      expect(sweeps.flat()).toEqual([{ roomId: 'r', reason: 'empty', memberIds: [] }]);
    });

    it('lets members on different instances see each other and share the room', async () => {
      const [a, b] = await instances(2);
      await a.join(joinRequest('r', 'alice'));
      const outcome = await b.join(joinRequest('r', 'bob'));
      expect(outcome.roomInfo.users.map((user) => [user.id, user.role])).toEqual([
        ['alice', 'host'],
        ['bob', 'editor'],
      ]);
      expect(await a.shareRoom('bob', 'alice')).toBe('r');
      expect(await a.leave('r', 'alice', T0 + 1)).toEqual({
        newHost: expect.objectContaining({ id: 'bob', role: 'host' }),
        remaining: 1,
      });
    });

    it('leaves only from the instance the member is on: a moved session stays', async () => {
      const [a, b] = await instances(2);
      await a.join(joinRequest('r', 'alice'));
      await a.join(joinRequest('r', 'bob'));
      // bob's session moved to b: joining again there moves the member record.
      const again = await b.join(joinRequest('r', 'bob'));
      expect(again.alreadyMember).toBe(true);
      expect(await b.membersOf('instance-0')).toEqual([{ roomId: 'r', userId: 'alice' }]);
      expect(await a.membersOf('instance-1')).toEqual([{ roomId: 'r', userId: 'bob' }]);
      // bob's old socket on a closes late: nothing happens.
      expect(await a.leave('r', 'bob', T0 + 1)).toBeUndefined();
      expect(await a.roomsOf('bob')).toEqual(['r']);
      expect(await b.leave('r', 'bob', T0 + 2)).toEqual({ remaining: 1 });
      expect(await a.roomsOf('bob')).toEqual([]);
    });

    it('tells a member on record for the joining instance from one that moved there', async () => {
      const [a, b] = await instances(2);
      const first = await a.join(joinRequest('r', 'bob'));
      expect(first).toMatchObject({ alreadyMember: false, createdRoom: true });
      expect(first).not.toHaveProperty('onRecordHere');
      // On record for a: a's sockets tell whether one of them holds it (RoomsService.holdsHere).
      expect(await a.join(joinRequest('r', 'bob'))).toMatchObject({
        alreadyMember: true,
        onRecordHere: true,
        createdRoom: false,
      });
      const moved = await b.join(joinRequest('r', 'bob'));
      expect(moved).toMatchObject({ alreadyMember: true, createdRoom: false });
      expect(moved).not.toHaveProperty('onRecordHere');
      const restored = await b.join({ ...joinRequest('r', 'bob'), restore: true });
      expect(restored).toMatchObject({ alreadyMember: true, onRecordHere: true });
    });

    it('removes the members a dead instance left behind, but not those that moved', async () => {
      const [a, b, c] = await instances(3);
      await a.join(joinRequest('r', 'alice'));
      await a.join(joinRequest('r', 'bob'));
      await a.join(joinRequest('s', 'bob'));
      await c.join(joinRequest('r', 'carol'));
      await b.join(joinRequest('s', 'bob')); // bob's session in s moved to b
      const ghosts = await c.membersOf('instance-0');
      expect(ghosts).toEqual(
        expect.arrayContaining([
          { roomId: 'r', userId: 'alice' },
          { roomId: 'r', userId: 'bob' },
        ]),
      );
      expect(ghosts).toHaveLength(2);
      expect(await c.removeGhost('r', 'alice', 'instance-0', T0 + 1)).toEqual({
        newHost: expect.objectContaining({ id: 'bob', role: 'host' }),
        remaining: 2,
      });
      expect(await c.removeGhost('r', 'bob', 'instance-0', T0 + 2)).toEqual({
        newHost: expect.objectContaining({ id: 'carol', role: 'host' }),
        remaining: 1,
      });
      expect(await c.removeGhost('s', 'bob', 'instance-0', T0 + 3)).toBeUndefined();
      expect(await c.roomsOf('bob')).toEqual(['s']);
      expect(await c.membersOf('instance-0')).toEqual([]);
    });
  });

  describe('persistent idle expiry', () => {
    it('schedules persistent rooms stored before the idle schedule existed', async () => {
      const keys = new RedisKeys(prefix);
      await store.create(
        { roomId: 'old', config: config({ persistent: true }), createdAt: T0 },
        10,
      );
      await store.create({ roomId: 'plain', config: config(), createdAt: T0 }, 10);
      // as a Redis written by an earlier version has them: no expiry:persistent
      await admin.del(keys.global.expiryPersistent);
      const policy = {
        now: T0 + 10_000,
        emptyRoomTtlMs: 60_000,
        roomTimeoutMs: 60_000,
        persistentRoomIdleMs: 5000,
      };
      const fresh = storeOn(await connect(), 'instance-b');
      await fresh.schedulePersistentRooms();
      expect(await fresh.deleteExpired(policy)).toEqual([
        { roomId: 'old', reason: 'idle_timeout', memberIds: [] },
      ]);
      expect((await store.list()).map((room) => room.roomId)).toEqual(['plain']);
    });

    it('starts that from the first sweep with idle expiry on, in the background', async () => {
      await store.create(
        { roomId: 'old', config: config({ persistent: true }), createdAt: T0 },
        10,
      );
      await admin.del(new RedisKeys(prefix).global.expiryPersistent);
      const policy = {
        now: T0 + 10_000,
        emptyRoomTtlMs: 60_000,
        roomTimeoutMs: 60_000,
        persistentRoomIdleMs: 5000,
      };
      const fresh = storeOn(await connect(), 'instance-b');
      let expired: unknown[] = [];
      const deadline = Date.now() + 2000;
      while (expired.length === 0 && Date.now() < deadline) {
        expired = await fresh.deleteExpired(policy);
      }
      expect(expired).toEqual([{ roomId: 'old', reason: 'idle_timeout', memberIds: [] }]);
    });
  });

  describe('state_updated', () => {
    it('publishes the event with the commit, without requestId, to all but the actor', async () => {
      await store.join(joinRequest('r', 'alice'));
      const received = await subscribe('r');
      await store.applyStateChange('r', { baseVersion: 0, patch: { sceneLoaded: true } }, 262144);
      await store.applyStateChange(
        'r',
        { baseVersion: 1, patch: { sceneUrl: 'scene.glb' }, ops: addAnnotation('a').ops },
        262144,
        { userId: 'alice', minRole: 'editor' },
      );
      await until(() => received.length === 1);
      expect(received).toEqual([
        {
          origin: 'instance-a',
          except: 'alice',
          to: null,
          // Tells the origin's bus which of its commits this is (CommitReplies).
          commitId: expect.any(String) as string,
          // The room's first numbered envelope: Redis numbers them (see checkSequence).
          seq: 1,
          message: {
            event: 'state_updated',
            data: {
              roomId: 'r',
              version: 2,
              patch: { sceneUrl: 'scene.glb' },
              ops: addAnnotation('a').ops,
              updatedBy: 'alice',
            },
          },
        },
      ] satisfies RoomEnvelope[]);
    });

    it('publishes nothing for a change that fails', async () => {
      await store.join(joinRequest('r', 'alice'));
      const received = await subscribe('r');
      const error = await rejection(() =>
        store.applyStateChange('r', { baseVersion: 3, patch: { sceneLoaded: true } }, 262144, {
          userId: 'alice',
          minRole: 'editor',
        }),
      );
      expect(error.code).toBe(ErrorCode.StaleVersion);
      await store.applyStateChange('r', addAnnotation('a'), 262144, {
        userId: 'alice',
        minRole: 'editor',
      });
      await until(() => received.length === 1);
      expect((received[0].message.data as { version: number }).version).toBe(1);
    });
  });

  describe('while Redis is unreachable', () => {
    /** Expects the call to fail with UNAVAILABLE within 2 s; answers how long it took. */
    async function unavailable(call: () => Promise<unknown>): Promise<number> {
      const started = performance.now();
      const error = await rejection(call);
      const elapsed = performance.now() - started;
      expect(error.code).toBe(UNAVAILABLE);
      expect(elapsed).toBeLessThan(2000);
      return elapsed;
    }

    it('fails fast with UNAVAILABLE when nothing listens on the port', async () => {
      const port = await closedPort();
      const client = new Redis(`redis://127.0.0.1:${port}`, TEST_CLIENT_OPTIONS);
      client.on('error', () => undefined);
      clients.push(client);
      const down = storeOn(client, 'instance-down');
      await unavailable(() => down.join(joinRequest('r', 'alice')));
      await unavailable(() => down.getState('r'));
      await unavailable(() => down.list());
      await unavailable(() => down.roleOf('r', 'alice'));
      await unavailable(() => down.applyStateChange('r', addAnnotation('a'), 262144));
    });

    it('fails fast with UNAVAILABLE once the connection is gone', async () => {
      const client = await connect();
      const gone = storeOn(client, 'instance-gone');
      await gone.join(joinRequest('r', 'alice'));
      client.disconnect();
      await unavailable(() => gone.join(joinRequest('r', 'bob')));
      await unavailable(() => gone.leave('r', 'alice', T0));
      await unavailable(() => gone.deleteExpired({ now: T0, emptyRoomTtlMs: 0, roomTimeoutMs: 0 }));
    });

    it('never rejects a touch, which callers do not await, and logs an outage once', async () => {
      const client = await connect();
      const gone = storeOn(client, 'instance-gone');
      client.disconnect();
      const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      try {
        await expect(gone.touch('r', T0)).resolves.toBeUndefined();
        await expect(gone.touch('r', T0 + 1000)).resolves.toBeUndefined();
        expect(warn).toHaveBeenCalledTimes(1);
      } finally {
        warn.mockRestore();
      }
    });

    it('fails with UNAVAILABLE within 2 s when Redis stops answering', async () => {
      const proxy = await blackholeProxy(new URL(REDIS_URL));
      const client = await connect(`redis://127.0.0.1:${proxy.port}`);
      try {
        const stuck = storeOn(client, 'instance-stuck');
        await stuck.join(joinRequest('r', 'alice'));
        proxy.freeze();
        const elapsed = await unavailable(() => stuck.getState('r'));
        expect(elapsed).toBeGreaterThanOrEqual(ROOM_STORE_REDIS_OPTIONS.commandTimeout - 50);
        await unavailable(() => stuck.applyStateChange('r', addAnnotation('a'), 262144));
      } finally {
        client.disconnect();
        proxy.close();
      }
    });
  });

  describe('slots', () => {
    it('is full, and writes nothing, while the members hold all 65536 slots', async () => {
      const SLOTS = 65536;
      const keys = new RedisKeys(prefix).room('r');
      const roomConfig = config({ maxUsers: 100_000 });
      await store.join(joinRequest('r', 'm-1', { configForNewRoom: roomConfig }));
      // Members holding the other 65,535 slots, as joins 2-65536 leave them (m-65536 holds slot
      // 0): written in bulk, as 65,535 joins one by one would take long.
      for (let from = 2; from <= SLOTS; from += 4096) {
        const order: Array<number | string> = [];
        const records: Record<string, string> = {};
        for (let joinNumber = from; joinNumber <= Math.min(from + 4095, SLOTS); joinNumber++) {
          const userId = `m-${joinNumber}`;
          const profile = encodeProfile({
            id: userId,
            name: userId,
            connected: true,
            lastSeen: T0,
          });
          order.push(joinNumber, userId);
          records[userId] = `viewer\ninstance-a\n${profile}`;
        }
        await admin.zadd(keys.order, ...order);
        await admin.hset(keys.members, records);
      }
      await admin.hset(keys.meta, 'joins', SLOTS);

      expect((await rejection(() => store.join(joinRequest('r', 'late')))).code).toBe(
        ErrorCode.RoomFull,
      );
      expect(await admin.hget(keys.meta, 'joins')).toBe(String(SLOTS));
      expect(await admin.zcard(keys.order)).toBe(SLOTS);

      await store.leave('r', 'm-5', T0 + 1);
      const { user } = await store.join(joinRequest('r', 'late'));
      expect(user.slot).toBe(5);
      expect(await admin.zscore(keys.order, 'late')).toBe(String(SLOTS + 5));
    }, 30_000);
  });
});

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A TCP proxy to Redis that, once frozen, swallows everything: a server that hangs. */
async function blackholeProxy(target: URL) {
  let frozen = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 6379), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk) => frozen || upstream.write(chunk));
    upstream.on('data', (chunk) => frozen || client.write(chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    freeze: () => {
      frozen = true;
    },
    close: () => {
      for (const socket of sockets) {
        socket.destroy();
      }
      server.close();
    },
  };
}
