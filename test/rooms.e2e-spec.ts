import { replyOf, useTestServer } from './support/fixtures.js';
import type { TestClient } from './support/test-client.js';

describe('rooms and membership', () => {
  // A test with env overrides calls start(env) first; otherwise its first connect boots a server.
  const { start, connect, connectAll } = useTestServer({ lazy: true });

  /** Asks for a join and returns the error reply (failing if the join succeeded). */
  const joinError = (client: TestClient, roomId: string, fields: Record<string, unknown> = {}) =>
    client.error(client.request('join_room', { roomId, ...fields }));

  describe('create_room', () => {
    it('creates a room with the id asked for and answers once with room_created', async () => {
      const alice = await connect('alice');
      const requestId = alice.request('create_room', {
        roomId: 'gallery-1',
        config: { name: 'Gallery Session', maxUsers: 20, persistent: false },
      });
      expect(await replyOf(alice, requestId, 'room_created')).toStrictEqual({
        requestId,
        roomId: 'gallery-1',
      });
      await alice.expectNothing(100);

      const room = await alice.join('gallery-1');
      expect(room.roomId).toBe('gallery-1');
      expect(room.users).toEqual([expect.objectContaining({ id: 'alice', role: 'host' })]);
      expect(room.state).toMatchObject({ version: 0, annotations: [], focusPoints: [] });
      expect(typeof room.createdAt).toBe('number');
    });

    it('generates an id of "room-" and 12 base36 characters when none is given', async () => {
      const alice = await connect('alice');
      const first = alice.request('create_room', {});
      const { roomId: firstId } = await replyOf<{ roomId: string }>(alice, first, 'room_created');
      const second = alice.request('create_room', { config: { name: 'Second' } });
      const { roomId: secondId } = await replyOf<{ roomId: string }>(alice, second, 'room_created');

      expect(firstId).toMatch(/^room-[0-9a-z]{12}$/);
      expect(secondId).toMatch(/^room-[0-9a-z]{12}$/);
      expect(secondId).not.toBe(firstId);
      expect((await alice.join(firstId)).roomId).toBe(firstId);
    });

    it('refuses an existing id with ROOM_EXISTS, whether created or joined into being', async () => {
      const alice = await connect('alice');
      await replyOf(alice, alice.request('create_room', { roomId: 'taken' }), 'room_created');
      const again = alice.request('create_room', { roomId: 'taken' });
      expect(await alice.error(again)).toMatchObject({ code: 'ROOM_EXISTS', requestId: again });

      await alice.join('auto-made');
      const clash = alice.request('create_room', { roomId: 'auto-made' });
      expect(await alice.error(clash)).toMatchObject({ code: 'ROOM_EXISTS', requestId: clash });
      await alice.expectNothing(100);
    });

    it('refuses a room beyond MAX_ROOMS with ROOM_LIMIT, on create and on join', async () => {
      await start({ MAX_ROOMS: '2' });
      const alice = await connect('alice');
      await replyOf(alice, alice.request('create_room', { roomId: 'one' }), 'room_created');
      await alice.join('two');

      const create = alice.request('create_room', { roomId: 'three' });
      expect(await alice.error(create)).toMatchObject({ code: 'ROOM_LIMIT', requestId: create });
      const generated = alice.request('create_room', {});
      expect(await alice.error(generated)).toMatchObject({ code: 'ROOM_LIMIT' });
      expect(await joinError(alice, 'four')).toMatchObject({ code: 'ROOM_LIMIT' });

      // the rooms that exist are still there to join
      expect((await alice.join('one')).roomId).toBe('one');
      await alice.expectNothing(100);
    });

    it('refuses config.maxUsers above MAX_USERS_PER_ROOM with VALIDATION_FAILED and creates nothing', async () => {
      await start({ MAX_USERS_PER_ROOM: '3' });
      const alice = await connect('alice');
      const tooMany = alice.request('create_room', { roomId: 'big', config: { maxUsers: 4 } });
      expect(await alice.error(tooMany)).toMatchObject({
        code: 'VALIDATION_FAILED',
        field: 'config.maxUsers',
        requestId: tooMany,
      });
      await alice.expectNothing(100);

      // nothing was created: the same id is still free, and the limit itself is allowed
      const atLimit = alice.request('create_room', { roomId: 'big', config: { maxUsers: 3 } });
      expect(await replyOf(alice, atLimit, 'room_created')).toMatchObject({ roomId: 'big' });
    });

    it('admits only the right password to a room created with one', async () => {
      const alice = await connect('alice');
      const bob = await connect('bob');
      await replyOf(
        alice,
        alice.request('create_room', { roomId: 'locked', config: { password: 's3cret' } }),
        'room_created',
      );
      await alice.join('locked', { password: 's3cret' });

      for (const password of [undefined, 'guess', '']) {
        const requestId = bob.request('join_room', { roomId: 'locked', password });
        expect(await bob.error(requestId)).toMatchObject({
          code: 'INVALID_PASSWORD',
          requestId,
        });
      }
      await alice.expectNothing(100, 'user_joined');
      const refused = bob.request('get_state', { roomId: 'locked' });
      expect(await bob.error(refused)).toMatchObject({ code: 'NOT_IN_ROOM' });

      const room = await bob.join('locked', { password: 's3cret' });
      expect(room.users.map((user) => user.id)).toEqual(['alice', 'bob']);
      expect((await alice.next('user_joined')).user.id).toBe('bob');
    });

    it('refuses a member beyond config.maxUsers with ROOM_FULL "Room is full" until one leaves', async () => {
      const [alice, bob, carol] = await connectAll('alice', 'bob', 'carol');
      await replyOf(
        alice,
        alice.request('create_room', { roomId: 'pair', config: { maxUsers: 2 } }),
        'room_created',
      );
      await alice.join('pair');
      await bob.join('pair');
      await alice.next('user_joined');

      const full = carol.request('join_room', { roomId: 'pair' });
      expect(await carol.error(full)).toStrictEqual({
        code: 'ROOM_FULL',
        message: 'Room is full',
        requestId: full,
      });
      await alice.expectNothing(100);
      await bob.expectNothing(0);

      bob.request('leave_room', { roomId: 'pair' });
      await alice.next('user_left');
      const room = await carol.join('pair');
      expect(room.users.map((user) => user.id)).toEqual(['alice', 'carol']);
    });

    it('caps a room created on join at MAX_USERS_PER_ROOM', async () => {
      await start({ MAX_USERS_PER_ROOM: '2' });
      const [alice, bob, carol] = await connectAll('alice', 'bob', 'carol');
      await alice.join('auto');
      await bob.join('auto');
      const error = await joinError(carol, 'auto');
      expect(error).toMatchObject({ code: 'ROOM_FULL', message: 'Room is full' });
    });
  });

  describe('join_room', () => {
    it('creates a missing room on join, protected by the password of that join', async () => {
      const alice = await connect('alice');
      const bob = await connect('bob');
      const room = await alice.join('auto-locked', { password: 'pw' });
      expect(room.users).toEqual([expect.objectContaining({ id: 'alice', role: 'host' })]);

      expect(await joinError(bob, 'auto-locked')).toMatchObject({ code: 'INVALID_PASSWORD' });
      expect(await joinError(bob, 'auto-locked', { password: 'other' })).toMatchObject({
        code: 'INVALID_PASSWORD',
      });
      await alice.expectNothing(100);

      await bob.join('auto-locked', { password: 'pw' });
      expect(await alice.next('user_joined')).toMatchObject({
        roomId: 'auto-locked',
        user: { id: 'bob' },
      });
      await alice.expectNothing(100);
    });

    it('answers a second join with a fresh room_joined and changes nothing else', async () => {
      const alice = await connect('alice');
      const bob = await connect('bob');
      await alice.join('gallery', { userInfo: { name: 'Alice' } });
      await bob.join('gallery', {
        userInfo: { name: 'Bob', role: 'viewer', avatar: { color: '#3498db' } },
      });
      await alice.next('user_joined');
      // the state moves on, so a fresh snapshot can be told from a stale one
      const update = alice.request('update_state', {
        roomId: 'gallery',
        ops: [{ op: 'add', collection: 'annotations', id: 'a1', item: { text: 'hi' } }],
      });
      await replyOf(alice, update, 'state_updated');
      await bob.next('state_updated');

      const again = bob.request('join_room', {
        roomId: 'gallery',
        userInfo: {
          name: 'Robert',
          role: 'editor',
          avatar: { color: '#ff0000', displayName: 'Rob' },
        },
      });
      const { roomInfo } = await replyOf<{
        requestId: string;
        roomInfo: Awaited<ReturnType<TestClient['join']>>;
      }>(bob, again, 'room_joined');
      expect(roomInfo.roomId).toBe('gallery');
      expect(roomInfo.state.version).toBe(1);
      expect(roomInfo.state.annotations).toEqual([{ id: 'a1', text: 'hi' }]);
      expect(roomInfo.users).toEqual([
        expect.objectContaining({ id: 'alice', name: 'Alice', role: 'host' }),
        expect.objectContaining({
          id: 'bob',
          name: 'Bob',
          role: 'viewer',
          avatar: { color: '#3498db' },
        }),
      ]);
      await alice.expectNothing(150);
      await bob.expectNothing(0);

      // the profile is unchanged for everyone else too
      const carol = await connect('carol');
      const seen = await carol.join('gallery');
      expect(seen.users.find((user) => user.id === 'bob')).toMatchObject({
        name: 'Bob',
        role: 'viewer',
        avatar: { color: '#3498db' },
      });
    });

    it('refuses a userInfo.userId other than the connection’s with FORBIDDEN', async () => {
      const alice = await connect('alice');
      const bob = await connect('bob');
      await alice.join('gallery');

      const spoof = bob.request('join_room', {
        roomId: 'gallery',
        userInfo: { userId: 'mallory', name: 'Bob' },
      });
      expect(await bob.error(spoof)).toMatchObject({ code: 'FORBIDDEN', requestId: spoof });
      await bob.expectNothing(100);
      await alice.expectNothing(0);

      const room = await bob.join('gallery', { userInfo: { userId: 'bob', name: 'Bob' } });
      expect(room.users.map((user) => user.id)).toEqual(['alice', 'bob']);
    });

    it('refuses a join beyond MAX_ROOMS_PER_CONNECTION with TOO_MANY_ROOMS', async () => {
      await start({ MAX_ROOMS_PER_CONNECTION: '2' });
      const alice = await connect('alice');
      await alice.join('r1');
      await alice.join('r2');

      const third = alice.request('join_room', { roomId: 'r3' });
      expect(await alice.error(third)).toMatchObject({ code: 'TOO_MANY_ROOMS', requestId: third });
      await alice.expectNothing(100);
      // the refused join created nothing
      const create = alice.request('create_room', { roomId: 'r3' });
      expect(await replyOf(alice, create, 'room_created')).toMatchObject({ roomId: 'r3' });

      // joining a room it is in does not count again; leaving frees a slot
      expect((await alice.join('r1')).roomId).toBe('r1');
      await replyOf(alice, alice.request('leave_room', { roomId: 'r1' }), 'room_left');
      expect((await alice.join('r3')).roomId).toBe('r3');
    });

    it('lets one connection be in several rooms, keeping their events apart', async () => {
      const [alice, bob, carol] = await connectAll('alice', 'bob', 'carol');
      await alice.join('north');
      await alice.join('south');
      await bob.join('north');
      expect(await alice.next('user_joined')).toMatchObject({
        roomId: 'north',
        user: { id: 'bob' },
      });
      await carol.join('south');
      expect(await alice.next('user_joined')).toMatchObject({
        roomId: 'south',
        user: { id: 'carol' },
      });

      bob.broadcast('north', { type: 'wave' });
      expect(await alice.next('message')).toMatchObject({
        roomId: 'north',
        message: { type: 'wave' },
        senderId: 'bob',
      });
      carol.broadcast('south', { type: 'nod' });
      expect(await alice.next('message')).toMatchObject({
        roomId: 'south',
        message: { type: 'nod' },
        senderId: 'carol',
      });

      alice.broadcast('south', { type: 'hello-south' });
      expect(await carol.next('message')).toMatchObject({ message: { type: 'hello-south' } });
      await bob.expectNothing(100);
      await alice.expectNothing(0);
    });
  });

  describe('leave_room', () => {
    it('answers the sender with room_left and tells the others user_left, once each', async () => {
      const [alice, bob, carol] = await connectAll('alice', 'bob', 'carol');
      await alice.join('gallery');
      await bob.join('gallery');
      await carol.join('gallery');
      await alice.next('user_joined');
      await alice.next('user_joined');
      await bob.next('user_joined');

      const requestId = bob.request('leave_room', { roomId: 'gallery' });
      expect(await replyOf(bob, requestId, 'room_left')).toStrictEqual({
        requestId,
        roomId: 'gallery',
      });
      for (const other of [alice, carol]) {
        const left = await other.next('user_left');
        expect(left).toMatchObject({ roomId: 'gallery', userId: 'bob' });
        expect(left).not.toHaveProperty('requestId');
      }
      await bob.expectNothing(100);
      await alice.expectNothing(0);
      await carol.expectNothing(0);

      // gone: no more broadcasts, and room actions are refused
      alice.broadcast('gallery', { type: 'after' });
      expect(await carol.next('message')).toMatchObject({ message: { type: 'after' } });
      await bob.expectNothing(100);
      const state = bob.request('get_state', { roomId: 'gallery' });
      expect(await bob.error(state)).toMatchObject({ code: 'NOT_IN_ROOM' });
    });

    it('refuses a room the sender is not in with NOT_IN_ROOM and a missing room with ROOM_NOT_FOUND', async () => {
      const alice = await connect('alice');
      const bob = await connect('bob');
      await alice.join('gallery');

      const notIn = bob.request('leave_room', { roomId: 'gallery' });
      expect(await bob.error(notIn)).toMatchObject({ code: 'NOT_IN_ROOM', requestId: notIn });
      const missing = bob.request('leave_room', { roomId: 'no-such-room' });
      expect(await bob.error(missing)).toMatchObject({
        code: 'ROOM_NOT_FOUND',
        requestId: missing,
      });
      await bob.expectNothing(100);
      await alice.expectNothing(0);
    });
  });

  it('tells the others user_left in every room when a socket closes', async () => {
    const [alice, bob, carol] = await connectAll('alice', 'bob', 'carol');
    await alice.join('north');
    await bob.join('north');
    await bob.join('south');
    await carol.join('south');
    await alice.next('user_joined');

    bob.close();
    const north = await alice.next('user_left');
    expect(north).toStrictEqual({ roomId: 'north', userId: 'bob' });
    const south = await carol.next('user_left');
    expect(south).toStrictEqual({ roomId: 'south', userId: 'bob' });
    // bob made south, so carol, the one left, takes over as host
    expect(await carol.next('user_updated')).toMatchObject({
      roomId: 'south',
      user: { id: 'carol', role: 'host' },
    });
    await alice.expectNothing(100);
    await carol.expectNothing(0);
    const room = await carol.join('south');
    expect(room.users.map((user) => [user.id, user.role])).toEqual([['carol', 'host']]);
  });

  describe('session replacement', () => {
    it('closes the old socket with 4000 and moves memberships and role to the new one silently', async () => {
      const [alice, bob, carol] = await connectAll('alice', 'bob', 'carol');
      await alice.join('gallery');
      await alice.join('side');
      await bob.join('gallery');
      await carol.join('side');
      await alice.next('user_joined');
      await alice.next('user_joined');

      const alice2 = await connect('alice');
      expect(await alice.waitForClose()).toEqual({ code: 4000, reason: 'Session replaced' });
      await bob.expectNothing(150);
      await carol.expectNothing(0);
      await alice2.expectNothing(0, 'user_left');
      await alice2.expectNothing(0, 'user_joined');

      // the new socket receives the rooms' broadcasts
      bob.broadcast('gallery', { type: 'to-gallery' });
      expect(await alice2.next('message')).toMatchObject({
        roomId: 'gallery',
        message: { type: 'to-gallery' },
        senderId: 'bob',
      });
      carol.broadcast('side', { type: 'to-side' });
      expect(await alice2.next('message')).toMatchObject({
        roomId: 'side',
        message: { type: 'to-side' },
      });

      // and still holds the host role
      const setRole = alice2.request('set_role', {
        roomId: 'gallery',
        targetUserId: 'bob',
        role: 'viewer',
      });
      expect(await replyOf(alice2, setRole, 'user_updated')).toMatchObject({
        requestId: setRole,
        user: { id: 'bob', role: 'viewer' },
      });
      const copy = await bob.next('user_updated');
      expect(copy).toMatchObject({ roomId: 'gallery', user: { id: 'bob', role: 'viewer' } });
      expect(copy).not.toHaveProperty('requestId');

      // the membership is a single one: the roster shows alice once, host
      const room = await bob.join('gallery');
      expect(room.users.map((user) => [user.id, user.role])).toEqual([
        ['alice', 'host'],
        ['bob', 'viewer'],
      ]);
      await bob.expectNothing(100);
      await carol.expectNothing(0);
    });
  });
});
