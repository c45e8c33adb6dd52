import { ROOM_BUS, type RoomBus } from '../../src/bus/room-bus.js';
import { ServerEvent } from '../../src/protocol/protocol.js';
import {
  connectRedis,
  keysWithPrefix,
  useTestCluster,
  waitFor,
  type ClusterFixture,
} from '../support/cluster.js';
import type { TestClient } from '../support/test-client.js';

/**
 * A room leaves nothing behind in Redis: with it go its event history, the history's epoch and
 * the event counter, which would otherwise stay a day after its last event, outside MAX_ROOMS.
 */

const RESUME_ON = { RECONNECT_GRACE_MS: '10000' };

/** The keys of `roomId` (`<prefix>{roomId}:...`) still in Redis. */
async function roomKeys(fixture: ClusterFixture, roomId: string): Promise<string[]> {
  const redis = await connectRedis(fixture.cluster.redisUrl);
  try {
    const base = `${fixture.cluster.keyPrefix}{${roomId}}:`;
    const keys = await keysWithPrefix(redis, base);
    return keys.map((key) => key.slice(base.length)).sort();
  } finally {
    redis.disconnect();
  }
}

async function keysGone(fixture: ClusterFixture, roomId: string): Promise<void> {
  let left: string[] = [];
  await waitFor(
    async () => {
      left = await roomKeys(fixture, roomId);
      return left.length === 0 ? true : undefined;
    },
    5000,
    `the keys of ${roomId} to go`,
  ).catch((error: unknown) => {
    throw new Error(`${String(error)}; still there: ${left.join(', ')}`);
  });
}

/** Chat that every member hears: numbered events, kept in the history with resume on. */
async function chat(from: TestClient, roomId: string, to: TestClient, count: number) {
  for (let n = 0; n < count; n++) {
    from.broadcast(roomId, { type: 'chat', data: { n } });
    await to.next('message');
  }
}

describe.each([
  ['resume on', RESUME_ON],
  ['resume off', {}],
])('cluster (%s): delete_room', (mode, env) => {
  const fixture = useTestCluster({ instances: 2, env });

  it('takes the room history, its epoch and its event counter with the room', async () => {
    const alice = await fixture.connect(0, 'alice');
    const bob = await fixture.connect(1, 'bob');
    const before = await alice.join('hall');
    await bob.join('hall');
    await alice.next('user_joined');
    await chat(alice, 'hall', bob, 3);
    expect(await roomKeys(fixture, 'hall')).toEqual(
      expect.arrayContaining(
        mode === 'resume on' ? ['envseq', 'epoch', 'history', 'meta'] : ['envseq', 'meta'],
      ),
    );

    const deleted = await alice.reply(alice.request('delete_room', { roomId: 'hall' }));
    expect(deleted.event).toBe('room_deleted');
    await bob.next('room_deleted');
    await keysGone(fixture, 'hall');

    // Created again under the same id, it is a new room with a new history.
    const again = await bob.join('hall');
    if (mode === 'resume on') {
      expect(again.epoch).toEqual(expect.any(String));
      expect(again.epoch).not.toBe(before.epoch);
      expect(again.seq).toBe(0);
    }
  });

  it('keeps nothing of an event that comes after the room, and its counter briefly', async () => {
    const alice = await fixture.connect(0, 'alice');
    await alice.join('hall');
    const deleted = await alice.reply(alice.request('delete_room', { roomId: 'hall' }));
    expect(deleted.event).toBe('room_deleted');
    await keysGone(fixture, 'hall');

    // An event still under way when the room went (a member's chat on another instance).
    const bus = fixture.servers[1].app.get<RoomBus>(ROOM_BUS);
    bus.publish('hall', {
      event: ServerEvent.Message,
      data: { roomId: 'hall', senderId: 'bob', message: { type: 'chat', data: {} } },
    });
    await waitFor(
      async () => ((await roomKeys(fixture, 'hall')).length > 0 ? true : undefined),
      3000,
      'the straggler to be numbered',
    );
    expect(await roomKeys(fixture, 'hall')).toEqual(['envseq']);
    const redis = await connectRedis(fixture.cluster.redisUrl);
    try {
      const ttl = await redis.pttl(`${fixture.cluster.keyPrefix}{hall}:envseq`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60_000);
    } finally {
      redis.disconnect();
    }
  });
});

describe('cluster (resume on): rooms that expire', () => {
  const fixture = useTestCluster({
    instances: 2,
    env: { ...RESUME_ON, EMPTY_ROOM_TTL_MS: '300', ROOM_TIMEOUT_MS: '1000' },
  });

  it('takes the history of a room left empty with the room', async () => {
    const alice = await fixture.connect(0, 'alice');
    const bob = await fixture.connect(1, 'bob');
    await alice.join('hall');
    await bob.join('hall');
    await alice.next('user_joined');
    await chat(alice, 'hall', bob, 3);
    expect(await roomKeys(fixture, 'hall')).toContain('history');

    for (const member of [alice, bob]) {
      const left = await member.reply(member.request('leave_room', { roomId: 'hall' }));
      expect(left.event).toBe('room_left');
    }
    await keysGone(fixture, 'hall');
  });

  it('takes the history of an idle room with the room, once its members were told', async () => {
    const alice = await fixture.connect(0, 'alice');
    const bob = await fixture.connect(1, 'bob');
    await alice.join('hall');
    await bob.join('hall');
    await alice.next('user_joined');
    await chat(alice, 'hall', bob, 3);

    // Nobody says anything for ROOM_TIMEOUT_MS: the room goes, and its members hear it.
    const [toAlice, toBob] = await Promise.all([
      alice.next('room_deleted', 5000),
      bob.next('room_deleted', 5000),
    ]);
    expect(toAlice).toMatchObject({ roomId: 'hall', reason: 'idle_timeout' });
    expect(toBob).toMatchObject({ roomId: 'hall', reason: 'idle_timeout' });
    await keysGone(fixture, 'hall');
  });
});
