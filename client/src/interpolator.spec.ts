import { blend, PoseInterpolator } from './interpolator.js';
import type { Quat, Vec3 } from './room.js';
import { FakeSocket, joinRoom, openClient, roomInfo, user } from './testing/fakes.js';

const IDENTITY: Quat = [0, 0, 0, 1];
/** 90° about y. */
const YAW_90: Quat = [0, Math.SQRT1_2, 0, Math.SQRT1_2];

const norm = (q: number[]) => Math.hypot(...q);

function pose(x: number, timestamp?: number, rotation: Quat = IDENTITY) {
  return { position: [x, 0, 0] as Vec3, rotation, timestamp };
}

describe('PoseInterpolator', () => {
  it('renders 66 ms (2 ticks of 33) behind by default, lerping between the poses around that', () => {
    const poses = new PoseInterpolator();
    // Sent 1000 and 1033 by the sender's clock, arriving 20 ms later by ours (clock 5000).
    poses.push('bob', pose(0, 1000), 5020);
    poses.push('bob', pose(3.3, 1033), 5053);
    // Shown at 5086 - 66 = 5020 by our clock: exactly the first pose.
    expect(poses.sample('bob', 5086)?.position).toEqual([0, 0, 0]);
    // Midway: 5036.5 - 5020 = 16.5 of 33 ms.
    expect(poses.sample('bob', 5102.5)?.position[0]).toBeCloseTo(1.65, 10);
    expect(poses.sample('bob', 5119)?.position[0]).toBeCloseTo(3.3, 10);
  });

  it('places poses by sender timestamps, moved by the least arrival delay seen', () => {
    const poses = new PoseInterpolator({ delayMs: 50 });
    poses.push('bob', pose(0, 1000), 1125); // 125 ms late
    poses.push('bob', pose(1, 1033), 1140); // 107 ms late
    poses.push('bob', pose(2, 1066), 1166); // 100 ms late: the least delay seen
    // 1150 - 50 - 100 = sender time 1000; 16.5 ms later, halfway to the next pose.
    expect(poses.sample('bob', 1150)?.position[0]).toBe(0);
    expect(poses.sample('bob', 1166.5)?.position[0]).toBeCloseTo(0.5, 10);
  });

  it('keeps the shown time going forward and close to the truth under jitter', () => {
    // A pose every 33 ms, 30 ms + 0..40 ms late, in order (TCP); drawn at 60 frames a second.
    // The sender's clock is 5e6 ms off ours; x is the sender's time since its first pose.
    let seed = 1;
    const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    const arrivals: Array<{ sent: number; at: number }> = [];
    for (let sent = 0, at = 0; sent <= 10_000; sent += 33) {
      at = Math.max(at, sent + 30 + random() * 40);
      arrivals.push({ sent, at });
    }
    const poses = new PoseInterpolator({ tickMs: 33 });
    let shown = -Infinity;
    let worst = 0;
    for (let now = 0, next = 0; now <= 10_000; now += 1000 / 60) {
      for (; next < arrivals.length && arrivals[next].at <= now; next++) {
        const { sent, at } = arrivals[next];
        poses.push('bob', pose(sent, 5e6 + sent), at);
      }
      const x = poses.sample('bob', now)?.position[0] ?? -Infinity;
      expect(x).toBeGreaterThanOrEqual(shown);
      shown = x;
      if (now > 500) {
        // 66 ms behind the least delay (30 ms): each pose's sender time shown at now - 96.
        worst = Math.max(worst, Math.abs(x - (now - 96)));
      }
    }
    expect(worst).toBeLessThan(20); // within a tick; 35 ms when the offset followed the jitter
  });

  it('follows a route that got slower, by 1 % of the time passed', () => {
    const poses = new PoseInterpolator({ delayMs: 50 });
    let shown = -Infinity;
    let x = 0;
    for (let sent = 0; sent <= 20_000; sent += 10) {
      const at = sent + (sent < 1000 ? 100 : 200);
      poses.push('bob', pose(sent, 5e6 + sent), at);
      x = poses.sample('bob', at)?.position[0] ?? -Infinity;
      expect(x).toBeGreaterThanOrEqual(shown);
      shown = x;
    }
    // 100 ms to make up at 10 ms a second: caught up 10 s after the change, and shown since then
    // 50 ms behind the newest pose again, not stuck at it.
    expect(x).toBeCloseTo(19_950, 5);
  });

  it('never shows a time earlier than one it has shown', () => {
    const poses = new PoseInterpolator({ delayMs: 0 });
    poses.push('bob', pose(0, 1000), 1100);
    poses.push('bob', pose(10, 1010), 1110);
    expect(poses.sample('bob', 1105)?.position[0]).toBe(5);
    // 140 ms late after 50 ms without poses: the offset grows by 0.5 ms, which the clock did not.
    poses.push('bob', pose(20, 1020), 1160);
    expect(poses.sample('bob', 1105)?.position[0]).toBe(5);
  });

  it('uses arrival times for poses without a timestamp, and a delay of its own', () => {
    const poses = new PoseInterpolator({ tickMs: 50 }); // delay 100
    poses.push('bob', pose(10), 1000);
    poses.push('bob', pose(20), 1040);
    expect(poses.sample('bob', 1125)?.position[0]).toBeCloseTo(16.25, 10);
  });

  it('clamps at the ends: holds the first before it and the last after it', () => {
    const poses = new PoseInterpolator({ delayMs: 0 });
    expect(poses.sample('bob', 0)).toBeUndefined();
    poses.push('bob', pose(1, 100), 100);
    poses.push('bob', pose(2, 200), 200);
    expect(poses.sample('bob', 50)?.position).toEqual([1, 0, 0]);
    expect(poses.sample('bob', 10_000)?.position).toEqual([2, 0, 0]);
  });

  it('carries the last motion on for at most maxExtrapolationMs, then holds', () => {
    const poses = new PoseInterpolator({ delayMs: 0, maxExtrapolationMs: 50 });
    poses.push('bob', pose(0, 0), 0);
    poses.push('bob', pose(1, 100), 100);
    expect(poses.sample('bob', 120)?.position[0]).toBeCloseTo(1.2, 10);
    expect(poses.sample('bob', 150)?.position[0]).toBeCloseTo(1.5, 10);
    expect(poses.sample('bob', 1000)?.position[0]).toBeCloseTo(1.5, 10);
  });

  it('ignores a pose older than the newest it has', () => {
    const poses = new PoseInterpolator({ delayMs: 0 });
    poses.push('bob', pose(5, 200), 200);
    poses.push('bob', pose(9, 150), 210);
    poses.push('bob', pose(9, 200), 210);
    expect(poses.sample('bob', 300)?.position[0]).toBe(5);
  });

  it('keeps at most bufferSize poses and forgets members', () => {
    const poses = new PoseInterpolator({ delayMs: 0, bufferSize: 3 });
    for (let t = 0; t < 10; t++) {
      poses.push('bob', pose(t, t * 10), t * 10);
    }
    expect(poses.sample('bob', 0)?.position[0]).toBe(7); // 0..6 were dropped
    poses.remove('bob');
    expect(poses.sample('bob', 100)).toBeUndefined();
  });

  it('follows a room: its poses in, members that leave out', async () => {
    FakeSocket.instances = [];
    const { client, socket } = await openClient();
    const room = await joinRoom(
      client,
      socket,
      roomInfo('r', { users: [user('me'), user('bob')] }),
    );
    let now = 1000;
    const poses = new PoseInterpolator({ delayMs: 0, now: () => now });
    const stop = poses.follow(room);
    socket.receive('message', {
      roomId: 'r',
      senderId: 'bob',
      message: {
        type: 'pose_update',
        timestamp: 1,
        data: { position: [4, 5, 6], rotation: IDENTITY },
      },
    });
    now = 2000;
    expect(poses.sample('bob')?.position).toEqual([4, 5, 6]);
    socket.receive('user_left', { roomId: 'r', userId: 'bob' });
    expect(poses.sample('bob')).toBeUndefined();
    // A snapshot without a member forgets it too.
    poses.push('carol', pose(1, 1));
    poses.push('me', pose(2, 1));
    const { requestId } = socket.lastSent('join_room');
    socket.receive('room_joined', { requestId, roomInfo: roomInfo('r', { users: [user('me')] }) });
    expect(poses.sample('carol')).toBeUndefined();
    expect(poses.sample('me')?.position[0]).toBe(2);
    stop();
    socket.receive('message', {
      roomId: 'r',
      senderId: 'me',
      message: {
        type: 'pose_update',
        timestamp: 5,
        data: { position: [7, 7, 7], rotation: IDENTITY },
      },
    });
    expect(poses.sample('me')?.position[0]).toBe(2); // stopped: no longer fed
  });
});

