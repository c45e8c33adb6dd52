import { fakeClientLink } from '../../test/support/fake-client-link.js';
import { loadAppConfig } from '../config/app.config.js';
import { MAX_POSES_PER_FRAME } from '../protocol/binary-poses.js';
import type { AppMessage } from '../protocol/protocol.js';
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

  const member = (userId: string, binary: boolean): Connection => {
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
    const fanout = new Fanout(loadAppConfig({}));
    batches = new PoseBatches(users, fanout);
    delivery = new LocalDelivery(users, fanout, batches);
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
