import type { ServerEventMap } from '../../src/protocol/protocol.js';
import { PoseInterpolator } from './interpolator.js';
import { decodePoseFrame, encodePoseFrame, type PoseEntry } from './pose-codec.js';
import type { PoseEvent, Quat, Vec3 } from './room.js';
import {
  FakeSocket,
  joinRoom,
  openClient,
  roomInfo,
  settle,
  slotted,
  user,
} from './testing/fakes.js';

beforeEach(() => {
  FakeSocket.instances = [];
  FakeSocket.binaryServer = true;
});

/** Me in slot 1, bob in slot 2: a room joined over a connection that offered gallery.v2. */
async function binaryRoom(options = {}) {
  const opened = await openClient({ binaryPoses: true, ...options });
  const users = [slotted('me', 1, 'host'), slotted('bob', 2)];
  const room = await joinRoom(opened.client, opened.socket, roomInfo('lobby', { users }));
  opened.socket.sent.length = 0;
  return { ...opened, room };
}

function serverFrame(roomId: string, entries: Array<[number, number, Vec3, Quat]>): ArrayBuffer {
  const poses: PoseEntry[] = entries.map(([slot, timestamp, position, rotation]) => ({
    slot,
    timestamp,
    position,
    rotation,
  }));
  const frame = encodePoseFrame({ type: 1, tick: 3, roomId, poses });
  if (!frame) {
    throw new Error('unencodable test frame');
  }
  return frame;
}

describe('binaryPoses: the handshake', () => {
  it('offers gallery.v2 after gallery (and before a bearer token) and asks for ArrayBuffers', async () => {
    const { client, socket } = await openClient({ binaryPoses: true, token: 'jwt.a.b' });
    expect(socket.protocols).toEqual(['gallery', 'gallery.v2', 'bearer.jwt.a.b']);
    expect(socket.binaryType).toBe('arraybuffer');
    expect(client.poseChannel).toBe('binary');
  });

  it('offers only gallery without the option, and poses stay JSON', async () => {
    const { client, socket } = await openClient();
    expect(socket.protocols).toEqual(['gallery']);
    expect(socket.binaryType).toBe('blob');
    expect(client.poseChannel).toBe('json');
  });
});

