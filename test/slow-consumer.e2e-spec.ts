import { WebSocket } from 'ws';
import { Scrape } from '../bench/prometheus-text.js';
import { UsersService } from '../src/users/users.service.js';
import { RATE_LIMITS_OFF, useTestServer } from './support/fixtures.js';
import { until, type TestClient } from './support/test-client.js';

// A client that stops reading while its room runs at 33 Hz. The TCP buffers between the server
// and a paused client hold a few MB, so poses carry padding to fill them within seconds.
const SOFT_BYTES = 65536;
const MAX_BYTES = 1024 * 1024;
const PADDING = 'x'.repeat(24 * 1024);
const TICK_MS = 30;

interface AppMessageWithN {
  type: string;
  data: { n: number };
}
interface RoomStats {
  roomId: string;
  userCount: number;
  droppedMessages: number;
}
interface Stats {
  rooms: RoomStats[];
  droppedMessages: number;
}

const pose = (n: number) => ({
  type: 'pose_update',
  timestamp: Date.now(),
  data: { n, position: [n, 1.7, 0], rotation: [0, 0, 0, 1], padding: PADDING },
});
const chat = (n: number) => ({ type: 'chat', timestamp: Date.now(), data: { n } });

/** The `n`s of the `type` messages a client has received (and not consumed), in order. */
function numbersOf(client: TestClient, type: string): number[] {
  return client.received
    .filter((message) => message.event === 'message')
    .map((message) => (message.data as unknown as { message: AppMessageWithN }).message)
    .filter((message) => message.type === type)
    .map((message) => message.data.n);
}

