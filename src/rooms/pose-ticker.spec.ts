import { performance } from 'node:perf_hooks';
import { MessageChannel } from 'node:worker_threads';
import { fakeClientLink } from '../../test/support/fake-client-link.js';
import { Fanout } from '../bus/fanout.service.js';
import type { RoomBus } from '../bus/room-bus.js';
import { loadAppConfig } from '../config/app.config.js';
import { clientPoseFrame } from '../../test/support/binary-pose-frames.js';
import { checkClientPose, type ClientPoseEntry } from '../protocol/binary-poses.js';
import type { AppMessage, RoomUser } from '../protocol/protocol.js';
import { ServerCounters } from '../telemetry/server-counters.js';
import { Connection } from '../users/connection.js';
import { PoseTicker } from './pose-ticker.js';

interface Published {
  roomId: string;
  senderId: string;
  n: number;
  slot?: number;
  binary?: boolean;
}

/** A client's binary pose frame for `roomId` whose x coordinate is `n`, and where it checks. */
function binaryPose(roomId: string, n: number): [Buffer, ClientPoseEntry] {
  const frame = clientPoseFrame(roomId, {
    timestamp: 1,
    position: [n, 0, 0],
    rotation: [0, 0, 0, 1],
  });
  const entry = checkClientPose(frame);
  if (typeof entry === 'string') {
    throw new Error(entry);
  }
  return [frame, entry];
}

const TICK_MS = 33;
const pose = (n: number): AppMessage => ({ type: 'pose_update', timestamp: 1, data: { n } });

function member(userId: string, ...rooms: string[]): Connection {
  const connection = new Connection(userId, {}, fakeClientLink());
  for (const roomId of rooms) {
    connection.rooms.add(roomId);
  }
  return connection;
}

