import type { ServerEventMap } from '../src/protocol/protocol.js';
import { ClientPool, RATE_LIMITS_OFF, replyOf, useTestServer } from './support/fixtures.js';
import { delay, drop, takeReceived, until, type TestClient } from './support/test-client.js';

// The resume session's own rules: which rooms a `resume` gives back and how many, how long held
// seats and tokens last, and what ends a session. test/resume.e2e-spec.ts covers the flow.
const GRACE_MS = 2000;
/** For the tests that must not see a grace end: their drops stay held throughout. */
const LONG_GRACE_MS = 10_000;
const MAX_ROOMS = 3;

type Resumed = ServerEventMap['resumed'];

/** Sockets whose network went away silently: paused, they would never read the server's close. */
const frozen: TestClient[] = [];
afterEach(() => frozen.splice(0).forEach((client) => client.socket.terminate()));

/** The client stops reading, without a word to the server, which keeps sending to it. */
function freeze(client: TestClient): void {
  client.socket.pause();
  frozen.push(client);
}

describe('resume sessions: seats, tokens and bounds', () => {
  const env = { RECONNECT_GRACE_MS: String(GRACE_MS), MAX_ROOMS_PER_CONNECTION: String(MAX_ROOMS) };
  const fixture = useTestServer({ env, lazy: true });
  const startWithLongGrace = () =>
    fixture.start({ ...env, RECONNECT_GRACE_MS: String(LONG_GRACE_MS) });
  // A session lives on the instance its connections reach: in cluster mode each client says
  // which instance it goes to (one instance otherwise), so that one user's drops meet there.
  const pool = new ClientPool();
  afterEach(() => pool.closeAll());

  const servers = async () => {
    try {
      return fixture.servers;
    } catch {
      await fixture.start();
      return fixture.servers;
    }
  };
  const connectTo = async (
    instance: number,
    userId: string | undefined,
    options: { resume?: string } = {},
  ): Promise<TestClient> => {
    const all = await servers();
    return pool.connect(all[instance % all.length].wsUrl, { ...options, userId });
  };
  const tokenOf = (client: TestClient) => client.connected?.resumeToken as string;
  const roomIdsOf = (resumed: Resumed) => resumed.rooms.map((room) => room.roomId).sort();
  const roomsLeftBy = (client: TestClient, userId: string) =>
    client.received
      .filter((message) => message.event === 'user_left')
      .map((message) => message.data as ServerEventMap['user_left'])
      .filter((left) => left.userId === userId)
      .map((left) => left.roomId)
      .sort();
  /** Waits until `client` was told `userId` left `count` rooms, within `timeoutMs`; their ids. */
  const roomsLeft = async (
    client: TestClient,
    userId: string,
    count: number,
    timeoutMs: number,
  ) => {
    await until(
      () => roomsLeftBy(client, userId).length >= count,
      timeoutMs,
      `${client.userId} told that ${userId} left ${count} rooms`,
    );
    return roomsLeftBy(client, userId);
  };

  /**
   * Waits until `client` was told `userId` is not connected in `count` rooms: the server saw the
   * drop. A connection of the user that came sooner would replace the dropped one, rooms and all.
   */
  const seatsHeld = (client: TestClient, userId: string, count: number) =>
    until(
      () =>
        client.received.filter(
          (message) =>
            message.event === 'user_updated' &&
            (message.data as ServerEventMap['user_updated']).user.id === userId &&
            (message.data as ServerEventMap['user_updated']).user.connected === false,
        ).length >= count,
      3000,
      `${client.userId} told that ${userId}'s ${count} seats are held`,
    );

  it('gives back what a socket thought open missed, after a plain reconnect', async () => {
    await startWithLongGrace();
    const alice = await connectTo(0, 'alice');
    const bob = await connectTo(1, 'bob');
    await alice.join('gallery');
    await alice.join('studio');
    const joined = await bob.join('gallery');
    await bob.join('studio');
    const token = tokenOf(bob);
    freeze(bob);
    const updateId = alice.request('update_state', {
      roomId: 'gallery',
      baseVersion: 0,
      patch: { sceneUrl: 'missed.glb' },
    });
    await replyOf(alice, updateId, 'state_updated');
    alice.broadcast('gallery', { type: 'chat', data: { text: 'missed too' } });

    // Back as the same user without ?resume=: its rooms move here; then the token goes in `resume`.
    const bob2 = await connectTo(1, 'bob');
    expect(bob2.connected?.resumed).toBeUndefined();
    const resumeId = bob2.request('resume', {
      token,
      rooms: [{ roomId: 'gallery', epoch: joined.epoch, lastSeq: joined.seq }],
    });
    const resumed = await replyOf<Resumed>(bob2, resumeId, 'resumed');
    expect(resumed.lost).toEqual([]);
    // Listed or not, every room the socket had comes back: replayed, or as a snapshot.
    expect(resumed.rooms).toEqual(
      expect.arrayContaining([
        { roomId: 'gallery', recovered: true, epoch: joined.epoch, seq: expect.any(Number) },
        expect.objectContaining({ roomId: 'studio', recovered: false }),
      ]),
    );
    expect(resumed.rooms).toHaveLength(2);
    const missed = await takeReceived(bob2, 2, 'the 2 missed events', 5000);
    expect(missed.map(({ event }) => event)).toEqual(['state_updated', 'message']);
    expect(missed[0].data).toMatchObject({ roomId: 'gallery', patch: { sceneUrl: 'missed.glb' } });
    expect(missed[1].data).toMatchObject({ message: { type: 'chat' } });
  }, 15_000);

  it('joins at most MAX_ROOMS_PER_CONNECTION rooms for a resume: the others are lost', async () => {
    await startWithLongGrace();
    const alice = await connectTo(0, 'alice');
    const carol = await connectTo(2, 'carol');
    for (const roomId of ['r1', 'r2', 'r3']) {
      await alice.join(roomId);
    }
    for (const roomId of ['r4', 'r5']) {
      await carol.join(roomId);
    }
    const bob = await connectTo(1, 'bob');
    const resumeId = bob.request('resume', {
      rooms: ['r1', 'r2', 'r3', 'r4', 'r5'].map((roomId) => ({ roomId })),
    });
    const resumed = await replyOf<Resumed>(bob, resumeId, 'resumed');
    expect(roomIdsOf(resumed)).toEqual(['r1', 'r2', 'r3']);
    expect(resumed.lost).toEqual(['r4', 'r5']);
    const tooMany = bob.request('join_room', { roomId: 'r6' });
    expect(await bob.error(tooMany)).toMatchObject({ code: 'TOO_MANY_ROOMS' });
  }, 15_000);

  it('holds at most MAX_ROOMS_PER_CONNECTION seats across drops, the oldest leaving', async () => {
    await startWithLongGrace();
    const alice = await connectTo(0, 'alice');
    const carol = await connectTo(2, 'carol');
    for (const roomId of ['a', 'b', 'c']) {
      await alice.join(roomId);
    }
    for (const roomId of ['d', 'e', 'f']) {
      await carol.join(roomId);
    }
    const bob = await connectTo(1, 'bob');
    for (const roomId of ['a', 'b', 'c']) {
      await bob.join(roomId);
    }
    await drop(bob);
    await seatsHeld(alice, 'bob', 3);
    // Back without resuming, in three other rooms, and dropped again well within the grace.
    const bob2 = await connectTo(1, 'bob');
    for (const roomId of ['d', 'e', 'f']) {
      await bob2.join(roomId);
    }
    await drop(bob2);
    // At once, not when the first drop's grace ends.
    expect(await roomsLeft(alice, 'bob', 3, LONG_GRACE_MS / 2)).toEqual(['a', 'b', 'c']);

    const bob3 = await connectTo(1, 'bob', { resume: tokenOf(bob2) });
    expect(bob3.connected?.resumed).toBe(true);
    const resumed = await replyOf<Resumed>(bob3, bob3.request('resume', { rooms: [] }), 'resumed');
    expect(roomIdsOf(resumed)).toEqual(['d', 'e', 'f']);
  }, 15_000);

  it('takes held seats back up to the cap, listed ones first; the rest leave, lost', async () => {
    await startWithLongGrace();
    const alice = await connectTo(0, 'alice');
    for (const roomId of ['a', 'b', 'c']) {
      await alice.join(roomId);
    }
    const bob = await connectTo(1, 'bob');
    for (const roomId of ['a', 'b', 'c']) {
      await bob.join(roomId);
    }
    await drop(bob);
    const bob2 = await connectTo(2, 'bob', { resume: tokenOf(bob) });
    expect(bob2.connected?.resumed).toBe(true);
    await bob2.join('own'); // one of three places taken before the resume
    const resumeId = bob2.request('resume', { rooms: [{ roomId: 'c' }] });
    const resumed = await replyOf<Resumed>(bob2, resumeId, 'resumed');
    expect(resumed.rooms.map((room) => room.roomId)).toEqual(['c', 'a']);
    expect(resumed.lost).toEqual(['b']);
    expect(await roomsLeft(alice, 'bob', 1, 3000)).toEqual(['b']);
    const tooMany = bob2.request('join_room', { roomId: 'b' });
    expect(await bob2.error(tooMany)).toMatchObject({ code: 'TOO_MANY_ROOMS' });
  }, 15_000);

  it('does not give back a held seat the connection joined again itself: nothing twice', async () => {
    await startWithLongGrace();
    const alice = await connectTo(0, 'alice');
    await alice.join('gallery');
    const bob = await connectTo(1, 'bob');
    await bob.join('gallery');
    await drop(bob);
    expect(await alice.next('user_updated', 3000)).toMatchObject({
      user: { id: 'bob', connected: false },
    });
    // Back without ?resume=, as an older client would: its join_room takes the held seat back.
    const bob2 = await connectTo(2, 'bob');
    const joined = await bob2.join('gallery');
    expect(await alice.next('user_updated', 3000)).toMatchObject({
      user: { id: 'bob', connected: true },
    });
    alice.broadcast('gallery', { type: 'chat', data: { text: 'live' } });
    const live = await bob2.next('message', 3000);
    // Its resume was sent before that message reached it: its position is the snapshot's.
    const resumeId = bob2.request('resume', {
      token: tokenOf(bob),
      rooms: [{ roomId: 'gallery', epoch: joined.epoch, lastSeq: joined.seq }],
    });
    // Up to date already: not given back, and neither the room nor bob2 hears anything again.
    expect(await replyOf<Resumed>(bob2, resumeId, 'resumed')).toEqual({
      requestId: resumeId,
      rooms: [],
      lost: [],
    });
    await delay(300);
    expect(bob2.received.filter((message) => message.event === 'message')).toEqual([]);
    expect(live.seq).toBeGreaterThan(joined.seq as number);
    expect(alice.received.filter((message) => message.event === 'user_updated')).toEqual([]);
  }, 15_000);

  it('lets a held host go when its grace ends though later connections keep dropping', async () => {
    const bob = await connectTo(1, 'bob');
    const alice = await connectTo(0, 'alice');
    await bob.join('gallery'); // host
    await alice.join('gallery');
    const droppedAt = Date.now();
    await drop(bob);
    expect(await alice.next('user_updated', 3000)).toMatchObject({
      user: { id: 'bob', role: 'host', connected: false },
    });
    // Back and gone again and again, never resuming nor joining, until the grace is nearly over.
    while (Date.now() - droppedAt < GRACE_MS * 0.75) {
      await drop(await connectTo(1, 'bob'));
      await delay(100);
    }
    const left = await alice.next('user_left', droppedAt + GRACE_MS + 700 - Date.now());
    expect(left).toEqual({ roomId: 'gallery', userId: 'bob', seq: expect.any(Number) });
    expect(await alice.next('user_updated')).toMatchObject({ user: { id: 'alice', role: 'host' } });
  }, 15_000);

  it('voids a held token once a later drop holds the seats under its own', async () => {
    await startWithLongGrace();
    const alice = await connectTo(0, 'alice');
    await alice.join('gallery');
    let bob = await connectTo(1, 'bob');
    await bob.join('gallery');
    const tokens = [tokenOf(bob)];
    for (let cycle = 0; cycle < 3; cycle++) {
      await drop(bob);
      bob = await connectTo(1, 'bob'); // back without resuming: the seat stays held
      tokens.push(tokenOf(bob));
    }
    await drop(bob);
    // Every token but the newest resumes nothing now; an upgrade naming nobody stays itself.
    for (const token of tokens.slice(0, -1)) {
      const stranger = await connectTo(2, undefined, { resume: token });
      expect(stranger.connected).toMatchObject({ resumed: false });
      expect(stranger.userId).not.toBe('bob');
    }
    const back = await connectTo(1, 'bob', { resume: tokens[tokens.length - 1] });
    expect(back.connected?.resumed).toBe(true);
    const resumed = await replyOf<Resumed>(back, back.request('resume', {}), 'resumed');
    expect(roomIdsOf(resumed)).toEqual(['gallery']);
  }, 15_000);

  it('voids the tokens of drops when the grace ends: none takes a live session', async () => {
    const alice = await connectTo(0, 'alice');
    await alice.join('gallery');
    const bob = await connectTo(1, 'bob');
    await bob.join('gallery');
    await drop(bob);
    const bob2 = await connectTo(1, 'bob');
    await drop(bob2);
    expect(await alice.next('user_left', GRACE_MS + 2000)).toMatchObject({ userId: 'bob' });
    const live = await connectTo(1, 'bob');
    await live.join('studio');
    for (const token of [tokenOf(bob), tokenOf(bob2)]) {
      const stranger = await connectTo(1, undefined, { resume: token });
      expect(stranger.connected).toMatchObject({ resumed: false });
      expect(stranger.userId).not.toBe('bob');
    }
    // Still bob's session: a request of his is answered, and nothing closed it.
    const state = live.request('get_state', { roomId: 'studio' });
    expect((await live.reply(state)).event).toBe('state');
    expect(live.closeCode).toBeUndefined();
  }, 15_000);

  it('refuses a resume that lists a room twice, and joins nothing for it', async () => {
    const alice = await connectTo(0, 'alice');
    await alice.join('gallery');
    const bob = await connectTo(1, 'bob');
    const resumeId = bob.request('resume', {
      rooms: [{ roomId: 'gallery' }, { roomId: 'gallery', lastSeq: 1 }],
    });
    expect(await bob.error(resumeId)).toMatchObject({
      code: 'VALIDATION_FAILED',
      field: 'rooms',
      requestId: resumeId,
    });
    const state = bob.request('get_state', { roomId: 'gallery' });
    expect(await bob.error(state)).toMatchObject({ code: 'NOT_IN_ROOM' });
  });
});

