import type { PoseEvent, RoomMessageEvent } from './room.js';
import { FakeSocket, joinRoom, openClient, roomInfo, settle, user } from './testing/fakes.js';

beforeEach(() => {
  FakeSocket.instances = [];
});

async function inRoom(options = {}) {
  const opened = await openClient(options);
  const room = await joinRoom(opened.client, opened.socket, roomInfo('gallery', { version: 2 }));
  opened.socket.sent.length = 0;
  return { ...opened, room };
}

describe('Room state', () => {
  it('applies patches and ops from state_updated and ignores versions it already has', async () => {
    const { socket, room } = await inRoom();
    const versions: number[] = [];
    room.on('state', ({ state }) => versions.push(state.version));
    const update = (version: number, rest: object) =>
      socket.receive('state_updated', { roomId: 'gallery', version, updatedBy: 'bob', ...rest });
    update(3, { ops: [{ op: 'add', collection: 'annotations', id: 'a', item: { n: 1 } }] });
    update(4, { ops: [{ op: 'add', collection: 'annotations', id: 'b', item: { n: 2 } }] });
    update(5, { ops: [{ op: 'update', collection: 'annotations', id: 'a', item: { m: 3 } }] });
    update(6, { ops: [{ op: 'remove', collection: 'annotations', id: 'b' }] });
    update(7, { patch: { sceneUrl: 'x.glb', sceneLoaded: true } });
    update(6, { patch: { sceneUrl: 'old.glb' } });
    expect(room.state).toMatchObject({
      version: 7,
      sceneUrl: 'x.glb',
      sceneLoaded: true,
      annotations: [{ id: 'a', n: 1, m: 3 }],
    });
    expect(versions).toEqual([3, 4, 5, 6, 7]);
  });

  it('fetches the whole state when a version is missing', async () => {
    const { socket, room } = await inRoom();
    socket.receive('state_updated', {
      roomId: 'gallery',
      version: 4,
      patch: { sceneLoaded: true },
      updatedBy: 'bob',
    });
    expect(room.state.version).toBe(2);
    const { requestId, roomId } = socket.lastSent('get_state');
    expect(roomId).toBe('gallery');
    const fresh = { ...roomInfo('gallery').state, version: 4, sceneLoaded: true };
    socket.receive('state', { requestId, roomId: 'gallery', version: 4, state: fresh });
    expect(room.state).toEqual(fresh);
  });

  it('updateState sends the room version as baseVersion and resolves with it applied', async () => {
    const { socket, room } = await inRoom();
    const updated = room.updateState({ patch: { sceneUrl: 'a.glb' } });
    const sent = socket.lastSent('update_state');
    expect(sent).toMatchObject({ roomId: 'gallery', baseVersion: 2, patch: { sceneUrl: 'a.glb' } });
    socket.receive('state_updated', {
      requestId: sent.requestId,
      roomId: 'gallery',
      version: 3,
      patch: { sceneUrl: 'a.glb' },
      updatedBy: 'me',
    });
    await expect(updated).resolves.toMatchObject({ version: 3 });
    expect(room.state.sceneUrl).toBe('a.glb');
  });

  it('retries on STALE_VERSION with the current version when asked to', async () => {
    const { socket, room } = await inRoom();
    const updated = room.updateState({ patch: { sceneLoaded: true } }, { retryOnStale: true });
    const first = socket.lastSent('update_state');
    socket.receive('error', {
      code: 'STALE_VERSION',
      message: 'stale',
      currentVersion: 5,
      requestId: first.requestId,
    });
    await settle();
    const second = socket.lastSent('update_state');
    expect(second.requestId).not.toBe(first.requestId);
    expect(second.baseVersion).toBe(5);
    socket.receive('state_updated', {
      requestId: second.requestId,
      roomId: 'gallery',
      version: 6,
      patch: { sceneLoaded: true },
      updatedBy: 'me',
    });
    await expect(updated).resolves.toMatchObject({ version: 6 });
  });

  it('rejects with STALE_VERSION without retryOnStale', async () => {
    const { socket, room } = await inRoom();
    const updated = room.updateState({ patch: { sceneLoaded: true }, baseVersion: 1 });
    const sent = socket.lastSent('update_state');
    expect(sent.baseVersion).toBe(1);
    socket.receive('error', {
      code: 'STALE_VERSION',
      message: 'stale',
      currentVersion: 2,
      requestId: sent.requestId,
    });
    await expect(updated).rejects.toMatchObject({ code: 'STALE_VERSION', currentVersion: 2 });
    expect(socket.sent.filter((frame) => frame.action === 'update_state')).toHaveLength(1);
  });
});

