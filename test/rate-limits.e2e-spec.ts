import { getJson, waitFor } from './support/cluster.js';
import { RATE_LIMITS_OFF, useTestServer } from './support/fixtures.js';
import { delay, type Received, type TestClient } from './support/test-client.js';

interface RoomStats {
  roomId: string;
  droppedMessages: number;
}

const pose = (n: number) => ({
  type: 'pose_update',
  data: { n, position: [n, 1.7, 0], rotation: [0, 0, 0, 1] },
});
const chat = (n: number) => ({ type: 'chat', data: { n } });

/** `{action, requestId, ...fields}` serialized and padded with spaces to exactly `bytes` bytes. */
function frameOfBytes(bytes: number, fields: Record<string, unknown>): string {
  const frame = JSON.stringify(fields);
  if (frame.length > bytes) {
    throw new Error(`a frame of ${frame.length} bytes cannot be padded to ${bytes}`);
  }
  return `${frame.slice(0, -1)}${' '.repeat(bytes - frame.length)}}`;
}

/** A ping whose field `x` nests arrays so that the whole frame is `depth` levels deep. */
function pingNested(requestId: string, depth: number): string {
  const arrays = depth - 1;
  return `{"action":"ping","requestId":"${requestId}","x":${'['.repeat(arrays)}${']'.repeat(arrays)}}`;
}

/** The `data.n` of the `type` messages a client has received (and not consumed), in order. */
function numbersOf(client: TestClient, type: string): number[] {
  return client.received.flatMap((received) => {
    if (received.event !== 'message') {
      return [];
    }
    const { message } = received.data as Received<'message'>['data'];
    return message.type === type ? [(message.data as { n: number }).n] : [];
  });
}

/** Waits until `client` has received (and not consumed) `count` events; returns them. */
function receivedCount(client: TestClient, count: number, timeoutMs = 5000): Promise<Received[]> {
  return waitFor(
    () => (client.received.length >= count ? client.received.slice() : undefined),
    timeoutMs,
    `${client.userId} to receive ${count} events (has ${client.received.length})`,
    10,
  );
}

const requestIdsOf = (replies: Received[]) =>
  replies.map((reply) => (reply.data as { requestId?: string }).requestId);

const range = (count: number) => Array.from({ length: count }, (_, i) => i);