describe('slow consumers', () => {
  const fixture = useTestServer({
    env: {
      ...RATE_LIMITS_OFF,
      MAX_MESSAGE_BYTES: String(64 * 1024),
      CLIENT_BUFFER_SOFT_BYTES: String(SOFT_BYTES),
      MAX_CLIENT_BUFFER_BYTES: String(MAX_BYTES),
      MAX_USERS_PER_ROOM: '10',
    },
  });

  const stats = async (): Promise<Stats> => {
    const response = await fetch(`${fixture.server.httpUrl}/stats`);
    return (await response.json()) as Stats;
  };
  /** gms_server_disconnects_total{code} now (/metrics is open with AUTH_MODE=none). */
  const disconnects = async (code: string): Promise<number> => {
    const response = await fetch(`${fixture.server.httpUrl}/metrics`);
    return Scrape.parse(await response.text()).value('gms_server_disconnects_total', { code });
  };
  const roomStats = async (roomId: string) =>
    (await stats()).rooms.find((room) => room.roomId === roomId);
  const pendingBytesOf = (userId: string) =>
    fixture.server.app.get(UsersService).byUser(userId)?.output.pendingBytes() ?? 0;

  /** Sends one pose per tick from each sender, and a chat message every fifth tick from the first. */
  function runRoom(roomId: string, senders: TestClient[]) {
    let poses = 0;
    let chats = 0;
    const timer = setInterval(() => {
      for (const sender of senders) {
        sender.broadcast(roomId, pose(poses++));
      }
      if (poses % 5 === 0) {
        senders[0].broadcast(roomId, chat(chats++));
      }
    }, TICK_MS);
    return {
      stop: () => clearInterval(timer),
      get poses() {
        return poses;
      },
      get chats() {
        return chats;
      },
    };
  }

  it('drops only pose updates to a client that stopped reading; the others get everything', async () => {
    const [alice, bob, carol, reader] = await fixture.connectAll('alice', 'bob', 'carol', 'reader');
    for (const client of [alice, bob, carol, reader]) {
      await client.join('slow-room');
    }
    await alice.next('user_joined'); // bob
    carol.socket.pause();

    const room = runRoom('slow-room', [alice, bob]);
    let maxPending = 0;
    await until(
      async () => {
        maxPending = Math.max(maxPending, pendingBytesOf('carol'));
        return ((await roomStats('slow-room'))?.droppedMessages ?? 0) >= 20;
      },
      20_000,
      'pose updates to carol being dropped',
    );
    room.stop();
    const lastChat = chat(room.chats);
    alice.broadcast('slow-room', lastChat);
    const sentPoses = room.poses;
    const sentChats = room.chats + 1;

    // The reader, who keeps reading, got every pose (from two senders) and every chat message.
    await until(() => numbersOf(reader, 'chat').length === sentChats, 5000, 'the reader');
    expect(numbersOf(reader, 'pose_update').sort((a, b) => a - b)).toEqual([
      ...Array(sentPoses).keys(),
    ]);
    expect(numbersOf(reader, 'chat')).toEqual([...Array(sentChats).keys()]);

    // The server held at most the soft limit of output for carol (plus what went in before it).
    expect(maxPending).toBeGreaterThan(0);
    expect(maxPending).toBeLessThanOrEqual(SOFT_BYTES + 64 * 1024);
    expect(carol.closeCode).toBeUndefined();

    // Carol reads again: every chat message arrives; exactly the counted poses are missing.
    carol.socket.resume();
    await until(() => numbersOf(carol, 'chat').length === sentChats, 10_000, 'carol catching up');
    expect(numbersOf(carol, 'chat')).toEqual([...Array(sentChats).keys()]);
    const carolPoses = numbersOf(carol, 'pose_update');
    const { droppedMessages, rooms } = await stats();
    const dropped = rooms.find((r) => r.roomId === 'slow-room')?.droppedMessages;
    expect(dropped).toBe(sentPoses - carolPoses.length);
    expect(droppedMessages).toBe(dropped);
  }, 40_000);

  it('disconnects a client past MAX_CLIENT_BUFFER_BYTES: it leaves its rooms and gets 1013', async () => {
    const [alice, bob, carol] = await fixture.connectAll('alice', 'bob', 'carol');
    for (const client of [alice, bob, carol]) {
      await client.join('chat-room');
    }
    await alice.next('user_joined');
    await alice.next('user_joined');
    const evictionsBefore = await disconnects('1013');
    carol.socket.pause();

    // Chat messages are never dropped, so a client that does not read them overflows.
    let sent = 0;
    const timer = setInterval(() => {
      for (let i = 0; i < 4; i++) {
        alice.broadcast('chat-room', { type: 'chat', data: { n: sent++, text: PADDING } });
      }
    }, TICK_MS);
    try {
      const left = await bob.next('user_left', 20_000);
      expect(left).toEqual({ roomId: 'chat-room', userId: 'carol' });
    } finally {
      clearInterval(timer);
    }
    expect((await roomStats('chat-room'))?.userCount).toBe(2);
    expect(fixture.server.app.get(UsersService).byUser('carol')).toBeUndefined();
    expect((await disconnects('1013')) - evictionsBefore).toBe(1);

    // Carol reads again and finds the close code behind what was already written to her.
    carol.socket.resume();
    expect((await carol.waitForClose(5000)).code).toBe(1013);
  }, 40_000);

  it('terminates a client that never reads again, 2 s after telling it to go', async () => {
    const [alice, bob, carol] = await fixture.connectAll('alice', 'bob', 'carol');
    for (const client of [alice, bob, carol]) {
      await client.join('chat-room');
    }
    const carolOnServer = fixture.server.app.get(UsersService).byUser('carol');
    carol.socket.pause();
    let sent = 0;
    const timer = setInterval(() => {
      for (let i = 0; i < 4; i++) {
        alice.broadcast('chat-room', { type: 'chat', data: { n: sent++, text: PADDING } });
      }
    }, TICK_MS);
    try {
      await bob.next('user_left', 20_000);
    } finally {
      clearInterval(timer);
    }
    const toldAt = Date.now();
    // The paused socket cannot read the close frame; the server destroys the connection.
    await until(
      () => (carolOnServer?.handle as WebSocket | undefined)?.readyState === WebSocket.CLOSED,
      6000,
      "the server closing carol's socket",
    );
    expect(Date.now() - toldAt).toBeGreaterThanOrEqual(1500);
    carol.socket.resume();
    expect((await carol.waitForClose(5000)).code).toBe(1006);
  }, 40_000);

  it('cuts off a client in no room that pings without reading, before its pongs pile up', async () => {
    const [carol] = await fixture.connectAll('carol');
    const carolOnServer = fixture.server.app.get(UsersService).byUser('carol');
    const serverSocket = carolOnServer?.handle as WebSocket;
    carol.socket.pause();
    // The pongs fill the kernel's buffers (a few MB) and then the server's own: 27 MB at most.
    const payload = Buffer.alloc(125);
    let pings = 0;
    while (serverSocket.readyState === WebSocket.OPEN && pings < 200_000) {
      for (let i = 0; i < 1000; i++) {
        carol.socket.ping(payload);
      }
      pings += 1000;
      await new Promise((resolve) => setImmediate(resolve));
    }
    await until(
      () => serverSocket.readyState === WebSocket.CLOSED,
      5000,
      "the server cutting carol's socket off",
    );
    // Cut off while the flood went on, not after it ended.
    expect(pings).toBeLessThan(200_000);
  }, 40_000);
});
