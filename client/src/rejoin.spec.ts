import type { ErrorCode } from '../../src/protocol/protocol.js';
import type { GalleryClient } from './client.js';
import type { Room } from './room.js';
import {
  dropAndRedial,
  FakeSocket,
  joinRoom,
  openClient,
  roomInfo,
  settle,
  type FakeClock,
} from './testing/fakes.js';

beforeEach(() => {
  FakeSocket.instances = [];
});

const actions = (socket: FakeSocket): string[] => socket.sent.map((frame) => frame.action);

describe('joining again after a reconnect', () => {
  let client: GalleryClient;
  let socket: FakeSocket;
  let clock: FakeClock;
  let room: Room;
  let closed: string[];

  beforeEach(async () => {
    ({ client, socket, clock } = await openClient({ random: () => 0 }));
    room = await joinRoom(client, socket, roomInfo('gallery'));
    closed = [];
    room.on('closed', ({ reason, error }) => closed.push(`${reason}:${error?.code}`));
  });

  /** Reconnects without resume; the server refuses the join again with `error`. */
  async function refusedRejoin(error: {
    code: ErrorCode;
    retryAfterMs?: number;
  }): Promise<FakeSocket> {
    const next = await dropAndRedial(socket, clock);
    next.receive('connected', { userId: 'me', resumeToken: 'T2', resumed: false });
    const { requestId } = next.lastSent('join_room');
    next.receive('error', { message: 'refused', requestId, ...error });
    await settle();
    return next;
  }

  describe('UNAVAILABLE, tried again a second later', () => {
    it('keeps the room when the retry falls due while reconnecting, and joins it once back', async () => {
      const next = await refusedRejoin({ code: 'UNAVAILABLE' });
      next.drop(1006); // the next connection is not open yet when the second is up
      clock.advance(1000);
      await settle();
      expect(closed).toEqual([]);
      expect(client.state).toBe('reconnecting');
      const third = FakeSocket.last;
      third.receive('connected', { userId: 'me', resumeToken: 'T3', resumed: false });
      expect(actions(third)).toEqual(['join_room']);
    });

    it('sends no second join when the connection came back before the retry', async () => {
      const next = await refusedRejoin({ code: 'UNAVAILABLE' });
      const third = await dropAndRedial(next, clock);
      third.receive('connected', { userId: 'me', resumeToken: 'T3', resumed: false });
      clock.advance(1000);
      expect(actions(third)).toEqual(['join_room']);
    });

    it('leaves no retry timer behind after close()', async () => {
      await refusedRejoin({ code: 'UNAVAILABLE' });
      client.close();
      expect(clock.pendingTimers).toBe(0);
    });
  });

  describe('RATE_LIMITED, tried again after retryAfterMs', () => {
    it('joins again once the server said it would fit', async () => {
      const next = await refusedRejoin({ code: 'RATE_LIMITED', retryAfterMs: 250 });
      clock.advance(249);
      expect(actions(next)).toEqual(['join_room']);
      clock.advance(1);
      expect(actions(next)).toEqual(['join_room', 'join_room']);
      next.receive('room_joined', {
        requestId: next.lastSent('join_room').requestId,
        roomInfo: roomInfo('gallery'),
      });
      await settle();
      expect(closed).toEqual([]);
      expect(client.joinedRooms.get('gallery')).toBe(room);
    });

    it('waits at least 100 ms and at most 30 s', async () => {
      const next = await refusedRejoin({ code: 'RATE_LIMITED', retryAfterMs: 0 });
      clock.advance(99);
      expect(actions(next)).toEqual(['join_room']);
      clock.advance(1);
      expect(actions(next)).toEqual(['join_room', 'join_room']);

      const { requestId } = next.lastSent('join_room');
      next.receive('error', { code: 'RATE_LIMITED', message: 'no', requestId, retryAfterMs: 1e9 });
      await settle();
      clock.advance(29_999);
      expect(actions(next)).toHaveLength(2);
      clock.advance(1);
      expect(actions(next)).toHaveLength(3);
      expect(closed).toEqual([]);
    });
  });

  describe('with resume off on the server (no token)', () => {
    it('leaves a room left while reconnecting: the rooms may have moved to this connection', async () => {
      ({ client, socket, clock } = await openClient({ random: () => 0 }, { userId: 'me' }));
      const left = await joinRoom(client, socket, roomInfo('left'));
      await joinRoom(client, socket, roomInfo('kept'));
      socket.drop(1006);
      await left.leave();
      clock.advance(0);
      await settle();
      const next = FakeSocket.last;
      next.receive('connected', { userId: 'me' });
      expect(next.sent).toMatchObject([
        { action: 'join_room', roomId: 'kept' },
        { action: 'leave_room', roomId: 'left' },
      ]);
      // The server had seen the drop: nothing to leave, which is fine.
      const { requestId } = next.lastSent('leave_room');
      next.receive('error', { code: 'NOT_IN_ROOM', message: 'Not in room left', requestId });
      await settle();
      expect(client.state).toBe('open');
      expect([...client.joinedRooms.keys()]).toEqual(['kept']);
    });
  });
});