describe('per-connection rate limits', () => {
  const fixture = useTestServer({ lazy: true });
  const { start, connect } = fixture;

  const droppedIn = async (roomId: string): Promise<number> => {
    const { status, body } = await getJson<{ rooms: RoomStats[] }>(
      fixture.server.httpUrl,
      '/stats',
    );
    expect(status).toBe(200);
    const room = body.rooms.find((candidate) => candidate.roomId === roomId);
    if (!room) {
      throw new Error(`/stats does not list ${roomId}: ${JSON.stringify(body)}`);
    }
    return room.droppedMessages;
  };

  /** alice and bob in `roomId`, every join event consumed. */
  const pair = async (roomId: string) => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    await alice.join(roomId);
    await bob.join(roomId);
    expect((await alice.next('user_joined')).user.id).toBe('bob');
    return { alice, bob };
  };

  describe('actions', () => {
    it('answers the burst, refuses the next with RATE_LIMITED and retryAfterMs, then serves again after that wait', async () => {
      // 1 a second, the slowest bucket there is: a token comes back only a second after the
      // burst, so no refill can slip in between the refusals below on a slow machine.
      await start({ RATE_ACTIONS_PER_SEC: '1', RATE_ACTIONS_BURST: '3' });
      const alice = await connect('alice');
      const ids = range(4).map(() => alice.request('ping'));

      const replies = await receivedCount(alice, 4);
      expect(replies.map((reply) => reply.event)).toEqual(['pong', 'pong', 'pong', 'error']);
      expect(requestIdsOf(replies)).toEqual(ids);
      const refused = await alice.error(ids[3]);
      expect(refused).toMatchObject({ code: 'RATE_LIMITED', requestId: ids[3] });
      expect(typeof refused.message).toBe('string');
      // One token of a 1/s bucket comes back within 1000 ms.
      expect(refused.retryAfterMs).toBeGreaterThan(0);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(1000);
      await alice.expectNothing(0);

      // Straight away it is still refused...
      const early = alice.request('ping');
      const again = await alice.error(early);
      expect(again.code).toBe('RATE_LIMITED');
      expect(again.retryAfterMs).toBeLessThanOrEqual(1000);
      // ...and after the wait it is served.
      await delay(again.retryAfterMs ?? 0);
      const late = alice.request('ping');
      expect((await alice.reply(late)).event).toBe('pong');
      await alice.expectNothing(50);
    });

    it('charges frames that fail to parse to the action budget, and answers them first', async () => {
      await start({ RATE_ACTIONS_PER_SEC: '1', RATE_ACTIONS_BURST: '3' });
      const alice = await connect('alice');
      alice.sendRaw('not json');
      alice.sendRaw('{"action":"ping","requestId":');
      alice.sendRaw('{"action":42,"requestId":"r-bad"}');
      const ping = alice.request('ping');

      const replies = await receivedCount(alice, 4);
      expect(replies.map((reply) => [reply.event, (reply.data as { code?: string }).code])).toEqual(
        [
          ['error', 'INVALID_JSON'],
          ['error', 'INVALID_JSON'],
          ['error', 'INVALID_MESSAGE'],
          ['error', 'RATE_LIMITED'],
        ],
      );
      expect(requestIdsOf(replies)[3]).toBe(ping);
    });
  });

  describe('poses', () => {
    it('relays the burst of a flood, drops the rest silently and counts them in /stats', async () => {
      // 1 a second: a token comes back a second after the burst, far longer than 20 frames take.
      await start({ RATE_POSES_PER_SEC: '1', RATE_POSES_BURST: '5' });
      const { alice, bob } = await pair('poses');
      expect(await droppedIn('poses')).toBe(0);

      for (const n of range(20)) {
        alice.broadcast('poses', pose(n));
      }
      // A chat message (the action budget) after them: once bob has it, the poses are all in.
      alice.broadcast('poses', chat(0));
      await waitFor(
        () => (numbersOf(bob, 'chat').length > 0 ? true : undefined),
        3000,
        'the chat message after the poses',
      );

      const delivered = numbersOf(bob, 'pose_update');
      // The burst of 5; a sixth only if a token (1 s) came back while 20 frames arrived.
      expect(delivered.slice(0, 5)).toEqual([0, 1, 2, 3, 4]);
      expect(delivered.length).toBeLessThanOrEqual(6);
      expect(await droppedIn('poses')).toBe(20 - delivered.length);
      await alice.expectNothing(100);
      await bob.expectNothing(0, 'error');
      expect(numbersOf(bob, 'pose_update')).toEqual(delivered);
    });

    it('charges a chat broadcast to the action budget: refused with RATE_LIMITED, never dropped', async () => {
      await start({
        RATE_ACTIONS_PER_SEC: '1',
        RATE_ACTIONS_BURST: '3',
        RATE_POSES_PER_SEC: '10',
        RATE_POSES_BURST: '5',
      });
      const { alice, bob } = await pair('chats');
      // The join took one action token; two chat messages take the rest.
      const sent = range(3).map((n) =>
        alice.request('broadcast', { roomId: 'chats', message: chat(n) }),
      );
      const refused = await alice.error(sent[2]);
      expect(refused).toMatchObject({ code: 'RATE_LIMITED', requestId: sent[2] });
      // The pose budget is untouched by them.
      for (const n of range(5)) {
        alice.broadcast('chats', pose(n));
      }
      await waitFor(
        () => (numbersOf(bob, 'pose_update').length === 5 ? true : undefined),
        3000,
        'the five poses',
      );
      expect(numbersOf(bob, 'chat')).toEqual([0, 1]);
      expect(await droppedIn('chats')).toBe(0);
      await alice.expectNothing(100);
    });
  });

  describe('bytes', () => {
    it('passes a frame within the byte budget and refuses the next that does not fit', async () => {
      // Burst max(2048, MAX_MESSAGE_BYTES) = 4096 bytes.
      await start({ RATE_BYTES_PER_SEC: '2048', MAX_MESSAGE_BYTES: '4096' });
      const alice = await connect('alice');
      alice.sendRaw(frameOfBytes(3000, { action: 'ping', requestId: 'big-1' }));
      expect((await alice.reply('big-1')).event).toBe('pong');

      alice.sendRaw(frameOfBytes(3000, { action: 'ping', requestId: 'big-2' }));
      const refused = await alice.error('big-2');
      expect(refused.code).toBe('RATE_LIMITED');
      // About 1096 bytes were left: the other 1904 take about 930 ms at 2048 bytes/s.
      expect(refused.retryAfterMs).toBeGreaterThan(500);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(930);

      // A small frame still fits in what is left.
      const small = alice.request('ping');
      expect((await alice.reply(small)).event).toBe('pong');
    });

    it('drops a pose over the byte budget without an answer', async () => {
      // Burst max(256, MAX_MESSAGE_BYTES) = 4096 bytes. The first pose leaves about 1450: the
      // second (about 2600) would fit only after some 4.5 s at 256 bytes/s, not while it travels.
      await start({ RATE_BYTES_PER_SEC: '256', MAX_MESSAGE_BYTES: '4096' });
      const { alice, bob } = await pair('bytes');
      const padded = (n: number) => ({
        ...pose(n),
        data: { ...pose(n).data, pad: 'x'.repeat(2500) },
      });
      alice.broadcast('bytes', padded(0));
      alice.broadcast('bytes', padded(1));
      alice.broadcast('bytes', chat(0));
      await waitFor(
        () => (numbersOf(bob, 'chat').length > 0 ? true : undefined),
        3000,
        'the chat message after the poses',
      );
      expect(numbersOf(bob, 'pose_update')).toEqual([0]);
      expect(await droppedIn('bytes')).toBe(1);
      await alice.expectNothing(100);
    });
  });

  describe('sustained abuse', () => {
    it('closes the connection with 1008 at the RATE_VIOLATIONS_BEFORE_CLOSE-th refusal; the room carries on', async () => {
      await start({
        RATE_ACTIONS_PER_SEC: '1',
        RATE_ACTIONS_BURST: '2',
        RATE_VIOLATIONS_BEFORE_CLOSE: '5',
      });
      const alice = await connect('alice');
      const bob = await connect('bob');
      const carol = await connect('carol');
      for (const client of [alice, bob, carol]) {
        await client.join('abuse');
      }
      await bob.next('user_joined');
      // The join took one token, this ping the other.
      expect((await alice.reply(alice.request('ping'))).event).toBe('pong');
      for (let refusal = 1; refusal <= 4; refusal++) {
        const refused = await alice.error(alice.request('ping'));
        expect(refused.code).toBe('RATE_LIMITED');
      }
      expect(alice.closeCode).toBeUndefined();
      alice.request('ping');
      expect(await alice.waitForClose()).toEqual({
        code: 1008,
        reason: 'Too many refused messages',
      });
      await alice.expectNothing(0);

      expect(await bob.next('user_left')).toMatchObject({ roomId: 'abuse', userId: 'alice' });
      expect(await carol.next('user_left')).toMatchObject({ roomId: 'abuse', userId: 'alice' });
      bob.broadcast('abuse', chat(1));
      expect(await carol.next('message')).toMatchObject({
        senderId: 'bob',
        message: { type: 'chat', data: { n: 1 } },
      });
      expect((await carol.reply(carol.request('ping'))).event).toBe('pong');
    });
  });

  describe('0 turns a bucket off', () => {
    it('RATE_ACTIONS_PER_SEC=0: a burst of 200 pings is all answered, in order', async () => {
      await start({ RATE_ACTIONS_PER_SEC: '0' });
      const alice = await connect('alice');
      const ids = range(200).map(() => alice.request('ping'));
      const replies = await receivedCount(alice, 200);
      expect(replies.map((reply) => reply.event)).toEqual(ids.map(() => 'pong'));
      expect(requestIdsOf(replies)).toEqual(ids);
    });

    it('RATE_POSES_PER_SEC=0: a burst of 100 poses is all relayed', async () => {
      await start({ RATE_POSES_PER_SEC: '0' });
      const { alice, bob } = await pair('poses');
      for (const n of range(100)) {
        alice.broadcast('poses', pose(n));
      }
      await receivedCount(bob, 100);
      expect(numbersOf(bob, 'pose_update')).toEqual(range(100));
      expect(await droppedIn('poses')).toBe(0);
    });

    it('RATE_BYTES_PER_SEC=0: 2.4 MB of frames at once is all answered', async () => {
      await start({ RATE_BYTES_PER_SEC: '0' });
      const alice = await connect('alice');
      // 40 actions: the default action burst. With the default byte budget (1 MiB) they would not fit.
      const ids = range(40).map((n) => {
        const requestId = `big-${n}`;
        alice.sendRaw(frameOfBytes(60_000, { action: 'ping', requestId }));
        return requestId;
      });
      const replies = await receivedCount(alice, 40);
      expect(replies.map((reply) => reply.event)).toEqual(ids.map(() => 'pong'));
    });
  });

  describe('defaults', () => {
    it('deliver every pose of a 33 Hz stream, and 20 state updates in a row all commit', async () => {
      await start();
      const { alice, bob } = await pair('normal');
      const count = 50; // 1.5 s at 33 Hz
      for (const n of range(count)) {
        alice.broadcast('normal', pose(n));
        await delay(30);
      }
      await waitFor(
        () => (numbersOf(bob, 'pose_update').length === count ? true : undefined),
        3000,
        'every pose',
      );
      expect(numbersOf(bob, 'pose_update')).toEqual(range(count));
      bob.received.splice(0);

      const ids = range(20).map((n) =>
        alice.request('update_state', {
          roomId: 'normal',
          ops: [{ op: 'add', collection: 'annotations', id: `a${n}`, item: { text: `${n}` } }],
        }),
      );
      const replies = await receivedCount(alice, 20);
      expect(replies.map((reply) => reply.event)).toEqual(ids.map(() => 'state_updated'));
      expect(replies.map((reply) => (reply.data as { version?: number }).version)).toEqual(
        range(20).map((n) => n + 1),
      );
      expect(await droppedIn('normal')).toBe(0);
      await alice.expectNothing(50, 'error');
    }, 10_000);
  });

  describe('JSON depth', () => {
    it('refuses a frame nested one level deeper than MAX_JSON_DEPTH (default 32) with VALIDATION_FAILED', async () => {
      await start();
      const alice = await connect('alice');
      alice.sendRaw(pingNested('d32', 32));
      expect((await alice.reply('d32')).event).toBe('pong');
      alice.sendRaw(pingNested('d33', 33));
      expect(await alice.error('d33')).toMatchObject({
        code: 'VALIDATION_FAILED',
        requestId: 'd33',
      });
    });

    it('follows MAX_JSON_DEPTH=8', async () => {
      await start({ MAX_JSON_DEPTH: '8' });
      const alice = await connect('alice');
      alice.sendRaw(pingNested('d8', 8));
      expect((await alice.reply('d8')).event).toBe('pong');
      alice.sendRaw(pingNested('d9', 9));
      expect(await alice.error('d9')).toMatchObject({ code: 'VALIDATION_FAILED', requestId: 'd9' });
      // A broadcast nested too deep is refused too, and never relayed.
      const bob = await connect('bob');
      await alice.join('deep');
      await bob.join('deep');
      const deepData = JSON.parse(`{"v":${'['.repeat(8)}${']'.repeat(8)}}`) as unknown;
      const sent = alice.request('broadcast', {
        roomId: 'deep',
        message: { type: 'chat', data: deepData },
      });
      expect(await alice.error(sent)).toMatchObject({ code: 'VALIDATION_FAILED' });
      await bob.expectNothing(100, 'message');
    });

    it('survives the 60 KB frame of 30,000 nested arrays that once crashed the process', async () => {
      await start();
      const alice = await connect('alice');
      const frame =
        '{"action":"ping","requestId":"deep","x":' +
        '['.repeat(30_000) +
        '"\\u0041"' +
        ']'.repeat(30_000) +
        '}';
      expect(frame.length).toBeLessThan(65_536);
      alice.sendRaw(frame);
      expect(await alice.error('deep')).toMatchObject({
        code: 'VALIDATION_FAILED',
        requestId: 'deep',
      });
      expect((await alice.reply(alice.request('ping'))).event).toBe('pong');
      const bob = await connect('bob');
      expect((await bob.reply(bob.request('ping'))).event).toBe('pong');
    });

    it('closes with 1008 after RATE_VIOLATIONS_BEFORE_CLOSE frames nested too deep', async () => {
      await start({ RATE_VIOLATIONS_BEFORE_CLOSE: '3' });
      const alice = await connect('alice');
      for (const n of range(2)) {
        alice.sendRaw(pingNested(`deep-${n}`, 40));
        expect((await alice.error(`deep-${n}`)).code).toBe('VALIDATION_FAILED');
      }
      expect(alice.closeCode).toBeUndefined();
      alice.sendRaw(pingNested('deep-2', 40));
      expect(await alice.waitForClose()).toEqual({
        code: 1008,
        reason: 'Too many refused messages',
      });
    });
  });

  describe('arrays past their bound', () => {
    /** A request whose array `field` holds `count` empty objects. */
    const withArray = (action: string, requestId: string, field: string, count: number) =>
      JSON.stringify({
        action,
        requestId,
        roomId: 'not a room id!',
        [field]: Array.from({ length: count }, () => ({})),
      });

    it('refuses them on their length, as abusive: 1008 at the RATE_VIOLATIONS_BEFORE_CLOSE-th', async () => {
      await start({ RATE_VIOLATIONS_BEFORE_CLOSE: '3' });
      const alice = await connect('alice');
      // At the bound, the DTO checks every entry, as ever: an honest mistake, not counted.
      for (const n of range(3)) {
        alice.sendRaw(withArray('resume', `at-${n}`, 'rooms', 100));
        expect(await alice.error(`at-${n}`)).toMatchObject({ field: 'rooms.0.roomId' });
      }
      alice.sendRaw(withArray('hello', 'caps', 'capabilities', 17));
      expect(await alice.error('caps')).toEqual({
        code: 'VALIDATION_FAILED',
        message: 'capabilities must contain no more than 16 elements',
        field: 'capabilities',
        requestId: 'caps',
      });
      // The frames of 21,000 entries (about 63 KB) that once took a third of a second each.
      const resume = withArray('resume', 'rooms', 'rooms', 21_000);
      const ops = withArray('update_state', 'ops', 'ops', 21_000);
      expect(Math.max(resume.length, ops.length)).toBeLessThan(65_536);
      alice.sendRaw(resume);
      expect(await alice.error('rooms')).toEqual({
        code: 'VALIDATION_FAILED',
        message: 'rooms must contain no more than 100 elements',
        field: 'rooms',
        requestId: 'rooms',
      });
      expect(alice.closeCode).toBeUndefined();
      alice.sendRaw(ops);
      expect(await alice.waitForClose()).toEqual({
        code: 1008,
        reason: 'Too many refused messages',
      });
    });
  });

  describe('WebSocket pings', () => {
    it('answers a keepalive ping every second with one pong each, and the connection stays', async () => {
      await start();
      const alice = await connect('alice');
      const pongs: string[] = [];
      alice.socket.on('pong', (data) => pongs.push(data.toString()));
      for (const n of range(4)) {
        alice.socket.ping(`keepalive-${n}`);
        await delay(1000);
      }
      expect(pongs).toEqual(range(4).map((n) => `keepalive-${n}`));
      expect(alice.closeCode).toBeUndefined();
      expect((await alice.reply(alice.request('ping'))).event).toBe('pong');
    }, 10_000);

    it.each([
      ['', 'false'],
      [' (permessage-deflate)', 'true'],
    ])('closes a ping flood with 1008%s; the others carry on', async (_label, deflate) => {
      await start({ PER_MESSAGE_DEFLATE: deflate });
      const alice = await connect('alice');
      const bob = await connect('bob');
      expect(alice.socket.extensions.includes('permessage-deflate')).toBe(deflate === 'true');
      let pongs = 0;
      alice.socket.on('pong', () => pongs++);
      for (let n = 0; n < 2000; n++) {
        alice.socket.ping();
      }
      expect(await alice.waitForClose(3000)).toEqual({
        code: 1008,
        reason: 'Too many refused messages',
      });
      // The burst of 10, and a refill that came back while 2,000 pings arrived.
      expect(pongs).toBeGreaterThanOrEqual(10);
      expect(pongs).toBeLessThan(20);
      expect((await bob.reply(bob.request('ping'))).event).toBe('pong');
    });
  });

  describe('back-pressure', () => {
    it('with MAX_PENDING_MESSAGES=1, pauses and resumes reading without losing or reordering a frame', async () => {
      await start({ ...RATE_LIMITS_OFF, MAX_PENDING_MESSAGES: '1' });
      const { alice, bob } = await pair('pressure');
      const ids = range(500).map(() => alice.request('ping'));
      for (const n of range(200)) {
        alice.broadcast('pressure', chat(n));
      }
      const replies = await receivedCount(alice, 500);
      expect(replies.map((reply) => reply.event)).toEqual(ids.map(() => 'pong'));
      expect(requestIdsOf(replies)).toEqual(ids);
      await receivedCount(bob, 200);
      expect(numbersOf(bob, 'chat')).toEqual(range(200));
      expect(alice.closeCode).toBeUndefined();
    });
  });
});