describe('Room members and messages', () => {
  it('keeps members current from user_joined, user_updated and user_left', async () => {
    const { socket, room } = await inRoom();
    const events: string[] = [];
    room.on('member', (event) => events.push(event.type));
    socket.receive('user_joined', { roomId: 'gallery', user: user('bob') });
    socket.receive('user_updated', {
      roomId: 'gallery',
      user: { ...user('bob'), connected: false },
    });
    expect(room.members.get('bob')?.connected).toBe(false);
    socket.receive('user_left', { roomId: 'gallery', userId: 'bob' });
    expect([...room.members.keys()]).toEqual(['me']);
    expect(events).toEqual(['joined', 'updated', 'left']);
  });

  it('tells poses from other messages', async () => {
    const { socket, room } = await inRoom();
    const poses: PoseEvent[] = [];
    const messages: RoomMessageEvent[] = [];
    room.on('pose', (pose) => poses.push(pose));
    room.on('message', (message) => messages.push(message));
    const pose = { position: [1, 2, 3], rotation: [0, 0, 0, 1] };
    socket.receive('message', {
      roomId: 'gallery',
      senderId: 'bob',
      message: { type: 'pose_update', timestamp: 9, data: pose },
    });
    socket.receive('message', {
      roomId: 'gallery',
      senderId: 'bob',
      message: { type: 'chat', data: { text: 'hi' } },
    });
    expect(poses).toMatchObject([{ userId: 'bob', ...pose, timestamp: 9 }]);
    expect(messages).toEqual([
      { senderId: 'bob', message: { type: 'chat', data: { text: 'hi' } } },
    ]);
  });

  it('sends broadcasts and direct messages without waiting for a reply', async () => {
    const { socket, room } = await inRoom();
    room.broadcast({ type: 'chat', data: { text: 'all' } });
    room.sendMessage('bob', { type: 'chat', data: { text: 'you' } });
    expect(socket.sent).toEqual([
      { action: 'broadcast', roomId: 'gallery', message: { type: 'chat', data: { text: 'all' } } },
      {
        action: 'send_message',
        targetUserId: 'bob',
        roomId: 'gallery',
        message: { type: 'chat', data: { text: 'you' } },
      },
    ]);
  });

  it('leaves: sends leave_room, then stops following the room', async () => {
    const { client, socket, room } = await inRoom();
    const left = room.leave();
    socket.receive('room_left', {
      requestId: socket.lastSent('leave_room').requestId,
      roomId: 'gallery',
    });
    await left;
    expect(room.closed).toBe('left');
    expect(client.joinedRooms.size).toBe(0);
    socket.receive('user_joined', { roomId: 'gallery', user: user('late') });
    expect(room.members.has('late')).toBe(false);
  });
});

describe('Room.sendPose', () => {
  const poseFrames = (socket: FakeSocket) =>
    socket.sent.filter((frame) => (frame.message as { type?: string })?.type === 'pose_update');

  it('keeps to posesPerSecond: a pose too soon waits, replaced by newer ones', async () => {
    const { socket, room, clock } = await inRoom({ posesPerSecond: 10 });
    room.sendPose([1, 0, 0], [0, 0, 0, 1]);
    room.sendPose([2, 0, 0], [0, 0, 0, 1]);
    room.sendPose([3, 0, 0], [0, 0, 0, 1]);
    expect(poseFrames(socket)).toHaveLength(1);
    clock.advance(99);
    expect(poseFrames(socket)).toHaveLength(1);
    clock.advance(1);
    const sent = poseFrames(socket).map(
      (frame) => (frame.message as { data: { position: number[] } }).data.position[0],
    );
    expect(sent).toEqual([1, 3]);
    clock.advance(1000);
    expect(poseFrames(socket)).toHaveLength(2);
  });

  it('sends at most the default 60 a second', async () => {
    const { socket, room, clock } = await inRoom();
    for (let ms = 0; ms < 1000; ms += 5) {
      room.sendPose([ms, 0, 0], [0, 0, 0, 1]);
      clock.advance(5);
    }
    expect(poseFrames(socket).length).toBeLessThanOrEqual(61);
    expect(poseFrames(socket).length).toBeGreaterThanOrEqual(59);
  });

  it('drops a waiting pose when the connection drops', async () => {
    const { socket, room, clock } = await inRoom({ posesPerSecond: 10 });
    room.sendPose([1, 0, 0], [0, 0, 0, 1]);
    room.sendPose([2, 0, 0], [0, 0, 0, 1]);
    socket.drop(1006);
    clock.advance(100);
    expect(poseFrames(socket)).toHaveLength(1);
  });
});
