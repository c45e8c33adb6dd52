// The extension API's own guarantees, beyond what the example module shows: built-in actions
// cannot be taken over, host hand-overs are lifecycle events, hooks enrich, and a failing
// listener costs the request nothing.
import { Injectable, Module, type OnModuleInit } from '@nestjs/common';
import { MessageBody, SubscribeMessage } from '@nestjs/websockets';
import {
  ActionGateway,
  RoomEvents,
  RoomHooks,
  withRequestId,
  type RoomEventMap,
} from '../src/extension-api.js';
import { replyOf } from './support/fixtures.js';
import { delay, TestClient } from './support/test-client.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const roleChanges: Array<RoomEventMap['member.role_changed']> = [];
const joins: Array<RoomEventMap['member.joined']> = [];

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
  }
}

@Module({ providers: [PingShadow, Recorder] })
class ShadowModule {}

describe('extension API', () => {
  let server: TestServer;

  beforeEach(async () => {
    roleChanges.length = 0;
    joins.length = 0;
    server = await startTestServer({}, { imports: [ShadowModule] });
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
});
