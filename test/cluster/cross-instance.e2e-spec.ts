import { jest } from '@jest/globals';
import { RedisRoomStore } from '../../src/cluster/redis-room-store.js';
import {
  ClusterClients,
  recordEvents,
  statsRooms,
  TEST_REDIS_URL,
  useTestCluster,
  waitFor,
  type TestCluster,
} from '../support/cluster.js';
import { replyOf } from '../support/fixtures.js';
import { delay, type TestClient } from '../support/test-client.js';
import { startClusterWithExtension } from './extension-fixture.js';

const ROOM = 'shared';

const pose = (senderId: string) => ({
  type: 'pose_update',
  senderId,
  timestamp: 1699564800000,
  data: { position: [0, 1.7, 0], rotation: [0, 0, 0, 1] },
});

describe('cluster: members on different instances share a room', () => {
  const fixture = useTestCluster({ instances: 3, env: { KICK_BAN_MS: '60000' } });

  /** alice on instance 0 (host), bob on 1, carol on 2, all in ROOM, join events consumed. */
  const threeMembers = async () => {
    const alice = await fixture.connect(0, 'alice');
    const bob = await fixture.connect(1, 'bob');
    const carol = await fixture.connect(2, 'carol');
    await alice.join(ROOM);
    const bobJoined = await bob.join(ROOM);
    expect(await alice.next('user_joined', 3000)).toMatchObject({
      roomId: ROOM,
      user: { id: 'bob', role: 'editor' },
    });
    expect(bobJoined.users.map((user) => [user.id, user.role])).toEqual([
      ['alice', 'host'],
      ['bob', 'editor'],
    ]);
    await carol.join(ROOM);
    for (const member of [alice, bob]) {
      expect(await member.next('user_joined', 3000)).toMatchObject({ user: { id: 'carol' } });
    }
    return { alice, bob, carol };
  };

  const reply = async (client: TestClient, action: string, fields: Record<string, unknown>) =>
    client.reply(client.request(action, fields), 3000);

  it('relays a broadcast to the members on the other instances, not to the sender', async () => {
    const { alice, bob, carol } = await threeMembers();
    alice.broadcast(ROOM, pose('alice'));
    for (const member of [bob, carol]) {
      expect(await member.next('message', 3000)).toEqual({
        roomId: ROOM,
        message: pose('alice'),
        senderId: 'alice',
      });
    }
    carol.broadcast(ROOM, { type: 'chat', data: { text: 'hi' } });
    for (const member of [alice, bob]) {
      expect(await member.next('message', 3000)).toEqual({
        roomId: ROOM,
        message: { type: 'chat', data: { text: 'hi' } },
        senderId: 'carol',
      });
    }
    await alice.expectNothing(200, 'message');
    await carol.expectNothing(0, 'message');
  });

  it('delivers send_message to a member on another instance only', async () => {
    const { alice, bob, carol } = await threeMembers();
    const dave = await fixture.connect(1, 'dave'); // connected, but in no room with alice
    const chat = { type: 'chat_message', senderId: 'alice', data: { text: 'psst' } };
    alice.send({ action: 'send_message', targetUserId: 'carol', message: chat });
    expect(await carol.next('message', 3000)).toEqual({
      roomId: ROOM,
      message: chat,
      senderId: 'alice',
    });

    const toDave = alice.request('send_message', { targetUserId: 'dave', message: chat });
    expect((await alice.error(toDave, 3000)).code).toBe('USER_NOT_FOUND');
    const toNobody = alice.request('send_message', { targetUserId: 'nobody', message: chat });
    expect((await alice.error(toNobody, 3000)).code).toBe('USER_NOT_FOUND');
    await bob.expectNothing(200, 'message');
    await dave.expectNothing(0, 'message');
  });

  it('hands hosting over to a member on another instance; every member sees both updates', async () => {
    const { alice, bob, carol } = await threeMembers();
    const requestId = alice.request('set_role', {
      roomId: ROOM,
      targetUserId: 'bob',
      role: 'host',
    });
    for (const member of [alice, bob, carol]) {
      const first = await member.next('user_updated', 3000);
      expect(first).toEqual({
        roomId: ROOM,
        user: expect.objectContaining({ id: 'alice', role: 'editor' }),
      });
      const second = await member.next('user_updated', 3000);
      expect(second).toEqual({
        roomId: ROOM,
        user: expect.objectContaining({ id: 'bob', role: 'host' }),
        ...(member === alice ? { requestId } : {}),
      });
    }
    // The new host, on instance 1, has the host's rights; the old one, on instance 0, no longer.
    const forbidden = await reply(alice, 'kick_user', { roomId: ROOM, targetUserId: 'carol' });
    expect(forbidden).toMatchObject({ event: 'error', data: { code: 'FORBIDDEN' } });
    const demoted = await reply(bob, 'set_role', {
      roomId: ROOM,
      targetUserId: 'carol',
      role: 'viewer',
    });
    expect(demoted).toMatchObject({
      event: 'user_updated',
      data: { user: { id: 'carol', role: 'viewer' } },
    });
    expect(await carol.next('user_updated', 3000)).toMatchObject({
      user: { id: 'carol', role: 'viewer' },
    });
  });

  it('kicks a member on another instance: it gets kicked, the others user_left, and it cannot rejoin', async () => {
    const { alice, bob, carol } = await threeMembers();
    const kick = await reply(alice, 'kick_user', { roomId: ROOM, targetUserId: 'carol' });
    expect(kick).toMatchObject({
      event: 'user_left',
      data: { roomId: ROOM, userId: 'carol', requestId: expect.any(String) },
    });
    expect(await carol.next('kicked', 3000)).toEqual({ roomId: ROOM });
    expect(await bob.next('user_left', 3000)).toEqual({ roomId: ROOM, userId: 'carol' });
    expect(carol.closeCode).toBeUndefined(); // still connected

    const rejoin = carol.request('join_room', { roomId: ROOM });
    expect((await carol.error(rejoin, 3000)).code).toBe('KICKED');
    // Nor from another instance, with a new connection.
    carol.close();
    await carol.waitForClose(3000);
    const carolAgain = await fixture.connect(0, 'carol');
    const rejoinElsewhere = carolAgain.request('join_room', { roomId: ROOM });
    expect((await carolAgain.error(rejoinElsewhere, 3000)).code).toBe('KICKED');
    expect(await statsRooms(fixture.servers[2].httpUrl)).toEqual([
      expect.objectContaining({ roomId: ROOM, userCount: 2 }),
    ]);
  });

  it('tells members on every instance when a member leaves or disconnects, and names the new host', async () => {
    const { alice, bob, carol } = await threeMembers();
    const left = await reply(alice, 'leave_room', { roomId: ROOM });
    expect(left).toMatchObject({ event: 'room_left', data: { roomId: ROOM } });
    for (const member of [bob, carol]) {
      expect(await member.next('user_left', 3000)).toEqual({ roomId: ROOM, userId: 'alice' });
      expect(await member.next('user_updated', 3000)).toEqual({
        roomId: ROOM,
        user: expect.objectContaining({ id: 'bob', role: 'host' }),
      });
    }
    bob.close();
    expect(await carol.next('user_left', 3000)).toEqual({ roomId: ROOM, userId: 'bob' });
    expect(await carol.next('user_updated', 3000)).toEqual({
      roomId: ROOM,
      user: expect.objectContaining({ id: 'carol', role: 'host' }),
    });
  });

  it('sends room_deleted to the members on every instance', async () => {
    const { alice, bob, carol } = await threeMembers();
    const deleted = await reply(alice, 'delete_room', { roomId: ROOM });
    expect(deleted).toMatchObject({
      event: 'room_deleted',
      data: { roomId: ROOM, reason: 'deleted' },
    });
    for (const member of [bob, carol]) {
      expect(await member.next('room_deleted', 3000)).toEqual({ roomId: ROOM, reason: 'deleted' });
    }
    for (const server of fixture.servers) {
      expect(await statsRooms(server.httpUrl)).toEqual([]);
    }
    const after = await reply(bob, 'broadcast', { roomId: ROOM, message: { type: 'chat' } });
    expect(after).toMatchObject({ event: 'error', data: { code: 'ROOM_NOT_FOUND' } });
  });

  describe('session replacement across instances', () => {
    it('closes the old socket on instance A with 4000; the new one on B keeps the memberships and roles', async () => {
      const { alice, bob, carol } = await threeMembers();
      // Recorded apart from their queues, which the next('message') calls below empty.
      const heard = [bob, carol].map((member) => recordEvents(member));
      const replaced = alice.waitForClose(3000);
      const aliceOnB = await fixture.connect(1, 'alice');
      // Everything the new socket gets, whatever the next() calls below consume.
      const aliceHeard = recordEvents(aliceOnB);
      expect(await replaced).toEqual({ code: 4000, reason: 'Session replaced' });
      // The new socket gets the room through the normal join path: its snapshot, no requestId.
      expect(await aliceOnB.next('room_joined', 3000)).toEqual({
        roomInfo: expect.objectContaining({ roomId: ROOM }) as unknown,
      });

      // Without joining again, the new socket is in the room, as host.
      bob.broadcast(ROOM, { type: 'chat', data: { text: 'still there?' } });
      expect(await aliceOnB.next('message', 3000)).toMatchObject({ roomId: ROOM, senderId: 'bob' });
      expect(await carol.next('message', 3000)).toMatchObject({ roomId: ROOM, senderId: 'bob' });
      aliceOnB.broadcast(ROOM, pose('alice'));
      expect(await carol.next('message', 3000)).toMatchObject({ roomId: ROOM, senderId: 'alice' });
      const state = await reply(aliceOnB, 'get_state', { roomId: ROOM });
      expect(state).toMatchObject({ event: 'state', data: { roomId: ROOM, version: 0 } });
      const demoted = await reply(aliceOnB, 'set_role', {
        roomId: ROOM,
        targetUserId: 'carol',
        role: 'viewer',
      });
      expect(demoted).toMatchObject({
        event: 'user_updated',
        data: { user: { id: 'carol', role: 'viewer' } },
      });

      // Nobody heard alice leave or join.
      for (const events of heard) {
        const seen = events.filter(
          (message) =>
            (message.event === 'user_left' || message.event === 'user_joined') &&
            JSON.stringify(message.data).includes('alice'),
        );
        expect(seen).toEqual([]);
      }
      expect(aliceHeard.filter((message) => message.event === 'room_joined')).toHaveLength(1);
      await waitFor(
        async () => {
          const rooms = await statsRooms(fixture.servers[0].httpUrl);
          return rooms.length === 1 && rooms[0].userCount === 3 ? rooms : undefined;
        },
        3000,
        '/stats to list the room with its three members',
      );
      // Once the old socket is gone, alice's membership is not taken away by it, late.
      await bob.expectNothing(300, 'user_left');
    });

    it('holds back what the room says while the new socket takes the membership over', async () => {
      const { alice, bob } = await threeMembers();
      // Instance B's store answers slowly, so the room speaks while the takeover is under way.
      const store = fixture.servers[1].app.get(RedisRoomStore);
      const join = store.join.bind(store);
      let takeoverStarted!: () => void;
      const started = new Promise<void>((resolve) => (takeoverStarted = resolve));
      jest.spyOn(store, 'join').mockImplementation(async (request) => {
        takeoverStarted();
        await delay(300);
        return join(request);
      });
      const replaced = alice.waitForClose(3000);
      const aliceOnB = await fixture.connect(1, 'alice');
      await replaced;
      await started;
      bob.broadcast(ROOM, { type: 'chat', data: { text: 'during the takeover' } });

      expect(await aliceOnB.next('room_joined', 3000)).toMatchObject({
        roomInfo: { roomId: ROOM },
      });
      expect(await aliceOnB.next('message', 3000)).toMatchObject({
        message: { data: { text: 'during the takeover' } },
      });
    });
  });
});

