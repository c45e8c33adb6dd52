import { RATE_LIMITS_OFF } from './support/fixtures.js';
import { delay, TestClient, until } from './support/test-client.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const ROOM = 'shed-room';
/** The budget the shedding test sets, under the time every turn is kept busy (TURN_MS). */
const BUDGET_MS = 20;
/** How long every event-loop turn is kept busy: short, so the test costs little CPU. */
const TURN_MS = 40;
const TURNS = 12;
const POSES_PER_TURN = 5;
const POSES = TURNS * POSES_PER_TURN;

const pose = (n: number) => ({
  type: 'pose_update',
  timestamp: Date.now(),
  data: { n, position: [n, 1.7, 0], rotation: [0, 0, 0, 1] },
});

/** How many application messages of `type` a client has received so far. */
function messagesOfType(client: TestClient, type: string): number {
  return client.received.filter(
    (message) =>
      message.event === 'message' &&
      (message.data as unknown as { message: { type: string } }).message.type === type,
  ).length;
}

const posesAt = (client: TestClient): number => messagesOfType(client, 'pose_update');

/**
 * Keeps every event-loop turn busy for TURN_MS. The server runs in this process, so its turns
 * (from the first pose it reads to the write that ends the turn) run long, as they do on a
 * server short of CPU. Returns the function that stops it.
 */
function keepTurnsLong(): () => void {
  let spinning = true;
  const spin = (): void => {
    if (!spinning) {
      return;
    }
    const busyUntil = performance.now() + TURN_MS;
    while (performance.now() < busyUntil) {
      // A turn that stays busy, as an overloaded server's do.
    }
    setImmediate(spin);
  };
  setImmediate(spin);
  return () => {
    spinning = false;
  };
}

/**
 * Alice sends POSES poses to bob, POSES_PER_TURN per event-loop turn, while every turn runs long;
 * then a chat message, which is never shed. Answers how many poses bob got and how many the
 * server counted as dropped.
 */
async function poseFloodThroughLongTurns(
  env: Record<string, string>,
): Promise<{ received: number; dropped: number }> {
  const server: TestServer = await startTestServer({ ...RATE_LIMITS_OFF, ...env });
  const clients: TestClient[] = [];
  try {
    const alice = await TestClient.connect(server.wsUrl, { userId: 'alice' });
    clients.push(alice);
    const bob = await TestClient.connect(server.wsUrl, { userId: 'bob' });
    clients.push(bob);
    await alice.join(ROOM);
    await bob.join(ROOM);
    await alice.next('user_joined');

    const stop = keepTurnsLong();
    try {
      for (let turn = 0; turn < TURNS; turn++) {
        for (let i = 0; i < POSES_PER_TURN; i++) {
          alice.broadcast(ROOM, pose(turn * POSES_PER_TURN + i));
        }
        await delay(1); // the next ones in a later turn
      }
    } finally {
      stop();
    }
    alice.broadcast(ROOM, { type: 'chat', timestamp: Date.now(), data: { text: 'done' } });
    await until(() => messagesOfType(bob, 'chat') > 0, 5000, 'the chat message at bob');

    const stats = (await (await fetch(`${server.httpUrl}/stats`)).json()) as {
      droppedMessages: number;
    };
    // Every pose either reached bob or was counted as dropped: wait for the last ones to land.
    await until(
      () => posesAt(bob) + stats.droppedMessages >= POSES,
      5000,
      `${POSES} poses at bob or dropped (${stats.droppedMessages} dropped)`,
    );
    return { received: posesAt(bob), dropped: stats.droppedMessages };
  } finally {
    for (const client of clients) {
      client.socket.terminate();
    }
    await server.close();
  }
}

describe('load shedding (POSE_SHED_TURN_MS)', () => {
  it('sheds a share of the poses once turns keep running over the budget', async () => {
    const { received, dropped } = await poseFloodThroughLongTurns({
      POSE_SHED_TURN_MS: String(BUDGET_MS),
    });

    expect(dropped).toBeGreaterThan(0);
    expect(received).toBe(POSES - dropped);
  }, 30_000);

  it('relays every pose, however long the turns, with POSE_SHED_TURN_MS=0', async () => {
    const { received, dropped } = await poseFloodThroughLongTurns({ POSE_SHED_TURN_MS: '0' });

    expect(dropped).toBe(0);
    expect(received).toBe(POSES);
  }, 30_000);
});
