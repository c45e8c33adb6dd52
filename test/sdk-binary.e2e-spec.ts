// The SDK's binary pose channel (binaryPoses: gallery.v2, docs/binary-poses.md) against the real
// server: two binary clients and one JSON client in one room each get the others' poses, with the
// right senderId and the values (float32 where a binary frame carried them), whichever channel
// the sender and the receiver use. With and without server ticks.
import WebSocket from 'ws';
import {
  GalleryClient,
  type GalleryClientOptions,
  type PoseEvent,
  type Quat,
  type Room,
  type Vec3,
} from '../client/src/index.js';
import { useTestServer } from './support/fixtures.js';
import { until } from './support/test-client.js';

interface Member {
  client: GalleryClient;
  room: Room;
  poses: PoseEvent[];
}

/** Each sender's pose: values a float32 cannot hold exactly, so rounding shows. */
const POSES: Record<string, { position: Vec3; rotation: Quat }> = {
  alice: { position: [0.1, 1.7, -2.3], rotation: [0, 0.3826834, 0, 0.9238795] },
  bob: { position: [1e3 + 0.01, -0.2, 3.14159], rotation: [0.5, 0.5, 0.5, 0.5] },
  carol: { position: [-7.7, 0.05, 12.34], rotation: [0, 0, Math.SQRT1_2, Math.SQRT1_2] },
};

const f32 = (values: number[]) => values.map((n) => Math.fround(n));

describe.each([
  ['without ticks', {}],
  ['with POSE_TICK_MS=33', { POSE_TICK_MS: '33' }],
])('SDK binary poses (%s)', (_name, env: Record<string, string>) => {
  const fixture = useTestServer({ env });
  const clients: GalleryClient[] = [];

  afterEach(() => {
    clients.splice(0).forEach((client) => client.close());
  });

  const join = async (
    userId: string,
    index: number,
    options: Partial<GalleryClientOptions>,
  ): Promise<Member> => {
    const servers = fixture.servers;
    const client = new GalleryClient({
      url: servers[index % servers.length].wsUrl,
      userId,
      WebSocket,
      ...options,
    });
    clients.push(client);
    await client.connect();
    const room = await client.joinRoom('binary-room', { name: userId, role: 'editor' });
    const poses: PoseEvent[] = [];
    room.on('pose', (pose) => poses.push(pose));
    return { client, room, poses };
  };

  it('two binary clients and a JSON one get each other’s poses', async () => {
    const members: Record<string, Member> = {
      alice: await join('alice', 0, { binaryPoses: true }),
      bob: await join('bob', 1, { binaryPoses: true }),
      carol: await join('carol', 2, {}),
    };
    expect(members.alice.client.poseChannel).toBe('binary');
    expect(members.bob.client.poseChannel).toBe('binary');
    expect(members.carol.client.poseChannel).toBe('json');
    await until(
      () => Object.values(members).every(({ room }) => room.members.size === 3),
      3000,
      'everyone sees everyone',
    );
    // Slots came with room_joined / user_joined.
    const aliceSlot = members.bob.room.members.get('alice')?.slot;
    expect(typeof aliceSlot).toBe('number');

    // Poses are throwaway: send again until every other member has one from each sender.
    const complete = () =>
      Object.entries(members).every(([receiver, { poses }]) =>
        Object.keys(POSES)
          .filter((sender) => sender !== receiver)
          .every((sender) => poses.some((pose) => pose.userId === sender)),
      );
    await until(
      () => {
        for (const [sender, { room }] of Object.entries(members)) {
          room.sendPose(POSES[sender].position, POSES[sender].rotation);
        }
        return complete();
      },
      3000,
      'every pose to every other member',
    );

    for (const [receiver, { poses }] of Object.entries(members)) {
      expect(poses.some((pose) => pose.userId === receiver)).toBe(false); // never one's own
      for (const sender of Object.keys(POSES).filter((id) => id !== receiver)) {
        const pose = poses.find((p) => p.userId === sender)!;
        const { position, rotation } = POSES[sender];
        // Every pose here crossed a binary frame (carol, the only JSON member, gets none of her
        // own), which rounds to float32: binary to binary, binary to JSON, JSON to binary.
        expect(pose.position).toEqual(f32(position));
        expect(pose.rotation).toEqual(f32(rotation));
        expect(pose.message).toMatchObject({ type: 'pose_update', senderId: sender });
        expect(typeof pose.timestamp).toBe('number');
      }
    }
  });
});
