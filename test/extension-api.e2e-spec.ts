// The extension API's own guarantees, beyond what the example module shows: built-in actions
// cannot be taken over, host hand-overs are lifecycle events, hooks enrich, and a failing
// listener costs the request nothing.
import { Injectable, Module, type OnModuleInit } from '@nestjs/common';
import { MessageBody, SubscribeMessage } from '@nestjs/websockets';
import {
  ActionGateway,
  HookRejection,
  RoomEvents,
  RoomHooks,
  RoomMessenger,
  withRequestId,
  type RoomEventMap,
} from '../src/extension-api.js';
import { replyOf } from './support/fixtures.js';
import { delay, TestClient } from './support/test-client.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const roleChanges: Array<RoomEventMap['member.role_changed']> = [];
const joins: Array<RoomEventMap['member.joined']> = [];
/** Every lifecycle event but joins and role changes, as `[name, payload]`. */
const lifecycle: Array<[string, unknown]> = [];

/** A custom gateway that (wrongly) names a built-in action, and adds one of its own. */
@ActionGateway()
class PingShadow {
  @SubscribeMessage('ping')
  ping() {
    return { event: 'not_the_builtin_pong', data: {} };
  }

  @SubscribeMessage('shadow_echo')
  echo(@MessageBody() body: { requestId?: string }) {
    return { event: 'shadow_echoed', data: withRequestId(body.requestId, {}) };
  }

  /** Replies a custom action cannot get out: an error without data, and data with a cycle. */
  @SubscribeMessage('broken_reply')
  brokenReply(@MessageBody() body: { cycle?: boolean }) {
    if (!body.cycle) {
      return { event: 'error' };
    }
    const data: Record<string, unknown> = {};
    data.self = data;
    return { event: 'broken', data };
  }

  /** Tells one member of a room, and answers whether that member was there to tell. */
  @SubscribeMessage('nudge')
  async nudge(@MessageBody() body: { requestId?: string; roomId: string; userId: string }) {
    const delivered = await this.messenger.toMember(body.roomId, body.userId, 'nudged', {
      roomId: body.roomId,
    });
    return { event: 'nudge_sent', data: withRequestId(body.requestId, { delivered }) };
  }

  constructor(private readonly messenger: RoomMessenger) {}
}

@Injectable()
class Recorder implements OnModuleInit {
  constructor(
    private readonly events: RoomEvents,
    private readonly hooks: RoomHooks,
  ) {}

  onModuleInit() {
    this.events.on('member.role_changed', (event) => void roleChanges.push(event));
    this.events.on('member.joined', () => {
      throw new Error('a listener that fails');
    });
    this.events.on('member.joined', (event) => void joins.push(event));
    // Enrich: the directory's display name wins over the one the client sent.
    this.hooks.beforeJoin(({ userId }) =>
      userId === 'bob' ? { name: 'Bob from LDAP' } : undefined,
    );
    // Veto: only alice has a seat in `members-only`.
    this.hooks.beforeJoin(({ roomId, userId }) => {
      if (roomId === 'members-only' && userId !== 'alice') {
        throw new HookRejection('SEAT_LIMIT', 'No seat for you in members-only');
      }
    });
    for (const name of [
      'room.created',
      'member.left',
      'room.deleted',
      'state.committed',
    ] as const) {
      this.events.on(name, (event) => void lifecycle.push([name, event]));
    }
    // Enrich a state change by replacing it; or hand back one that is not valid (an op
    // without its item), which is the extension's bug and must not reach the state.
    this.hooks.beforeStateCommit(({ userId, patch }) => {
      const settings = patch?.sessionSettings as { stamp?: boolean; broken?: boolean } | undefined;
      if (settings?.broken) {
        return { ops: [{ op: 'upsert', collection: 'annotations', id: 'a1' }] as never };
      }
      if (settings?.stamp) {
        return { patch: { sessionSettings: { stampedBy: userId } } };
      }
      return undefined;
    });
  }
}

