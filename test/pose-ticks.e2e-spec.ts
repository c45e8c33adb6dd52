import { RATE_LIMITS_OFF, useTestServer } from './support/fixtures.js';
import { delay, until, type TestClient } from './support/test-client.js';

// Long enough that a burst sent in one go almost always lands within one tick.
const TICK_MS = 150;

const pose = (n: number) => ({
  type: 'pose_update',
  timestamp: Date.now(),
  data: { n, position: [n, 1.7, 0], rotation: [0, 0, 0, 1] },
});

/** The `n`s of the poses `from` sent that a client has received so far, in arrival order. */
function posesFrom(client: TestClient, from: string): number[] {
  return client.received
    .filter((message) => message.event === 'message')
    .map((message) => message.data as unknown as { senderId: string; message: { type: string } })
    .filter((data) => data.senderId === from && data.message.type === 'pose_update')
    .map((data) => (data.message as unknown as { data: { n: number } }).data.n);
}

describe('server ticks for poses (POSE_TICK_MS)', () => {
  const fixture = useTestServer({ env: { ...RATE_LIMITS_OFF, POSE_TICK_MS: String(TICK_MS) } });

  it("sends each sender's newest pose once per tick and does not resend an unchanged one", async () => {
    const [alice, bob, carol] = await fixture.connectAll('alice', 'bob', 'carol');
    for (const client of [alice, bob, carol]) {
      await client.join('tick-room');
    }
    await alice.next('user_joined');
    await alice.next('user_joined');
    await bob.next('user_joined');

    for (let n = 0; n < 10; n++) {
      alice.broadcast('tick-room', pose(n));
    }
    await until(() => posesFrom(bob, 'alice').includes(9), 5000, 'the newest pose at bob');
    await until(() => posesFrom(carol, 'alice').includes(9), 5000, 'the newest pose at carol');
    // Three more ticks: nothing new was sent, so nothing is resent.
    await delay(3 * TICK_MS);

    for (const member of [bob, carol]) {
      const seen = posesFrom(member, 'alice');
      // The burst went out as its newest pose (two, if it happened to straddle a tick).
      expect(seen.length).toBeLessThanOrEqual(2);
      expect(seen.at(-1)).toBe(9);
    }
    expect(posesFrom(alice, 'alice')).toEqual([]);

    // A chat message is not held for a tick: sent right behind a pose, it overtakes the pose, which
    // waits for the next tick. Sent just after a tick reached bob, so that one is a whole tick off.
    alice.broadcast('tick-room', pose(10));
    await until(() => posesFrom(bob, 'alice').includes(10), 2000, 'pose 10 at bob');
    bob.received.splice(0);
    alice.broadcast('tick-room', pose(11));
    alice.broadcast('tick-room', { type: 'chat', timestamp: Date.now(), data: { text: 'hi' } });
    await until(() => posesFrom(bob, 'alice').includes(11), 2000, 'pose 11 at bob');
    const types = bob.received.map(
      (message) => (message.data as unknown as { message: { type: string } }).message.type,
    );
    expect(types).toEqual(['chat', 'pose_update']);
  });

  it('never shows the pose of a member that left before the tick after its user_left', async () => {
    const [alice, bob] = await fixture.connectAll('alice', 'bob');
    await alice.join('tick-room');
    await bob.join('tick-room');
    await alice.next('user_joined');

    alice.broadcast('tick-room', pose(1));
    alice.request('leave_room', { roomId: 'tick-room' });
    await bob.next('user_left');
    await delay(2 * TICK_MS);

    expect(posesFrom(bob, 'alice')).toEqual([]);
  });

  it('reports skipped ticks in /stats when ticks are on', async () => {
    const response = await fetch(`${fixture.server.httpUrl}/stats`);
    const stats = (await response.json()) as { skippedPoseTicks?: unknown };
    expect(typeof stats.skippedPoseTicks).toBe('number');
  });
});