describe('binaryPoses: sending', () => {
  it('sends a pose as one client frame (type 2, slot 0) instead of a JSON broadcast', async () => {
    const { socket, room } = await binaryRoom();
    const before = Date.now();
    room.sendPose([1, 2, 3], [0, 0.6, 0, 0.8]);
    expect(socket.sent).toEqual([]);
    expect(socket.binarySent).toHaveLength(1);
    expect(socket.binarySent[0].byteLength).toBe(16 + 40);
    const frame = decodePoseFrame(socket.binarySent[0]);
    expect(frame).toMatchObject({ type: 2, tick: 0, roomId: 'lobby' });
    expect(frame?.poses).toHaveLength(1);
    const [pose] = frame!.poses;
    expect(pose.slot).toBe(0);
    expect(pose.position).toEqual([1, 2, 3]);
    expect(pose.rotation).toEqual([0, Math.fround(0.6), 0, Math.fround(0.8)]);
    expect(pose.timestamp).toBeGreaterThanOrEqual(before);
    expect(pose.timestamp).toBeLessThanOrEqual(Date.now());
  });

  it('keeps binary poses within posesPerSecond too', async () => {
    const { socket, room, clock } = await binaryRoom({ posesPerSecond: 10 });
    room.sendPose([1, 0, 0], [0, 0, 0, 1]);
    room.sendPose([2, 0, 0], [0, 0, 0, 1]);
    room.sendPose([3, 0, 0], [0, 0, 0, 1]);
    clock.advance(100);
    const xs = socket.binarySent.map((frame) => decodePoseFrame(frame)?.poses[0].position[0]);
    expect(xs).toEqual([1, 3]);
  });

  it('sends a pose the binary layout cannot carry (not finite) as JSON, as before', async () => {
    const { socket, room } = await binaryRoom();
    room.sendPose([NaN, 0, 0], [0, 0, 0, 1]);
    expect(socket.binarySent).toEqual([]);
    expect(socket.lastSent('broadcast')).toMatchObject({
      roomId: 'lobby',
      message: { type: 'pose_update' },
    });
  });

  it('falls back to JSON when the server did not take gallery.v2', async () => {
    FakeSocket.binaryServer = false;
    const { client, socket, room } = await binaryRoom();
    expect(socket.protocol).toBe('gallery');
    expect(client.poseChannel).toBe('json');
    room.sendPose([1, 2, 3], [0, 0, 0, 1]);
    expect(socket.binarySent).toEqual([]);
    expect(socket.lastSent('broadcast')).toMatchObject({
      roomId: 'lobby',
      message: { type: 'pose_update', data: { position: [1, 2, 3], rotation: [0, 0, 0, 1] } },
    });
    // Binary frames are not expected on a JSON connection: ignored.
    const poses: PoseEvent[] = [];
    room.on('pose', (pose) => poses.push(pose));
    socket.receiveBinary(serverFrame('lobby', [[2, 5, [1, 1, 1], [0, 0, 0, 1]]]));
    expect(poses).toEqual([]);
  });

  it('picks the channel again on every connection', async () => {
    const { client, socket, clock } = await binaryRoom({ random: () => 0 });
    FakeSocket.binaryServer = false;
    socket.drop(1006);
    clock.advance(0);
    await settle();
    FakeSocket.last.receive('connected', { userId: 'me' });
    expect(FakeSocket.last).not.toBe(socket);
    expect(client.poseChannel).toBe('json');
  });
});

describe('binaryPoses: receiving', () => {
  it('turns entries into the same pose and message events as JSON poses', async () => {
    const { client, socket, room } = await binaryRoom();
    const poses: PoseEvent[] = [];
    const messages: Array<ServerEventMap['message']> = [];
    room.on('pose', (pose) => poses.push(pose));
    client.on('message', (message) => messages.push(message));

    const position: Vec3 = [0.5, 1.75, -3];
    const rotation: Quat = [0, 0.5, 0, 0.5];
    socket.receive('message', {
      roomId: 'lobby',
      senderId: 'bob',
      message: {
        type: 'pose_update',
        senderId: 'bob',
        timestamp: 1000,
        data: { position, rotation },
      },
    });
    socket.receiveBinary(serverFrame('lobby', [[2, 1000, position, rotation]]));

    expect(poses).toHaveLength(2);
    expect(poses[1]).toEqual(poses[0]);
    expect(poses[1]).toMatchObject({ userId: 'bob', position, rotation, timestamp: 1000 });
    expect(messages[1]).toEqual(messages[0]);
  });

  it('gives an entry with timestamp 0 (a JSON sender gave none) no timestamp', async () => {
    const { socket, room } = await binaryRoom();
    const poses: PoseEvent[] = [];
    room.on('pose', (pose) => poses.push(pose));
    let now = 1000;
    const interpolator = new PoseInterpolator({ delayMs: 0, now: () => now });
    interpolator.follow(room);
    socket.receive('message', {
      roomId: 'lobby',
      senderId: 'bob',
      message: {
        type: 'pose_update',
        senderId: 'bob',
        data: { position: [1, 0, 0], rotation: [0, 0, 0, 1] },
      },
    });
    now += 33;
    socket.receiveBinary(serverFrame('lobby', [[2, 0, [2, 0, 0], [0, 0, 0, 1]]]));
    now += 33;
    socket.receiveBinary(serverFrame('lobby', [[2, 0, [3, 0, 0], [0, 0, 0, 1]]]));
    expect(poses.map((pose) => pose.timestamp)).toEqual([undefined, undefined, undefined]);
    // As its JSON twin, which has no timestamp.
    expect(poses[1].message).toEqual({ ...poses[0].message, data: poses[1].message.data });
    // Placed by arrival, a tick apart: the avatar moves on rather than stopping at the first.
    expect(interpolator.sample('bob', 1049.5)?.position[0]).toBeCloseTo(2.5, 10);
  });

  it('skips its own slot and slots it does not know; ignores rooms it is not in', async () => {
    const { socket, room } = await binaryRoom();
    const poses: PoseEvent[] = [];
    room.on('pose', (pose) => poses.push(pose));
    socket.receiveBinary(
      serverFrame('lobby', [
        [1, 10, [1, 0, 0], [0, 0, 0, 1]], // me
        [9, 11, [9, 0, 0], [0, 0, 0, 1]], // unknown: its user_joined is in flight
        [2, 12, [2, 0, 0], [0, 0, 0, 1]], // bob
      ]),
    );
    socket.receiveBinary(serverFrame('elsewhere', [[2, 13, [3, 0, 0], [0, 0, 0, 1]]]));
    socket.receiveBinary(new ArrayBuffer(3)); // not a frame
    expect(poses.map((pose) => [pose.userId, pose.position[0]])).toEqual([['bob', 2]]);
  });
});