describe('resume sessions: a slow client evicted (1013)', () => {
  const fixture = useTestServer({
    env: {
      ...RATE_LIMITS_OFF,
      RECONNECT_GRACE_MS: String(GRACE_MS),
      MAX_MESSAGE_BYTES: String(64 * 1024),
      MAX_CLIENT_BUFFER_BYTES: String(1024 * 1024),
    },
  });

  it('ends its resume session: its token takes nothing back', async () => {
    const [alice, bob, carol] = await fixture.connectAll('alice', 'bob', 'carol');
    for (const client of [alice, bob, carol]) {
      await client.join('chat-room');
    }
    const token = carol.connected?.resumeToken as string;
    freeze(carol);
    // Chat messages are never dropped, so a client that does not read them overflows.
    const padding = 'x'.repeat(24 * 1024);
    const timer = setInterval(() => {
      for (let i = 0; i < 4; i++) {
        alice.broadcast('chat-room', { type: 'chat', data: { padding } });
      }
    }, 30);
    try {
      let left: ServerEventMap['user_left'];
      do {
        left = await bob.next('user_left', 20_000);
      } while (left.userId !== 'carol');
    } finally {
      clearInterval(timer);
    }
    // An upgrade naming nobody, with carol's token: it would become carol if the token worked.
    const stranger = await fixture.connect(undefined, { resume: token });
    expect(stranger.connected).toMatchObject({ resumed: false });
    expect(stranger.userId).not.toBe('carol');
  }, 40_000);
});
