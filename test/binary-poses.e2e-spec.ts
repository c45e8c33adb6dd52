import { RATE_LIMITS_OFF, useTestServer, type ServerFixture } from './support/fixtures.js';
import {
  clientPoseFrame,
  float32,
  readServerPoseFrame,
  type PoseEntry,
} from './support/binary-pose-frames.js';
import { clusterInstanceCount } from './support/cluster.js';
import { delay, until, type TestClient } from './support/test-client.js';

const V2 = { protocols: ['gallery.v2'] };

/** Every pose entry a binary client has received for `roomId`, oldest first. */
function entriesFor(client: TestClient, roomId: string): PoseEntry[] {
  return client.binaryFrames
    .map(readServerPoseFrame)
    .filter((frame) => frame.roomId === roomId)
    .flatMap((frame) => frame.entries);
}

/** The JSON `message` events of `senderId` a client has received. */
function jsonPosesFrom(client: TestClient, senderId: string) {
  return client.received
    .filter((message) => message.event === 'message')
    .map((message) => message.data as { roomId?: string; senderId: string; message: unknown })
    .filter((data) => data.senderId === senderId);
}

/** Joins everyone to `roomId` in order; answers each member's slot by userId. */
async function joinAll(roomId: string, clients: TestClient[]): Promise<Map<string, number>> {
  const slots = new Map<string, number>();
  for (const client of clients) {
    const info = await client.join(roomId);
    const own = info.users.find((user) => user.id === client.userId);
    slots.set(client.userId, own?.slot as number);
  }
  // Everyone has seen everyone join before poses flow.
  for (const [index, client] of clients.entries()) {
    for (let later = index + 1; later < clients.length; later++) {
      await client.next('user_joined');
    }
  }
  return slots;
}

const POSE = { timestamp: 1765000000123.5, position: [1.1, 1.7, -3.3], rotation: [0, 0.6, 0, 0.8] };

