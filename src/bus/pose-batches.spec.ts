import { fakeClientLink } from '../../test/support/fake-client-link.js';
import { loadAppConfig } from '../config/app.config.js';
import { MAX_POSES_PER_FRAME, writePoseEntry } from '../protocol/binary-poses.js';
import type { AppMessage } from '../protocol/protocol.js';
import { ServerCounters } from '../telemetry/server-counters.js';
import type { QueuedFrame } from '../users/client-link.js';
import { Connection } from '../users/connection.js';
import { UsersService } from '../users/users.service.js';
import { Fanout } from './fanout.service.js';
import { LocalDelivery } from './local-delivery.js';
import { PoseBatches } from './pose-batches.js';

const pose = (x: number): AppMessage => ({
  type: 'pose_update',
  timestamp: 1,
  data: { position: [x, 0, 0], rotation: [0, 0, 0, 1] },
});

describe('PoseBatches and LocalDelivery.publishPose', () => {
  let users: UsersService;
  let batches: PoseBatches;
  let delivery: LocalDelivery;
  let frames: Map<string, QueuedFrame[]>;
  let counters: ServerCounters;

  const member = (userId: string, binary: boolean, quantized = false): Connection => {
    const received: QueuedFrame[] = [];
    frames.set(userId, received);
    const connection = new Connection(
      userId,
      {},
      fakeClientLink({
        enqueue: (frame) => {
          received.push(frame);
          return 'queued';
        },
      }),
    );
    connection.binaryPoses = binary;
    connection.quantizedPoses = quantized;
    users.membership.beginJoin(connection, 'r');
    users.membership.completeJoin(connection, 'r');
    return connection;
  };
  /** Entries per binary frame a member got, by the frame's count field. */
  const entryCounts = (userId: string) =>
    (frames.get(userId) ?? []).flatMap((f) => (f.binary ? [f.binary[2] | (f.binary[3] << 8)] : []));
  const jsonCount = (userId: string) =>
    (frames.get(userId) ?? []).filter((frame) => frame.json !== '').length;

  beforeEach(() => {
    users = new UsersService();
    counters = new ServerCounters();
    const fanout = new Fanout(loadAppConfig({}), counters);
    batches = new PoseBatches(users, fanout, counters);
    delivery = new LocalDelivery(users, fanout, batches, counters);
    frames = new Map();
  });

  it('serializes for JSON members at once and batches the binary ones until the flush', () => {
    member('alice', true);
    member('bob', true);
    member('carol', false);
    delivery.publishPose('r', 'alice', 1, pose(1));
    delivery.publishPose('r', 'carol', 3, pose(2));
    expect(jsonCount('carol')).toBe(1);
    expect(jsonCount('bob')).toBe(0);
    expect(entryCounts('bob')).toEqual([]);

    batches.flush();
    // One shared frame holding both poses, the sender's own included.
    expect(entryCounts('alice')).toEqual([2]);
    expect(entryCounts('bob')).toEqual([2]);
    expect(entryCounts('carol')).toEqual([]);
    expect(frames.get('alice')?.[0]).toBe(frames.get('bob')?.[0]);
    expect(frames.get('bob')?.[0].bytes[0]).toBe(0x82);
  });

  it('times each JSON fan-out and each room frame, not each binary entry', () => {
    member('alice', true);
    member('bob', true);
    member('carol', false);
    const fanouts = () => counters.fanoutSeconds.samples('f').match(/^f_count (\d+)$/m)?.[1];
    delivery.publishPose('r', 'alice', 1, pose(1));
    delivery.publishPose('r', 'bob', 2, pose(2));
    // Each pose went to carol as JSON at once: two fan-outs; the entries are only written down.
    expect(fanouts()).toBe('2');
    batches.flush();
    // One frame of both entries, to alice and bob: one fan-out more.
    expect(fanouts()).toBe('3');
  });

  it('sends binary members JSON when the sender has no slot', () => {
    member('alice', false);
    member('bob', true);
    delivery.publishPose('r', 'alice', undefined, pose(1));
    batches.flush();
    expect(jsonCount('bob')).toBe(1);
    expect(entryCounts('bob')).toEqual([]);
  });

  it('builds no JSON at all for a room of binary members', () => {
    member('alice', true);
    member('bob', true);
    delivery.publishPose('r', 'alice', 1, pose(1));
    batches.flush();
    expect(jsonCount('alice') + jsonCount('bob')).toBe(0);
    expect(entryCounts('bob')).toEqual([1]);
  });

  it('builds the quantized frame once, for the members that asked for it', () => {
    member('alice', true);
    member('bob', true, true);
    member('carol', true, true);
    delivery.publishPose('r', 'dave', 4, pose(1));
    delivery.publishPose('r', 'erin', 5, pose(2));
    batches.flush();
    const [full] = frames.get('alice') ?? [];
    const [quantized] = frames.get('bob') ?? [];
    expect(frames.get('carol')?.[0]).toBe(quantized);
    // Flags byte 1, count 2; 12-byte header for room "r", then 40- or 16-byte entries.
    expect([full.binary?.[1], full.binary?.length]).toEqual([0, 12 + 2 * 40]);
    expect([quantized.binary?.[1], quantized.binary?.length]).toEqual([1, 12 + 2 * 16]);
    expect(entryCounts('bob')).toEqual([2]);
  });

  describe('publishPoseEntry (a binary pose, in entry form)', () => {
    /** A pose as a 40-byte entry, its slot field left at 0xffff (the server fills it in). */
    const entryOf = (x: number): Buffer => {
      const entry = Buffer.alloc(40);
      writePoseEntry(entry, 0, 0xffff, pose(x));
      return entry;
    };

    it('copies the entry into the room frame as it came, with the slot filled in', () => {
      member('bob', true);
      const entry = entryOf(7);
      delivery.publishPoseEntry('r', 'alice', 9, entry);
      // Read during the call only: a caller may reuse its buffer at once.
      entry.fill(0);
      batches.flush();
      const [frame] = frames.get('bob') ?? [];
      const sent = Buffer.from(frame.binary!.subarray(12));
      expect(sent.readUInt16LE(0)).toBe(9);
      expect(sent.subarray(2)).toEqual(entryOf(7).subarray(2));
      expect(jsonCount('bob')).toBe(0);
    });

    it('gives JSON members the pose_update it stands for, serialized once', () => {
      member('bob', true);
      member('carol', false);
      member('dave', false);
      delivery.publishPoseEntry('r', 'bob', 2, entryOf(1.5));
      batches.flush();
      const [carols] = frames.get('carol') ?? [];
      expect(frames.get('dave')?.[0]).toBe(carols);
      expect(JSON.parse(carols.json)).toEqual({
        event: 'message',
        data: { roomId: 'r', senderId: 'bob', message: { ...pose(1.5), senderId: 'bob' } },
      });
      expect(entryCounts('bob')).toEqual([1]);
    });

    it('sends everyone JSON when the sender has no slot', () => {
      member('bob', true);
      delivery.publishPoseEntry('r', 'alice', undefined, entryOf(1));
      batches.flush();
      expect(jsonCount('bob')).toBe(1);
      expect(entryCounts('bob')).toEqual([]);
    });
  });

  it(`splits a batch past ${MAX_POSES_PER_FRAME} poses into several frames`, () => {
    member('bob', true);
    for (let n = 0; n <= MAX_POSES_PER_FRAME; n++) {
      batches.add('r', n % 65536, pose(n));
    }
    batches.flush();
    expect(entryCounts('bob')).toEqual([MAX_POSES_PER_FRAME, 1]);
    batches.flush();
    expect(entryCounts('bob')).toHaveLength(2);
  });
});