describe('blend', () => {
  it('nlerps rotations to unit quaternions: halfway to 90° is 45°', () => {
    const half = blend(
      { position: [0, 0, 0], rotation: IDENTITY },
      { position: [2, 4, 6], rotation: YAW_90 },
      0.5,
    );
    expect(half.position).toEqual([1, 2, 3]);
    const [x, y, z, w] = half.rotation;
    expect(norm(half.rotation)).toBeCloseTo(1, 12);
    expect([x, z]).toEqual([0, 0]);
    // 45° about y: (0, sin 22.5°, 0, cos 22.5°). The midpoint is exact for nlerp.
    expect(y).toBeCloseTo(Math.sin(Math.PI / 8), 12);
    expect(w).toBeCloseTo(Math.cos(Math.PI / 8), 12);
  });

  it('stays normalized all along, from unnormalized float32 input too', () => {
    const from = { position: [0, 0, 0] as Vec3, rotation: [0.1, 0.2, 0.3, 0.9] as Quat };
    const to = {
      position: [0, 0, 0] as Vec3,
      rotation: [Math.fround(0.7), 0, 0, Math.fround(0.7)] as Quat,
    };
    for (const k of [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1]) {
      expect(norm(blend(from, to, k).rotation)).toBeCloseTo(1, 12);
    }
  });

  it('takes the shorter arc: -q is the same rotation as q', () => {
    const flipped: Quat = [0, -Math.SQRT1_2, 0, -Math.SQRT1_2]; // YAW_90, negated
    const half = blend(
      { position: [0, 0, 0], rotation: IDENTITY },
      { position: [0, 0, 0], rotation: flipped },
      0.5,
    );
    // Without the flip the sum would pass near zero and come out as a -135° turn; with it, +45°.
    expect(half.rotation[1]).toBeCloseTo(Math.sin(Math.PI / 8), 12);
    expect(half.rotation[3]).toBeCloseTo(Math.cos(Math.PI / 8), 12);
    // At the end, the rotation equals the target up to sign.
    const end = blend(
      { position: [0, 0, 0], rotation: IDENTITY },
      { position: [0, 0, 0], rotation: flipped },
      1,
    );
    expect(end.rotation[1]).toBeCloseTo(Math.SQRT1_2, 12);
    expect(end.rotation[3]).toBeCloseTo(Math.SQRT1_2, 12);
  });
});