@Module({ providers: [PingShadow, Recorder] })
class ShadowModule {}

describe('extension API', () => {
  let server: TestServer;

  beforeEach(async () => {
    roleChanges.length = 0;
    joins.length = 0;
    lifecycle.length = 0;
    server = await startTestServer({ EMPTY_ROOM_TTL_MS: '0' }, { imports: [ShadowModule] });
  });

  afterEach(() => server.close());

  it('keeps a built-in action when a custom gateway names it too, and serves its own', async () => {
    const alice = await TestClient.connect(server.wsUrl, { userId: 'alice' });
    const ping = alice.request('ping');
    expect(await replyOf(alice, ping, 'pong')).toMatchObject({ requestId: ping });
    const echo = alice.request('shadow_echo');
    await replyOf(alice, echo, 'shadow_echoed');
    alice.close();
  });

  it('answers INTERNAL_ERROR for a custom reply that cannot be sent, and keeps the connection', async () => {
    const alice = await TestClient.connect(server.wsUrl, { userId: 'alice' });
    for (const cycle of [false, true]) {
      const requestId = alice.request('broken_reply', { cycle });
      expect(await alice.error(requestId)).toMatchObject({ code: 'INTERNAL_ERROR', requestId });
    }
    const ping = alice.request('ping');
    await replyOf(alice, ping, 'pong');
    alice.close();
  });

  it('emits member.role_changed without `by` for the new host of a hand-over', async () => {
    const alice = await TestClient.connect(server.wsUrl, { userId: 'alice' });
    const bob = await TestClient.connect(server.wsUrl, { userId: 'bob' });
    await alice.join('g');
    await bob.join('g');
    await replyOf(alice, alice.request('leave_room', { roomId: 'g' }), 'room_left');
    expect(await bob.next('user_updated')).toMatchObject({ user: { id: 'bob', role: 'host' } });
    await delay(100);
    expect(roleChanges).toEqual([{ roomId: 'g', userId: 'bob', role: 'host' }]);
    alice.close();
    bob.close();
  });

  it('lets a beforeJoin hook enrich the join, and a failing listener costs the request nothing', async () => {
    const alice = await TestClient.connect(server.wsUrl, { userId: 'alice' });
    const bob = await TestClient.connect(server.wsUrl, { userId: 'bob' });
    await alice.join('g');
    const joined = bob.request('join_room', { roomId: 'g', userInfo: { name: 'bob' } });
    const reply = await replyOf<{ roomInfo: { users: Array<{ id: string; name: string }> } }>(
      bob,
      joined,
      'room_joined',
    );
    expect(reply.roomInfo.users).toContainEqual(
      expect.objectContaining({ id: 'bob', name: 'Bob from LDAP' }),
    );
    expect(await alice.next('user_joined')).toMatchObject({
      user: { id: 'bob', name: 'Bob from LDAP' },
    });
    await delay(50);
    expect(joins.map((event) => [event.user.id, event.user.name])).toEqual([
      ['alice', 'alice'],
      ['bob', 'Bob from LDAP'],
    ]);
    alice.close();
    bob.close();
  });

  it('checks what a state hook hands back: a replacement commits, an invalid one is refused', async () => {
    const alice = await TestClient.connect(server.wsUrl, { userId: 'alice' });
    const bob = await TestClient.connect(server.wsUrl, { userId: 'bob' });
    await alice.join('g');
    await bob.join('g');
    const stamped = alice.request('update_state', {
      roomId: 'g',
      baseVersion: 0,
      patch: { sessionSettings: { stamp: true } },
    });
    expect(await replyOf(alice, stamped, 'state_updated')).toMatchObject({
      version: 1,
      patch: { sessionSettings: { stampedBy: 'alice' } },
    });
    expect(await bob.next('state_updated')).toMatchObject({
      patch: { sessionSettings: { stampedBy: 'alice' } },
    });
    const broken = alice.request('update_state', {
      roomId: 'g',
      baseVersion: 1,
      patch: { sessionSettings: { broken: true } },
    });
    expect(await replyOf(alice, broken, 'error')).toMatchObject({
      code: 'INTERNAL_ERROR',
      requestId: broken,
    });
    const state = alice.request('get_state', { roomId: 'g' });
    expect(await replyOf(alice, state, 'state')).toMatchObject({
      version: 1,
      state: { sessionSettings: { stampedBy: 'alice' }, annotations: [] },
    });
    alice.close();
    bob.close();
  });

  it('reaches a member with toMember, and says false for a user who is not one', async () => {
    const alice = await TestClient.connect(server.wsUrl, { userId: 'alice' });
    const bob = await TestClient.connect(server.wsUrl, { userId: 'bob' });
    await alice.join('g');
    await bob.join('g');
    const toBob = alice.request('nudge', { roomId: 'g', userId: 'bob' });
    expect(await replyOf(alice, toBob, 'nudge_sent')).toMatchObject({ delivered: true });
    const nudged = await bob.nextAny();
    expect(nudged).toEqual({ event: 'nudged', data: { roomId: 'g' } });
    const toNobody = alice.request('nudge', { roomId: 'g', userId: 'zoe' });
    expect(await replyOf(alice, toNobody, 'nudge_sent')).toMatchObject({ delivered: false });
    alice.close();
    bob.close();
  });

  it('reports a kick and the deletion of the emptied room, once each, in order', async () => {
    const alice = await TestClient.connect(server.wsUrl, { userId: 'alice' });
    const bob = await TestClient.connect(server.wsUrl, { userId: 'bob' });
    await alice.join('k');
    await bob.join('k');
    const kick = alice.request('kick_user', { roomId: 'k', targetUserId: 'bob' });
    await replyOf(alice, kick, 'user_left');
    await replyOf(alice, alice.request('leave_room', { roomId: 'k' }), 'room_left');
    await delay(100);
    expect(lifecycle).toEqual([
      ['room.created', { roomId: 'k', persistent: false, createdBy: 'alice' }],
      ['member.left', { roomId: 'k', userId: 'bob', reason: 'kicked', by: 'alice' }],
      ['member.left', { roomId: 'k', userId: 'alice', reason: 'left' }],
      ['room.deleted', { roomId: 'k', reason: 'empty' }],
    ]);
    alice.close();
    bob.close();
  });
});