describe('PoseTicker', () => {
  let published: Published[];
  let ticker: PoseTicker;
  let fanout: Fanout;
  let counters: ServerCounters;

  const tickerWith = (tickMs: number) => {
    const bus = {
      publishPose: (
        roomId: string,
        senderId: string,
        slot: number | undefined,
        message: AppMessage,
      ) => {
        published.push({ roomId, senderId, n: (message.data as { n: number }).n, slot });
      },
      // A binary pose: its x coordinate stands for n.
      publishPoseEntry: (
        roomId: string,
        senderId: string,
        slot: number | undefined,
        entry: Buffer,
      ) => {
        published.push({ roomId, senderId, n: entry.readFloatLE(12), slot, binary: true });
      },
    } as unknown as RoomBus;
    const config = loadAppConfig({ POSE_TICK_MS: String(tickMs) });
    fanout = new Fanout(config);
    counters = new ServerCounters();
    return new PoseTicker(bus, fanout, config, counters);
  };

  beforeEach(() => {
    published = [];
    ticker = tickerWith(TICK_MS);
  });

  it('is off by default (POSE_TICK_MS=0)', () => {
    const config = loadAppConfig({});
    expect(new PoseTicker({} as RoomBus, new Fanout(config), config).enabled).toBe(false);
    expect(ticker.enabled).toBe(true);
  });

  it("publishes each sender's newest pose once per tick, to everyone but the sender", () => {
    const alice = member('alice', 'r1', 'r2');
    alice.profiles.set('r1', {
      id: 'alice',
      name: 'Alice',
      role: 'host',
      connected: true,
      lastSeen: 0,
      slot: 5,
    });
    const bob = member('bob', 'r1');
    ticker.hold(alice, 'r1', pose(1));
    ticker.hold(alice, 'r1', pose(2));
    ticker.hold(bob, 'r1', pose(3));
    ticker.hold(alice, 'r2', pose(4));
    expect(published).toEqual([]);

    ticker.tick(TICK_MS);

    expect(published).toEqual([
      { roomId: 'r1', senderId: 'alice', n: 2, slot: 5 },
      { roomId: 'r1', senderId: 'bob', n: 3, slot: undefined },
      { roomId: 'r2', senderId: 'alice', n: 4, slot: undefined },
    ]);
  });

  it("keeps a binary pose in entry form, copied when held, the sender's newest either way", () => {
    const alice = member('alice', 'r1');
    const [frame, entry] = binaryPose('r1', 7);
    ticker.holdEntry(alice, 'r1', frame, entry);
    frame.fill(0);
    ticker.tick(TICK_MS);
    ticker.hold(alice, 'r1', pose(8));
    ticker.tick(2 * TICK_MS);
    ticker.holdEntry(alice, 'r1', ...binaryPose('r1', 9));
    ticker.tick(3 * TICK_MS);

    expect(published).toEqual([
      { roomId: 'r1', senderId: 'alice', n: 7, slot: undefined, binary: true },
      { roomId: 'r1', senderId: 'alice', n: 8, slot: undefined },
      { roomId: 'r1', senderId: 'alice', n: 9, slot: undefined, binary: true },
    ]);
  });

  it('does not resend a pose that did not change since the last tick', () => {
    const alice = member('alice', 'r1');
    ticker.hold(alice, 'r1', pose(1));
    ticker.tick(TICK_MS);
    ticker.tick(2 * TICK_MS);
    ticker.hold(alice, 'r1', pose(2));
    ticker.tick(3 * TICK_MS);

    expect(published.map((entry) => entry.n)).toEqual([1, 2]);
  });

  it('keeps the held pose of a sender slower than the tick, and forgets it after a second', () => {
    const entries: Buffer[] = [];
    const bus = {
      publishPoseEntry: (_room: string, _sender: string, _slot: unknown, entry: Buffer) => {
        entries.push(entry);
      },
    } as unknown as RoomBus;
    const config = loadAppConfig({ POSE_TICK_MS: String(TICK_MS) });
    ticker = new PoseTicker(bus, new Fanout(config), config, new ServerCounters());
    const alice = member('alice', 'r1');
    // A pose every other tick: the idle tick between them must not drop the held pose.
    ticker.holdEntry(alice, 'r1', ...binaryPose('r1', 1));
    ticker.tick(TICK_MS);
    ticker.tick(2 * TICK_MS);
    ticker.holdEntry(alice, 'r1', ...binaryPose('r1', 2));
    ticker.tick(3 * TICK_MS);
    expect(entries).toHaveLength(2);
    expect(entries[1]).toBe(entries[0]);

    // Silent for a second: the held pose goes, and the next pose starts a new one.
    const idleTicks = Math.ceil(1000 / TICK_MS) + 1;
    for (let tick = 4; tick < 4 + idleTicks; tick++) {
      ticker.tick(tick * TICK_MS);
    }
    ticker.holdEntry(alice, 'r1', ...binaryPose('r1', 3));
    ticker.tick((4 + idleTicks) * TICK_MS);
    expect(entries).toHaveLength(3);
    expect(entries[2]).not.toBe(entries[0]);
  });

  it('drops the held pose of a sender that left the room before the tick', () => {
    const alice = member('alice', 'r1');
    const bob = member('bob', 'r1');
    ticker.hold(alice, 'r1', pose(1));
    ticker.hold(bob, 'r1', pose(2));
    alice.rooms.delete('r1');

    ticker.tick(TICK_MS);

    expect(published.map((entry) => entry.senderId)).toEqual(['bob']);
  });

  it('drops a pose sent before its sender left and joined again within the tick', () => {
    const seat = (userId: string, slot: number): RoomUser => ({
      id: userId,
      name: userId,
      role: 'editor',
      connected: true,
      lastSeen: 0,
      slot,
    });
    const alice = member('alice', 'r1');
    const bob = member('bob', 'r1');
    alice.profiles.set('r1', seat('alice', 1));
    bob.profiles.set('r1', seat('bob', 2));
    ticker.hold(alice, 'r1', pose(1));
    ticker.holdEntry(bob, 'r1', ...binaryPose('r1', 2));
    // Left and joined again, as LocalMembership and RoomsService record it: a new slot.
    for (const [sender, slot] of [
      [alice, 3],
      [bob, 4],
    ] as const) {
      sender.rooms.delete('r1');
      sender.profiles.delete('r1');
      sender.rooms.add('r1');
      sender.profiles.set('r1', seat(sender.userId, slot));
    }

    ticker.tick(TICK_MS);
    expect(published).toEqual([]);

    // A role change (user_updated) keeps the slot, and the pose with it.
    ticker.hold(alice, 'r1', pose(5));
    alice.profiles.set('r1', { ...seat('alice', 3), role: 'viewer' });
    ticker.holdEntry(bob, 'r1', ...binaryPose('r1', 6));
    ticker.tick(2 * TICK_MS);
    expect(published).toEqual([
      { roomId: 'r1', senderId: 'alice', n: 5, slot: 3 },
      { roomId: 'r1', senderId: 'bob', n: 6, slot: 4, binary: true },
    ]);
  });

  it("keeps a reconnected user's new connection apart from its old one", () => {
    const before = member('alice', 'r1');
    ticker.hold(before, 'r1', pose(1));
    before.rooms.delete('r1');
    const after = member('alice', 'r1');
    ticker.hold(after, 'r1', pose(2));

    ticker.tick(TICK_MS);

    expect(published.map((entry) => entry.n)).toEqual([2]);
  });

  it('counts the ticks a late one skipped instead of running them', () => {
    ticker.tick(TICK_MS);
    ticker.tick(2 * TICK_MS + 10);
    expect(ticker.skippedTicks).toBe(0);

    // 5.5 intervals since the last tick: the 4 that were due in between are skipped.
    ticker.tick(2 * TICK_MS + 10 + 5.5 * TICK_MS);
    expect(ticker.skippedTicks).toBe(4);
    expect(counters.poseTicksSkipped).toBe(4);
  });

  it('measures how late each tick ran, for /metrics', () => {
    ticker.tick(TICK_MS - 1); // early (a timer's rounding): counted as on time
    ticker.tick(2 * TICK_MS + 10);
    ticker.tick(3 * TICK_MS + 158);

    const lines = counters.poseTickLateness.samples('late').split('\n');
    expect(lines).toContain('late_bucket{le="0.001"} 1');
    expect(lines).toContain('late_bucket{le="0.005"} 1');
    expect(lines).toContain('late_bucket{le="0.01"} 2');
    expect(lines).toContain('late_bucket{le="0.1"} 2');
    expect(lines).toContain('late_bucket{le="0.25"} 3');
    expect(lines).toContain('late_count 3');
    expect(lines).toContain('late_sum 0.168');
  });

  it('runs a due tick only after the event loop read what came in, so a pose waiting there makes it', async () => {
    // A message port stands for a client's socket: what is posted to it is read in the event
    // loop's poll phase, as socket data is. The pose is posted while the loop is busy past the
    // tick's due time, so when the loop comes round, the tick's timer fires before the read.
    const { port1: serverSide, port2: client } = new MessageChannel();
    const alice = member('alice', 'r1');
    serverSide.on('message', () => ticker.hold(alice, 'r1', pose(1)));

    const publishedByTick: number[] = [];
    const tick = ticker.tick.bind(ticker);
    ticker.tick = (now: number) => {
      const before = published.length;
      tick(now);
      publishedByTick.push(published.length - before);
    };
    try {
      await new Promise<void>((resolve) =>
        setImmediate(() => {
          ticker.onApplicationBootstrap();
          const dueAt = performance.now() + TICK_MS;
          client.postMessage('pose');
          while (performance.now() < dueAt + 2) {
            // Busy: the tick falls due and the pose arrives before the loop can see either.
          }
          resolve();
        }),
      );
      while (publishedByTick.length === 0) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      expect(publishedByTick[0]).toBe(1);
      expect(published[0]).toMatchObject({ roomId: 'r1', senderId: 'alice', n: 1 });
    } finally {
      ticker.onModuleDestroy();
      serverSide.close();
    }
  });

  it("writes a tick's frames right after it, before the event loop reads anything more", async () => {
    // As the local bus does, publishing asks the fan-out for this turn's writes. A message posted
    // during the tick is read in the next poll phase: the writes must come before it.
    const order: string[] = [];
    const { port1: serverSide, port2: client } = new MessageChannel();
    serverSide.on('message', () => order.push('read'));
    fanout.beforeFlush(() => order.push('writes'));
    const publish = (): void => {
      order.push('tick');
      client.postMessage('next pose');
      fanout.scheduleFlush();
    };
    ticker = new PoseTicker(
      { publishPose: publish, publishPoseEntry: publish } as unknown as RoomBus,
      fanout,
      loadAppConfig({ POSE_TICK_MS: String(TICK_MS) }),
    );
    ticker.hold(member('alice', 'r1'), 'r1', pose(1));
    try {
      ticker.onApplicationBootstrap();
      while (!order.includes('read')) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      expect(order.slice(0, 3)).toEqual(['tick', 'writes', 'read']);
    } finally {
      ticker.onModuleDestroy();
      serverSide.close();
    }
  });

  it('does not wake the fan-out on the ticks of an idle server', async () => {
    let flushes = 0;
    fanout.beforeFlush(() => flushes++);
    try {
      ticker.onApplicationBootstrap();
      await new Promise((resolve) => setTimeout(resolve, 3 * TICK_MS));
      expect(flushes).toBe(0);

      ticker.hold(member('alice', 'r1'), 'r1', pose(1));
      await new Promise((resolve) => setTimeout(resolve, 2 * TICK_MS));
      expect(flushes).toBeGreaterThan(0);
    } finally {
      ticker.onModuleDestroy();
    }
  });

  it('forgets what it held when the app stops', () => {
    ticker.hold(member('alice', 'r1'), 'r1', pose(1));
    ticker.onModuleDestroy();
    ticker.tick(TICK_MS);
    expect(published).toEqual([]);
  });
});
