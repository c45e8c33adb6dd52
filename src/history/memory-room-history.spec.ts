import type { QueuedFrame } from '../users/client-link.js';
import { MemoryRoomHistory } from './memory-room-history.js';

const frame = (json: string): QueuedFrame => ({
  json,
  bytes: Buffer.from(json),
  throwaway: false,
});

describe('MemoryRoomHistory', () => {
  let now = 1_000;
  const history = (maxEvents = 10, maxAgeMs = 60_000, enabled = true) =>
    new MemoryRoomHistory({ enabled, maxEvents, maxAgeMs }, () => now);

  /** Numbers and keeps `count` events in `roomId`, named e1, e2, ... by seq. */
  const fill = (rooms: MemoryRoomHistory, roomId: string, count: number) => {
    for (let index = 0; index < count; index++) {
      const seq = rooms.nextSeq(roomId);
      rooms.record(roomId, { seq, frame: frame(`e${seq}`) });
    }
  };

  beforeEach(() => {
    now = 1_000;
  });

  it('numbers each room on its own, from 1, within a random epoch', () => {
    const rooms = history();
    expect([rooms.nextSeq('a'), rooms.nextSeq('a'), rooms.nextSeq('b')]).toEqual([1, 2, 1]);
    const a = rooms.position('a');
    const b = rooms.position('b');
    expect(a).toEqual({ epoch: expect.stringMatching(/^[0-9a-f]{16}$/), seq: 2 });
    expect(b?.epoch).not.toBe(a?.epoch);
  });

  it("gives no events from before a member's join: a resume from there gets a snapshot", () => {
    const rooms = history();
    fill(rooms, 'a', 3);
    const joined = rooms.position('a')!;
    rooms.markJoined('a', 'carol', joined);
    fill(rooms, 'a', 2);
    expect(rooms.since('a', joined.epoch, 0, 'carol')).toBeUndefined();
    expect(rooms.since('a', joined.epoch, 2, 'carol')).toBeUndefined();
    expect(rooms.since('a', joined.epoch, 3, 'carol')?.map((entry) => entry.frame.json)).toEqual([
      'e4',
      'e5',
    ]);
    // Another member's join bounds only that member's resumes; another epoch's mark, nothing.
    expect(rooms.since('a', joined.epoch, 0, 'bob')).toHaveLength(5);
    rooms.markJoined('a', 'bob', { epoch: 'another-epoch', seq: 5 });
    expect(rooms.since('a', joined.epoch, 0, 'bob')).toHaveLength(5);
  });

  it('lets go of the joins the history has dropped every event before', () => {
    const rooms = history(4);
    for (let user = 0; user < 600; user++) {
      fill(rooms, 'a', 1);
      rooms.markJoined('a', `u${user}`, rooms.position('a')!);
    }
    const { epoch } = rooms.position('a')!;
    // The earliest marks went; a resume from before them is refused for the dropped events.
    expect(rooms.since('a', epoch, 0, 'u0')).toBeUndefined();
    const kept = (
      rooms as unknown as { rooms: Map<string, { joinedAt: Map<string, number> }> }
    ).rooms.get('a')!.joinedAt;
    expect(kept.size).toBeLessThanOrEqual(257);
    expect(kept.has('u599')).toBe(true);
    expect(kept.has('u0')).toBe(false);
  });

  it('gives the events after lastSeq in order, and none for an up-to-date client', () => {
    const rooms = history();
    fill(rooms, 'a', 5);
    const { epoch } = rooms.position('a')!;
    expect(rooms.since('a', epoch, 2, 'bob')?.map((entry) => entry.frame.json)).toEqual([
      'e3',
      'e4',
      'e5',
    ]);
    expect(rooms.since('a', epoch, 5, 'bob')).toEqual([]);
  });

  it("leaves out what was not for the user: its own exceptions and others' direct events", () => {
    const rooms = history();
    const { epoch } = rooms.position('a')!;
    for (const audience of [{}, { except: 'bob' }, { to: 'bob' }, { to: 'carol' }]) {
      const seq = rooms.nextSeq('a');
      rooms.record('a', { seq, frame: frame(`e${seq}`), ...audience });
    }
    expect(rooms.since('a', epoch, 0, 'bob')?.map((entry) => entry.seq)).toEqual([1, 3]);
    expect(rooms.since('a', epoch, 0, 'carol')?.map((entry) => entry.seq)).toEqual([1, 2, 4]);
  });

  it('cannot recover another epoch, a seq it never gave, or a gap past what it keeps', () => {
    const rooms = history(3);
    fill(rooms, 'a', 5);
    const { epoch } = rooms.position('a')!;
    expect(rooms.since('a', 'another', 4, 'bob')).toBeUndefined();
    expect(rooms.since('a', epoch, 6, 'bob')).toBeUndefined();
    // Events 1 and 2 were dropped to keep 3: from 1 the gap is not covered, from 2 it is.
    expect(rooms.since('a', epoch, 1, 'bob')).toBeUndefined();
    expect(rooms.since('a', epoch, 2, 'bob')?.map((entry) => entry.seq)).toEqual([3, 4, 5]);
  });

  it('drops events older than maxAgeMs', () => {
    const rooms = history(10, 1000);
    fill(rooms, 'a', 2);
    now += 1500;
    fill(rooms, 'a', 1);
    const { epoch } = rooms.position('a')!;
    expect(rooms.since('a', epoch, 0, 'bob')).toBeUndefined();
    expect(rooms.since('a', epoch, 2, 'bob')?.map((entry) => entry.seq)).toEqual([3]);
  });

  it('starts a forgotten room over in a new epoch', () => {
    const rooms = history();
    fill(rooms, 'a', 3);
    const before = rooms.position('a')!;
    rooms.forget('a');
    expect(rooms.since('a', before.epoch, 3, 'bob')).toBeUndefined();
    const after = rooms.position('a')!;
    expect(after.seq).toBe(0);
    expect(after.epoch).not.toBe(before.epoch);
  });

  it('keeps nothing with maxEvents 0, and gives no position when disabled', () => {
    const rooms = history(0);
    fill(rooms, 'a', 2);
    expect(rooms.since('a', rooms.position('a')!.epoch, 1, 'bob')).toBeUndefined();
    expect(history(10, 1000, false).position('a')).toBeUndefined();
  });
});