describe('extension API with resume on', () => {
  let server: TestServer;

  beforeEach(async () => {
    joins.length = 0;
    server = await startTestServer({ RECONNECT_GRACE_MS: '30000' }, { imports: [ShadowModule] });
  });

  afterEach(() => server.close());

  it('runs beforeJoin for a room a resume joins again: enriched, or lost if vetoed', async () => {
    const alice = await TestClient.connect(server.wsUrl, { userId: 'alice' });
    await alice.join('g');
    await alice.join('members-only');
    // bob's seats are gone (a restart, say): his resume joins the rooms it lists again.
    const bob = await TestClient.connect(server.wsUrl, { userId: 'bob' });
    const resumeId = bob.request('resume', {
      rooms: [{ roomId: 'g' }, { roomId: 'members-only' }],
    });
    const resumed = await replyOf<{
      rooms: Array<{ roomId: string; roomInfo: { users: Array<{ id: string; name: string }> } }>;
      lost: string[];
    }>(bob, resumeId, 'resumed');
    expect(resumed.lost).toEqual(['members-only']);
    expect(resumed.rooms.map((room) => room.roomId)).toEqual(['g']);
    expect(resumed.rooms[0].roomInfo.users).toContainEqual(
      expect.objectContaining({ id: 'bob', name: 'Bob from LDAP' }),
    );
    expect(await alice.next('user_joined')).toMatchObject({
      roomId: 'g',
      user: { id: 'bob', name: 'Bob from LDAP' },
    });
    await alice.expectNothing(100, 'user_joined');
    alice.close();
    bob.close();
  });
});
