// The client SDK (client/) against the real server, where a reconnect, a close or a pose crosses
// what the server does: close codes of a real CloseEvent, poses a JSON sender gave no timestamp,
// and what happens to seats across a drop (a room deleted meanwhile, a room left meanwhile, what
// an app sends as soon as it is open again). The cluster project runs it too.
import {
  GalleryClient,
  PoseInterpolator,
  type ClientEvents,
  type ConnectionStateEvent,
  type PoseEvent,
  type Room,
  type RoomEvents,
} from '../client/src/index.js';
import { useTestServer } from './support/fixtures.js';
import { nextEvent, RecordingWebSocket, useSdkClients } from './support/sdk-clients.js';
import { until } from './support/test-client.js';

/** Far longer than any test: a seat let go within a test was not let go by the grace. */
const GRACE_MS = 60_000;

const roomEvent = <K extends keyof RoomEvents>(
  room: Room,
  event: K,
  what: string,
  accept?: (payload: RoomEvents[K]) => boolean,
) => nextEvent<RoomEvents, K>(room, event, what, accept);

const clientState = (client: GalleryClient, state: ConnectionStateEvent['state']) =>
  nextEvent<ClientEvents, 'connectionState'>(
    client,
    'connectionState',
    state,
    (e) => e.state === state,
  );

/** Cuts `userId`'s connection without a close frame, as a network drop does: its seats are held. */
function cut(userId: string): void {
  const socket = RecordingWebSocket.sockets.find(
    (candidate) => candidate.url.includes(`userId=${userId}`) && candidate.readyState === 1,
  );
  if (!socket) {
    throw new Error(`no open socket of ${userId}`);
  }
  socket.terminate();
}

describe('client SDK against the server: closes, poses and seats across a drop', () => {
  const fixture = useTestServer({ env: { RECONNECT_GRACE_MS: String(GRACE_MS) } });
  const connect = useSdkClients(fixture);

  /**
   * bob hosts `review-room`, alice joins it; both see each other. alice dials again 599 ms after
   * a drop: time for bob to act while she is away.
   */
  const pair = async () => {
    const bob = await connect('bob', 0);
    const alice = await connect('alice', 1, {
      backoff: { minMs: 600, maxMs: 600 },
      random: () => 0.999,
    });
    const bobRoom = await bob.joinRoom('review-room', { name: 'Bob' });
    const aliceSeen = roomEvent(bobRoom, 'member', 'alice joining', (e) => e.type === 'joined');
    const aliceRoom = await alice.joinRoom('review-room', { name: 'Alice' });
    await aliceSeen;
    return { alice, bob, aliceRoom, bobRoom };
  };

  /** alice's connection drops; resolves once bob sees her seat held and alice is reconnecting. */
  const dropAlice = async (bobRoom: Room, alice: GalleryClient) => {
    const away = roomEvent(
      bobRoom,
      'member',
      'alice away',
      (e) => e.type === 'updated' && e.user.id === 'alice' && !e.user.connected,
    );
    const reconnecting = clientState(alice, 'reconnecting');
    cut('alice');
    await Promise.all([away, reconnecting]);
  };

  it('reports the code and reason of a real close (4000 Session replaced)', async () => {
    const first = await connect('carol', 0);
    const closed = clientState(first, 'closed');
    await connect('carol', 0);
    expect(await closed).toEqual({
      state: 'closed',
      previous: 'open',
      code: 4000,
      reason: 'Session replaced',
    });
  });

  it('moves the avatar of a JSON sender giving no timestamps, on the binary channel', async () => {
    const bob = await connect('bob', 0, { binaryPoses: true });
    const carol = await connect('carol', 1);
    expect(bob.poseChannel).toBe('binary');
    const bobRoom = await bob.joinRoom('pose-room');
    const carolSeen = roomEvent(bobRoom, 'member', 'carol joining', (e) => e.type === 'joined');
    const carolRoom = await carol.joinRoom('pose-room');
    await carolSeen;
    // Sub-millisecond arrival times: poses placed by arrival must not share one.
    const poses = new PoseInterpolator({ delayMs: 0, now: () => performance.now() });
    poses.follow(bobRoom);
    const received: PoseEvent[] = [];
    bobRoom.on('pose', (pose) => received.push(pose));
    for (const x of [1, 2, 3]) {
      const arrived = roomEvent(bobRoom, 'pose', `pose ${x}`, (pose) => pose.position[0] === x);
      carolRoom.broadcast({
        type: 'pose_update',
        data: { position: [x, 1.7, 0], rotation: [0, 0, 0, 1] },
      });
      await arrived;
      // A server that stamps poses does so in whole ms, before they arrive: the next one is sent
      // in a later ms, or it would be no newer than this one.
      const arrivedAt = Date.now();
      await until(() => Date.now() > arrivedAt, 1000, 'the next millisecond');
    }
    // A server that writes 0 for the timestamp it was not given (client/src/binary-poses.spec.ts
    // covers that one) or that stamps its own time: either way no 0 reaches the app.
    expect(received.map((pose) => pose.timestamp).filter((t) => t === 0)).toEqual([]);
    expect(poses.sample('carol', performance.now() + 1000)?.position[0]).toBe(3);
  });

  it('closes a room deleted while away as lost, without creating it again', async () => {
    const { alice, aliceRoom, bobRoom } = await pair();
    await dropAlice(bobRoom, alice);
    await bobRoom.delete();
    const closed = await roomEvent(aliceRoom, 'closed', "alice's room closed");
    expect(closed.reason).toBe('lost');
    expect(alice.joinedRooms.has('review-room')).toBe(false);
    // A round trip: anything alice sent before it (a join) has been handled.
    await alice.ping();
    const carol = await connect('carol', 2);
    const carolRoom = await carol.joinRoom('review-room');
    expect([...carolRoom.members.keys()]).toEqual(['carol']);
  });

  it('sends what the app sends on open after the resume, so its seat is back for it', async () => {
    const { alice, aliceRoom, bobRoom } = await pair();
    const errors: string[] = [];
    alice.on('error', ({ code }) => errors.push(code));
    await dropAlice(bobRoom, alice);
    alice.on('connectionState', ({ state }) => {
      if (state === 'open') {
        aliceRoom.broadcast({ type: 'chat', data: { text: 'back' } });
      }
    });
    const chat = await roomEvent(bobRoom, 'message', 'the chat sent on open');
    expect(chat).toEqual({ senderId: 'alice', message: { type: 'chat', data: { text: 'back' } } });
    expect(errors).toEqual([]);
  });

  it('lets a room left while reconnecting go on the server once connected again', async () => {
    const { alice, aliceRoom, bobRoom } = await pair();
    await dropAlice(bobRoom, alice);
    const left = roomEvent(bobRoom, 'member', 'alice leaving', (e) => e.type === 'left');
    await expect(aliceRoom.leave()).resolves.toBeUndefined();
    expect(aliceRoom.closed).toBe('left');
    // Well before the grace (60 s) would have let the seat go.
    expect(await left).toMatchObject({ type: 'left', userId: 'alice' });
    expect(alice.state).toBe('open');
    expect([...bobRoom.members.keys()]).toEqual(['bob']);
  });
});
