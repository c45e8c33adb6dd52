import type { GalleryClient } from './client.js';
import type { Room } from './room.js';
import {
  dropAndRedial,
  FakeSocket,
  joinRoom,
  openClient,
  roomInfo,
  settle,
  user,
  type FakeClock,
} from './testing/fakes.js';

beforeEach(() => {
  FakeSocket.instances = [];
});

describe('resume positions', () => {
  let client: GalleryClient;
  let socket: FakeSocket;
  let clock: FakeClock;
  let room: Room;

  beforeEach(async () => {
    ({ client, socket, clock } = await openClient({ random: () => 0 }));
    room = await joinRoom(client, socket, roomInfo('gallery', { epoch: 'E', seq: 2 }));
  });

  it('starts at room_joined epoch and seq and keeps the highest seq of the room events', () => {
    expect(room.position()).toEqual({ roomId: 'gallery', epoch: 'E', lastSeq: 2 });
    socket.receive('user_joined', { roomId: 'gallery', user: user('bob'), seq: 5 });
    socket.receive('message', {
      roomId: 'gallery',
      senderId: 'bob',
      message: { type: 'chat' },
      seq: 4, // held back during a join: older than what the room has seen
    });
    socket.receive('user_joined', { roomId: 'other', user: user('carol'), seq: 40 });
    expect(room.lastSeq).toBe(5);
  });

  it('counts a direct message without roomId for the only room', () => {
    socket.receive('message', { senderId: 'bob', message: { type: 'chat' }, seq: 9 });
    expect(room.lastSeq).toBe(9);
  });

  it('reconnects with ?resume= and sends resume with every room position', async () => {
    socket.receive('state_updated', {
      roomId: 'gallery',
      version: 1,
      patch: { sceneLoaded: true },
      updatedBy: 'bob',
      seq: 3,
    });
    const next = await dropAndRedial(socket, clock);
    expect(next.query.get('resume')).toBe('T1');
    next.receive('connected', { userId: 'me', resumeToken: 'T2', resumed: true });
    expect(next.lastSent('resume')).toMatchObject({
      rooms: [{ roomId: 'gallery', epoch: 'E', lastSeq: 3 }],
    });
    expect(client.state).toBe('open');
  });

  it('applies the events replayed after a recovered resume, in order', async () => {
    const next = await dropAndRedial(socket, clock);
    next.receive('connected', { userId: 'me', resumeToken: 'T2', resumed: true });
    const { requestId } = next.lastSent('resume');
    const members: string[] = [];
    room.on('member', (event) => members.push(event.type));
    next.receive('resumed', {
      requestId,
      rooms: [{ roomId: 'gallery', recovered: true, epoch: 'E', seq: 6 }],
      lost: [],
    });
    next.receive('user_joined', { roomId: 'gallery', user: user('bob'), seq: 3 });
    next.receive('state_updated', {
      roomId: 'gallery',
      version: 1,
      ops: [{ op: 'add', collection: 'annotations', id: 'a1', item: { text: 'hi' } }],
      updatedBy: 'bob',
      seq: 4,
    });
    next.receive('user_updated', { roomId: 'gallery', user: user('bob', 'viewer'), seq: 6 });
    expect(room.state.version).toBe(1);
    expect(room.state.annotations).toEqual([{ id: 'a1', text: 'hi' }]);
    expect(room.members.get('bob')?.role).toBe('viewer');
    expect(members).toEqual(['joined', 'updated']);
    expect(room.position()).toEqual({ roomId: 'gallery', epoch: 'E', lastSeq: 6 });
    expect(next.sent.map((frame) => frame.action)).toEqual(['resume']);
    // The next drop resumes from there, with the newest token.
    const third = await dropAndRedial(next, clock);
    expect(third.query.get('resume')).toBe('T2');
  });

  it('replaces state and members with the snapshot of an unrecovered room', async () => {
    const next = await dropAndRedial(socket, clock);
    next.receive('connected', { userId: 'me', resumeToken: 'T2', resumed: true });
    const snapshot = roomInfo('gallery', {
      users: [user('me', 'host'), user('dora')],
      version: 7,
      epoch: 'E2',
      seq: 1,
    });
    next.receive('resumed', {
      requestId: next.lastSent('resume').requestId,
      rooms: [{ roomId: 'gallery', recovered: false, roomInfo: snapshot }],
      lost: [],
    });
    expect(room.state.version).toBe(7);
    expect([...room.members.keys()]).toEqual(['me', 'dora']);
    expect(room.position()).toEqual({ roomId: 'gallery', epoch: 'E2', lastSeq: 1 });
  });

  it('closes a lost room (kicked, or deleted meanwhile) without joining it again', async () => {
    const closed: string[] = [];
    room.on('closed', ({ reason }) => closed.push(reason));
    const next = await dropAndRedial(socket, clock);
    next.receive('connected', { userId: 'me', resumeToken: 'T2', resumed: true });
    next.receive('resumed', {
      requestId: next.lastSent('resume').requestId,
      rooms: [],
      lost: ['gallery'],
    });
    await settle();
    expect(closed).toEqual(['lost']);
    expect(client.joinedRooms.size).toBe(0);
    // A join_room would create a deleted room again, with this client as its host.
    expect(next.sent.map((frame) => frame.action)).toEqual(['resume']);
  });

  it('sends resume before what the app sends when it hears the client is open again', async () => {
    client.on('connectionState', ({ state }) => {
      if (state === 'open') {
        room.broadcast({ type: 'chat', data: { text: 'back' } });
      }
    });
    const next = await dropAndRedial(socket, clock);
    next.receive('connected', { userId: 'me', resumeToken: 'T2', resumed: true });
    // The server handles a connection's messages in order: the seat is back for the broadcast.
    expect(next.sent.map((frame) => frame.action)).toEqual(['resume', 'broadcast']);
  });

  it('joins again before what the app sends when it hears the client is open again', async () => {
    client.on('connectionState', ({ state }) => {
      if (state === 'open') {
        room.broadcast({ type: 'chat', data: { text: 'back' } });
      }
    });
    const next = await dropAndRedial(socket, clock);
    next.receive('connected', { userId: 'me', resumeToken: 'T2', resumed: false });
    expect(next.sent.map((frame) => frame.action)).toEqual(['join_room', 'broadcast']);
  });

  it('leaves a room left while reconnecting once its seat is resumed', async () => {
    const other = await joinRoom(client, socket, roomInfo('other', { epoch: 'O', seq: 4 }));
    socket.drop(1006);
    await expect(room.leave()).resolves.toBeUndefined();
    expect(room.closed).toBe('left');
    expect([...client.joinedRooms.keys()]).toEqual(['other']);
    clock.advance(0);
    await settle();
    const next = FakeSocket.last;
    next.receive('connected', { userId: 'me', resumeToken: 'T2', resumed: true });
    // Every held seat comes back with the resume, listed or not; then the left one is let go.
    expect(next.sent.map((frame) => frame.action)).toEqual(['resume', 'leave_room']);
    expect(next.lastSent('resume').rooms).toEqual([other.position()]);
    expect(next.lastSent('leave_room')).toMatchObject({ roomId: 'gallery' });
    // The reply settles it; the room stays closed, and a reconnect later does not leave it again.
    const { requestId } = next.lastSent('leave_room');
    next.receive('room_left', { requestId, roomId: 'gallery' });
    const third = await dropAndRedial(next, clock);
    third.receive('connected', { userId: 'me', resumeToken: 'T3', resumed: true });
    expect(third.sent.map((frame) => frame.action)).toEqual(['resume']);
  });

  it('sends no second leave when the resume names a room whose leave is in flight', async () => {
    socket.drop(1006);
    await room.leave();
    clock.advance(0);
    await settle();
    const next = FakeSocket.last;
    next.receive('connected', { userId: 'me', resumeToken: 'T2', resumed: true });
    next.receive('resumed', {
      requestId: next.lastSent('resume').requestId,
      rooms: [{ roomId: 'gallery', recovered: true, epoch: 'E', seq: 2 }],
      lost: [],
    });
    expect(next.sent.map((frame) => frame.action)).toEqual(['resume', 'leave_room']);
  });

  it('leaves a room the resume gave back that it does not follow (a join cut by the drop)', async () => {
    const joining = client.joinRoom('cut').catch((error: unknown) => error);
    const next = await dropAndRedial(socket, clock);
    await expect(joining).resolves.toMatchObject({ code: 'CONNECTION_CLOSED' });
    next.receive('connected', { userId: 'me', resumeToken: 'T2', resumed: true });
    // The server had seated it: every held seat comes back, listed or not.
    next.receive('resumed', {
      requestId: next.lastSent('resume').requestId,
      rooms: [
        { roomId: 'gallery', recovered: true, epoch: 'E', seq: 2 },
        { roomId: 'cut', recovered: true, epoch: 'C', seq: 1 },
      ],
      lost: [],
    });
    expect(next.sent.map((frame) => frame.action)).toEqual(['resume', 'leave_room']);
    expect(next.lastSent('leave_room')).toMatchObject({ roomId: 'cut' });
    expect([...client.joinedRooms.keys()]).toEqual(['gallery']);
  });

  it('leaves a room again once back when its leave was cut by the drop', async () => {
    const leaving = room.leave().catch((error: unknown) => error);
    const next = await dropAndRedial(socket, clock);
    await expect(leaving).resolves.toMatchObject({ code: 'CONNECTION_CLOSED' });
    expect(room.closed).toBe('left');
    next.receive('connected', { userId: 'me', resumeToken: 'T2', resumed: true });
    expect(next.sent).toMatchObject([
      { action: 'resume', rooms: [] },
      { action: 'leave_room', roomId: 'gallery' },
    ]);
    // The resume names the seat it took back: its leave is on its way already.
    next.receive('resumed', {
      requestId: next.lastSent('resume').requestId,
      rooms: [{ roomId: 'gallery', recovered: true, epoch: 'E', seq: 2 }],
      lost: [],
    });
    expect(next.sent).toHaveLength(2);
  });

  it('leaves a room whose join timed out once its room_joined comes late', async () => {
    const joined = client.joinRoom('late').catch((error: unknown) => error);
    const { requestId } = socket.lastSent('join_room');
    clock.advance(10_000);
    await expect(joined).resolves.toMatchObject({ code: 'TIMEOUT' });
    socket.receive('room_joined', { requestId, roomInfo: roomInfo('late') });
    expect(client.joinedRooms.has('late')).toBe(false);
    expect(socket.lastSent('leave_room')).toMatchObject({ roomId: 'late' });
  });

  it('keeps a room joined with request(): its room_joined is the app’s', async () => {
    const joined = client.request('join_room', { roomId: 'raw' }, 'room_joined');
    const { requestId } = socket.lastSent('join_room');
    socket.receive('room_joined', { requestId, roomInfo: roomInfo('raw') });
    await joined;
    expect(socket.sent.map((frame) => frame.action)).not.toContain('leave_room');
  });

  it('keeps a room a session takeover moved here (room_joined without requestId)', () => {
    socket.receive('room_joined', { roomInfo: roomInfo('moved') });
    expect(socket.sent.map((frame) => frame.action)).not.toContain('leave_room');
  });

  it('leaves a room whose join it gave up on when a takeover moves it here', async () => {
    const joined = client.joinRoom('late').catch((error: unknown) => error);
    clock.advance(10_000);
    await expect(joined).resolves.toMatchObject({ code: 'TIMEOUT' });
    socket.receive('room_joined', { roomInfo: roomInfo('late') });
    expect(socket.lastSent('leave_room')).toMatchObject({ roomId: 'late' });
  });

  it('resumes only to leave when the one room it had was left while reconnecting', async () => {
    socket.drop(1006);
    await room.leave();
    clock.advance(0);
    await settle();
    const next = FakeSocket.last;
    next.receive('connected', { userId: 'me', resumeToken: 'T2', resumed: true });
    expect(next.sent).toMatchObject([
      { action: 'resume', rooms: [] },
      { action: 'leave_room', roomId: 'gallery' },
    ]);
  });

  it('does not send a leave for a room left while away when the seats are gone', async () => {
    socket.drop(1006);
    await room.leave();
    clock.advance(0);
    await settle();
    const next = FakeSocket.last;
    next.receive('connected', { userId: 'me', resumeToken: 'T2', resumed: false });
    expect(next.sent).toEqual([]);
  });

  it('joins every room again on RESUME_FAILED', async () => {
    const next = await dropAndRedial(socket, clock);
    next.receive('connected', { userId: 'me', resumeToken: 'T2', resumed: true });
    next.receive('error', {
      code: 'RESUME_FAILED',
      message: 'Unknown or expired resume token: join your rooms again',
      requestId: next.lastSent('resume').requestId,
    });
    await settle();
    expect(next.lastSent('join_room')).toMatchObject({ roomId: 'gallery' });
  });

  it('joins again without resuming when the token was not taken', async () => {
    const next = await dropAndRedial(socket, clock);
    next.receive('connected', { userId: 'me', resumeToken: 'T2', resumed: false });
    expect(next.sent.map((frame) => frame.action)).toEqual(['join_room']);
  });

  it('joins again when the server has resume off (no token), without ?resume=', async () => {
    ({ client, socket, clock } = await openClient({ random: () => 0 }, { userId: 'me' }));
    await joinRoom(client, socket, roomInfo('solo', { epoch: undefined, seq: undefined }));
    const next = await dropAndRedial(socket, clock);
    expect(next.query.has('resume')).toBe(false);
    next.receive('connected', { userId: 'me' });
    expect(next.lastSent('join_room')).toMatchObject({ roomId: 'solo' });
  });

  it('tries a join again that failed UNAVAILABLE a second later, until the room is left', async () => {
    const closed: string[] = [];
    room.on('closed', ({ reason }) => closed.push(reason));
    const next = await dropAndRedial(socket, clock);
    next.receive('connected', { userId: 'me', resumed: false });
    next.receive('error', {
      code: 'UNAVAILABLE',
      message: 'The room store did not answer in time',
      requestId: next.lastSent('join_room').requestId,
    });
    await settle();
    expect(closed).toEqual([]);
    const first = next.lastSent('join_room').requestId;
    clock.advance(1000);
    const again = next.lastSent('join_room');
    expect(again).toMatchObject({ roomId: 'gallery' });
    expect(again.requestId).not.toBe(first);

    // Left while the next try waits: not joined again.
    next.receive('error', { code: 'UNAVAILABLE', message: 'again', requestId: again.requestId });
    await settle();
    const sent = next.sent.length;
    void room.leave();
    clock.advance(1000);
    expect(next.sent.slice(sent).map((frame) => frame.action)).toEqual(['leave_room']);
  });

  it('closes a room whose join again is refused (KICKED) and stops following it', async () => {
    const closed: string[] = [];
    room.on('closed', ({ reason, error }) => closed.push(`${reason}:${error?.code}`));
    const next = await dropAndRedial(socket, clock);
    next.receive('connected', { userId: 'me', resumed: false });
    next.receive('error', {
      code: 'KICKED',
      message: 'You were kicked',
      requestId: next.lastSent('join_room').requestId,
    });
    await settle();
    expect(closed).toEqual(['lost:KICKED']);
    expect(client.joinedRooms.size).toBe(0);
  });
});