function describeBinaryChannel(fixture: ServerFixture) {
  it('answers gallery.v2 when offered, alone or beside gallery, and nothing new otherwise', async () => {
    const binary = await fixture.connect('v2-alone', V2);
    const both = await fixture.connect('v2-both', { protocols: ['gallery', 'gallery.v2'] });
    const plain = await fixture.connect('v1', { protocols: ['gallery'] });
    const none = await fixture.connect('none');
    expect(binary.socket.protocol).toBe('gallery.v2');
    expect(both.socket.protocol).toBe('gallery.v2');
    expect(plain.socket.protocol).toBe('gallery');
    expect(none.socket.protocol).toBe('');
  });

  it('gives every member a distinct slot in room_joined and user_joined', async () => {
    const alice = await fixture.connect('alice', V2);
    const bob = await fixture.connect('bob');
    const first = await alice.join('slots');
    const second = await bob.join('slots');
    const joined = await alice.next('user_joined');
    const aliceSlot = first.users[0].slot;
    const bobSlot = second.users.find((user) => user.id === 'bob')?.slot;
    expect(typeof aliceSlot).toBe('number');
    expect(typeof bobSlot).toBe('number');
    expect(bobSlot).not.toBe(aliceSlot);
    expect(joined.user.slot).toBe(bobSlot);
    expect(second.users.find((user) => user.id === 'alice')?.slot).toBe(aliceSlot);
  });

  it('relays poses both ways between binary and JSON members of one room', async () => {
    const alice = await fixture.connect('alice', V2);
    const bob = await fixture.connect('bob', V2);
    const carol = await fixture.connect('carol');
    const slots = await joinAll('mixed', [alice, bob, carol]);

    alice.sendRaw(clientPoseFrame('mixed', POSE), { binary: true });
    await until(() => entriesFor(bob, 'mixed').length > 0, 3000, 'alice pose at bob');
    await until(() => jsonPosesFrom(carol, 'alice').length > 0, 3000, 'alice pose at carol');
    expect(entriesFor(bob, 'mixed')).toEqual([
      {
        slot: slots.get('alice'),
        flags: 0,
        timestamp: POSE.timestamp,
        position: POSE.position.map(float32),
        rotation: POSE.rotation.map(float32),
      },
    ]);
    expect(jsonPosesFrom(carol, 'alice')).toEqual([
      {
        roomId: 'mixed',
        senderId: 'alice',
        message: {
          type: 'pose_update',
          senderId: 'alice',
          timestamp: POSE.timestamp,
          data: { position: POSE.position.map(float32), rotation: POSE.rotation.map(float32) },
        },
      },
    ]);

    carol.broadcast('mixed', {
      type: 'pose_update',
      timestamp: 42,
      data: { position: [5, 6, 7], rotation: [0, 0, 0, 1] },
    });
    for (const member of [alice, bob]) {
      await until(
        () => entriesFor(member, 'mixed').some((entry) => entry.slot === slots.get('carol')),
        3000,
        `carol pose at ${member.userId}`,
      );
      expect(entriesFor(member, 'mixed').find((e) => e.slot === slots.get('carol'))).toEqual({
        slot: slots.get('carol'),
        flags: 0,
        timestamp: 42,
        position: [5, 6, 7],
        rotation: [0, 0, 0, 1],
      });
      // The JSON pose did not reach binary members as JSON too.
      expect(jsonPosesFrom(member, 'carol')).toEqual([]);
    }
  });

  it('sends binary members as JSON what does not fit an entry, and keeps other events JSON', async () => {
    const alice = await fixture.connect('alice', V2);
    const carol = await fixture.connect('carol');
    await joinAll('odd', [alice, carol]);
    const rotation = [0, 0, 0, 1];
    const extraField = {
      type: 'pose_update',
      timestamp: 1,
      data: { position: [1, 2, 3], rotation, gesture: 'wave' },
    };
    const beyondFloat32 = { type: 'pose_update', data: { position: [1e39, 0, 0], rotation } };
    const chat = { type: 'chat', data: { text: 'hi' } };
    // One at a time: with ticks, a pose overtaken within its tick is rightly never sent.
    for (const [index, message] of [extraField, beyondFloat32, chat].entries()) {
      carol.broadcast('odd', message);
      await until(() => jsonPosesFrom(alice, 'carol').length > index, 3000, `JSON ${index}`);
    }
    expect(jsonPosesFrom(alice, 'carol').map((data) => data.message)).toEqual([
      extraField,
      beyondFloat32,
      chat,
    ]);
    expect(alice.binaryFrames).toEqual([]);
  });

  it('keeps a room’s poses in that room', async () => {
    const alice = await fixture.connect('alice', V2);
    const bob = await fixture.connect('bob', V2);
    const dave = await fixture.connect('dave', V2);
    await joinAll('room-a', [alice, bob]);
    await dave.join('room-b');
    await alice.join('room-b');
    await dave.next('user_joined');

    alice.sendRaw(clientPoseFrame('room-a', POSE), { binary: true });
    await until(() => entriesFor(bob, 'room-a').length > 0, 3000, 'the pose in room-a');
    await delay(100);
    expect(dave.binaryFrames).toEqual([]);
  });

  it('answers a malformed binary pose with INVALID_MESSAGE and a foreign room with NOT_IN_ROOM', async () => {
    const alice = await fixture.connect('alice', V2);
    const bob = await fixture.connect('bob');
    await alice.join('bad');
    await bob.join('not-mine');
    alice.sendRaw(clientPoseFrame('bad', POSE).subarray(0, 30), { binary: true });
    expect((await alice.next('error')).code).toBe('INVALID_MESSAGE');
    const notFinite = clientPoseFrame('bad', { ...POSE, position: [Number.NaN, 0, 0] });
    alice.sendRaw(notFinite, { binary: true });
    expect((await alice.next('error')).code).toBe('INVALID_MESSAGE');
    const wrongType = clientPoseFrame('bad', POSE);
    wrongType[0] = 1;
    alice.sendRaw(wrongType, { binary: true });
    expect((await alice.next('error')).code).toBe('INVALID_MESSAGE');
    alice.sendRaw(clientPoseFrame('not-mine', POSE), { binary: true });
    expect((await alice.next('error')).code).toBe('NOT_IN_ROOM');
    // Still served.
    alice.request('ping');
    await alice.next('pong');
  });

  it('sends the quantized form to gallery.v2q members and takes their quantized poses', async () => {
    const alice = await fixture.connect('alice', V2);
    const quinn = await fixture.connect('quinn', { protocols: ['gallery.v2', 'gallery.v2q'] });
    const carol = await fixture.connect('carol');
    expect(quinn.socket.protocol).toBe('gallery.v2q');
    const slots = await joinAll('quantized', [alice, quinn, carol]);

    alice.sendRaw(clientPoseFrame('quantized', POSE), { binary: true });
    await until(() => entriesFor(quinn, 'quantized').length > 0, 3000, 'alice pose at quinn');
    const [entry] = entriesFor(quinn, 'quantized');
    expect(quinn.binaryFrames[0][1]).toBe(1);
    expect(entry.slot).toBe(slots.get('alice'));
    expect(entry.timestamp).toBe(Math.floor(POSE.timestamp) % 2 ** 32);
    POSE.position.forEach((value, k) => {
      expect(Math.abs(entry.position[k] - value)).toBeLessThan(Math.abs(value) / 1024);
    });
    POSE.rotation.forEach((value, k) => expect(entry.rotation[k]).toBeCloseTo(value, 2));

    // quinn's own pose, quantized: 2.5 and -0.75 are exact in f16; the identity rotation.
    const frame = Buffer.alloc(20 + 16);
    frame[0] = 2;
    frame[1] = 1;
    frame.writeUInt16LE(1, 2);
    frame[8] = 'quantized'.length;
    frame.write('quantized', 9, 'latin1');
    frame.writeUInt16LE(0x4100, 22); // 2.5
    frame.writeUInt16LE(0xba00, 24); // -0.75
    frame.writeUInt16LE(0x0000, 26); // 0
    frame.writeUInt32LE(((3 << 30) | (512 << 20) | (512 << 10) | 512) >>> 0, 28);
    frame.writeUInt32LE(Date.now() % 2 ** 32, 32);
    quinn.sendRaw(frame, { binary: true });
    await until(() => jsonPosesFrom(carol, 'quinn').length > 0, 3000, 'quinn pose at carol');
    const json = jsonPosesFrom(carol, 'quinn')[0].message as {
      timestamp: number;
      data: { position: number[]; rotation: number[] };
    };
    expect(json.data.position).toEqual([2.5, -0.75, 0]);
    expect(json.data.rotation[3]).toBeCloseTo(1, 5);
    expect(Math.abs(json.timestamp - Date.now())).toBeLessThan(5000);
    await until(
      () => entriesFor(alice, 'quantized').some((e) => e.slot === slots.get('quinn')),
      3000,
      'quinn pose at alice',
    );
    const atAlice = entriesFor(alice, 'quantized').find((e) => e.slot === slots.get('quinn'));
    expect(atAlice?.position).toEqual([2.5, -0.75, 0]);
  });

  it('turns the channel on for a client without the subprotocol that sends hello', async () => {
    const alice = await fixture.connect('alice', V2);
    const hana = await fixture.connect('hana');
    const requestId = hana.request('hello', { capabilities: ['cursor', 'binary_poses'] });
    expect(await hana.next('hello')).toEqual({ requestId, capabilities: ['binary_poses'] });
    const slots = await joinAll('hello', [alice, hana]);

    alice.sendRaw(clientPoseFrame('hello', POSE), { binary: true });
    await until(() => entriesFor(hana, 'hello').length > 0, 3000, 'alice pose at hana');
    expect(entriesFor(hana, 'hello')[0].slot).toBe(slots.get('alice'));
    expect(jsonPosesFrom(hana, 'alice')).toEqual([]);

    hana.sendRaw(clientPoseFrame('hello', { ...POSE, timestamp: 7 }), { binary: true });
    await until(
      () => entriesFor(alice, 'hello').some((entry) => entry.slot === slots.get('hana')),
      3000,
      'hana pose at alice',
    );
    expect(entriesFor(alice, 'hello').find((e) => e.slot === slots.get('hana'))?.timestamp).toBe(7);
  });

  it('sends the quantized form to a client that says hello with binary_poses_quantized', async () => {
    const alice = await fixture.connect('alice', V2);
    const hana = await fixture.connect('hana');
    const requestId = hana.request('hello', { capabilities: ['binary_poses_quantized'] });
    expect(await hana.next('hello')).toEqual({
      requestId,
      capabilities: ['binary_poses', 'binary_poses_quantized'],
    });
    const slots = await joinAll('hello-q', [alice, hana]);

    alice.sendRaw(clientPoseFrame('hello-q', POSE), { binary: true });
    await until(() => entriesFor(hana, 'hello-q').length > 0, 3000, 'alice pose at hana');
    // Flags 1: the quantized form, as gallery.v2q members get it.
    expect(hana.binaryFrames[0][1]).toBe(1);
    const [entry] = entriesFor(hana, 'hello-q');
    expect(entry.slot).toBe(slots.get('alice'));
    POSE.position.forEach((value, k) => {
      expect(Math.abs(entry.position[k] - value)).toBeLessThan(Math.abs(value) / 1024);
    });
    // alice, on gallery.v2, still gets the full form of hana's poses.
    hana.sendRaw(clientPoseFrame('hello-q', { ...POSE, timestamp: 9 }), { binary: true });
    await until(
      () => entriesFor(alice, 'hello-q').some((e) => e.slot === slots.get('hana')),
      3000,
      'hana pose at alice',
    );
    expect(alice.binaryFrames.every((frame) => frame[1] === 0)).toBe(true);
    expect(entriesFor(alice, 'hello-q').find((e) => e.slot === slots.get('hana'))?.timestamp).toBe(
      9,
    );
  });

  it('answers hello with what is on, and refuses a malformed one', async () => {
    const carol = await fixture.connect('carol');
    carol.request('hello', { capabilities: ['cursor'] });
    expect((await carol.next('hello')).capabilities).toEqual([]);
    const binary = await fixture.connect('bob', V2);
    binary.request('hello', { capabilities: [] });
    expect((await binary.next('hello')).capabilities).toEqual(['binary_poses']);

    const tooMany = Array.from({ length: 17 }, (_, i) => `c${i}`);
    for (const capabilities of ['binary_poses', [42], tooMany, ['x'.repeat(65)], undefined]) {
      const requestId = carol.request('hello', { capabilities });
      const error = await carol.next('error');
      expect(error).toMatchObject({ code: 'VALIDATION_FAILED', requestId });
    }
    // None of them turned the channel on: a binary frame still closes.
    carol.sendRaw(clientPoseFrame('any', POSE), { binary: true });
    expect((await carol.waitForClose()).code).toBe(1003);
  });

  it('closes 1003 on a binary frame from a client that did not opt in', async () => {
    const carol = await fixture.connect('carol');
    await carol.join('plain');
    carol.sendRaw(clientPoseFrame('plain', POSE), { binary: true });
    expect((await carol.waitForClose()).code).toBe(1003);
  });
}

