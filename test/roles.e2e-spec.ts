import type { Role, RoomInfo, ServerEvent } from '../src/protocol/protocol.js';
import { replyOf, useTestServer } from './support/fixtures.js';
import { delay, type TestClient } from './support/test-client.js';

const KICK_BAN_MS = 300;

describe('roles', () => {
  // The first connect of a test boots its server.
  const { connectAll } = useTestServer({ env: { KICK_BAN_MS: String(KICK_BAN_MS) }, lazy: true });

  /** A copy of an event sent to someone other than the requester: never carries a requestId. */
  const copyOf = async <E extends ServerEvent>(client: TestClient, event: E) => {
    const data = await client.next(event);
    expect(data).not.toHaveProperty('requestId');
    return data;
  };

  /** [id, role] of every member, as a fresh room_joined shows them to `client` (a member). */
  const roster = async (client: TestClient, roomId: string) =>
    (await client.join(roomId)).users.map((user) => [user.id, user.role]);

  /**
   * alice (host), bob (editor) and carol (viewer) in `gallery`, every join event consumed.
   */
  const trio = async () => {
    const [alice, bob, carol] = await connectAll('alice', 'bob', 'carol');
    await alice.join('gallery');
    await bob.join('gallery', { userInfo: { role: 'editor' } });
    await carol.join('gallery', { userInfo: { role: 'viewer' } });
    await alice.next('user_joined');
    await alice.next('user_joined');
    await bob.next('user_joined');
    return { alice, bob, carol };
  };

  describe('granting roles on join', () => {
    it('makes the first member host, whatever it asks for', async () => {
      const [alice] = await connectAll('alice');
      const room = await alice.join('gallery', { userInfo: { role: 'viewer' } });
      expect(room.users).toEqual([expect.objectContaining({ id: 'alice', role: 'host' })]);
    });

    it('grants a later joiner asking for host the default role, editor', async () => {
      const [alice, bob, carol, dave] = await connectAll('alice', 'bob', 'carol', 'dave');
      await alice.join('gallery');
      const asks: Array<[TestClient, Role | undefined, Role]> = [
        [bob, 'host', 'editor'],
        [carol, undefined, 'editor'],
        [dave, 'viewer', 'viewer'],
      ];
      for (const [client, asked, granted] of asks) {
        const room = await client.join('gallery', { userInfo: { role: asked } });
        expect(room.users.find((user) => user.id === client.userId)?.role).toBe(granted);
        expect(await alice.next('user_joined')).toMatchObject({
          user: { id: client.userId, role: granted },
        });
      }
      expect(await roster(alice, 'gallery')).toEqual([
        ['alice', 'host'],
        ['bob', 'editor'],
        ['carol', 'editor'],
        ['dave', 'viewer'],
      ]);
    });

    it('caps joiners at viewer in a room whose defaultRole is viewer', async () => {
      const [alice, bob, carol, dave] = await connectAll('alice', 'bob', 'carol', 'dave');
      await replyOf(
        alice,
        alice.request('create_room', { roomId: 'lecture', config: { defaultRole: 'viewer' } }),
        'room_created',
      );
      await alice.join('lecture');
      for (const [client, asked] of [
        [bob, 'editor'],
        [carol, 'viewer'],
        [dave, 'host'],
      ] as const) {
        const room = await client.join('lecture', { userInfo: { role: asked } });
        expect(room.users.find((user) => user.id === client.userId)?.role).toBe('viewer');
      }
      expect(await roster(alice, 'lecture')).toEqual([
        ['alice', 'host'],
        ['bob', 'viewer'],
        ['carol', 'viewer'],
        ['dave', 'viewer'],
      ]);
      // and the cap is enforced: bob, who asked for editor, may not edit
      const update = bob.request('update_state', {
        roomId: 'lecture',
        ops: [{ op: 'add', collection: 'annotations', id: 'a', item: {} }],
      });
      expect(await bob.error(update)).toMatchObject({ code: 'FORBIDDEN', requestId: update });
    });
  });

  describe('host hand-over', () => {
    it('makes the longest-present member host when the host leaves, telling everyone', async () => {
      const [alice, bob, carol, dave] = await connectAll('alice', 'bob', 'carol', 'dave');
      await alice.join('gallery');
      await bob.join('gallery', { userInfo: { role: 'viewer' } });
      await carol.join('gallery');
      await dave.join('gallery');
      // bob leaves and comes back: he is now the most recent arrival
      await replyOf(bob, bob.request('leave_room', { roomId: 'gallery' }), 'room_left');
      await bob.join('gallery', { userInfo: { role: 'viewer' } });
      for (const client of [alice, carol, dave]) {
        expect(await client.next('user_left')).toMatchObject({ userId: 'bob' });
        expect(await client.next('user_joined')).toMatchObject({ user: { id: 'bob' } });
      }
      await delay(50);
      for (const client of [alice, bob, carol, dave]) {
        await client.expectNothing(0);
      }

      await replyOf(alice, alice.request('leave_room', { roomId: 'gallery' }), 'room_left');
      for (const client of [bob, carol, dave]) {
        expect(await copyOf(client, 'user_left')).toStrictEqual({
          roomId: 'gallery',
          userId: 'alice',
        });
        const updated = await copyOf(client, 'user_updated');
        expect(updated).toMatchObject({ roomId: 'gallery', user: { id: 'carol', role: 'host' } });
      }
      await alice.expectNothing(100);
      for (const client of [bob, carol, dave]) {
        await client.expectNothing(0);
      }
      expect(await roster(dave, 'gallery')).toEqual([
        ['carol', 'host'],
        ['dave', 'editor'],
        ['bob', 'viewer'],
      ]);

      // the new host acts as host
      const setRole = carol.request('set_role', {
        roomId: 'gallery',
        targetUserId: 'bob',
        role: 'editor',
      });
      expect(await replyOf(carol, setRole, 'user_updated')).toMatchObject({
        user: { id: 'bob', role: 'editor' },
      });
    });

    it('hands the host role over when the host’s socket closes', async () => {
      const { alice, bob, carol } = await trio();
      alice.close();
      for (const client of [bob, carol]) {
        expect(await copyOf(client, 'user_left')).toMatchObject({ userId: 'alice' });
        expect(await copyOf(client, 'user_updated')).toMatchObject({
          roomId: 'gallery',
          user: { id: 'bob', role: 'host' },
        });
      }
      const kick = bob.request('kick_user', { roomId: 'gallery', targetUserId: 'carol' });
      expect(await replyOf(bob, kick, 'user_left')).toMatchObject({ userId: 'carol' });
    });

    it('makes the next joiner of a room that emptied its host', async () => {
      const [alice, bob] = await connectAll('alice', 'bob');
      await alice.join('gallery');
      const update = alice.request('update_state', {
        roomId: 'gallery',
        ops: [{ op: 'add', collection: 'annotations', id: 'kept', item: {} }],
      });
      await replyOf(alice, update, 'state_updated');
      await replyOf(alice, alice.request('leave_room', { roomId: 'gallery' }), 'room_left');

      const room = await bob.join('gallery', { userInfo: { role: 'viewer' } });
      // the same room (its state survived), not a new one
      expect(room.state.version).toBe(1);
      expect(room.users).toEqual([expect.objectContaining({ id: 'bob', role: 'host' })]);
    });
  });

  describe('the permission table', () => {
    type Action =
      | 'join_room'
      | 'leave_room'
      | 'ping'
      | 'get_state'
      | 'broadcast'
      | 'send_message'
      | 'update_state'
      | 'set_role'
      | 'kick_user'
      | 'delete_room';
    type Trio = Awaited<ReturnType<typeof trio>>;
    interface Cell {
      actor: TestClient;
      /** The other two members; `target` is one of them. */
      others: TestClient[];
      target: TestClient;
      bystander: TestClient;
      actorRole: Role;
    }

    const cellOf = (members: Trio, role: Role): Cell => {
      const { alice, bob, carol } = members;
      const actor = { host: alice, editor: bob, viewer: carol }[role];
      const target = actor === bob ? carol : bob;
      const others = [alice, bob, carol].filter((client) => client !== actor);
      const bystander = others.find((client) => client !== target) as TestClient;
      return { actor, others, target, bystander, actorRole: role };
    };

    const quiet = async (...quietClients: TestClient[]) => {
      await delay(100);
      for (const client of quietClients) {
        await client.expectNothing(0);
      }
    };

    /** What an allowed request does, checked from every member's side. */
    const allowed: Record<Action, (cell: Cell, members: Trio) => Promise<void>> = {
      join_room: async ({ actor, others, actorRole }) => {
        const requestId = actor.request('join_room', { roomId: 'gallery' });
        const { roomInfo } = await replyOf<{ roomInfo: RoomInfo }>(actor, requestId, 'room_joined');
        expect(roomInfo.users.find((user) => user.id === actor.userId)?.role).toBe(actorRole);
        await quiet(actor, ...others);
      },
      leave_room: async ({ actor, others }) => {
        const requestId = actor.request('leave_room', { roomId: 'gallery' });
        expect(await replyOf(actor, requestId, 'room_left')).toStrictEqual({
          requestId,
          roomId: 'gallery',
        });
        for (const other of others) {
          expect(await copyOf(other, 'user_left')).toMatchObject({ userId: actor.userId });
        }
        await quiet(actor);
      },
      ping: async ({ actor, others }) => {
        const requestId = actor.request('ping');
        const pong = await replyOf<{ serverTime: number }>(actor, requestId, 'pong');
        expect(typeof pong.serverTime).toBe('number');
        await quiet(actor, ...others);
      },
      get_state: async ({ actor, others }) => {
        const requestId = actor.request('get_state', { roomId: 'gallery' });
        expect(await replyOf(actor, requestId, 'state')).toMatchObject({
          requestId,
          roomId: 'gallery',
          version: 0,
          state: { version: 0, annotations: [] },
        });
        await quiet(actor, ...others);
      },
      broadcast: async ({ actor, others }) => {
        actor.broadcast('gallery', { type: 'wave' });
        for (const other of others) {
          expect(await other.next('message')).toMatchObject({
            message: { type: 'wave' },
            senderId: actor.userId,
          });
        }
        await quiet(actor);
      },
      send_message: async ({ actor, target, bystander }) => {
        actor.request('send_message', {
          targetUserId: target.userId,
          message: { type: 'chat_message', data: { text: 'hi' } },
        });
        expect(await target.next('message')).toMatchObject({
          message: { type: 'chat_message', data: { text: 'hi' } },
          senderId: actor.userId,
        });
        await quiet(actor, bystander);
      },
      update_state: async ({ actor, others }) => {
        const ops = [{ op: 'add', collection: 'annotations', id: 'a1', item: { text: 'x' } }];
        const requestId = actor.request('update_state', { roomId: 'gallery', ops });
        expect(await replyOf(actor, requestId, 'state_updated')).toMatchObject({
          requestId,
          version: 1,
          updatedBy: actor.userId,
        });
        for (const other of others) {
          expect(await copyOf(other, 'state_updated')).toMatchObject({ version: 1, ops });
        }
        await quiet(actor);
      },
      set_role: async ({ actor, others, target }) => {
        const requestId = actor.request('set_role', {
          roomId: 'gallery',
          targetUserId: target.userId,
          role: 'viewer',
        });
        expect(await replyOf(actor, requestId, 'user_updated')).toMatchObject({
          requestId,
          user: { id: target.userId, role: 'viewer' },
        });
        for (const other of others) {
          expect(await copyOf(other, 'user_updated')).toMatchObject({
            user: { id: target.userId, role: 'viewer' },
          });
        }
        await quiet(actor);
      },
      kick_user: async ({ actor, target, bystander }) => {
        const requestId = actor.request('kick_user', {
          roomId: 'gallery',
          targetUserId: target.userId,
        });
        expect(await replyOf(actor, requestId, 'user_left')).toMatchObject({
          requestId,
          userId: target.userId,
        });
        expect(await target.next('kicked')).toStrictEqual({ roomId: 'gallery' });
        expect(await copyOf(bystander, 'user_left')).toMatchObject({ userId: target.userId });
        await quiet(actor);
      },
      delete_room: async ({ actor, others }) => {
        const requestId = actor.request('delete_room', { roomId: 'gallery' });
        expect(await replyOf(actor, requestId, 'room_deleted')).toStrictEqual({
          requestId,
          roomId: 'gallery',
          reason: 'deleted',
        });
        for (const other of others) {
          expect(await copyOf(other, 'room_deleted')).toStrictEqual({
            roomId: 'gallery',
            reason: 'deleted',
          });
        }
        await quiet(actor);
      },
    };

    /** A refused request: FORBIDDEN to the sender, nothing to anyone, nothing changed. */
    const forbidden = async (
      action: Action,
      { actor, others, target }: Cell,
      { alice }: Trio,
    ): Promise<void> => {
      const fields: Partial<Record<Action, Record<string, unknown>>> = {
        update_state: {
          ops: [{ op: 'add', collection: 'annotations', id: 'a1', item: {} }],
        },
        set_role: { targetUserId: target.userId, role: 'viewer' },
        kick_user: { targetUserId: target.userId },
      };
      const requestId = actor.request(action, { roomId: 'gallery', ...fields[action] });
      expect(await actor.error(requestId)).toMatchObject({ code: 'FORBIDDEN', requestId });
      await quiet(actor, ...others);
      expect(await roster(alice, 'gallery')).toEqual([
        ['alice', 'host'],
        ['bob', 'editor'],
        ['carol', 'viewer'],
      ]);
      const get = alice.request('get_state', { roomId: 'gallery' });
      expect(await replyOf(alice, get, 'state')).toMatchObject({ version: 0 });
    };

    const TABLE: Record<Action, Record<Role, boolean>> = {
      join_room: { host: true, editor: true, viewer: true },
      leave_room: { host: true, editor: true, viewer: true },
      ping: { host: true, editor: true, viewer: true },
      get_state: { host: true, editor: true, viewer: true },
      broadcast: { host: true, editor: true, viewer: true },
      send_message: { host: true, editor: true, viewer: true },
      update_state: { host: true, editor: true, viewer: false },
      set_role: { host: true, editor: false, viewer: false },
      kick_user: { host: true, editor: false, viewer: false },
      delete_room: { host: true, editor: false, viewer: false },
    };
    const cells = Object.entries(TABLE).flatMap(([action, byRole]) =>
      (Object.entries(byRole) as Array<[Role, boolean]>).map(
        ([role, ok]) => [action as Action, role, ok ? 'allowed' : 'FORBIDDEN'] as const,
      ),
    );

    it.each(cells)('%s by the %s: %s', async (action, role, outcome) => {
      const members = await trio();
      const cell = cellOf(members, role);
      if (outcome === 'allowed') {
        await allowed[action](cell, members);
      } else {
        await forbidden(action, cell, members);
      }
    });
  });

  describe('set_role', () => {
    it('tells everyone with user_updated, the sender’s copy alone carrying the requestId', async () => {
      const { alice, bob, carol } = await trio();
      const requestId = alice.request('set_role', {
        roomId: 'gallery',
        targetUserId: 'carol',
        role: 'editor',
      });
      expect(await replyOf(alice, requestId, 'user_updated')).toMatchObject({
        requestId,
        roomId: 'gallery',
        user: { id: 'carol', role: 'editor' },
      });
      for (const client of [bob, carol]) {
        expect(await copyOf(client, 'user_updated')).toMatchObject({
          roomId: 'gallery',
          user: { id: 'carol', role: 'editor', connected: true },
        });
      }
      await alice.expectNothing(100);
      await bob.expectNothing(0);
      await carol.expectNothing(0);

      // the new role is in force: carol may now edit, and bob, made viewer, may not
      const edit = carol.request('update_state', {
        roomId: 'gallery',
        ops: [{ op: 'add', collection: 'annotations', id: 'c', item: {} }],
      });
      expect(await replyOf(carol, edit, 'state_updated')).toMatchObject({ version: 1 });
      await replyOf(
        alice,
        alice.request('set_role', { roomId: 'gallery', targetUserId: 'bob', role: 'viewer' }),
        'user_updated',
      );
      const refused = bob.request('update_state', {
        roomId: 'gallery',
        ops: [{ op: 'add', collection: 'annotations', id: 'b', item: {} }],
      });
      expect(await bob.error(refused)).toMatchObject({ code: 'FORBIDDEN' });
    });

    it('transfers host: the old host becomes editor first, then the target is host', async () => {
      const { alice, bob, carol } = await trio();
      const requestId = alice.request('set_role', {
        roomId: 'gallery',
        targetUserId: 'carol',
        role: 'host',
      });

      const first = await alice.nextAny();
      expect(first.event).toBe('user_updated');
      expect(first.data).not.toHaveProperty('requestId');
      expect(first.data).toMatchObject({
        roomId: 'gallery',
        user: { id: 'alice', role: 'editor' },
      });
      const second = await alice.nextAny();
      expect(second).toMatchObject({
        event: 'user_updated',
        data: { requestId, roomId: 'gallery', user: { id: 'carol', role: 'host' } },
      });
      for (const client of [bob, carol]) {
        expect(await client.nextAny()).toMatchObject({
          event: 'user_updated',
          data: { user: { id: 'alice', role: 'editor' } },
        });
        expect(await copyOf(client, 'user_updated')).toMatchObject({
          user: { id: 'carol', role: 'host' },
        });
      }
      await alice.expectNothing(100);
      await bob.expectNothing(0);
      await carol.expectNothing(0);
      expect(await roster(bob, 'gallery')).toEqual([
        ['alice', 'editor'],
        ['bob', 'editor'],
        ['carol', 'host'],
      ]);

      // the old host has lost its powers and the new one has them
      const denied = alice.request('kick_user', { roomId: 'gallery', targetUserId: 'bob' });
      expect(await alice.error(denied)).toMatchObject({ code: 'FORBIDDEN' });
      const kick = carol.request('kick_user', { roomId: 'gallery', targetUserId: 'alice' });
      expect(await replyOf(carol, kick, 'user_left')).toMatchObject({ userId: 'alice' });
    });

    it('refuses to target oneself with VALIDATION_FAILED on targetUserId', async () => {
      const { alice, bob, carol } = await trio();
      const requestId = alice.request('set_role', {
        roomId: 'gallery',
        targetUserId: 'alice',
        role: 'viewer',
      });
      expect(await alice.error(requestId)).toMatchObject({
        code: 'VALIDATION_FAILED',
        field: 'targetUserId',
        requestId,
      });
      await alice.expectNothing(100);
      await bob.expectNothing(0);
      await carol.expectNothing(0);
      expect((await roster(alice, 'gallery'))[0]).toEqual(['alice', 'host']);
    });

    it('refuses a target that is not in the room with USER_NOT_FOUND', async () => {
      const { alice, bob } = await trio();
      const [dave] = await connectAll('dave');
      await dave.join('elsewhere');
      for (const targetUserId of ['dave', 'nobody']) {
        const requestId = alice.request('set_role', {
          roomId: 'gallery',
          targetUserId,
          role: 'editor',
        });
        expect(await alice.error(requestId)).toMatchObject({ code: 'USER_NOT_FOUND', requestId });
      }
      await alice.expectNothing(100);
      await bob.expectNothing(0);
      await dave.expectNothing(0);
    });
  });

  describe('kick_user', () => {
    it('sends kicked to the target and user_left to the others, the kicker’s copy with the requestId', async () => {
      const { alice, bob, carol } = await trio();
      const requestId = alice.request('kick_user', { roomId: 'gallery', targetUserId: 'carol' });
      expect(await replyOf(alice, requestId, 'user_left')).toStrictEqual({
        requestId,
        roomId: 'gallery',
        userId: 'carol',
      });
      expect(await copyOf(bob, 'user_left')).toStrictEqual({ roomId: 'gallery', userId: 'carol' });
      expect(await carol.next('kicked')).toStrictEqual({ roomId: 'gallery' });
      await alice.expectNothing(100);
      await bob.expectNothing(0);

      // carol is out: she gets no more of the room's broadcasts and may not act in it
      alice.broadcast('gallery', { type: 'after-kick' });
      expect(await bob.next('message')).toMatchObject({ message: { type: 'after-kick' } });
      await carol.expectNothing(100, 'message');
      const state = carol.request('get_state', { roomId: 'gallery' });
      expect(await carol.error(state)).toMatchObject({ code: 'NOT_IN_ROOM' });
      expect(await roster(alice, 'gallery')).toEqual([
        ['alice', 'host'],
        ['bob', 'editor'],
      ]);
    });

    it('bars the kicked user with KICKED for KICK_BAN_MS, then admits it again', async () => {
      const { alice, bob } = await trio();
      await replyOf(
        alice,
        alice.request('kick_user', { roomId: 'gallery', targetUserId: 'bob' }),
        'user_left',
      );
      // the ban started before this moment
      const kickedAt = Date.now();
      await bob.next('kicked');

      const during = bob.request('join_room', { roomId: 'gallery' });
      expect(await bob.error(during)).toMatchObject({ code: 'KICKED', requestId: during });
      await alice.expectNothing(50, 'user_joined');
      // the ban is for that room only
      expect((await bob.join('elsewhere')).roomId).toBe('elsewhere');

      await delay(KICK_BAN_MS - (Date.now() - kickedAt) + 20);
      const room = await bob.join('gallery');
      expect(room.users.find((user) => user.id === 'bob')).toMatchObject({ role: 'editor' });
      expect(await copyOf(alice, 'user_joined')).toMatchObject({ user: { id: 'bob' } });
    });

    it('refuses a target outside the room with USER_NOT_FOUND and oneself with VALIDATION_FAILED', async () => {
      const { alice, bob } = await trio();
      const outside = alice.request('kick_user', { roomId: 'gallery', targetUserId: 'nobody' });
      expect(await alice.error(outside)).toMatchObject({ code: 'USER_NOT_FOUND' });
      const self = alice.request('kick_user', { roomId: 'gallery', targetUserId: 'alice' });
      expect(await alice.error(self)).toMatchObject({
        code: 'VALIDATION_FAILED',
        field: 'targetUserId',
      });
      await alice.expectNothing(100);
      await bob.expectNothing(0);
    });
  });

  describe('delete_room', () => {
    it('tells every member room_deleted, the sender’s copy with the requestId, and the room is gone', async () => {
      const { alice, bob, carol } = await trio();
      const [dave] = await connectAll('dave');
      await dave.join('elsewhere');
      await bob.join('elsewhere');
      await dave.next('user_joined');

      const requestId = alice.request('delete_room', { roomId: 'gallery' });
      expect(await replyOf(alice, requestId, 'room_deleted')).toStrictEqual({
        requestId,
        roomId: 'gallery',
        reason: 'deleted',
      });
      for (const client of [bob, carol]) {
        expect(await copyOf(client, 'room_deleted')).toStrictEqual({
          roomId: 'gallery',
          reason: 'deleted',
        });
      }
      await alice.expectNothing(100);
      await bob.expectNothing(0);
      await carol.expectNothing(0);
      await dave.expectNothing(0);

      for (const client of [alice, bob]) {
        const get = client.request('get_state', { roomId: 'gallery' });
        expect(await client.error(get)).toMatchObject({ code: 'ROOM_NOT_FOUND', requestId: get });
      }

      // the other room is untouched
      bob.broadcast('elsewhere', { type: 'still-here' });
      expect(await dave.next('message')).toMatchObject({ message: { type: 'still-here' } });
      expect(await roster(dave, 'elsewhere')).toEqual([
        ['dave', 'host'],
        ['bob', 'editor'],
      ]);

      // joining the id again makes a new room
      const fresh = await carol.join('gallery');
      expect(fresh.users).toEqual([expect.objectContaining({ id: 'carol', role: 'host' })]);
    });

    it('deletes a persistent room too', async () => {
      const [alice, bob] = await connectAll('alice', 'bob');
      await replyOf(
        alice,
        alice.request('create_room', { roomId: 'archive', config: { persistent: true } }),
        'room_created',
      );
      await alice.join('archive');
      await bob.join('archive');
      await alice.next('user_joined');

      const requestId = alice.request('delete_room', { roomId: 'archive' });
      expect(await replyOf(alice, requestId, 'room_deleted')).toMatchObject({
        reason: 'deleted',
      });
      expect(await copyOf(bob, 'room_deleted')).toStrictEqual({
        roomId: 'archive',
        reason: 'deleted',
      });
      const get = alice.request('get_state', { roomId: 'archive' });
      expect(await alice.error(get)).toMatchObject({ code: 'ROOM_NOT_FOUND' });
      // the id is free again
      const create = alice.request('create_room', { roomId: 'archive' });
      expect(await replyOf(alice, create, 'room_created')).toMatchObject({ roomId: 'archive' });
    });
  });
});