describe('binaryPoses: the slot map', () => {
  it('follows user_joined, user_updated (keeping a slot it lacks) and user_left', async () => {
    const { socket, room } = await binaryRoom();
    const senders: string[] = [];
    room.on('pose', (pose) => senders.push(pose.userId));
    const poseOf = (slot: number) =>
      socket.receiveBinary(serverFrame('lobby', [[slot, 1, [0, 0, 0], [0, 0, 0, 1]]]));

    socket.receive('user_joined', { roomId: 'lobby', user: slotted('carol', 3) });
    poseOf(3);
    socket.receive('user_updated', {
      roomId: 'lobby',
      user: { ...user('carol'), connected: false },
    });
    expect(room.members.get('carol')).toMatchObject({ connected: false, slot: 3 });
    poseOf(3);
    socket.receive('user_left', { roomId: 'lobby', userId: 'carol' });
    poseOf(3);
    expect(room.userAt(3)).toBeUndefined();
    // A member that leaves and joins again gets a new slot; a slot number can come back (wrap).
    socket.receive('user_joined', { roomId: 'lobby', user: slotted('carol', 4) });
    socket.receive('user_joined', { roomId: 'lobby', user: slotted('dave', 3) });
    poseOf(3);
    poseOf(4);
    expect(senders).toEqual(['carol', 'carol', 'dave', 'carol']);
  });

  it('moves a member to the slot an update names', async () => {
    const { socket, room } = await binaryRoom();
    socket.receive('user_updated', { roomId: 'lobby', user: slotted('bob', 8) });
    expect(room.userAt(8)).toBe('bob');
    expect(room.userAt(2)).toBeUndefined();
  });

  it('is replaced by a snapshot: a join again or an unrecovered resume', async () => {
    const { client, socket, clock, room } = await binaryRoom({ random: () => 0 });
    socket.drop(1006);
    clock.advance(0);
    await settle();
    const again = FakeSocket.last;
    again.receive('connected', { userId: 'me', resumeToken: 'T2', resumed: true });
    const { requestId } = again.lastSent('resume');
    const users = [slotted('me', 1, 'host'), slotted('erin', 2)];
    again.receive('resumed', {
      requestId,
      rooms: [{ roomId: 'lobby', recovered: false, roomInfo: roomInfo('lobby', { users }) }],
      lost: [],
    });
    expect(client.joinedRooms.get('lobby')).toBe(room);
    expect(room.userAt(2)).toBe('erin');
    const senders: string[] = [];
    room.on('pose', (pose) => senders.push(pose.userId));
    again.receiveBinary(serverFrame('lobby', [[2, 1, [0, 0, 0], [0, 0, 0, 1]]]));
    expect(senders).toEqual(['erin']);
  });
});
