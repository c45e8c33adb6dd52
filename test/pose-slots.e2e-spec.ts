// The binary pose channel's slots and timestamps against the real server (docs/binary-poses.md):
// a pose from a membership that ended never shows under the next one, a JSON pose without a
// timestamp reaches binary members with the server's clock, and a pose for a room that does not
// exist is answered as documented.
import { RATE_LIMITS_OFF, useTestServer } from './support/fixtures.js';
import {
  clientPoseFrame,
  readServerPoseFrame,
  type PoseEntry,
} from './support/binary-pose-frames.js';
import { delay, until, type Received, type TestClient } from './support/test-client.js';

const V2 = { protocols: ['gallery.v2'] };
const V2Q = { protocols: ['gallery.v2q'] };
const ROTATION = [0, 0, 0, 1];

/** Every pose entry a binary client has received for `roomId`, oldest first. */
function entriesFor(client: TestClient, roomId: string): PoseEntry[] {
  return client.binaryFrames
    .map(readServerPoseFrame)
    .filter((frame) => frame.roomId === roomId)
    .flatMap((frame) => frame.entries);
}

/** A JSON `message` event's pose: its sender and x coordinate. */
function poseOf(message: Received): { senderId: string; x: number } | undefined {
  if (message.event !== 'message') {
    return undefined;
  }
  const data = message.data as { senderId: string; message: { data?: { position?: number[] } } };
  const x = data.message.data?.position?.[0];
  return x === undefined ? undefined : { senderId: data.senderId, x };
}

/** Sends a pose at x on the binary channel. */
function sendBinaryPose(client: TestClient, roomId: string, x: number): void {
  const frame = clientPoseFrame(roomId, { timestamp: 1, position: [x, 0, 0], rotation: ROTATION });
  client.sendRaw(frame, { binary: true });
}

/** Sends a pose at x as a JSON broadcast, with `fields` (a timestamp) besides type and data. */
function sendJsonPose(
  client: TestClient,
  roomId: string,
  x: number,
  fields: Record<string, unknown> = { timestamp: 1 },
): void {
  client.broadcast(roomId, {
    type: 'pose_update',
    ...fields,
    data: { position: [x, 0, 0], rotation: ROTATION },
  });
}

/** The slot `client` got in `roomId`, from its own room_joined. */
async function joinedSlot(client: TestClient, roomId: string): Promise<number> {
  const info = await client.join(roomId);
  return info.users.find((user) => user.id === client.userId)?.slot as number;
}

/** Joins everyone in order, each seeing every later one join; answers their slots. */
async function joinAll(roomId: string, clients: TestClient[]): Promise<number[]> {
  const slots: number[] = [];
  for (const client of clients) {
    slots.push(await joinedSlot(client, roomId));
  }
  for (const [index, client] of clients.entries()) {
    for (let later = index + 1; later < clients.length; later++) {
      await client.next('user_joined');
    }
  }
  return slots;
}

