import { ProtocolError } from '../protocol/protocol-error.js';
import { ErrorCode, type Role } from '../protocol/protocol.js';
import { MemoryRoomStore } from './memory-room-store.js';
import { hashPassword } from './password.js';
import type { PersistedRoom, RoomPersistence } from './room-persistence.js';
import { LAST_ACTIVITY_RESOLUTION_MS, type JoinRequest, type RoomConfig } from './room-store.js';

const T0 = 1_700_000_000_000;
const MAX_ROOMS = 100;

const config = (overrides: Partial<RoomConfig> = {}): RoomConfig => ({
  maxUsers: 50,
  persistent: false,
  defaultRole: 'editor',
  ...overrides,
});

const joinRequest = (
  roomId: string,
  userId: string,
  overrides: Partial<JoinRequest> = {},
): JoinRequest => ({
  roomId,
  userId,
  name: userId,
  now: T0,
  configForNewRoom: config(),
  maxRooms: MAX_ROOMS,
  ...overrides,
});

/** What a write does: succeed at once, wait for the test, or fail. */
type WriteMode = 'instant' | 'held' | 'failing';

/** A RoomPersistence in memory that records its calls and lets a test hold or fail writes. */
class FakePersistence implements RoomPersistence {
  readonly files = new Map<string, PersistedRoom>();
  readonly calls: string[] = [];
  mode: WriteMode = 'instant';
  private readonly held: Array<() => void> = [];

  constructor(readonly stored: PersistedRoom[] = []) {}

  loadAll(): Promise<PersistedRoom[]> {
    return Promise.resolve(this.stored);
  }

  async save(room: PersistedRoom): Promise<void> {
    this.calls.push(`save ${room.roomId} v${room.state.version}`);
    await this.write();
    this.files.set(room.roomId, structuredClone(room));
  }

  async remove(roomId: string): Promise<void> {
    this.calls.push(`remove ${roomId}`);
    await this.write();
    this.files.delete(roomId);
  }

  get heldWrites(): number {
    return this.held.length;
  }

  /** Lets the oldest held write complete, and what it unblocks run. */
  async release(): Promise<void> {
    await settle();
    const write = this.held.shift();
    if (!write) {
      throw new Error('no write is held');
    }
    write();
    await settle();
  }

  private write(): Promise<void> {
    switch (this.mode) {
      case 'instant':
        return Promise.resolve();
      case 'held':
        return new Promise((resolve) => this.held.push(resolve));
      case 'failing':
        return Promise.reject(new Error('disk full'));
    }
  }
}

