import type { ResumedRoom, ServerEventMap } from '../src/protocol/protocol.js';
import { ROOM_STORE, type RoomStore } from '../src/rooms/room-store.js';
import { UsersService } from '../src/users/users.service.js';
import { recordEvents } from './support/cluster.js';
import { replyOf, useTestServer } from './support/fixtures.js';
import {
  delay,
  drop,
  takeReceived,
  until,
  type Received,
  type TestClient,
} from './support/test-client.js';

const GRACE_MS = 1500;

describe('resume after a dropped connection', () => {
  const fixture = useTestServer({
    env: { RECONNECT_GRACE_MS: String(GRACE_MS) },
    lazy: true,
  });
  const { connect, start } = fixture;

  /** alice hosts `gallery`, bob is an editor in it; every join event consumed. */
  const pair = async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    await alice.join('gallery');
    const bobJoined = await bob.join('gallery', { userInfo: { role: 'editor' } });
    await alice.next('user_joined');
    return { alice, bob, bobJoined };
  };

  it('gives every connect a fresh resume token and the grace time', async () => {
    const alice = await connect('alice');
    const again = await connect('alice');
    expect(alice.connected?.resumeToken).toMatch(/^[A-Za-z0-9_-]{32,}$/);
    expect(again.connected?.resumeToken).toMatch(/^[A-Za-z0-9_-]{32,}$/);
    expect(again.connected?.resumeToken).not.toBe(alice.connected?.resumeToken);
    expect(again.connected?.reconnectGraceMs).toBe(GRACE_MS);
  });

  it('numbers room events and gives the joiner the epoch and seq of its snapshot', async () => {
    const { alice, bobJoined } = await pair();
    expect(bobJoined.epoch).toMatch(/^[0-9a-f]{16}$/);
    expect(bobJoined.seq).toBeGreaterThanOrEqual(1);
    alice.request('update_state', {
      roomId: 'gallery',
      baseVersion: 0,
      patch: { sceneLoaded: true },
    });
    const update = await alice.next('state_updated');
    expect(update.seq).toBe((bobJoined.seq ?? 0) + 2);
  });

  it('replays exactly the missed events, once and in order, with the same role', async () => {
    const { alice, bob, bobJoined } = await pair();
    const token = bob.connected?.resumeToken as string;
    alice.request('update_state', {
      roomId: 'gallery',
      baseVersion: 0,
      patch: { sceneUrl: 'a.glb' },
    });
    const lastSeq = (await bob.next('state_updated')).seq as number;

    await drop(bob);
    expect(await alice.next('user_updated')).toMatchObject({
      user: { id: 'bob', role: 'editor', connected: false },
    });
    // What bob misses: a state change, a chat message, a direct message, a pose, a new member.
    const updateId = alice.request('update_state', {
      roomId: 'gallery',
      baseVersion: 1,
      patch: { sceneUrl: 'b.glb' },
    });
    expect((await alice.reply(updateId)).event).toBe('state_updated');
    alice.broadcast('gallery', { type: 'chat', data: { text: 'hello' } });
    alice.broadcast('gallery', { type: 'pose_update', data: { position: [1, 2, 3] } });
    // Recorded apart from alice's queue, which next('user_joined') below empties up to its match.
    const aliceEvents = recordEvents(alice);
    const directId = alice.request('send_message', {
      targetUserId: 'bob',
      message: { type: 'note', data: { text: 'for bob' } },
    });
    const carol = await connect('carol');
    await carol.join('gallery');
    await alice.next('user_joined');
    await delay(50);
    // A held seat takes direct messages: no error (USER_NOT_FOUND) for the one sent to bob.
    const directReplies = aliceEvents.filter((message) => message.data.requestId === directId);
    expect(directReplies).toEqual([]);

    const bob2 = await connect('bob', { resume: token });
    expect(bob2.connected).toMatchObject({ userId: 'bob', resumed: true });
    const resumeId = bob2.request('resume', {
      rooms: [{ roomId: 'gallery', epoch: bobJoined.epoch, lastSeq }],
    });
    const [reply, ...missed] = await takeReceived(bob2, 5, 'the resumed reply and 4 missed events');
    expect(reply).toEqual({
      event: 'resumed',
      data: {
        requestId: resumeId,
        rooms: [
          { roomId: 'gallery', recovered: true, epoch: bobJoined.epoch, seq: expect.any(Number) },
        ],
        lost: [],
      },
    });
    expect(missed.map(({ event }) => event)).toEqual([
      'state_updated',
      'message',
      'message',
      'user_joined',
    ]);
    expect(missed[0].data).toMatchObject({ version: 2, patch: { sceneUrl: 'b.glb' } });
    expect(missed[1].data).toMatchObject({ message: { type: 'chat' } });
    expect(missed[2].data).toMatchObject({
      roomId: 'gallery',
      message: { type: 'note' },
      senderId: 'alice',
    });
    expect(missed[3].data).toMatchObject({ user: { id: 'carol' } });
    const seqs = missed.map(({ data }) => (data as { seq: number }).seq);
    // Only its own user_updated (connected: false) is not replayed to it: it was not for it.
    expect(seqs[0]).toBe(lastSeq + 2);
    expect(seqs.slice(1).map((seq, index) => seq - seqs[index])).toEqual([1, 1, 1]);
    const resumed = reply.data as ServerEventMap['resumed'];
    expect((resumed.rooms[0] as ResumedRoom & { seq: number }).seq).toBe(seqs[seqs.length - 1]);

    // The others see bob back, with the role it had; nothing is sent twice.
    expect(await alice.next('user_updated')).toMatchObject({
      user: { id: 'bob', role: 'editor', connected: true },
    });
    await bob2.expectNothing(200);
    const ownUpdate = bob2.request('update_state', {
      roomId: 'gallery',
      baseVersion: 2,
      patch: { sceneLoaded: true },
    });
    expect(await replyOf(bob2, ownUpdate, 'state_updated')).toMatchObject({ version: 3 });
  });

  it('leaves for good when the grace runs out: user_left, and a new host', async () => {
    const { alice, bob } = await pair();
    const token = alice.connected?.resumeToken as string;
    await drop(alice);
    expect(await bob.next('user_updated')).toMatchObject({
      user: { id: 'alice', role: 'host', connected: false },
    });
    // The seat is held: alice is still host during the grace.
    await bob.expectNothing(GRACE_MS - 300);
    expect(await bob.next('user_left', GRACE_MS)).toMatchObject({ userId: 'alice' });
    expect(await bob.next('user_updated')).toMatchObject({ user: { id: 'bob', role: 'host' } });

    // Too late for the seat: the resume joins the room again, as a new member, with a snapshot.
    const late = await connect('alice', { resume: token });
    expect(late.connected?.resumed).toBe(false);
    const resumeId = late.request('resume', {
      token,
      rooms: [{ roomId: 'gallery' }, { roomId: 'gone' }],
    });
    const resumed = await replyOf<{ rooms: ResumedRoom[]; lost: string[] }>(
      late,
      resumeId,
      'resumed',
    );
    expect(resumed.rooms).toEqual([
      {
        roomId: 'gallery',
        recovered: false,
        roomInfo: expect.objectContaining({
          users: [
            expect.objectContaining({ id: 'bob', role: 'host' }),
            expect.objectContaining({ id: 'alice', role: 'editor', connected: true }),
          ],
        }),
      },
    ]);
    expect(resumed.lost).toEqual(['gone']); // never created by a resume
    expect(await bob.next('user_joined')).toMatchObject({ user: { id: 'alice', role: 'editor' } });
  });

  it('takes a held seat back, connected, when the client joins again instead of resuming', async () => {
    const { alice, bob } = await pair();
    await drop(bob);
    expect(await alice.next('user_updated')).toMatchObject({
      user: { id: 'bob', connected: false },
    });
    const bob2 = await connect('bob');
    const joined = await bob2.join('gallery');
    expect(joined.users.find((user) => user.id === 'bob')).toMatchObject({
      role: 'editor',
      connected: true,
    });
    expect(await alice.next('user_updated')).toMatchObject({
      user: { id: 'bob', role: 'editor', connected: true },
    });
    // The grace running out does not take the seat of the member back in the room.
    await alice.expectNothing(GRACE_MS + 300, 'user_left');
    const carol = await connect('carol');
    const seen = await carol.join('gallery');
    expect(seen.users.find((user) => user.id === 'bob')).toMatchObject({ connected: true });
  });

  it('sends a snapshot instead when the history cannot cover the gap', async () => {
    await start({ RECONNECT_GRACE_MS: String(GRACE_MS), RESUME_HISTORY_EVENTS: '2' });
    const { alice, bob, bobJoined } = await pair();
    const token = bob.connected?.resumeToken as string;
    await drop(bob);
    await alice.next('user_updated');
    for (let version = 1; version <= 3; version++) {
      const id = alice.request('update_state', {
        roomId: 'gallery',
        baseVersion: version - 1,
        patch: { sceneUrl: `${version}.glb` },
      });
      const reply = await alice.reply(id);
      expect(reply.data).toMatchObject({ version });
    }
    const bob2 = await connect('bob', { resume: token });
    const resumeId = bob2.request('resume', {
      rooms: [{ roomId: 'gallery', epoch: bobJoined.epoch, lastSeq: bobJoined.seq }],
    });
    const resumedReply = await bob2.reply(resumeId);
    expect(resumedReply.event).toBe('resumed');
    const resumed = resumedReply.data as ServerEventMap['resumed'];
    expect(resumed.rooms).toEqual([
      {
        roomId: 'gallery',
        recovered: false,
        roomInfo: expect.objectContaining({
          epoch: bobJoined.epoch,
          state: expect.objectContaining({ version: 3, sceneUrl: '3.glb' }),
          users: [
            expect.objectContaining({ id: 'alice', role: 'host', connected: true }),
            expect.objectContaining({ id: 'bob', role: 'editor', connected: true }),
          ],
        }),
      },
    ]);
    await bob2.expectNothing(150, 'state_updated');
  });

  it('sends a snapshot, not the events from before its join, to a resume that reaches back', async () => {
    const alice = await connect('alice');
    await alice.join('gallery');
    alice.broadcast('gallery', { type: 'chat', data: { text: 'before carol joined' } });
    const carol = await connect('carol');
    const carolJoined = await carol.join('gallery');
    expect(carolJoined.seq).toBeGreaterThan(1);
    await alice.next('user_joined');
    const token = carol.connected?.resumeToken as string;
    await drop(carol);
    await alice.next('user_updated');
    alice.broadcast('gallery', { type: 'chat', data: { text: 'while carol was away' } });

    // From before its join, on the right epoch: a snapshot, and none of the earlier events.
    const carol2 = await connect('carol', { resume: token });
    const resumeId = carol2.request('resume', {
      rooms: [{ roomId: 'gallery', epoch: carolJoined.epoch, lastSeq: 0 }],
    });
    const resumed = await replyOf(carol2, resumeId, 'resumed');
    expect(resumed.rooms).toEqual([
      expect.objectContaining({ roomId: 'gallery', recovered: false }),
    ]);
    await delay(200);
    const texts = carol2.received
      .filter((message) => message.event === 'message')
      .map((message) => JSON.stringify(message.data));
    expect(texts.filter((text) => text.includes('before carol joined'))).toEqual([]);

    // From its own join's snapshot, as an honest client resumes: the events it missed, replayed.
    const token2 = carol2.connected?.resumeToken as string;
    await drop(carol2);
    const carol3 = await connect('carol', { resume: token2 });
    const again = carol3.request('resume', {
      rooms: [{ roomId: 'gallery', epoch: carolJoined.epoch, lastSeq: carolJoined.seq }],
    });
    const recovered = await replyOf(carol3, again, 'resumed');
    expect(recovered.rooms).toEqual([
      expect.objectContaining({ roomId: 'gallery', recovered: true }),
    ]);
  });

  it('sends a snapshot for a room whose epoch changed (its history was lost)', async () => {
    const { alice, bob } = await pair();
    const token = bob.connected?.resumeToken as string;
    await drop(bob);
    await alice.next('user_updated');
    const bob2 = await connect('bob');
    const resumeId = bob2.request('resume', {
      token,
      rooms: [{ roomId: 'gallery', epoch: 'an-old-epoch', lastSeq: 3 }, { roomId: 'elsewhere' }],
    });
    const resumed = await replyOf(bob2, resumeId, 'resumed');
    expect(resumed.rooms).toEqual([
      expect.objectContaining({ roomId: 'gallery', recovered: false }),
    ]);
    expect(resumed.lost).toEqual(['elsewhere']);
  });

  it('lets only the socket that joined or resumed act for a held seat', async () => {
    const { alice, bob } = await pair();
    await drop(alice);
    await bob.next('user_updated');
    // alice again, on a socket that neither resumed nor joined: the store still has her seat.
    const other = await connect('alice');
    const attempts = [
      other.request('get_state', { roomId: 'gallery' }),
      other.request('update_state', {
        roomId: 'gallery',
        ops: [{ op: 'add', collection: 'annotations', id: 'n1', item: { text: 'x' } }],
      }),
      other.request('set_role', { roomId: 'gallery', targetUserId: 'bob', role: 'viewer' }),
      other.request('kick_user', { roomId: 'gallery', targetUserId: 'bob' }),
      other.request('delete_room', { roomId: 'gallery' }),
      other.request('leave_room', { roomId: 'gallery' }),
    ];
    for (const requestId of attempts) {
      expect(await other.error(requestId)).toMatchObject({ code: 'NOT_IN_ROOM', requestId });
    }
    // bob is still in the room, as an editor, and nothing changed.
    const state = await bob.reply(bob.request('get_state', { roomId: 'gallery' }));
    expect(state).toMatchObject({ event: 'state', data: { version: 0 } });
  });

  it('treats a close frame as a leave, at once', async () => {
    const { alice, bob } = await pair();
    bob.close();
    // Well inside the grace, so that a seat held until the grace ran out cannot pass for a leave.
    await until(
      () => alice.received.some((message) => message.event === 'user_left'),
      GRACE_MS / 3,
      "alice's user_left for bob",
    );
    // What alice hears of bob first is that he left: no user_updated (connected: false) before.
    const aboutMembers = alice.received.filter(
      (message) => message.event === 'user_left' || message.event === 'user_updated',
    );
    expect(aboutMembers[0]).toEqual({
      event: 'user_left',
      data: expect.objectContaining({ roomId: 'gallery', userId: 'bob' }),
    });
  });

  it('closes a socket still open with 4000 when its resume arrives, and ignores its late close', async () => {
    const { alice, bob } = await pair();
    const token = bob.connected?.resumeToken as string;
    const bob2 = await connect('bob', { resume: token });
    expect((await bob.waitForClose()).code).toBe(4000);
    expect(await alice.next('user_updated')).toMatchObject({
      user: { id: 'bob', connected: false },
    });
    const resumeId = bob2.request('resume', { rooms: [{ roomId: 'gallery' }] });
    const resumed = await replyOf(bob2, resumeId, 'resumed');
    expect(resumed.rooms).toEqual([expect.objectContaining({ roomId: 'gallery' })]);
    expect(await alice.next('user_updated')).toMatchObject({
      user: { id: 'bob', connected: true },
    });
    await alice.expectNothing(200, 'user_left');
  });

  it("takes nothing with an unknown token, and refuses another user's", async () => {
    const { alice, bob } = await pair();
    const unknownId = bob.request('resume', {
      token: 'not-a-token',
      rooms: [{ roomId: 'gallery' }],
    });
    // bob is in gallery already: nothing to take back, nothing lost.
    expect(await replyOf(bob, unknownId, 'resumed')).toEqual({
      requestId: unknownId,
      rooms: [],
      lost: [],
    });
    const aliceToken = alice.connected?.resumeToken as string;
    await drop(alice);
    const stolenId = bob.request('resume', { token: aliceToken });
    expect(await bob.error(stolenId)).toMatchObject({ code: 'RESUME_FAILED', requestId: stolenId });
    // A verified-looking upgrade for bob cannot take alice's token either.
    const mallory = await connect('bob', { resume: aliceToken });
    expect(mallory.connected).toMatchObject({ userId: 'bob', resumed: false });
  });

  describe('a connection that ends while its resume is under way', () => {
    /**
     * Holds the store's join of `userId` into `roomId` (a resume joining it again) until
     * `release`, on every instance: the resume is under way, its held seats taken back, meanwhile.
     */
    const stallJoin = (roomId: string, userId: string) => {
      let reached!: () => void;
      const stalled = new Promise<void>((resolve) => (reached = resolve));
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      for (const server of fixture.servers) {
        const store = server.app.get<RoomStore>(ROOM_STORE);
        const join = store.join.bind(store);
        store.join = async (request) => {
          if (request.roomId === roomId && request.userId === userId) {
            reached();
            await released;
          }
          return join(request);
        };
      }
      return { stalled, release };
    };
    /** Until no instance has a connection of `userId` any more: its end was seen. */
    const gone = (userId: string) =>
      until(
        () => fixture.servers.every((server) => !server.app.get(UsersService).byUser(userId)),
        3000,
        `the server to see ${userId}'s connection end`,
      );
    /** What `client` has been told about `userId` in `roomId`, as `event:connected`. */
    const toldAbout = (client: TestClient, userId: string, roomId: string) =>
      client.received
        .filter(({ data }) => (data as { roomId?: string }).roomId === roomId)
        .flatMap(({ event, data }: Received) => {
          const { user, userId: leaver } = data as {
            user?: { id: string; connected?: boolean };
            userId?: string;
          };
          if (user?.id === userId) {
            return [`${event}:${String(user.connected)}`];
          }
          return leaver === userId ? [event] : [];
        });

    /**
     * bob (editor in `gallery`, where alice hosts) dropped, is back with its token, and its
     * resume of `gallery` and `annex` waits on the join of `annex`: the held seat in `gallery`
     * is taken back, not yet announced.
     */
    const resumeUnderWay = async () => {
      const { alice, bob } = await pair();
      await alice.join('annex');
      await drop(bob);
      expect(await alice.next('user_updated')).toMatchObject({
        user: { id: 'bob', connected: false },
      });
      alice.received.splice(0);
      const { stalled, release } = stallJoin('annex', 'bob');
      const bob2 = await connect('bob', { resume: bob.connected?.resumeToken as string });
      expect(bob2.connected?.resumed).toBe(true);
      bob2.request('resume', { rooms: [{ roomId: 'gallery' }, { roomId: 'annex' }] });
      await stalled;
      return { alice, bob2, release };
    };

    /** bob2 drops while its resume waits; once it goes on, alice hears bob is held again. */
    const droppedMidResume = async () => {
      const { alice, bob2, release } = await resumeUnderWay();
      await drop(bob2);
      await gone('bob');
      release();
      await until(
        () => toldAbout(alice, 'bob', 'gallery').length > 0,
        3000,
        'alice told that bob is held again',
      );
      return { alice, bob2 };
    };

    it('holds the seats again after a drop, under the token of the connection that dropped', async () => {
      const { alice, bob2 } = await droppedMidResume();
      // The seat is held again, for a resume with the client's newest token.
      const bob3 = await connect('bob', { resume: bob2.connected?.resumeToken as string });
      expect(bob3.connected?.resumed).toBe(true);
      const resumeId = bob3.request('resume', { rooms: [{ roomId: 'gallery' }] });
      const resumed = await replyOf<ServerEventMap['resumed']>(bob3, resumeId, 'resumed');
      expect(resumed.rooms.map((room) => room.roomId)).toEqual(['gallery']);
      await until(
        () => toldAbout(alice, 'bob', 'gallery').includes('user_updated:true'),
        3000,
        'alice told that bob is back',
      );
      expect(toldAbout(alice, 'bob', 'gallery')).toEqual([
        'user_updated:false',
        'user_updated:true',
      ]);
    });

    it('lets the seats held again go when the grace runs out', async () => {
      const { alice } = await droppedMidResume();
      const heldAt = Date.now();
      expect(toldAbout(alice, 'bob', 'gallery')).toEqual(['user_updated:false']);
      await until(
        () => toldAbout(alice, 'bob', 'gallery').includes('user_left'),
        GRACE_MS + 2000,
        'alice told that bob left when the grace ran out',
      );
      expect(Date.now() - heldAt).toBeGreaterThan(GRACE_MS - 300);
      expect(toldAbout(alice, 'bob', 'gallery')).toEqual(['user_updated:false', 'user_left']);
      const carol = await connect('carol');
      const seen = await carol.join('gallery');
      expect(seen.users.map((user) => user.id)).toEqual(['alice', 'carol']);
    });

    it('takes back, unannounced, a room it joined again: the room never heard of it', async () => {
      const { alice } = await droppedMidResume();
      await delay(200);
      expect(toldAbout(alice, 'bob', 'annex')).toEqual([]);
      const carol = await connect('carol');
      const seen = await carol.join('annex');
      expect(seen.users.map((user) => user.id)).toEqual(['alice', 'carol']);
    });

    it('treats a close frame as a leave, at once: no seat is held', async () => {
      const { alice, bob2, release } = await resumeUnderWay();
      bob2.close();
      await gone('bob');
      release();
      // Well inside the grace, so that a seat held until the grace ran out cannot pass for a leave.
      await until(
        () => toldAbout(alice, 'bob', 'gallery').includes('user_left'),
        GRACE_MS / 2,
        'alice told that bob left',
      );
      expect(toldAbout(alice, 'bob', 'gallery')).toEqual(['user_left']);
      expect(toldAbout(alice, 'bob', 'annex')).toEqual([]);
      const carol = await connect('carol');
      for (const roomId of ['gallery', 'annex']) {
        const seen = await carol.join(roomId);
        expect(seen.users.map((user) => user.id)).toEqual(['alice', 'carol']);
      }
    });
  });

  it('with RECONNECT_GRACE_MS=0, a drop is a leave and nothing is numbered', async () => {
    await start({ RECONNECT_GRACE_MS: '0' });
    const { alice, bob, bobJoined } = await pair();
    expect(bob.connected).not.toHaveProperty('resumeToken');
    expect(bobJoined).not.toHaveProperty('seq');
    await drop(bob);
    const left = await alice.next('user_left');
    expect(left).toEqual({ roomId: 'gallery', userId: 'bob' });
  });
});
