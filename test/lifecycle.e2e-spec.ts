import { RoomExpiryService } from '../src/rooms/room-expiry.service.js';
import { useTestServer } from './support/fixtures.js';
import { delay, type TestClient } from './support/test-client.js';

interface RoomStats {
  roomId: string;
  userCount: number;
  createdAt: number;
  lastActivity: number;
}

interface Stats {
  rooms: RoomStats[];
  totalUsers: number;
}

describe('lifecycle', () => {
  // Every test starts its own server, with the env it is about.
  const fixture = useTestServer({ lazy: true });
  const { start, connect } = fixture;

  const getJson = async (path: string) => {
    const response = await fetch(`${fixture.server.httpUrl}${path}`);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  /** The sum of /health `users` over the test's servers (one, or a cluster's instances). */
  const usersOnAllInstances = async (): Promise<number> => {
    let users = 0;
    for (const server of fixture.servers) {
      const response = await fetch(`${server.httpUrl}/health`);
      users += ((await response.json()) as { users: number }).users;
    }
    return users;
  };
  const stats = async (): Promise<Stats> => {
    const { status, body } = await getJson('/stats');
    expect(status).toBe(200);
    return body as unknown as Stats;
  };
  const roomIds = async () => (await stats()).rooms.map((room) => room.roomId);
  /** Polls /stats until `roomId` is gone; returns when that was seen (Date.now()). */
  const waitUntilGone = async (roomId: string, timeoutMs: number): Promise<number> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!(await roomIds()).includes(roomId)) {
        return Date.now();
      }
      if (Date.now() > deadline) {
        throw new Error(`room ${roomId} was still listed after ${timeoutMs} ms`);
      }
      await delay(20);
    }
  };
  /**
   * Stops every instance's expiry sweep (every 250 ms with EMPTY_ROOM_TTL_MS=0): then a room
   * that goes was deleted by a departure, however long the server took to notice it.
   */
  const stopExpirySweeps = () => {
    for (const server of fixture.servers) {
      server.app.get(RoomExpiryService).onModuleDestroy();
    }
  };
  const leave = async (client: TestClient, roomId: string) => {
    const reply = await client.reply(client.request('leave_room', { roomId }));
    expect(reply).toMatchObject({ event: 'room_left', data: { roomId } });
  };
  const create = async (
    client: TestClient,
    roomId: string,
    config: Record<string, unknown> = {},
  ) => {
    const reply = await client.reply(client.request('create_room', { roomId, config }));
    expect(reply).toMatchObject({ event: 'room_created', data: { roomId } });
  };

  describe('heartbeat', () => {
    // 400 ms, as metrics.e2e-spec.ts does: a live client must answer a ping within an interval,
    // and at 100 ms a stall of the loaded machine alone killed one.
    const HEARTBEAT = { HEARTBEAT_INTERVAL_MS: '400' };

    it('terminates a client that does not answer pings; its rooms hear user_left', async () => {
      await start(HEARTBEAT);
      const alice = await connect('alice');
      const dead = await connect('dead', { autoPong: false });
      await alice.join('beat');
      await dead.join('beat');
      await alice.next('user_joined');

      // Terminated by the second tick after it connected (800 ms), with room for a slow machine;
      // far sooner than the 30 s default interval would.
      const started = Date.now();
      await dead.waitForClose(3000);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(await alice.next('user_left', 3000)).toMatchObject({
        roomId: 'beat',
        userId: 'dead',
      });
      expect((await stats()).rooms).toEqual([
        expect.objectContaining({ roomId: 'beat', userCount: 1 }),
      ]);
    });

    it('keeps a client that answers pings connected', async () => {
      await start(HEARTBEAT);
      const alice = await connect('alice');
      const bob = await connect('bob');
      await alice.join('beat');
      await bob.join('beat');
      await alice.next('user_joined');

      // Six intervals: a dead client would have been terminated by the second.
      await delay(2400);
      expect(alice.closeCode).toBeUndefined();
      expect(bob.closeCode).toBeUndefined();
      expect(alice.received.filter((message) => message.event === 'user_left')).toEqual([]);
      const pong = await alice.reply(alice.request('ping'));
      expect(pong.event).toBe('pong');
      expect((await stats()).rooms).toEqual([
        expect.objectContaining({ roomId: 'beat', userCount: 2 }),
      ]);
    });
  });

  describe('empty-room deletion', () => {
    it('deletes a room EMPTY_ROOM_TTL_MS after its last member leaves, not before', async () => {
      await start({ EMPTY_ROOM_TTL_MS: '200' });
      const alice = await connect('alice');
      await alice.join('short-lived');

      const leftAt = Date.now();
      await leave(alice, 'short-lived');
      expect((await stats()).rooms).toEqual([
        expect.objectContaining({ roomId: 'short-lived', userCount: 0 }),
      ]);
      const goneAt = await waitUntilGone('short-lived', 1500);
      expect(goneAt - leftAt).toBeGreaterThanOrEqual(200);
      expect(goneAt - leftAt).toBeLessThan(1200);
    });

    it('deletes a room when its last member disconnects, after the TTL', async () => {
      await start({ EMPTY_ROOM_TTL_MS: '200' });
      const alice = await connect('alice');
      await alice.join('dropped');
      const closedAt = Date.now();
      alice.close();
      await alice.waitForClose();
      expect(await roomIds()).toContain('dropped');
      const goneAt = await waitUntilGone('dropped', 1500);
      expect(goneAt - closedAt).toBeGreaterThanOrEqual(200);
    });

    it('deletes a created room that nobody joins after the TTL', async () => {
      await start({ EMPTY_ROOM_TTL_MS: '200' });
      const alice = await connect('alice');
      const createdAt = Date.now();
      await create(alice, 'never-joined');
      expect(await roomIds()).toContain('never-joined');
      const goneAt = await waitUntilGone('never-joined', 1500);
      expect(goneAt - createdAt).toBeGreaterThanOrEqual(200);
    });

    it('keeps a room that has a member', async () => {
      await start({ EMPTY_ROOM_TTL_MS: '200' });
      const alice = await connect('alice');
      const bob = await connect('bob');
      await alice.join('kept');
      await bob.join('kept');
      await leave(bob, 'kept');
      await delay(600);
      expect((await stats()).rooms).toEqual([
        expect.objectContaining({ roomId: 'kept', userCount: 1 }),
      ]);
    });

    it('never deletes a persistent room, joined or not', async () => {
      await start({ EMPTY_ROOM_TTL_MS: '200' });
      const alice = await connect('alice');
      await create(alice, 'persistent-left', { persistent: true });
      await create(alice, 'persistent-unjoined', { persistent: true });
      await create(alice, 'ordinary', { persistent: false });
      await alice.join('persistent-left');
      await leave(alice, 'persistent-left');

      // The ordinary room going proves the sweep ran over the persistent ones too.
      await waitUntilGone('ordinary', 1500);
      await delay(400);
      expect((await roomIds()).sort()).toEqual(['persistent-left', 'persistent-unjoined']);
      await alice.join('persistent-left');
    });

    it('with EMPTY_ROOM_TTL_MS=0 deletes a room at once when its last member leaves', async () => {
      await start({ EMPTY_ROOM_TTL_MS: '0' });
      stopExpirySweeps();
      const alice = await connect('alice');
      const bob = await connect('bob');
      await alice.join('instant');
      await bob.join('instant');
      await leave(bob, 'instant');
      expect(await roomIds()).toEqual(['instant']);
      await leave(alice, 'instant');
      // The reply goes out before the store's deletion returns (in cluster mode a Redis round
      // trip later). With no sweep running, only the departure itself can have deleted it.
      await waitUntilGone('instant', 1000);
      expect(await roomIds()).toEqual([]);
    });

    it('with EMPTY_ROOM_TTL_MS=0 deletes a room at once when its last member disconnects', async () => {
      await start({ EMPTY_ROOM_TTL_MS: '0' });
      stopExpirySweeps();
      const alice = await connect('alice');
      await alice.join('instant-drop');
      alice.close();
      await alice.waitForClose();
      // The server sees the close a moment after the client. With no sweep running, only the
      // departure itself can have deleted the room.
      await waitUntilGone('instant-drop', 1000);
    });
  });

  describe('idle timeout', () => {
    it('closes a room with members but no activity after ROOM_TIMEOUT_MS', async () => {
      await start({ ROOM_TIMEOUT_MS: '1000' });
      const alice = await connect('alice');
      const bob = await connect('bob');
      const joinedAt = Date.now();
      await alice.join('idle');
      await bob.join('idle');
      await alice.next('user_joined');

      const expected = { roomId: 'idle', reason: 'idle_timeout' };
      expect(await alice.next('room_deleted', 3000)).toEqual(expected);
      expect(Date.now() - joinedAt).toBeGreaterThanOrEqual(1000);
      expect(await bob.next('room_deleted', 1000)).toEqual(expected);
      expect(await roomIds()).toEqual([]);

      // The room is really gone for its former members, and the server keeps serving.
      const error = await alice.error(
        alice.request('broadcast', { roomId: 'idle', message: { type: 'late' } }),
      );
      expect(error.code).toBe('ROOM_NOT_FOUND');
      const rejoined = await alice.join('idle');
      expect(rejoined.users).toEqual([expect.objectContaining({ id: 'alice', role: 'host' })]);
    });

    /** Broadcasts into `busy` every `gapMs` for `forMs` while `quiet` idles out beside it. */
    const broadcastAndCompare = async (gapMs: number, forMs: number) => {
      await start({ ROOM_TIMEOUT_MS: '1000' });
      const alice = await connect('alice');
      const bob = await connect('bob');
      const carol = await connect('carol');
      await alice.join('busy');
      await bob.join('busy');
      await carol.join('quiet');

      const until = Date.now() + forMs;
      let sent = 0;
      while (Date.now() < until) {
        alice.broadcast('busy', {
          type: 'pose_update',
          data: { n: sent, position: [0, 0, 0], rotation: [0, 0, 0, 1] },
        });
        sent += 1;
        await delay(gapMs);
      }
      expect(bob.received.some((message) => message.event === 'message')).toBe(true);
      // The quiet room went in the same time: the idle sweep did run.
      expect(await carol.next('room_deleted', 500)).toEqual({
        roomId: 'quiet',
        reason: 'idle_timeout',
      });
      expect(alice.received.filter((message) => message.event === 'room_deleted')).toEqual([]);
      expect(bob.received.filter((message) => message.event === 'room_deleted')).toEqual([]);
      expect(await roomIds()).toEqual(['busy']);
    };

    it('keeps a room alive under a burst of broadcasts (every 50 ms)', async () => {
      await broadcastAndCompare(50, 2200);
    });

    it('keeps a room alive with a broadcast every 450 ms (under ROOM_TIMEOUT_MS=1000)', async () => {
      // No 1000 ms window without a broadcast, so the room is never idle for ROOM_TIMEOUT_MS.
      await broadcastAndCompare(450, 3200);
    });

    it('never closes a persistent room for idleness', async () => {
      await start({ ROOM_TIMEOUT_MS: '1000' });
      const alice = await connect('alice');
      const bob = await connect('bob');
      await create(alice, 'archive', { persistent: true });
      await alice.join('archive');
      await bob.join('idle-neighbour');

      expect(await bob.next('room_deleted', 3000)).toEqual({
        roomId: 'idle-neighbour',
        reason: 'idle_timeout',
      });
      await delay(300);
      expect(alice.received.filter((message) => message.event === 'room_deleted')).toEqual([]);
      expect(await roomIds()).toEqual(['archive']);
    });
  });

  describe('/stats', () => {
    it("reports the spec's fields with correct values", async () => {
      await start();
      const before = Date.now();
      const alice = await connect('alice');
      const bob = await connect('bob');
      const carol = await connect('carol');
      await connect('dave');
      await alice.join('stats-a');
      await bob.join('stats-a');
      await carol.join('stats-b');
      const after = Date.now();

      const body = await stats();
      expect(body.totalUsers).toBe(3);
      const rooms = [...body.rooms].sort((a, b) => a.roomId.localeCompare(b.roomId));
      expect(rooms).toEqual([
        expect.objectContaining({ roomId: 'stats-a', userCount: 2 }),
        expect.objectContaining({ roomId: 'stats-b', userCount: 1 }),
      ]);
      for (const room of rooms) {
        expect(typeof room.createdAt).toBe('number');
        expect(typeof room.lastActivity).toBe('number');
        expect(room.createdAt).toBeGreaterThanOrEqual(before);
        expect(room.createdAt).toBeLessThanOrEqual(after);
        expect(room.lastActivity).toBeGreaterThanOrEqual(room.createdAt);
        expect(room.lastActivity).toBeLessThanOrEqual(after);
      }

      await leave(bob, 'stats-a');
      const afterLeave = await stats();
      expect(afterLeave.totalUsers).toBe(2);
      expect(afterLeave.rooms.find((room) => room.roomId === 'stats-a')?.userCount).toBe(1);
    });

    it('moves lastActivity at most once a second under a burst of broadcasts', async () => {
      await start();
      const alice = await connect('alice');
      const bob = await connect('bob');
      await alice.join('burst');
      await bob.join('burst');
      const lastActivity = async () =>
        (await stats()).rooms.find((room) => room.roomId === 'burst')?.lastActivity;
      const atJoin = await lastActivity();
      expect(atJoin).toBeDefined();

      const seen: number[] = [];
      let sent = 0;
      const started = Date.now();
      // The burst on a timer of its own, so that how fast /stats answers (polled below) does not
      // decide how many broadcasts go out: about 250 a second however slow the polling.
      const burst = setInterval(() => {
        for (let i = 0; i < 5; i += 1) {
          alice.broadcast('burst', {
            type: 'pose_update',
            data: { n: sent, position: [0, 0, 0], rotation: [0, 0, 0, 1] },
          });
          sent += 1;
        }
      }, 20);
      try {
        while (Date.now() - started < 2300) {
          const value = await lastActivity();
          if (value !== undefined && value !== atJoin && value !== seen.at(-1)) {
            seen.push(value);
          }
          await delay(20);
        }
      } finally {
        clearInterval(burst);
      }
      const finished = Date.now();

      expect(sent).toBeGreaterThan(200);
      // The broadcasts did move it: once at the start, then about once a second.
      expect(seen.length).toBeGreaterThanOrEqual(2);
      expect(seen.length).toBeLessThanOrEqual(3);
      for (let i = 1; i < seen.length; i += 1) {
        expect(seen[i] - seen[i - 1]).toBeGreaterThanOrEqual(1000);
      }
      expect(seen[0]).toBeGreaterThanOrEqual(started);
      expect(seen.at(-1)).toBeLessThanOrEqual(finished);
    });
  });

  describe('/health', () => {
    it("answers the spec's fields plus Terminus' details", async () => {
      await start();
      const alice = await connect('alice');
      const bob = await connect('bob');
      await connect('carol');
      await alice.join('health-room');
      await bob.join('health-room');

      const { status, body } = await getJson('/health');
      expect(status).toBe(200);
      expect(body).toMatchObject({
        status: 'ok',
        rooms: 1,
        info: expect.any(Object),
        details: expect.any(Object),
      });
      // `users` counts the users connected to the instance answering (all of them on one server).
      expect(await usersOnAllInstances()).toBe(3);
      expect(typeof body.uptime).toBe('number');
      expect(body.uptime).toBeGreaterThan(0);
      expect(body.info).toEqual(body.details);
      expect(Object.values(body.details as Record<string, { status: string }>)).not.toHaveLength(0);
      for (const indicator of Object.values(body.details as Record<string, { status: string }>)) {
        expect(indicator.status).toBe('up');
      }

      bob.close();
      await alice.next('user_left');
      expect((await getJson('/health')).body).toMatchObject({ rooms: 1 });
      expect(await usersOnAllInstances()).toBe(2);
    });

    it('answers /health/live and /health/ready with 200', async () => {
      await start();
      const live = await getJson('/health/live');
      expect(live.status).toBe(200);
      expect(live.body).toMatchObject({ status: 'ok' });
      const ready = await getJson('/health/ready');
      expect(ready.status).toBe(200);
      expect(ready.body).toMatchObject({ status: 'ok' });
    });
  });
});