/** Lets every pending promise callback run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

async function rejection(promise: () => Promise<unknown>): Promise<ProtocolError> {
  try {
    await promise();
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return error as ProtocolError;
  }
  throw new Error('expected a ProtocolError');
}

describe('MemoryRoomStore', () => {
  let store: MemoryRoomStore;

  beforeEach(() => {
    store = new MemoryRoomStore();
  });

  const roleOf = (roomId: string, userId: string) => store.roleOf(roomId, userId);
  const userIds = async (roomId: string, userId: string) =>
    (await store.join(joinRequest(roomId, userId))).roomInfo.users.map((user) => user.id);

  describe('create', () => {
    it('creates an empty room with the initial state', async () => {
      await store.create({ roomId: 'r1', config: config({ name: 'One' }), createdAt: T0 }, 10);
      expect(await store.list()).toEqual([
        {
          roomId: 'r1',
          name: 'One',
          userCount: 0,
          persistent: false,
          createdAt: T0,
          lastActivity: T0,
        },
      ]);
      expect((await store.getState('r1')).version).toBe(0);
    });

    it('rejects an existing id with ROOM_EXISTS', async () => {
      await store.create({ roomId: 'r1', config: config(), createdAt: T0 }, 10);
      const error = await rejection(() =>
        store.create({ roomId: 'r1', config: config(), createdAt: T0 }, 10),
      );
      expect(error.code).toBe(ErrorCode.RoomExists);
      expect(await store.list()).toHaveLength(1);
    });

    it('rejects a room beyond maxRooms with ROOM_LIMIT', async () => {
      await store.create({ roomId: 'r1', config: config(), createdAt: T0 }, 2);
      await store.create({ roomId: 'r2', config: config(), createdAt: T0 }, 2);
      const error = await rejection(() =>
        store.create({ roomId: 'r3', config: config(), createdAt: T0 }, 2),
      );
      expect(error.code).toBe(ErrorCode.RoomLimit);
      expect((await store.list()).map((room) => room.roomId)).toEqual(['r1', 'r2']);
    });

    it('frees a slot when a room is deleted', async () => {
      await store.create({ roomId: 'r1', config: config(), createdAt: T0 }, 1);
      await store.delete('r1');
      await store.create({ roomId: 'r2', config: config(), createdAt: T0 }, 1);
      expect((await store.list()).map((room) => room.roomId)).toEqual(['r2']);
    });
  });

  describe('join', () => {
    it('creates a missing room with configForNewRoom and makes the joiner host', async () => {
      const outcome = await store.join(
        joinRequest('new', 'alice', {
          name: 'Alice',
          avatar: { color: '#f00' },
          requestedRole: 'viewer',
          configForNewRoom: config({ maxUsers: 7 }),
        }),
      );
      expect(outcome.createdRoom).toBe(true);
      expect(outcome.alreadyMember).toBe(false);
      expect(outcome.user).toEqual({
        id: 'alice',
        name: 'Alice',
        role: 'host',
        avatar: { color: '#f00' },
        connected: true,
        lastSeen: T0,
      });
      expect(outcome.roomInfo).toEqual({
        roomId: 'new',
        users: [outcome.user],
        state: expect.objectContaining({ version: 0, annotations: [] }),
        createdAt: T0,
      });
    });

    it('joins an existing room without creating it', async () => {
      await store.create({ roomId: 'r', config: config(), createdAt: T0 - 5 }, MAX_ROOMS);
      const outcome = await store.join(joinRequest('r', 'alice'));
      expect(outcome.createdRoom).toBe(false);
      expect(outcome.roomInfo.createdAt).toBe(T0 - 5);
    });

    it('rejects creating a room on join beyond maxRooms with ROOM_LIMIT', async () => {
      await store.join(joinRequest('r1', 'alice', { maxRooms: 1 }));
      const error = await rejection(() => store.join(joinRequest('r2', 'bob', { maxRooms: 1 })));
      expect(error.code).toBe(ErrorCode.RoomLimit);
      expect(await store.shareRoom('bob', 'alice')).toBeUndefined();
    });

    it('makes the first member host whatever it asks for, and later members not', async () => {
      await store.join(joinRequest('r', 'alice', { requestedRole: 'viewer' }));
      await store.join(joinRequest('r', 'bob', { requestedRole: 'host' }));
      expect(await roleOf('r', 'alice')).toBe('host');
      expect(await roleOf('r', 'bob')).toBe('editor');
    });

    it.each<[RoomConfig['defaultRole'], Role | undefined, Role]>([
      ['editor', undefined, 'editor'],
      ['editor', 'viewer', 'viewer'],
      ['editor', 'editor', 'editor'],
      ['editor', 'host', 'editor'],
      ['viewer', undefined, 'viewer'],
      ['viewer', 'viewer', 'viewer'],
      ['viewer', 'editor', 'viewer'],
      ['viewer', 'host', 'viewer'],
    ])('with defaultRole %s, asking for %s grants %s', async (defaultRole, requested, granted) => {
      await store.create({ roomId: 'r', config: config({ defaultRole }), createdAt: T0 }, 10);
      await store.join(joinRequest('r', 'first'));
      const outcome = await store.join(joinRequest('r', 'second', { requestedRole: requested }));
      expect(outcome.user.role).toBe(granted);
      expect(await roleOf('r', 'second')).toBe(granted);
    });

    it('lists members in join order', async () => {
      await store.join(joinRequest('r', 'alice'));
      await store.join(joinRequest('r', 'bob'));
      expect(await userIds('r', 'carol')).toEqual(['alice', 'bob', 'carol']);
    });

    describe('passwords', () => {
      beforeEach(async () => {
        await store.create(
          {
            roomId: 'locked',
            config: config({ passwordHash: hashPassword('s3cret') }),
            createdAt: T0,
          },
          10,
        );
      });

      it('admits the right password', async () => {
        const outcome = await store.join(joinRequest('locked', 'alice', { password: 's3cret' }));
        expect(outcome.user.id).toBe('alice');
      });

      it.each([
        ['a wrong', 'guess'],
        ['a missing', undefined],
        ['an empty', ''],
      ])('refuses %s password with INVALID_PASSWORD', async (_label, password) => {
        const error = await rejection(() => store.join(joinRequest('locked', 'bob', { password })));
        expect(error.code).toBe(ErrorCode.InvalidPassword);
        expect(await roleOf('locked', 'bob')).toBeUndefined();
      });

      it('lets a room created on join keep the password it was created with', async () => {
        await store.join(
          joinRequest('auto', 'alice', {
            password: 'pw',
            configForNewRoom: config({ passwordHash: hashPassword('pw') }),
          }),
        );
        const error = await rejection(() =>
          store.join(joinRequest('auto', 'bob', { password: 'other' })),
        );
        expect(error.code).toBe(ErrorCode.InvalidPassword);
        expect((await store.join(joinRequest('auto', 'bob', { password: 'pw' }))).user.id).toBe(
          'bob',
        );
      });
    });

    it('refuses a member beyond maxUsers with ROOM_FULL "Room is full"', async () => {
      await store.create({ roomId: 'r', config: config({ maxUsers: 2 }), createdAt: T0 }, 10);
      await store.join(joinRequest('r', 'alice'));
      await store.join(joinRequest('r', 'bob'));
      const error = await rejection(() => store.join(joinRequest('r', 'carol')));
      expect(error.code).toBe(ErrorCode.RoomFull);
      expect(error.message).toBe('Room is full');
      await store.leave('r', 'bob', T0 + 1);
      expect((await store.join(joinRequest('r', 'carol'))).user.id).toBe('carol');
    });

    it('refuses a kicked user with KICKED during the ban and admits it after', async () => {
      await store.join(joinRequest('r', 'alice'));
      await store.join(joinRequest('r', 'bob'));
      await store.kick('r', 'bob', T0 + 60_000, T0);

      const during = await rejection(() =>
        store.join(joinRequest('r', 'bob', { now: T0 + 59_999 })),
      );
      expect(during.code).toBe(ErrorCode.Kicked);
      expect(await roleOf('r', 'bob')).toBeUndefined();

      const after = await store.join(joinRequest('r', 'bob', { now: T0 + 60_000 }));
      expect(after.alreadyMember).toBe(false);
      expect(await roleOf('r', 'bob')).toBe('editor');
    });

    it('bans only the kicked user and only in that room', async () => {
      await store.join(joinRequest('r', 'alice'));
      await store.join(joinRequest('r', 'bob'));
      await store.kick('r', 'bob', T0 + 60_000, T0);
      expect((await store.join(joinRequest('r', 'carol'))).user.id).toBe('carol');
      expect((await store.join(joinRequest('other', 'bob'))).user.id).toBe('bob');
    });

    it('returns a member that joins again unchanged and changes nothing', async () => {
      await store.join(joinRequest('r', 'alice', { name: 'Alice' }));
      await store.join(joinRequest('r', 'bob', { name: 'Bob', requestedRole: 'viewer' }));
      const before = await store.list();

      const again = await store.join(
        joinRequest('r', 'bob', {
          name: 'Robert',
          requestedRole: 'editor',
          avatar: { color: 'blue' },
          now: T0 + 1000,
        }),
      );
      expect(again.alreadyMember).toBe(true);
      expect(again.createdRoom).toBe(false);
      expect(again.user).toEqual({
        id: 'bob',
        name: 'Bob',
        role: 'viewer',
        connected: true,
        lastSeen: T0,
      });
      expect(again.roomInfo.users.map((user) => [user.id, user.name, user.role])).toEqual([
        ['alice', 'Alice', 'host'],
        ['bob', 'Bob', 'viewer'],
      ]);
      expect(await store.list()).toEqual(before);
    });

    it('answers a member that joins again even when the room is now full', async () => {
      await store.create({ roomId: 'r', config: config({ maxUsers: 1 }), createdAt: T0 }, 10);
      await store.join(joinRequest('r', 'alice'));
      const again = await store.join(joinRequest('r', 'alice'));
      expect(again.alreadyMember).toBe(true);
    });

    it('returns a snapshot that later changes do not alter', async () => {
      const outcome = await store.join(joinRequest('r', 'alice'));
      await store.join(joinRequest('r', 'bob'));
      await store.applyStateChange(
        'r',
        { ops: [{ op: 'add', collection: 'annotations', id: 'a', item: {} }] },
        262144,
      );
      expect(outcome.roomInfo.users.map((user) => user.id)).toEqual(['alice']);
      expect(outcome.roomInfo.state.version).toBe(0);
      expect(outcome.roomInfo.state.annotations).toEqual([]);
    });
  });

  describe('leave', () => {
    it('returns undefined for a user that is not a member or a room that does not exist', async () => {
      await store.join(joinRequest('r', 'alice'));
      expect(await store.leave('r', 'bob', T0)).toBeUndefined();
      expect(await store.leave('missing', 'alice', T0)).toBeUndefined();
    });

    it('removes a member without handing over when a non-host leaves', async () => {
      await store.join(joinRequest('r', 'alice'));
      await store.join(joinRequest('r', 'bob'));
      expect(await store.leave('r', 'bob', T0 + 1)).toEqual({ remaining: 1 });
      expect(await roleOf('r', 'bob')).toBeUndefined();
      expect(await roleOf('r', 'alice')).toBe('host');
    });

    it('hands the host role to the longest-present member', async () => {
      await store.join(joinRequest('r', 'alice'));
      await store.join(joinRequest('r', 'bob', { requestedRole: 'viewer' }));
      await store.join(joinRequest('r', 'carol'));
      await store.join(joinRequest('r', 'dave'));
      // carol leaves and comes back: she is now the most recent arrival
      await store.leave('r', 'carol', T0 + 1);
      await store.join(joinRequest('r', 'carol', { now: T0 + 2 }));

      const outcome = await store.leave('r', 'alice', T0 + 3);
      expect(outcome).toEqual({
        newHost: expect.objectContaining({ id: 'bob', role: 'host' }),
        remaining: 3,
      });
      expect(await roleOf('r', 'bob')).toBe('host');
      expect(await roleOf('r', 'dave')).toBe('editor');
      expect(await roleOf('r', 'carol')).toBe('editor');
    });

    it('hands over to the longest-present member after a host transfer too', async () => {
      await store.join(joinRequest('r', 'alice'));
      await store.join(joinRequest('r', 'bob'));
      await store.join(joinRequest('r', 'carol'));
      await store.setRole('r', 'carol', 'host');
      const outcome = await store.leave('r', 'carol', T0 + 1);
      expect(outcome?.newHost?.id).toBe('alice');
      expect(await roleOf('r', 'alice')).toBe('host');
    });

    it('makes the next joiner of a room that emptied its host', async () => {
      await store.join(joinRequest('r', 'alice'));
      expect(await store.leave('r', 'alice', T0 + 1)).toEqual({ remaining: 0 });
      const outcome = await store.join(joinRequest('r', 'bob', { requestedRole: 'viewer' }));
      expect(outcome.user.role).toBe('host');
    });

    it('records when the room emptied, which starts the empty-room TTL', async () => {
      await store.join(joinRequest('r', 'alice'));
      await store.leave('r', 'alice', T0 + 10_000);
      const policy = { emptyRoomTtlMs: 30_000, roomTimeoutMs: 86_400_000 };
      expect(await store.deleteExpired({ ...policy, now: T0 + 39_999 })).toEqual([]);
      expect(await store.deleteExpired({ ...policy, now: T0 + 40_000 })).toEqual([
        { roomId: 'r', reason: 'empty', memberIds: [] },
      ]);
    });

    it('updates lastActivity', async () => {
      await store.join(joinRequest('r', 'alice'));
      await store.join(joinRequest('r', 'bob'));
      await store.leave('r', 'bob', T0 + 500);
      expect((await store.list())[0]).toMatchObject({ userCount: 1, lastActivity: T0 + 500 });
    });
  });

  describe('setRole', () => {
    beforeEach(async () => {
      await store.join(joinRequest('r', 'alice'));
      await store.join(joinRequest('r', 'bob'));
      await store.join(joinRequest('r', 'carol', { requestedRole: 'viewer' }));
    });

    it('changes a role and returns only the target', async () => {
      const changed = await store.setRole('r', 'bob', 'viewer');
      expect(changed).toEqual([expect.objectContaining({ id: 'bob', role: 'viewer' })]);
      expect(await roleOf('r', 'bob')).toBe('viewer');
      expect(await roleOf('r', 'alice')).toBe('host');
    });

    it('transfers host: the old host becomes editor and comes first, the target last', async () => {
      const changed = await store.setRole('r', 'carol', 'host');
      expect(changed.map((user) => [user.id, user.role])).toEqual([
        ['alice', 'editor'],
        ['carol', 'host'],
      ]);
      expect(await roleOf('r', 'alice')).toBe('editor');
      expect(await roleOf('r', 'carol')).toBe('host');
      expect(await roleOf('r', 'bob')).toBe('editor');
    });

    it('returns copies that later changes do not alter', async () => {
      const [user] = await store.setRole('r', 'bob', 'viewer');
      await store.setRole('r', 'bob', 'editor');
      expect(user.role).toBe('viewer');
    });

    it('rejects a target that is not a member with USER_NOT_FOUND', async () => {
      const error = await rejection(() => store.setRole('r', 'zed', 'editor'));
      expect(error.code).toBe(ErrorCode.UserNotFound);
    });

    it('rejects a room that does not exist with ROOM_NOT_FOUND', async () => {
      const error = await rejection(() => store.setRole('missing', 'bob', 'editor'));
      expect(error.code).toBe(ErrorCode.RoomNotFound);
    });
  });

  describe('kick', () => {
    beforeEach(async () => {
      await store.join(joinRequest('r', 'alice'));
      await store.join(joinRequest('r', 'bob'));
    });

    it('removes the target', async () => {
      expect(await store.kick('r', 'bob', T0 + 60_000, T0 + 1)).toEqual({ remaining: 1 });
      expect(await roleOf('r', 'bob')).toBeUndefined();
      expect(await store.shareRoom('alice', 'bob')).toBeUndefined();
    });

    it('hands over the host role when the host is kicked', async () => {
      const outcome = await store.kick('r', 'alice', T0 + 60_000, T0 + 1);
      expect(outcome.newHost).toEqual(expect.objectContaining({ id: 'bob', role: 'host' }));
    });

    it('rejects a target that is not a member with USER_NOT_FOUND', async () => {
      const error = await rejection(() => store.kick('r', 'zed', T0 + 60_000, T0));
      expect(error.code).toBe(ErrorCode.UserNotFound);
    });

    it('rejects a room that does not exist with ROOM_NOT_FOUND', async () => {
      const error = await rejection(() => store.kick('missing', 'bob', T0 + 60_000, T0));
      expect(error.code).toBe(ErrorCode.RoomNotFound);
    });
  });

  describe('delete', () => {
    it('deletes the room and returns the ids of its members', async () => {
      await store.join(joinRequest('r', 'alice'));
      await store.join(joinRequest('r', 'bob'));
      expect(await store.delete('r')).toEqual(['alice', 'bob']);
      expect(await store.list()).toEqual([]);
      expect(await store.shareRoom('alice', 'bob')).toBeUndefined();
      const error = await rejection(() => store.getState('r'));
      expect(error.code).toBe(ErrorCode.RoomNotFound);
    });

    it('deletes persistent rooms too', async () => {
      await store.create(
        { roomId: 'p', config: config({ persistent: true }), createdAt: T0 },
        MAX_ROOMS,
      );
      expect(await store.delete('p')).toEqual([]);
      expect(await store.list()).toEqual([]);
    });

    it('rejects a room that does not exist with ROOM_NOT_FOUND', async () => {
      const error = await rejection(() => store.delete('missing'));
      expect(error.code).toBe(ErrorCode.RoomNotFound);
    });

    it('lets a deleted room id be joined again as a fresh room', async () => {
      await store.join(joinRequest('r', 'alice'));
      await store.applyStateChange('r', { baseVersion: 0, patch: { sceneLoaded: true } }, 262144);
      await store.delete('r');
      const outcome = await store.join(joinRequest('r', 'bob'));
      expect(outcome.createdRoom).toBe(true);
      expect(outcome.roomInfo.state.version).toBe(0);
      expect(outcome.user.role).toBe('host');
    });
  });

  describe('shareRoom', () => {
    it('returns a room two users share', async () => {
      await store.join(joinRequest('r1', 'alice'));
      await store.join(joinRequest('r2', 'alice'));
      await store.join(joinRequest('r2', 'bob'));
      expect(await store.shareRoom('alice', 'bob')).toBe('r2');
      expect(await store.shareRoom('bob', 'alice')).toBe('r2');
    });

    it('returns undefined when they share none, or either is unknown', async () => {
      await store.join(joinRequest('r1', 'alice'));
      await store.join(joinRequest('r2', 'bob'));
      expect(await store.shareRoom('alice', 'bob')).toBeUndefined();
      expect(await store.shareRoom('alice', 'nobody')).toBeUndefined();
      expect(await store.shareRoom('nobody', 'bob')).toBeUndefined();
    });

    it('forgets a shared room once one of them leaves', async () => {
      await store.join(joinRequest('r', 'alice'));
      await store.join(joinRequest('r', 'bob'));
      await store.leave('r', 'bob', T0 + 1);
      expect(await store.shareRoom('alice', 'bob')).toBeUndefined();
    });
  });

  describe('state', () => {
    it('applies a change, returns the new version and keeps the state', async () => {
      await store.join(joinRequest('r', 'alice'));
      const version = await store.applyStateChange(
        'r',
        { ops: [{ op: 'add', collection: 'annotations', id: 'a', item: { t: 1 } }] },
        262144,
      );
      expect(version).toBe(1);
      expect((await store.getState('r')).annotations).toEqual([{ id: 'a', t: 1 }]);
    });

    it('keeps the state unchanged when a change fails', async () => {
      await store.join(joinRequest('r', 'alice'));
      const error = await rejection(() =>
        store.applyStateChange('r', { baseVersion: 5, patch: { sceneLoaded: true } }, 262144),
      );
      expect(error.code).toBe(ErrorCode.StaleVersion);
      expect(error.details.currentVersion).toBe(0);
      expect(await store.getState('r')).toEqual(expect.objectContaining({ version: 0 }));
    });
  });

  describe('deleteExpired', () => {
    const DAY = 86_400_000;
    const policy = (now: number, emptyRoomTtlMs = 30_000, roomTimeoutMs = DAY) => ({
      now,
      emptyRoomTtlMs,
      roomTimeoutMs,
    });

    it('deletes a room nobody joined once the empty TTL from its creation has passed', async () => {
      await store.create({ roomId: 'r', config: config(), createdAt: T0 }, MAX_ROOMS);
      expect(await store.deleteExpired(policy(T0 + 29_999))).toEqual([]);
      expect(await store.deleteExpired(policy(T0 + 30_000))).toEqual([
        { roomId: 'r', reason: 'empty', memberIds: [] },
      ]);
      expect(await store.list()).toEqual([]);
    });

    it('deletes an emptied room at once with a TTL of 0', async () => {
      await store.join(joinRequest('r', 'alice'));
      await store.leave('r', 'alice', T0 + 5);
      expect(await store.deleteExpired(policy(T0 + 5, 0))).toEqual([
        { roomId: 'r', reason: 'empty', memberIds: [] },
      ]);
    });

    it('never deletes an occupied room for being empty', async () => {
      await store.join(joinRequest('r', 'alice'));
      expect(await store.deleteExpired(policy(T0 + 60_000, 0))).toEqual([]);
    });

    it('stops the empty TTL when someone joins', async () => {
      await store.create({ roomId: 'r', config: config(), createdAt: T0 }, MAX_ROOMS);
      await store.join(joinRequest('r', 'alice', { now: T0 + 1000 }));
      expect(await store.deleteExpired(policy(T0 + 100_000))).toEqual([]);
    });

    it('closes an occupied room idle for roomTimeoutMs (plus the lastActivity resolution) and returns its members', async () => {
      await store.join(joinRequest('r', 'alice'));
      await store.join(joinRequest('r', 'bob'));
      const idleAfter = DAY + LAST_ACTIVITY_RESOLUTION_MS;
      expect(await store.deleteExpired(policy(T0 + idleAfter - 1))).toEqual([]);
      expect(await store.deleteExpired(policy(T0 + idleAfter))).toEqual([
        { roomId: 'r', reason: 'idle_timeout', memberIds: ['alice', 'bob'] },
      ]);
      expect(await store.list()).toEqual([]);
      expect(await store.shareRoom('alice', 'bob')).toBeUndefined();
    });

    it('counts joins, leaves and touches as activity', async () => {
      await store.join(joinRequest('r', 'alice'));
      await store.join(joinRequest('r', 'bob', { now: T0 + 1000 }));
      await store.leave('r', 'bob', T0 + 2000);
      await store.touch('r', T0 + 3000);
      const idleAfter = DAY + LAST_ACTIVITY_RESOLUTION_MS;
      expect(await store.deleteExpired(policy(T0 + 3000 + idleAfter - 1))).toEqual([]);
      expect(await store.deleteExpired(policy(T0 + 3000 + idleAfter))).toHaveLength(1);
    });

    it('never deletes a persistent room, empty or idle', async () => {
      await store.create(
        { roomId: 'empty', config: config({ persistent: true }), createdAt: T0 },
        MAX_ROOMS,
      );
      await store.create(
        { roomId: 'idle', config: config({ persistent: true }), createdAt: T0 },
        MAX_ROOMS,
      );
      await store.join(joinRequest('idle', 'alice'));
      expect(await store.deleteExpired(policy(T0 + 10 * DAY, 0, 1000))).toEqual([]);
      expect((await store.list()).map((room) => room.roomId)).toEqual(['empty', 'idle']);
    });

    it('deletes only the expired rooms', async () => {
      await store.create({ roomId: 'old', config: config(), createdAt: T0 }, MAX_ROOMS);
      await store.create({ roomId: 'young', config: config(), createdAt: T0 + 20_000 }, MAX_ROOMS);
      const expired = await store.deleteExpired(policy(T0 + 30_000));
      expect(expired.map((room) => room.roomId)).toEqual(['old']);
      expect((await store.list()).map((room) => room.roomId)).toEqual(['young']);
    });
  });

  describe('with persistence', () => {
    const MAX_STATE = 262144;
    let persistence: FakePersistence;

    const persistentConfig = (overrides: Partial<RoomConfig> = {}) =>
      config({ persistent: true, ...overrides });
    const createPersistent = (roomId: string, overrides: Partial<RoomConfig> = {}) =>
      store.create({ roomId, config: persistentConfig(overrides), createdAt: T0 }, MAX_ROOMS);
    const addAnnotation = (roomId: string, id: string) =>
      store.applyStateChange(
        roomId,
        { ops: [{ op: 'add', collection: 'annotations', id, item: { text: id } }] },
        MAX_STATE,
      );

    beforeEach(() => {
      persistence = new FakePersistence();
      store = new MemoryRoomStore(persistence);
    });

    it('restores the stored rooms with their config and state, and no members', async () => {
      const state = {
        version: 7,
        sceneUrl: 'https://example.com/s.gltf',
        sceneLoaded: true,
        treeViewState: { open: ['n1'] },
        annotations: [{ id: 'a1', text: 'hi' }],
        focusPoints: [],
        sessionSettings: { quality: 'high' },
      };
      const passwordHash = hashPassword('pw');
      store = new MemoryRoomStore(
        new FakePersistence([
          {
            roomId: 'kept',
            config: persistentConfig({
              name: 'Kept',
              maxUsers: 3,
              passwordHash,
              defaultRole: 'viewer',
            }),
            createdAt: T0,
            lastActivity: T0 + 50,
            state,
          },
        ]),
      );
      await store.onModuleInit();

      expect(await store.list()).toEqual([
        {
          roomId: 'kept',
          name: 'Kept',
          userCount: 0,
          persistent: true,
          createdAt: T0,
          lastActivity: T0 + 50,
        },
      ]);
      expect(await store.getState('kept')).toEqual(state);
      const wrong = await rejection(() =>
        store.join(joinRequest('kept', 'alice', { password: 'no' })),
      );
      expect(wrong.code).toBe(ErrorCode.InvalidPassword);
      // The next joiner becomes host; the one after gets the restored default role.
      const alice = await store.join(joinRequest('kept', 'alice', { password: 'pw' }));
      expect(alice.createdRoom).toBe(false);
      expect(alice.user.role).toBe('host');
      expect(alice.roomInfo.state).toEqual(state);
      const bob = await store.join(
        joinRequest('kept', 'bob', { password: 'pw', requestedRole: 'editor' }),
      );
      expect(bob.user.role).toBe('viewer');
    });

    it('writes a persistent room when it is created, and waits for the write', async () => {
      persistence.mode = 'held';
      let created = false;
      const creating = createPersistent('p', { name: 'P' }).then(() => {
        created = true;
      });
      await settle();
      expect(created).toBe(false);
      await persistence.release();
      await creating;
      expect(persistence.files.get('p')).toEqual({
        roomId: 'p',
        config: persistentConfig({ name: 'P' }),
        createdAt: T0,
        lastActivity: T0,
        state: expect.objectContaining({ version: 0 }),
      });
    });

    it('never writes a non-persistent room', async () => {
      await store.create({ roomId: 'plain', config: config(), createdAt: T0 }, MAX_ROOMS);
      await store.join(joinRequest('plain', 'alice'));
      await store.join(joinRequest('joined', 'alice'));
      await addAnnotation('plain', 'a');
      await addAnnotation('joined', 'a');
      await store.delete('plain');
      await store.leave('joined', 'alice', T0 + 1);
      await store.deleteExpired({ now: T0 + 100_000, emptyRoomTtlMs: 0, roomTimeoutMs: 1000 });
      expect(persistence.calls).toEqual([]);
    });

    it('answers a state change of a non-persistent room without waiting for anything', async () => {
      persistence.mode = 'held';
      await store.join(joinRequest('plain', 'alice'));
      expect(await addAnnotation('plain', 'a')).toBe(1);
      expect(persistence.heldWrites).toBe(0);
    });

    it('resolves a state change only once it is written, and shows it only then', async () => {
      await createPersistent('p');
      persistence.mode = 'held';
      let version: number | undefined;
      const applying = addAnnotation('p', 'a1').then((v) => {
        version = v;
      });
      await settle();
      expect(version).toBeUndefined();
      expect((await store.getState('p')).version).toBe(0);

      await persistence.release();
      await applying;
      expect(version).toBe(1);
      expect((await store.getState('p')).annotations).toEqual([{ id: 'a1', text: 'a1' }]);
      expect(persistence.files.get('p')?.state).toEqual(await store.getState('p'));
    });

    it('writes the changes of one room one at a time, in order', async () => {
      await createPersistent('p');
      persistence.mode = 'held';
      const versions = Promise.all([addAnnotation('p', 'a'), addAnnotation('p', 'b')]);
      await settle();
      expect(persistence.heldWrites).toBe(1);
      expect(persistence.calls).toEqual(['save p v0', 'save p v1']);
      await persistence.release();
      expect(persistence.calls).toEqual(['save p v0', 'save p v1', 'save p v2']);
      await persistence.release();
      expect(await versions).toEqual([1, 2]);
      expect(persistence.files.get('p')?.state.version).toBe(2);
    });

    it('checks a patch against the written state: the second of two on one version is stale', async () => {
      await createPersistent('p');
      persistence.mode = 'held';
      const patch = { baseVersion: 0, patch: { sceneLoaded: true } };
      const first = store.applyStateChange('p', patch, MAX_STATE);
      const second = store.applyStateChange('p', patch, MAX_STATE);
      await persistence.release();
      expect(await first).toBe(1);
      const stale = await rejection(() => second);
      expect(stale.code).toBe(ErrorCode.StaleVersion);
      expect(stale.details.currentVersion).toBe(1);
    });

    it('changes nothing when the write of a state change fails, and goes on after it', async () => {
      await createPersistent('p');
      persistence.mode = 'failing';
      await expect(addAnnotation('p', 'lost')).rejects.toThrow('disk full');
      expect((await store.getState('p')).version).toBe(0);
      persistence.mode = 'instant';
      expect(await addAnnotation('p', 'kept')).toBe(1);
      expect((await store.getState('p')).annotations.map((item) => item.id)).toEqual(['kept']);
    });

    it('does not keep a persistent room whose first write failed', async () => {
      persistence.mode = 'failing';
      await expect(createPersistent('p')).rejects.toThrow('disk full');
      expect(await store.list()).toEqual([]);
      persistence.mode = 'instant';
      await createPersistent('p');
      expect((await store.list()).map((room) => room.roomId)).toEqual(['p']);
    });

    it('removes the file of a deleted persistent room before the room is gone', async () => {
      await createPersistent('p');
      await store.join(joinRequest('p', 'alice'));
      persistence.mode = 'held';
      const deleting = store.delete('p');
      await settle();
      expect(persistence.calls).toEqual(['save p v0', 'remove p']);
      expect(await store.list()).toHaveLength(1);
      await persistence.release();
      expect(await deleting).toEqual(['alice']);
      expect(await store.list()).toEqual([]);
      expect(persistence.files.has('p')).toBe(false);
    });

    it('keeps a persistent room whose file could not be removed', async () => {
      await createPersistent('p');
      persistence.mode = 'failing';
      await expect(store.delete('p')).rejects.toThrow('disk full');
      expect((await store.list()).map((room) => room.roomId)).toEqual(['p']);
    });

    it('orders a change before a delete, and refuses a change queued behind the delete', async () => {
      await createPersistent('p');
      persistence.mode = 'held';
      const before = addAnnotation('p', 'a');
      const deleting = store.delete('p');
      const after = addAnnotation('p', 'b');
      await persistence.release();
      await persistence.release();
      expect(await before).toBe(1);
      expect(await deleting).toEqual([]);
      const error = await rejection(() => after);
      expect(error.code).toBe(ErrorCode.RoomNotFound);
      expect(persistence.calls).toEqual(['save p v0', 'save p v1', 'remove p']);
      expect(persistence.files.has('p')).toBe(false);
    });

    it('refuses to create a room while its deletion is still being written', async () => {
      await createPersistent('p');
      persistence.mode = 'held';
      const deleting = store.delete('p');
      const error = await rejection(() => createPersistent('p'));
      expect(error.code).toBe(ErrorCode.RoomExists);
      await persistence.release();
      await deleting;
      persistence.mode = 'instant';
      await createPersistent('p');
      expect(persistence.calls).toEqual(['save p v0', 'remove p', 'save p v0']);
    });

    it('waits for the writes in flight when the application shuts down', async () => {
      await createPersistent('p');
      persistence.mode = 'held';
      const applying = addAnnotation('p', 'a');
      let drained = false;
      const draining = store.onApplicationShutdown().then(() => {
        drained = true;
      });
      await settle();
      expect(drained).toBe(false);
      await persistence.release();
      await Promise.all([applying, draining]);
      expect(drained).toBe(true);
    });

    it('keeps persistent rooms in memory only when no persistence is provided', async () => {
      store = new MemoryRoomStore();
      await store.onModuleInit();
      await createPersistent('p');
      expect(await addAnnotation('p', 'a')).toBe(1);
      expect(await store.delete('p')).toEqual([]);
      expect(persistence.calls).toEqual([]);
    });
  });
});
