import { ProtocolError } from '../../src/protocol/protocol-error.js';
import { ErrorCode, type Role } from '../../src/protocol/protocol.js';
import { hashPassword } from '../../src/rooms/password.js';
import {
  LAST_ACTIVITY_RESOLUTION_MS,
  type JoinRequest,
  type NewRoom,
  type RoomActor,
  type RoomConfig,
  type RoomQuota,
  type RoomStore,
} from '../../src/rooms/room-store.js';

/*
 * The behaviour every RoomStore must have, written once and run against each implementation:
 * the gateway and RoomsService rely on it whichever store the deployment uses (memory for one
 * instance, Redis for a cluster). A store's own spec calls describeRoomStoreContract with a
 * factory, and keeps only what is specific to that store.
 *
 * A plain module, not a spec: jest's testMatch does not pick it up, and tsconfig.build.json
 * compiles only src, so it never reaches dist.
 */

export const T0 = 1_700_000_000_000;
export const MAX_ROOMS = 100;

/** A quota of `maxRooms` for the user (or, with kind, the IP) `id`. */
export const quota = (id: string, maxRooms: number, kind: 'user' | 'ip' = 'user'): RoomQuota => ({
  owner: { kind, id },
  maxRooms,
});

export const config = (overrides: Partial<RoomConfig> = {}): RoomConfig => ({
  maxUsers: 50,
  persistent: false,
  defaultRole: 'editor',
  ...overrides,
});