describe('cluster: an extension sends data that JSON cannot carry', () => {
  const clients = new ClusterClients();
  let cluster: TestCluster | undefined;

  afterEach(async () => {
    clients.closeAll();
    await cluster?.close();
    cluster = undefined;
  });

  it('answers INTERNAL_ERROR, leaves nothing waiting for an echo, and the instance keeps serving', async () => {
    // Resume on: the room's events wait for their number from Redis, with a 2 s fallback.
    cluster = await startClusterWithExtension(
      2,
      { RECONNECT_GRACE_MS: '30000' },
      { redisUrl: TEST_REDIS_URL, emitted: [] },
    );
    const [a, b] = cluster.servers;
    const alice = await clients.connect(a.wsUrl, 'alice');
    const bob = await clients.connect(b.wsUrl, 'bob');
    await alice.join(ROOM);
    await bob.join(ROOM);
    await alice.next('user_joined', 3000);

    // toRoom, toMember of a member here (both wait for their echo) and of one on another instance.
    for (const target of [{}, { userId: 'alice' }, { userId: 'bob' }]) {
      const requestId = alice.request('share_row', {
        roomId: ROOM,
        unserializable: true,
        ...target,
      });
      expect(await alice.error(requestId, 3000)).toMatchObject({
        code: 'INTERNAL_ERROR',
        requestId,
      });
    }

    // Past the 2 s fallback of an echo: nothing was left to deliver, and the instance is up.
    await delay(3000);
    const ping = alice.request('ping');
    await replyOf(alice, ping, 'pong');
    const shared = alice.request('share_row', { roomId: ROOM });
    await replyOf(alice, shared, 'row_sent');
    for (const member of [alice, bob]) {
      const rows = await waitFor(
        () => {
          const got = member.received.filter((message) => String(message.event) === 'row_shared');
          return got.length > 0 ? got : undefined;
        },
        3000,
        `${member.userId} to get the row`,
      );
      expect(rows.map((message) => message.data)).toEqual([expect.objectContaining({ id: 1 })]);
    }
  }, 20_000);
});
