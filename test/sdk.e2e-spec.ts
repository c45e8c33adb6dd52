// The client SDK (client/) against the real server: what an application does with it, including a
// dropped connection that the SDK resumes by itself. The cluster project runs it too, with alice
// and bob on different instances (bob resumes on the instance he dropped from).
import { type GalleryClientOptions, type Room, type RoomEvents } from '../client/src/index.js';
import { useTestServer } from './support/fixtures.js';
import { nextEvent, RecordingWebSocket, useSdkClients } from './support/sdk-clients.js';

/** The next `event` of `room` that satisfies `accept`. */
const next = <K extends keyof RoomEvents>(
  room: Room,
  event: K,
  what: string,
  accept?: (payload: RoomEvents[K]) => boolean,
) => nextEvent<RoomEvents, K>(room, event, what, accept);

describe('client SDK against the server', () => {
  const fixture = useTestServer({ env: { RECONNECT_GRACE_MS: '5000' } });
  const connect = useSdkClients(fixture);

  /** alice creates and joins `sdk-room`, bob joins it as editor; both see each other. */
  const pair = async (bobOptions: Partial<GalleryClientOptions> = {}) => {
    const alice = await connect('alice', 0);
    const bob = await connect('bob', 1, bobOptions);
    expect(await alice.createRoom({ name: 'SDK room' }, 'sdk-room')).toBe('sdk-room');
    const aliceRoom = await alice.joinRoom('sdk-room', { name: 'Alice' });
    const bobSeen = next(aliceRoom, 'member', 'bob joining', (e) => e.type === 'joined');
    const bobRoom = await bob.joinRoom('sdk-room', { name: 'Bob', role: 'editor' });
    await bobSeen;
    return { alice, bob, aliceRoom, bobRoom };
  };

  it('connects, joins, and keeps state, poses and direct messages flowing', async () => {
    const { alice, aliceRoom, bobRoom } = await pair();
    expect(alice.state).toBe('open');
    expect([...aliceRoom.members.keys()].sort()).toEqual(['alice', 'bob']);
    expect(bobRoom.members.get('alice')?.role).toBe('host');

    const seenByBob = next(bobRoom, 'state', 'the annotation at bob');
    const update = await aliceRoom.updateState({
      ops: [{ op: 'add', collection: 'annotations', id: 'a1', item: { text: 'Look here' } }],
    });
    expect(update.version).toBe(1);
    expect(aliceRoom.state.annotations).toEqual([{ id: 'a1', text: 'Look here' }]);
    expect((await seenByBob).state).toEqual(aliceRoom.state);

    const pose = next(aliceRoom, 'pose', 'bob pose');
    bobRoom.sendPose([1, 1.7, 2], [0, 0, 0, 1]);
    expect(await pose).toMatchObject({
      userId: 'bob',
      position: [1, 1.7, 2],
      rotation: [0, 0, 0, 1],
    });

    const direct = next(bobRoom, 'message', 'the direct message');
    aliceRoom.sendMessage('bob', { type: 'chat_message', data: { text: 'psst' } });
    expect(await direct).toEqual({
      senderId: 'alice',
      message: { type: 'chat_message', data: { text: 'psst' } },
    });

    const patched = await bobRoom.updateState(
      { patch: { sceneUrl: 'a.glb' }, baseVersion: 0 },
      { retryOnStale: true },
    );
    expect(patched.version).toBe(2);
    await expect(
      aliceRoom.updateState({ patch: { sceneLoaded: true }, baseVersion: 0 }),
    ).rejects.toMatchObject({
      code: 'STALE_VERSION',
      currentVersion: 2,
    });
  });

  it('sends a direct message through the room it was sent from, not another they share', async () => {
    const { alice, bob, bobRoom } = await pair();
    // Both in a second room too; sdk-room is the first either joined.
    const aliceStudio = await alice.joinRoom('studio');
    const bobStudio = await bob.joinRoom('studio');
    const direct = next(bobStudio, 'message', 'the direct message in the studio');
    let inFirstRoom = false;
    bobRoom.on('message', () => (inFirstRoom = true));
    aliceStudio.sendMessage('bob', { type: 'chat_message', data: { text: 'here' } });
    expect(await direct).toEqual({
      senderId: 'alice',
      message: { type: 'chat_message', data: { text: 'here' } },
    });
    expect(inFirstRoom).toBe(false);
  });

  it('resumes by itself after a drop and gets exactly the events it missed', async () => {
    // Bob's reconnect waits 599 ms: long enough for alice to change things while he is away.
    const { aliceRoom, bob, bobRoom } = await pair({
      backoff: { minMs: 600, maxMs: 600 },
      random: () => 0.999,
    });
    const order: string[] = [];
    bob.on('resumed', ({ rooms }) => order.push(`resumed:${String(rooms[0]?.recovered)}`));
    bob.on('state_updated', ({ version }) => order.push(`state:${version}`));
    bob.on('message', ({ message }) => order.push(`message:${message.type}`));
    const states: string[] = [];
    bob.on('connectionState', ({ state }) => states.push(state));

    const away = next(
      aliceRoom,
      'member',
      'bob away',
      (e) => e.type === 'updated' && e.user.id === 'bob' && !e.user.connected,
    );
    RecordingWebSocket.sockets.find((socket) => socket.url.includes('userId=bob'))?.terminate();
    await away;
    expect(bobRoom.members.get('bob')?.connected).toBe(true); // bob's copy is stale while away

    await aliceRoom.updateState({ patch: { sceneUrl: 'missed.glb' }, baseVersion: 0 });
    aliceRoom.broadcast({ type: 'chat_message', data: { text: 'while you were out' } });
    const back = next(
      aliceRoom,
      'member',
      'bob back',
      (e) => e.type === 'updated' && e.user.id === 'bob' && e.user.connected,
    );
    const chat = next(bobRoom, 'message', 'the missed chat');

    await back;
    expect((await chat).message).toEqual({
      type: 'chat_message',
      data: { text: 'while you were out' },
    });
    expect(bobRoom.state.sceneUrl).toBe('missed.glb');
    expect(bobRoom.state.version).toBe(1);
    expect(order).toEqual(['resumed:true', 'state:1', 'message:chat_message']);
    expect(states).toEqual(['reconnecting', 'open']);
    expect(bob.joinedRooms.get('sdk-room')).toBe(bobRoom);
    expect(bobRoom.lastSeq).toBeGreaterThan(0);
  });
});