export const joinRequest = (
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

/** The ProtocolError the call rejects with; fails the test when it resolves or throws another. */
export async function rejection(promise: () => Promise<unknown>): Promise<ProtocolError> {
  try {
    await promise();
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return error as ProtocolError;
  }
  throw new Error('expected a ProtocolError');
}

/** A store for one test, empty, and how to dispose of what the test left in it. */
export interface RoomStoreUnderTest {
  store: RoomStore;
  /** Runs after the test, failed or not. */
  cleanup?: () => Promise<void>;
}

export interface RoomStoreContractOptions {
  /** The implementation, for the name of the suite. */
  name: string;
}

/**
 * Declares the contract's cases (at the point of the call, inside any enclosing describe); each
 * case gets its own store from `makeStore`.
 */
export function describeRoomStoreContract(
  makeStore: () => Promise<RoomStoreUnderTest>,
  options: RoomStoreContractOptions,
): void {
  describe(`${options.name} keeps the RoomStore contract`, () => {
    let store: RoomStore;
    let cleanup: (() => Promise<void>) | undefined;

    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
    });

    afterEach(async () => {
      await cleanup?.();
      cleanup = undefined;
    });

    const roleOf = (roomId: string, userId: string) => store.roleOf(roomId, userId);
    const userIds = async (roomId: string, userId: string) =>
      (await store.join(joinRequest(roomId, userId))).roomInfo.users.map((user) => user.id);

    describe('setConnected', () => {
      it('marks a member not connected and back, keeping its role, and answers the room', async () => {
        await store.join(joinRequest('r', 'alice'));
        await store.join(joinRequest('r', 'bob', { avatar: { color: '#ff0000' } }));
        const dropped = await store.setConnected('r', 'bob', false, T0 + 5);
        expect(dropped?.user).toEqual({
          id: 'bob',
          name: 'bob',
          role: 'editor',
          avatar: { color: '#ff0000' },
          connected: false,
          lastSeen: T0 + 5,
          slot: 2,
        });
        expect(dropped?.roomInfo.users.map((user) => [user.id, user.connected])).toEqual([
          ['alice', true],
          ['bob', false],
        ]);
        expect(dropped?.changed).toBe(true);
        expect((await store.setConnected('r', 'bob', false, T0 + 6))?.changed).toBe(false);
        const back = await store.setConnected('r', 'bob', true, T0 + 9);
        expect(back?.user).toMatchObject({ role: 'editor', connected: true, lastSeen: T0 + 9 });
        expect(back?.changed).toBe(true);
        expect(back?.roomInfo.state.version).toBe(0);
        expect(await roleOf('r', 'bob')).toBe('editor');
      });

      it("lists a user's rooms in join order", async () => {
        await store.join(joinRequest('b', 'bob'));
        await store.join(joinRequest('a', 'bob'));
        await store.join(joinRequest('a', 'alice'));
        expect(await store.roomsOf('bob')).toEqual(['b', 'a']);
        expect(await store.roomsOf('nobody')).toEqual([]);
      });

      it('answers undefined for a user who is no member, or a room that is gone', async () => {
        await store.join(joinRequest('r', 'alice'));
        expect(await store.setConnected('r', 'bob', false, T0)).toBeUndefined();
        expect(await store.setConnected('nowhere', 'alice', false, T0)).toBeUndefined();
      });
    });

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
          slot: 1,
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
      ])(
        'with defaultRole %s, asking for %s grants %s',
        async (defaultRole, requested, granted) => {
          await store.create({ roomId: 'r', config: config({ defaultRole }), createdAt: T0 }, 10);
          await store.join(joinRequest('r', 'first'));
          const outcome = await store.join(
            joinRequest('r', 'second', { requestedRole: requested }),
          );
          expect(outcome.user.role).toBe(granted);
          expect(await roleOf('r', 'second')).toBe(granted);
        },
      );

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
              config: config({ passwordHash: await hashPassword('s3cret') }),
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
          const error = await rejection(() =>
            store.join(joinRequest('locked', 'bob', { password })),
          );
          expect(error.code).toBe(ErrorCode.InvalidPassword);
          expect(await roleOf('locked', 'bob')).toBeUndefined();
        });

        it('lets a room created on join keep the password it was created with', async () => {
          await store.join(joinRequest('auto', 'alice', { password: 'pw' }));
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
          slot: 2,
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

    describe('the actor a write is made for (checked in the same step as the write)', () => {
      type Write = 'setRole' | 'kick' | 'delete' | 'applyStateChange';
      const minRoles: Record<Write, Role> = {
        setRole: 'host',
        kick: 'host',
        delete: 'host',
        applyStateChange: 'editor',
      };
      const writes: Record<Write, (roomId: string, actor: RoomActor) => Promise<unknown>> = {
        setRole: (roomId, actor) => store.setRole(roomId, 'dave', 'viewer', actor),
        kick: (roomId, actor) => store.kick(roomId, 'dave', T0 + 60_000, T0 + 1, actor),
        delete: (roomId, actor) => store.delete(roomId, actor),
        applyStateChange: (roomId, actor) =>
          store.applyStateChange(
            roomId,
            { baseVersion: 0, patch: { sceneLoaded: true } },
            262144,
            actor,
          ),
      };
      /** Who is below each minimum role: bob (editor) for host, carol (viewer) for editor. */
      const belowRole = (minRole: Role) => (minRole === 'host' ? 'bob' : 'carol');

      /** The members, their roles and the state, as a member joining again is answered. */
      const snapshot = async () => (await store.join(joinRequest('r', 'alice'))).roomInfo;

      beforeEach(async () => {
        await store.join(joinRequest('r', 'alice'));
        await store.join(joinRequest('r', 'bob'));
        await store.join(joinRequest('r', 'carol', { requestedRole: 'viewer' }));
        await store.join(joinRequest('r', 'dave'));
      });

      describe.each(Object.keys(writes) as Write[])('%s', (write) => {
        const minRole = minRoles[write];

        it('refuses an actor that is no member with NOT_IN_ROOM and changes nothing', async () => {
          const before = await snapshot();
          const error = await rejection(() => writes[write]('r', { userId: 'zed', minRole }));
          expect(error.code).toBe(ErrorCode.NotInRoom);
          expect(await snapshot()).toEqual(before);
        });

        it('refuses a member below the role with FORBIDDEN and changes nothing', async () => {
          const before = await snapshot();
          const actor = { userId: belowRole(minRole), minRole };
          const error = await rejection(() => writes[write]('r', actor));
          expect(error.code).toBe(ErrorCode.Forbidden);
          expect(await snapshot()).toEqual(before);
        });

        it('answers ROOM_NOT_FOUND for a missing room before looking at the actor', async () => {
          const error = await rejection(() => writes[write]('missing', { userId: 'zed', minRole }));
          expect(error.code).toBe(ErrorCode.RoomNotFound);
        });

        it('lets a member holding the role write', async () => {
          await writes[write]('r', { userId: 'alice', minRole });
          expect(await store.list()).toEqual(
            write === 'delete' ? [] : [expect.objectContaining({ roomId: 'r' })],
          );
        });
      });

      it('checks the actor before the target: a refused actor learns nothing of it', async () => {
        const actor = { userId: 'bob', minRole: 'host' } as const;
        expect((await rejection(() => store.setRole('r', 'zed', 'viewer', actor))).code).toBe(
          ErrorCode.Forbidden,
        );
        expect(
          (await rejection(() => store.kick('r', 'zed', T0 + 60_000, T0 + 1, actor))).code,
        ).toBe(ErrorCode.Forbidden);
      });

      it('checks the actor before the version: a refused change is not told it is stale', async () => {
        const error = await rejection(() =>
          store.applyStateChange('r', { baseVersion: 7, patch: { sceneLoaded: true } }, 262144, {
            userId: 'carol',
            minRole: 'editor',
          }),
        );
        expect(error.code).toBe(ErrorCode.Forbidden);
      });
    });

    describe('members', () => {
      it('lists the members as they are now, in join order, with roles and connected flags', async () => {
        await store.join(joinRequest('r', 'alice'));
        await store.join(joinRequest('r', 'bob', { avatar: { color: '#00ff00' } }));
        await store.join(joinRequest('r', 'carol', { requestedRole: 'viewer' }));
        await store.setConnected('r', 'bob', false, T0 + 5);
        await store.leave('r', 'alice', T0 + 6);
        expect(await store.members('r')).toEqual([
          {
            id: 'bob',
            name: 'bob',
            role: 'host',
            avatar: { color: '#00ff00' },
            connected: false,
            lastSeen: T0 + 5,
            slot: 2,
          },
          { id: 'carol', name: 'carol', role: 'viewer', connected: true, lastSeen: T0, slot: 3 },
        ]);
      });

      it('gives each joiner the next slot, kept on joining again, new after leaving', async () => {
        const slotOf = async (userId: string, roomId = 'r') =>
          (await store.join(joinRequest(roomId, userId))).user.slot;
        expect(await slotOf('alice')).toBe(1);
        expect(await slotOf('bob')).toBe(2);
        expect(await slotOf('alice')).toBe(1);
        expect(await slotOf('carol', 'other')).toBe(1);
        await store.leave('r', 'bob', T0 + 1);
        expect(await slotOf('bob')).toBe(3);
        const { roomInfo } = await store.join(joinRequest('r', 'dave'));
        expect(roomInfo.users.map((user) => [user.id, user.slot])).toEqual([
          ['alice', 1],
          ['bob', 3],
          ['dave', 4],
        ]);
        const dropped = await store.setConnected('r', 'dave', false, T0 + 2);
        expect(dropped?.roomInfo.users.map((user) => user.slot)).toEqual([1, 3, 4]);
      });

      it('answers an empty room with no members and a missing one with ROOM_NOT_FOUND', async () => {
        await store.create({ roomId: 'empty', config: config(), createdAt: T0 }, MAX_ROOMS);
        expect(await store.members('empty')).toEqual([]);
        expect((await rejection(() => store.members('nowhere'))).code).toBe(ErrorCode.RoomNotFound);
      });

      it('skips the slots members hold (held seats too) once slots wrap at 65536', async () => {
        const SLOTS = 65536;
        const BATCH = 48; // flappers at once: with stayer and held, within maxUsers (50)
        expect((await store.join(joinRequest('r', 'stayer'))).user.slot).toBe(1);
        expect((await store.join(joinRequest('r', 'held'))).user.slot).toBe(2);
        await store.setConnected('r', 'held', false, T0 + 1);
        // Members that come and go until the room's 65536th join, whose slot is 0: joins 3-65536.
        for (let joined = 2; joined < SLOTS; joined += BATCH) {
          const userIds = Array.from(
            { length: Math.min(BATCH, SLOTS - joined) },
            (_, i) => `flapper-${joined + i}`,
          );
          await Promise.all(userIds.map((userId) => store.join(joinRequest('r', userId))));
          await Promise.all(userIds.map((userId) => store.leave('r', userId, T0 + 2)));
        }
        // Slots 1 and 2 come round again, held by stayer and held: the next free one is 3.
        const { user, roomInfo } = await store.join(joinRequest('r', 'newcomer'));
        expect(user.slot).toBe(3);
        expect((await store.join(joinRequest('r', 'next'))).user.slot).toBe(4);
        expect((await store.join(joinRequest('r', 'stayer'))).user.slot).toBe(1);
        expect(roomInfo.users.map((member) => [member.id, member.slot])).toEqual([
          ['stayer', 1],
          ['held', 2],
          ['newcomer', 3],
        ]);
        expect((await store.members('r')).map((member) => member.slot)).toEqual([1, 2, 3, 4]);
      }, 120_000);
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

      it('returns the room asked for when both are in it, else undefined', async () => {
        await store.join(joinRequest('r1', 'alice'));
        await store.join(joinRequest('r2', 'alice'));
        await store.join(joinRequest('r1', 'bob'));
        await store.join(joinRequest('r2', 'bob'));
        await store.join(joinRequest('r3', 'alice'));
        expect(await store.shareRoom('alice', 'bob', 'r2')).toBe('r2');
        expect(await store.shareRoom('alice', 'bob', 'r3')).toBeUndefined();
        expect(await store.shareRoom('alice', 'bob', 'missing')).toBeUndefined();
        expect(await store.shareRoom('alice', 'nobody', 'r1')).toBeUndefined();
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

      it('refuses a state beyond maxStateBytes with STATE_TOO_LARGE and keeps the old one', async () => {
        await store.join(joinRequest('r', 'alice'));
        const error = await rejection(() =>
          store.applyStateChange(
            'r',
            { baseVersion: 0, patch: { sceneUrl: 'x'.repeat(2000) } },
            1024,
          ),
        );
        expect(error.code).toBe(ErrorCode.StateTooLarge);
        expect((await store.getState('r')).version).toBe(0);
      });

      it('rejects a change to a room that does not exist with ROOM_NOT_FOUND', async () => {
        const error = await rejection(() =>
          store.applyStateChange(
            'missing',
            { ops: [{ op: 'add', collection: 'annotations', id: 'a', item: { id: 'a' } }] },
            262144,
          ),
        );
        expect(error.code).toBe(ErrorCode.RoomNotFound);
      });
    });

    describe('joining again', () => {
      beforeEach(async () => {
        await store.create(
          {
            roomId: 'locked',
            config: config({ passwordHash: await hashPassword('pw') }),
            createdAt: T0,
          },
          MAX_ROOMS,
        );
        await store.join(joinRequest('locked', 'alice', { password: 'pw' }));
      });

      it.each([
        ['a wrong', 'guess'],
        ['a missing', undefined],
      ])(
        'refuses a member that joins a password room again with %s password, and keeps it',
        async (_label, password) => {
          const error = await rejection(() =>
            store.join(joinRequest('locked', 'alice', { password })),
          );
          expect(error.code).toBe(ErrorCode.InvalidPassword);
          expect(await roleOf('locked', 'alice')).toBe('host');
        },
      );

      it('answers a member that joins again with the right password', async () => {
        const again = await store.join(joinRequest('locked', 'alice', { password: 'pw' }));
        expect(again.alreadyMember).toBe(true);
        expect(again.roleChanged).toBeUndefined();
      });

      it('answers a member registered again (restore) as it is, without the checks', async () => {
        const again = await store.join(joinRequest('locked', 'alice', { restore: true }));
        expect(again.alreadyMember).toBe(true);
        expect(again.user.role).toBe('host');
      });

      it('still checks a newcomer that comes with restore', async () => {
        const error = await rejection(() =>
          store.join(joinRequest('locked', 'bob', { restore: true })),
        );
        expect(error.code).toBe(ErrorCode.InvalidPassword);
      });
    });

    describe('mayCreate', () => {
      it('refuses to create a missing room with ROOM_NOT_FOUND, and creates nothing', async () => {
        const error = await rejection(() =>
          store.join(joinRequest('nope', 'alice', { mayCreate: false })),
        );
        expect(error.code).toBe(ErrorCode.RoomNotFound);
        expect(await store.list()).toEqual([]);
        expect(await store.shareRoom('alice', 'alice')).toBeUndefined();
      });

      it('still joins a room that exists', async () => {
        await store.create({ roomId: 'r', config: config(), createdAt: T0 }, MAX_ROOMS);
        const outcome = await store.join(joinRequest('r', 'alice', { mayCreate: false }));
        expect(outcome.createdRoom).toBe(false);
        expect(outcome.user.role).toBe('host');
      });
    });

    describe('room quotas', () => {
      const create = (roomId: string, roomQuota?: RoomQuota, overrides: Partial<NewRoom> = {}) =>
        store.create(
          {
            roomId,
            config: config(),
            createdAt: T0,
            ...(roomQuota ? { quota: roomQuota } : {}),
            ...overrides,
          },
          MAX_ROOMS,
        );

      it('refuses an owner a room beyond its maximum with ROOM_QUOTA, by create and by join', async () => {
        await create('a1', quota('ann', 2));
        await store.join(joinRequest('a2', 'ann', { quota: quota('ann', 2) }));

        const byCreate = await rejection(() => create('a3', quota('ann', 2)));
        expect(byCreate.code).toBe(ErrorCode.RoomQuota);
        expect(byCreate.message).toBe('You already have 2 rooms; at most 2');
        const byJoin = await rejection(() =>
          store.join(joinRequest('a4', 'ann', { quota: quota('ann', 2) })),
        );
        expect(byJoin.code).toBe(ErrorCode.RoomQuota);
        expect((await store.list()).map((room) => room.roomId)).toEqual(['a1', 'a2']);
        expect(await store.shareRoom('ann', 'ann')).toBe('a2');
      });

      it('counts rooms per owner, users and IPs apart, and rooms without an owner for nobody', async () => {
        await create('a1', quota('x', 1));
        await create('free');
        await create('b1', quota('bob', 1));
        await create('ip1', quota('x', 1, 'ip'));
        expect((await rejection(() => create('a2', quota('x', 1)))).code).toBe(ErrorCode.RoomQuota);
        expect((await rejection(() => create('ip2', quota('x', 1, 'ip')))).code).toBe(
          ErrorCode.RoomQuota,
        );
      });

      it('does not count joining a room that exists, or joining a room one owns again', async () => {
        await create('a1', quota('ann', 1));
        await store.create({ roomId: 'other', config: config(), createdAt: T0 }, MAX_ROOMS);
        expect(
          (await store.join(joinRequest('other', 'ann', { quota: quota('ann', 1) }))).createdRoom,
        ).toBe(false);
        expect(
          (await store.join(joinRequest('a1', 'ann', { quota: quota('ann', 1) }))).createdRoom,
        ).toBe(false);
      });

      it('frees a slot when one of the rooms is deleted', async () => {
        await create('a1', quota('ann', 1));
        await store.delete('a1');
        await create('a2', quota('ann', 1));
        expect((await store.list()).map((room) => room.roomId)).toEqual(['a2']);
      });

      it('frees a slot when one of the rooms expires', async () => {
        await store.join(joinRequest('a1', 'ann', { quota: quota('ann', 1) }));
        await store.leave('a1', 'ann', T0 + 1);
        await store.deleteExpired({ now: T0 + 1, emptyRoomTtlMs: 0, roomTimeoutMs: 86_400_000 });
        await store.join(joinRequest('a2', 'ann', { quota: quota('ann', 1) }));
        expect((await store.list()).map((room) => room.roomId)).toEqual(['a2']);
      });

      it('records rooms made without a limit (0), so that a limit counts them later', async () => {
        await create('a1', quota('ann', 0));
        await create('a2', quota('ann', 0));
        const error = await rejection(() => create('a3', quota('ann', 2)));
        expect(error.message).toBe('You already have 2 rooms; at most 2');
      });

      it('does not count a room that was created again under the same id by someone else', async () => {
        await create('r', quota('ann', 1));
        await store.delete('r');
        await create('r', quota('bob', 1));
        await create('mine', quota('ann', 1));
        expect((await rejection(() => create('r2', quota('bob', 1)))).code).toBe(
          ErrorCode.RoomQuota,
        );
      });

      it('answers ROOM_EXISTS rather than ROOM_QUOTA for an id that is taken', async () => {
        await create('a1', quota('ann', 1));
        expect((await rejection(() => create('a1', quota('ann', 1)))).code).toBe(
          ErrorCode.RoomExists,
        );
      });
    });

    describe('role caps (maxRole)', () => {
      it('grants the first joiner capped at editor editor, and leaves the room without host', async () => {
        const outcome = await store.join(joinRequest('r', 'alice', { maxRole: 'editor' }));
        expect(outcome.user.role).toBe('editor');
        const bob = await store.join(joinRequest('r', 'bob', { requestedRole: 'editor' }));
        expect(bob.user.role).toBe('editor');
        expect(bob.roomInfo.users.map((user) => user.role)).toEqual(['editor', 'editor']);
      });

      it.each<[Role | undefined, Role | undefined, Role]>([
        [undefined, 'viewer', 'viewer'],
        ['editor', 'viewer', 'viewer'],
        ['viewer', 'editor', 'viewer'],
        ['viewer', undefined, 'viewer'],
        ['host', 'editor', 'editor'],
      ])('asking for %s with maxRole %s grants %s', async (requested, maxRole, granted) => {
        await store.join(joinRequest('r', 'alice'));
        const outcome = await store.join(
          joinRequest('r', 'bob', {
            ...(requested ? { requestedRole: requested } : {}),
            ...(maxRole ? { maxRole } : {}),
          }),
        );
        expect(outcome.user.role).toBe(granted);
      });

      it('keeps the cap off the member: users carry only their usual fields', async () => {
        const outcome = await store.join(joinRequest('r', 'alice', { maxRole: 'viewer' }));
        expect(outcome.user).toStrictEqual({
          id: 'alice',
          name: 'alice',
          role: 'viewer',
          connected: true,
          lastSeen: T0,
          slot: 1,
        });
        expect(outcome.roomInfo.users).toStrictEqual([outcome.user]);
      });

      describe('setRole', () => {
        beforeEach(async () => {
          await store.join(joinRequest('r', 'alice'));
          await store.join(joinRequest('r', 'bob', { maxRole: 'editor' }));
          await store.join(joinRequest('r', 'carol', { maxRole: 'viewer' }));
        });

        it("refuses a role above the target's cap with FORBIDDEN and changes nothing", async () => {
          const error = await rejection(() => store.setRole('r', 'bob', 'host'));
          expect(error.code).toBe(ErrorCode.Forbidden);
          expect(error.message).toBe("bob's token allows at most editor in this room");
          expect(await roleOf('r', 'alice')).toBe('host');
          expect(await roleOf('r', 'bob')).toBe('editor');
          const viewer = await rejection(() => store.setRole('r', 'carol', 'editor'));
          expect(viewer.message).toBe("carol's token allows at most viewer in this room");
        });

        it('allows any role up to the cap', async () => {
          await store.setRole('r', 'bob', 'viewer');
          await store.setRole('r', 'bob', 'editor');
          await store.setRole('r', 'carol', 'viewer');
          expect(await roleOf('r', 'bob')).toBe('editor');
        });
      });

      describe('host handover', () => {
        beforeEach(async () => {
          await store.join(joinRequest('r', 'alice'));
          await store.join(joinRequest('r', 'bob', { maxRole: 'editor' }));
          await store.join(joinRequest('r', 'carol', { maxRole: 'host' }));
          await store.join(joinRequest('r', 'dave'));
        });

        it('skips members whose cap is below host when the host leaves', async () => {
          const outcome = await store.leave('r', 'alice', T0 + 1);
          expect(outcome?.newHost).toEqual(expect.objectContaining({ id: 'carol', role: 'host' }));
          expect(await roleOf('r', 'bob')).toBe('editor');
        });

        it('skips them when the host is kicked too', async () => {
          const outcome = await store.kick('r', 'alice', T0 + 60_000, T0 + 1);
          expect(outcome.newHost?.id).toBe('carol');
        });

        it('leaves the room without host when nobody may host', async () => {
          await store.leave('r', 'carol', T0 + 1);
          await store.leave('r', 'dave', T0 + 1);
          expect(await store.leave('r', 'alice', T0 + 2)).toEqual({ remaining: 1 });
          expect(await roleOf('r', 'bob')).toBe('editor');
        });

        it('forgets the cap of a member that left', async () => {
          await store.leave('r', 'bob', T0 + 1);
          await store.join(joinRequest('r', 'bob', { now: T0 + 2 }));
          await store.setRole('r', 'bob', 'host');
          expect(await roleOf('r', 'bob')).toBe('host');
        });
      });

      describe('joining again', () => {
        beforeEach(async () => {
          await store.join(joinRequest('r', 'alice'));
          await store.join(joinRequest('r', 'bob'));
        });

        it('demotes a member that comes back with a lower cap, and says so', async () => {
          const again = await store.join(joinRequest('r', 'alice', { maxRole: 'viewer' }));
          expect(again.alreadyMember).toBe(true);
          expect(again.roleChanged).toBe(true);
          expect(again.user.role).toBe('viewer');
          expect(again.roomInfo.users.map((user) => [user.id, user.role])).toEqual([
            ['alice', 'viewer'],
            ['bob', 'editor'],
          ]);
          expect(await roleOf('r', 'alice')).toBe('viewer');
          const error = await rejection(() => store.setRole('r', 'alice', 'editor'));
          expect(error.code).toBe(ErrorCode.Forbidden);
        });

        it('keeps a role within the new cap, and lifts the cap when it comes back without one', async () => {
          const capped = await store.join(joinRequest('r', 'bob', { maxRole: 'editor' }));
          expect(capped.roleChanged).toBeUndefined();
          expect((await rejection(() => store.setRole('r', 'bob', 'host'))).code).toBe(
            ErrorCode.Forbidden,
          );
          await store.join(joinRequest('r', 'bob'));
          await store.setRole('r', 'bob', 'host');
          expect(await roleOf('r', 'bob')).toBe('host');
        });

        it('keeps the cap of a member registered again (restore)', async () => {
          await store.join(joinRequest('r', 'bob', { maxRole: 'viewer' }));
          await store.join(joinRequest('r', 'bob', { restore: true }));
          expect((await rejection(() => store.setRole('r', 'bob', 'editor'))).code).toBe(
            ErrorCode.Forbidden,
          );
        });
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

      describe('of persistent rooms (persistentRoomIdleMs)', () => {
        const IDLE = 30 * DAY;
        const idleAfter = IDLE + LAST_ACTIVITY_RESOLUTION_MS;
        const persistentPolicy = (now: number, persistentRoomIdleMs = IDLE) => ({
          ...policy(now, 0, 1000),
          persistentRoomIdleMs,
        });
        const createPersistent = (roomId: string, createdAt = T0) =>
          store.create(
            { roomId, config: config({ persistent: true }), createdAt, quota: quota('ann', 0) },
            MAX_ROOMS,
          );

        it('deletes a persistent room without activity for that long, empty or not', async () => {
          await createPersistent('empty');
          await createPersistent('quiet');
          await store.join(joinRequest('quiet', 'alice'));
          await store.join(joinRequest('quiet', 'bob'));
          expect(await store.deleteExpired(persistentPolicy(T0 + idleAfter - 1))).toEqual([]);
          const expired = await store.deleteExpired(persistentPolicy(T0 + idleAfter));
          expect(expired).toEqual([
            { roomId: 'empty', reason: 'idle_timeout', memberIds: [] },
            { roomId: 'quiet', reason: 'idle_timeout', memberIds: ['alice', 'bob'] },
          ]);
          expect(await store.list()).toEqual([]);
          expect(await store.shareRoom('alice', 'bob')).toBeUndefined();
        });

        it("frees the owner's quota slot", async () => {
          await createPersistent('p');
          const next = () =>
            store.create(
              { roomId: 'next', config: config(), createdAt: T0, quota: quota('ann', 1) },
              MAX_ROOMS,
            );
          expect((await rejection(next)).code).toBe(ErrorCode.RoomQuota);
          const expired = await store.deleteExpired(persistentPolicy(T0 + idleAfter));
          expect(expired.map((room) => room.roomId)).toEqual(['p']);
          await expect(next()).resolves.toBeUndefined();
        });

        it('counts joins, touches and state changes as activity', async () => {
          await createPersistent('joined');
          await createPersistent('touched');
          await createPersistent('changed');
          await store.join(joinRequest('joined', 'alice', { now: T0 + DAY }));
          await store.touch('touched', T0 + DAY);
          await store.applyStateChange(
            'changed',
            { ops: [{ op: 'add', collection: 'annotations', id: 'a', item: {} }] },
            262144,
          );
          const expired = await store.deleteExpired(persistentPolicy(T0 + idleAfter));
          expect(expired).toEqual([]);
          const later = await store.deleteExpired(persistentPolicy(T0 + DAY + idleAfter));
          expect(later.map((room) => room.roomId)).toEqual(['joined', 'touched']);
          expect((await store.list()).map((room) => room.roomId)).toEqual(['changed']);
        });

        it('never deletes one with a persistentRoomIdleMs of 0', async () => {
          await createPersistent('p');
          expect(await store.deleteExpired(persistentPolicy(T0 + 1000 * DAY, 0))).toEqual([]);
          expect(await store.list()).toHaveLength(1);
        });

        it('leaves non-persistent rooms to the other rules', async () => {
          await store.join(joinRequest('r', 'alice'));
          const expired = await store.deleteExpired({
            ...policy(T0 + 10_000, 0, DAY),
            persistentRoomIdleMs: 1000,
          });
          expect(expired).toEqual([]);
        });
      });

      it('deletes only the expired rooms', async () => {
        await store.create({ roomId: 'old', config: config(), createdAt: T0 }, MAX_ROOMS);
        await store.create(
          { roomId: 'young', config: config(), createdAt: T0 + 20_000 },
          MAX_ROOMS,
        );
        const expired = await store.deleteExpired(policy(T0 + 30_000));
        expect(expired.map((room) => room.roomId)).toEqual(['old']);
        expect((await store.list()).map((room) => room.roomId)).toEqual(['young']);
      });
    });
  });
}
