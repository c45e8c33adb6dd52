import { useTestServer } from './support/fixtures.js';

describe('messaging: broadcast, send_message and ping', () => {
  const { connect, connectAll } = useTestServer();

  /** alice, bob and carol in `gallery`, dave alone in `elsewhere`; every join event consumed. */
  const roomOfThree = async () => {
    const [alice, bob, carol, dave] = await connectAll('alice', 'bob', 'carol', 'dave');
    await alice.join('gallery');
    await bob.join('gallery');
    await carol.join('gallery');
    await dave.join('elsewhere');
    expect((await alice.next('user_joined')).user.id).toBe('bob');
    expect((await alice.next('user_joined')).user.id).toBe('carol');
    expect((await bob.next('user_joined')).user.id).toBe('carol');
    return { alice, bob, carol, dave };
  };

  describe('broadcast', () => {
    it('relays the message exactly as sent to every other member, and nothing to the sender or other rooms', async () => {
      const { alice, bob, carol, dave } = await roomOfThree();
      const message = {
        type: 'pose_update',
        senderId: 'alice',
        timestamp: 1699564800000,
        data: {
          position: [0, 1.7, -2.25],
          rotation: [0, 0, 0, 1],
          nested: { unknownField: 'kept', deeper: { list: [{ a: null }, true, 'ü 😀'] } },
          empty: {},
          zero: 0,
        },
      };
      alice.broadcast('gallery', message);

      const expected = { roomId: 'gallery', message, senderId: 'alice' };
      expect(await bob.next('message')).toStrictEqual(expected);
      expect(await carol.next('message')).toStrictEqual(expected);
      await alice.expectNothing(150);
      await bob.expectNothing(0);
      await carol.expectNothing(0);
      await dave.expectNothing(0);
    });

    it('sets the event senderId to the connection even when message.senderId is absent', async () => {
      const { alice, bob } = await roomOfThree();
      const message = { type: 'chat', data: { text: 'hi' } };
      alice.broadcast('gallery', message);
      expect(await bob.next('message')).toStrictEqual({
        roomId: 'gallery',
        message,
        senderId: 'alice',
      });
      await alice.expectNothing(100);
    });

    it('accepts a bare message with only a 64-character type', async () => {
      const { alice, bob } = await roomOfThree();
      const message = { type: 't'.repeat(64) };
      alice.broadcast('gallery', message);
      expect((await bob.next('message')).message).toStrictEqual(message);
    });

    it('sends nothing back on success even when the broadcast carries a requestId', async () => {
      const { alice, bob } = await roomOfThree();
      alice.request('broadcast', { roomId: 'gallery', message: { type: 'pose' } });
      expect((await bob.next('message')).message).toStrictEqual({ type: 'pose' });
      await alice.expectNothing(150);
    });

    it('refuses a spoofed message.senderId with FORBIDDEN, echoing the requestId, and relays nothing', async () => {
      const { alice, bob, carol } = await roomOfThree();
      const requestId = alice.request('broadcast', {
        roomId: 'gallery',
        message: { type: 'pose', senderId: 'bob' },
      });
      expect(await alice.error(requestId)).toMatchObject({ code: 'FORBIDDEN', requestId });

      alice.broadcast('gallery', { type: 'pose', senderId: 'carol' });
      const error = await alice.next('error');
      expect(error.code).toBe('FORBIDDEN');
      expect(error).not.toHaveProperty('requestId');

      await bob.expectNothing(100);
      await carol.expectNothing(0);
    });

    it('answers NOT_IN_ROOM for a room the sender has not joined, ROOM_NOT_FOUND for a missing one', async () => {
      const { alice, bob, dave } = await roomOfThree();
      const notJoined = dave.request('broadcast', {
        roomId: 'gallery',
        message: { type: 'pose' },
      });
      expect(await dave.error(notJoined)).toMatchObject({
        code: 'NOT_IN_ROOM',
        requestId: notJoined,
      });
      const missing = dave.request('broadcast', {
        roomId: 'no-such-room',
        message: { type: 'pose' },
      });
      expect(await dave.error(missing)).toMatchObject({
        code: 'ROOM_NOT_FOUND',
        requestId: missing,
      });
      await alice.expectNothing(100);
      await bob.expectNothing(0);
    });

    it.each([
      ['message missing', 'message', undefined],
      ['message an array', 'message', [{ type: 'pose' }]],
      ['message a string', 'message', 'pose'],
      ['message.type missing', 'message.type', { data: {} }],
      ['message.type empty', 'message.type', { type: '' }],
      ['message.type over 64 characters', 'message.type', { type: 't'.repeat(65) }],
      ['message.type a number', 'message.type', { type: 7 }],
      [
        'message.timestamp a string',
        'message.timestamp',
        { type: 'pose', timestamp: '1699564800000' },
      ],
      ['message.data an array', 'message.data', { type: 'pose', data: [1, 2, 3] }],
      ['message.data a string', 'message.data', { type: 'pose', data: 'hello' }],
      ['message.data a number', 'message.data', { type: 'pose', data: 42 }],
      ['a pose_update without data', 'message.data', { type: 'pose_update' }],
      [
        'a pose_update without rotation',
        'message.data',
        { type: 'pose_update', data: { position: [0, 1.7, 0] } },
      ],
      [
        'a pose_update with a string coordinate',
        'message.data',
        { type: 'pose_update', data: { position: [0, '1.7', 0], rotation: [0, 0, 0, 1] } },
      ],
    ])('refuses %s with VALIDATION_FAILED naming %s', async (_case, field, message) => {
      const { alice, bob } = await roomOfThree();
      const requestId = alice.request('broadcast', { roomId: 'gallery', message });
      expect(await alice.error(requestId)).toMatchObject({
        code: 'VALIDATION_FAILED',
        requestId,
        field,
      });
      await bob.expectNothing(100);
    });

    it('refuses a malformed roomId with VALIDATION_FAILED naming roomId', async () => {
      const { alice } = await roomOfThree();
      for (const roomId of [undefined, 42, 'has space', 'r'.repeat(65)]) {
        const requestId = alice.request('broadcast', { roomId, message: { type: 'pose' } });
        expect(await alice.error(requestId)).toMatchObject({
          code: 'VALIDATION_FAILED',
          field: 'roomId',
        });
      }
    });

    it('refuses a bad requestId exactly as send_message does, and relays nothing', async () => {
      const { alice, bob, carol } = await roomOfThree();
      const chat = { type: 'chat', data: { text: 'hi' } };
      // A pose is relayed at once, ahead of the handler, when it checks out: that check too.
      const pose = { type: 'pose_update', data: { position: [0, 1, 0], rotation: [0, 0, 0, 1] } };
      const badIds: unknown[] = ['r'.repeat(500), 'r'.repeat(129), { x: 1 }, ['r'], 7, true];
      for (const requestId of badIds) {
        alice.send({ action: 'send_message', requestId, targetUserId: 'bob', message: chat });
        const direct = await alice.next('error');
        expect(direct).toMatchObject({ code: 'VALIDATION_FAILED', field: 'requestId' });
        for (const message of [chat, pose]) {
          alice.send({ action: 'broadcast', requestId, roomId: 'gallery', message });
          expect({ requestId, error: await alice.next('error') }).toStrictEqual({
            requestId,
            error: direct,
          });
        }
      }
      await bob.expectNothing(100);
      await carol.expectNothing(0);
    });

    it('names the bad requestId before looking for the room', async () => {
      const { alice } = await roomOfThree();
      alice.send({
        action: 'broadcast',
        requestId: { x: 1 },
        roomId: 'zz',
        message: { type: 't' },
      });
      expect(await alice.next('error')).toStrictEqual({
        code: 'VALIDATION_FAILED',
        field: 'requestId',
        message: 'requestId must be a string',
      });
    });
  });

  describe('send_message', () => {
    it('delivers only to the target, exactly as sent, and nothing to the sender', async () => {
      const { alice, bob, carol, dave } = await roomOfThree();
      const message = {
        type: 'chat_message',
        senderId: 'alice',
        timestamp: 1699564800000,
        data: { text: 'Hello!', extra: { unknown: [1, { two: 2 }] } },
      };
      alice.request('send_message', { targetUserId: 'bob', message });
      expect(await bob.next('message')).toStrictEqual({
        roomId: 'gallery',
        message,
        senderId: 'alice',
      });
      await alice.expectNothing(150);
      await bob.expectNothing(0);
      await carol.expectNothing(0);
      await dave.expectNothing(0);
    });

    it('relays data keys named "constructor" and "prototype" unchanged, as broadcast does', async () => {
      const { alice, bob } = await roomOfThree();
      const message = {
        type: 'code_snippet',
        data: { constructor: 'Foo', prototype: { methods: ['bar'] }, nested: { constructor: 1 } },
      };
      alice.broadcast('gallery', message);
      // toEqual: an own "constructor" key defeats toStrictEqual's type check.
      expect((await bob.next('message')).message).toEqual(message);
      alice.request('send_message', { targetUserId: 'bob', message });
      expect((await bob.next('message')).message).toEqual(message);
    });

    it('answers USER_NOT_FOUND when the target shares no room with the sender or is not connected', async () => {
      const { alice, dave } = await roomOfThree();
      const lonely = await connect('lonely');

      const noSharedRoom = alice.request('send_message', {
        targetUserId: 'dave',
        message: { type: 'chat' },
      });
      expect(await alice.error(noSharedRoom)).toMatchObject({
        code: 'USER_NOT_FOUND',
        requestId: noSharedRoom,
      });

      const inNoRoom = alice.request('send_message', {
        targetUserId: 'lonely',
        message: { type: 'chat' },
      });
      expect(await alice.error(inNoRoom)).toMatchObject({ code: 'USER_NOT_FOUND' });

      const notConnected = alice.request('send_message', {
        targetUserId: 'nobody',
        message: { type: 'chat' },
      });
      expect(await alice.error(notConnected)).toMatchObject({
        code: 'USER_NOT_FOUND',
        requestId: notConnected,
      });

      await dave.expectNothing(100);
      await lonely.expectNothing(0);
    });

    describe('through a room named by roomId', () => {
      it('arrives as that room’s message, whichever room the two joined first', async () => {
        const { alice, bob } = await roomOfThree();
        await alice.join('studio');
        await bob.join('studio');
        expect((await alice.next('user_joined')).user.id).toBe('bob');
        const message = { type: 'chat', data: { text: 'in the studio' } };
        alice.request('send_message', { targetUserId: 'bob', roomId: 'studio', message });
        expect(await bob.next('message')).toStrictEqual({
          roomId: 'studio',
          message,
          senderId: 'alice',
        });
        // Without roomId, a room they share: the first alice joined.
        alice.request('send_message', { targetUserId: 'bob', message });
        expect((await bob.next('message')).roomId).toBe('gallery');
      });

      it('answers NOT_IN_ROOM for a room the sender is not in, USER_NOT_FOUND for the target', async () => {
        const { alice, bob, dave } = await roomOfThree();
        const senderOutside = alice.request('send_message', {
          targetUserId: 'dave',
          roomId: 'elsewhere',
          message: { type: 'chat' },
        });
        expect(await alice.error(senderOutside)).toMatchObject({
          code: 'NOT_IN_ROOM',
          requestId: senderOutside,
        });
        await dave.join('gallery');
        expect((await bob.next('user_joined')).user.id).toBe('dave');
        expect((await alice.next('user_joined')).user.id).toBe('dave');
        const targetOutside = bob.request('send_message', {
          targetUserId: 'alice',
          roomId: 'elsewhere',
          message: { type: 'chat' },
        });
        expect(await bob.error(targetOutside)).toMatchObject({ code: 'NOT_IN_ROOM' });
        const notShared = dave.request('send_message', {
          targetUserId: 'alice',
          roomId: 'elsewhere',
          message: { type: 'chat' },
        });
        expect(await dave.error(notShared)).toMatchObject({
          code: 'USER_NOT_FOUND',
          requestId: notShared,
        });
        await alice.expectNothing(100);
      });

      it.each([null, 'bad room', 7])('refuses roomId %p with VALIDATION_FAILED', async (roomId) => {
        const { alice, bob } = await roomOfThree();
        const requestId = alice.request('send_message', {
          targetUserId: 'bob',
          roomId,
          message: { type: 'chat' },
        });
        expect(await alice.error(requestId)).toMatchObject({
          code: 'VALIDATION_FAILED',
          requestId,
          field: 'roomId',
        });
        await bob.expectNothing(100);
      });
    });

    it('answers USER_NOT_FOUND for a member who has since disconnected', async () => {
      const { alice, bob } = await roomOfThree();
      bob.close();
      await bob.waitForClose();
      expect((await alice.next('user_left')).userId).toBe('bob');
      const requestId = alice.request('send_message', {
        targetUserId: 'bob',
        message: { type: 'chat' },
      });
      expect(await alice.error(requestId)).toMatchObject({ code: 'USER_NOT_FOUND', requestId });
    });

    it('refuses a spoofed message.senderId with FORBIDDEN and delivers nothing', async () => {
      const { alice, bob } = await roomOfThree();
      const requestId = alice.request('send_message', {
        targetUserId: 'bob',
        message: { type: 'chat', senderId: 'carol' },
      });
      expect(await alice.error(requestId)).toMatchObject({ code: 'FORBIDDEN', requestId });
      await bob.expectNothing(100);
    });

    it.each([
      ['message.type missing', 'message.type', { targetUserId: 'bob', message: { data: {} } }],
      [
        'message.type over 64 characters',
        'message.type',
        { targetUserId: 'bob', message: { type: 'x'.repeat(65) } },
      ],
      [
        'message.timestamp a string',
        'message.timestamp',
        { targetUserId: 'bob', message: { type: 'chat', timestamp: 'now' } },
      ],
      [
        'message.data an array',
        'message.data',
        { targetUserId: 'bob', message: { type: 'chat', data: [] } },
      ],
      [
        'a pose_update with a 2-vector position',
        'message.data',
        { targetUserId: 'bob', message: { type: 'pose_update', data: { position: [0, 1] } } },
      ],
      ['message missing', 'message', { targetUserId: 'bob' }],
      ['targetUserId missing', 'targetUserId', { message: { type: 'chat' } }],
    ])('refuses %s with VALIDATION_FAILED naming %s', async (_case, field, fields) => {
      const { alice, bob } = await roomOfThree();
      const requestId = alice.request('send_message', fields);
      expect(await alice.error(requestId)).toMatchObject({
        code: 'VALIDATION_FAILED',
        requestId,
        field,
      });
      await bob.expectNothing(100);
    });
  });

  describe('ping', () => {
    it('answers pong with the requestId and the server time, in or out of a room', async () => {
      const alice = await connect('alice');
      const before = Date.now();
      const requestId = alice.request('ping');
      const reply = await alice.reply(requestId);
      const after = Date.now();
      expect(reply.event).toBe('pong');
      expect(reply.data).toStrictEqual({ requestId, serverTime: expect.any(Number) });
      const { serverTime } = reply.data as { serverTime: number };
      expect(serverTime).toBeGreaterThanOrEqual(before - 1000);
      expect(serverTime).toBeLessThanOrEqual(after + 1000);

      await alice.join('gallery');
      const again = alice.request('ping');
      expect((await alice.reply(again)).event).toBe('pong');
    });

    it('answers a ping without requestId with a bare pong', async () => {
      const alice = await connect('alice');
      alice.send({ action: 'ping' });
      const pong = await alice.next('pong');
      expect(pong).toStrictEqual({ serverTime: expect.any(Number) });
    });
  });
});