describe('binary pose channel (gallery.v2)', () => {
  const fixture = useTestServer({ env: RATE_LIMITS_OFF });
  describeBinaryChannel(fixture);
});

describe('binary pose channel with server ticks', () => {
  const TICK_MS = 150;
  const fixture = useTestServer({ env: { ...RATE_LIMITS_OFF, POSE_TICK_MS: String(TICK_MS) } });
  describeBinaryChannel(fixture);

  it("packs each sender's newest pose of a tick into one frame for the room", async () => {
    const clients = await Promise.all(
      ['alice', 'bob', 'carol', 'dave'].map((id) => fixture.connect(id, V2)),
    );
    const slots = await joinAll('ticked', clients);
    const [alice, bob, carol, dave] = clients;
    for (let n = 1; n <= 5; n++) {
      for (const sender of [alice, bob, carol]) {
        sender.sendRaw(clientPoseFrame('ticked', { ...POSE, position: [n, 0, 0] }), {
          binary: true,
        });
      }
    }
    const newest = (entries: PoseEntry[], userId: string) =>
      entries.filter((entry) => entry.slot === slots.get(userId)).at(-1)?.position[0];
    await until(
      () => ['alice', 'bob', 'carol'].every((id) => newest(entriesFor(dave, 'ticked'), id) === 5),
      5000,
      'every newest pose at dave',
    );
    const frames = dave.binaryFrames.map(readServerPoseFrame);
    if (clusterInstanceCount() === 0) {
      // Three senders in one tick: a frame holds several (on a cluster, the other instances'
      // ticks arrive through Redis at their own times).
      expect(Math.max(...frames.map((frame) => frame.entries.length))).toBeGreaterThan(1);
    }
    // Overtaken poses were not sent: far fewer than the 15 that came in.
    expect(frames.flatMap((frame) => frame.entries).length).toBeLessThanOrEqual(6);
    // A sender's own pose is in the room's frame, for it to skip.
    await until(
      () => newest(entriesFor(alice, 'ticked'), 'alice') === 5,
      5000,
      "alice's own pose in the shared frame",
    );
  });
});