describe('pose slots (POSE_TICK_MS)', () => {
  // Long enough that a burst sent in one go lands within one tick.
  const TICK_MS = 150;
  const fixture = useTestServer({ env: { ...RATE_LIMITS_OFF, POSE_TICK_MS: String(TICK_MS) } });

  it('never sends a pose held from before a leave after the sender joined again', async () => {
    const [alice, dave, bob, carol] = await Promise.all([
      fixture.connect('alice', V2),
      fixture.connect('dave'),
      fixture.connect('bob'),
      fixture.connect('carol', V2),
    ]);
    await joinAll('rejoin', [alice, dave, bob, carol]);
    // In one go, so that the tick finds the new memberships: a pose, leave, join again.
    sendBinaryPose(alice, 'rejoin', 99);
    sendJsonPose(dave, 'rejoin', 98);
    for (const sender of [alice, dave]) {
      sender.request('leave_room', { roomId: 'rejoin' });
      sender.request('join_room', { roomId: 'rejoin' });
    }
    const rejoined = await Promise.all(
      [alice, dave].map(async (sender) => {
        const joined = await sender.next('room_joined');
        return joined.roomInfo.users.find((user) => user.id === sender.userId)?.slot as number;
      }),
    );
    await until(
      () => bob.received.filter((message) => message.event === 'user_joined').length === 2,
      3000,
      'both joins again at bob',
    );
    // Ticks for anything still held to come out, before newer poses would overtake it.
    await delay(2 * TICK_MS);
    sendBinaryPose(alice, 'rejoin', 7);
    sendJsonPose(dave, 'rejoin', 6);
    await until(
      () => entriesFor(carol, 'rejoin').filter((entry) => entry.position[0] < 10).length === 2,
      3000,
      'the new poses at carol',
    );
    await delay(2 * TICK_MS);

    // A pose of the old membership may have gone out before the leave (a tick in between), under
    // the old slot and before user_left; never under the new slot, or after the join again.
    const newSlots = new Set(rejoined);
    const stale = entriesFor(carol, 'rejoin').filter(
      (entry) => newSlots.has(entry.slot) && entry.position[0] > 10,
    );
    expect(stale).toEqual([]);
    for (const senderId of ['alice', 'dave']) {
      const events = bob.received;
      const rejoinedAt = events.findIndex(
        (message) =>
          message.event === 'user_joined' &&
          (message.data as { user: { id: string } }).user.id === senderId,
      );
      expect(rejoinedAt).toBeGreaterThanOrEqual(0);
      const after = events.slice(rejoinedAt).map(poseOf);
      expect(after.filter((pose) => pose?.senderId === senderId).map((pose) => pose?.x)).toEqual([
        senderId === 'alice' ? 7 : 6,
      ]);
    }
  });
});

describe('pose timestamps', () => {
  const fixture = useTestServer({ env: RATE_LIMITS_OFF });

  it("gives a JSON pose without a timestamp the server's clock in binary entries", async () => {
    const [jason, vicky, quinn] = await Promise.all([
      fixture.connect('jason'),
      fixture.connect('vicky', V2),
      fixture.connect('quinn', V2Q),
    ]);
    const [jasonSlot] = await joinAll('untimed', [jason, vicky, quinn]);
    const before = Date.now();
    sendJsonPose(jason, 'untimed', 1, {});
    await until(
      () => entriesFor(vicky, 'untimed').length > 0 && entriesFor(quinn, 'untimed').length > 0,
      3000,
      "jason's pose at vicky and quinn",
    );
    const after = Date.now();
    const [full] = entriesFor(vicky, 'untimed');
    expect(full.slot).toBe(jasonSlot);
    expect(full.timestamp).toBeGreaterThanOrEqual(before);
    expect(full.timestamp).toBeLessThanOrEqual(after);
    // The quantized form carries the low 32 bits of the ms.
    const [quantized] = entriesFor(quinn, 'untimed');
    const low = (ms: number) => Math.floor(ms) % 2 ** 32;
    expect(quantized.timestamp).toBeGreaterThanOrEqual(low(before));
    expect(quantized.timestamp).toBeLessThanOrEqual(low(after));
  });
});

describe('binary pose for a room that does not exist', () => {
  const fixture = useTestServer({ env: RATE_LIMITS_OFF });

  it('is answered ROOM_NOT_FOUND; one for a room the sender is not in, NOT_IN_ROOM', async () => {
    const [alice, bob] = await Promise.all([fixture.connect('alice', V2), fixture.connect('bob')]);
    await bob.join('elsewhere');
    for (const [roomId, code] of [
      ['nowhere', 'ROOM_NOT_FOUND'],
      ['elsewhere', 'NOT_IN_ROOM'],
    ]) {
      sendBinaryPose(alice, roomId, 1);
      expect((await alice.next('error')).code).toBe(code);
    }
  });
});
