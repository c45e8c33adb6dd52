import type { Socket } from 'node:net';
import { ROOM_STORE, type RoomStore } from '../src/rooms/room-store.js';
import { INITIAL_STATE, replyOf, useTestServer } from './support/fixtures.js';
import type { TestClient } from './support/test-client.js';

const MAX_MESSAGE_BYTES = 4096;

/** The own keys of the built-in prototypes a pollution would change. */
const prototypeKeys = () => ({
  object: Object.getOwnPropertyNames(Object.prototype).sort(),
  array: Object.getOwnPropertyNames(Array.prototype).sort(),
  function: Object.getOwnPropertyNames(Function.prototype).sort(),
});

describe('bad input', () => {
  const fixture = useTestServer({ env: { MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES) } });
  const { connect, connectAll } = fixture;

  /** The client is still served: a ping gets its pong. */
  const expectServed = async (client: TestClient) => {
    const requestId = client.request('ping');
    expect((await client.reply(requestId)).event).toBe('pong');
  };

  /** A fresh pair joins a fresh room and a broadcast goes through. */
  const expectServerServesNewRoom = async (roomId: string) => {
    const [first, second] = await Promise.all([connect(`${roomId}-a`), connect(`${roomId}-b`)]);
    await first.join(roomId);
    await second.join(roomId);
    first.broadcast(roomId, { type: 'hello', data: { ok: true } });
    expect(await second.next('message')).toStrictEqual({
      roomId,
      message: { type: 'hello', data: { ok: true } },
      senderId: first.userId,
    });
  };

  describe('frames that are not protocol messages', () => {
    it('answers text that is not JSON with INVALID_JSON', async () => {
      const alice = await connect('alice');
      for (const text of ['not json', '{"action":"ping"', '', '{action:"ping"}', "{'a':1}"]) {
        alice.sendRaw(text);
        const error = await alice.next('error');
        expect({ text, code: error.code }).toEqual({ text, code: 'INVALID_JSON' });
        expect(error).not.toHaveProperty('requestId');
        expect(typeof error.message).toBe('string');
      }
      await expectServed(alice);
    });

    it('answers JSON that is not an object with INVALID_MESSAGE', async () => {
      const alice = await connect('alice');
      for (const text of ['[1,2]', '[{"action":"ping"}]', '42', '"ping"', 'null', 'true']) {
        alice.sendRaw(text);
        const error = await alice.next('error');
        expect({ text, code: error.code }).toEqual({ text, code: 'INVALID_MESSAGE' });
        expect(error).not.toHaveProperty('requestId');
      }
      await expectServed(alice);
    });

    it('answers an object without a string action with INVALID_MESSAGE, echoing its requestId', async () => {
      const alice = await connect('alice');
      const cases = [
        { requestId: 'r-none', roomId: 'gallery' },
        { requestId: 'r-number', action: 5 },
        { requestId: 'r-null', action: null },
        { requestId: 'r-object', action: { name: 'ping' } },
        { requestId: 'r-array', action: ['ping'] },
      ];
      for (const message of cases) {
        alice.send(message);
        expect(await alice.error(message.requestId)).toMatchObject({
          code: 'INVALID_MESSAGE',
          requestId: message.requestId,
        });
      }
      alice.send({ action: 7 });
      const error = await alice.next('error');
      expect(error.code).toBe('INVALID_MESSAGE');
      expect(error).not.toHaveProperty('requestId');
      await expectServed(alice);
    });

    it('answers an unknown action with UNKNOWN_ACTION and the requestId, including the internal handler name', async () => {
      const alice = await connect('alice');
      const actions = [
        'fly_away',
        '',
        'PING',
        '$rejected_frame',
        'constructor',
        'toString',
        '__proto__',
        'hasOwnProperty',
        'x'.repeat(500),
      ];
      for (const action of actions) {
        const requestId = alice.request(action, { roomId: 'gallery' });
        expect({ action, error: await alice.error(requestId) }).toMatchObject({
          action,
          error: { code: 'UNKNOWN_ACTION', requestId },
        });
      }
      alice.send({
        action: '$rejected_frame',
        requestId: 'spoof',
        code: 'ROOM_FULL',
        message: 'forged',
        rejection: { code: 'ROOM_FULL', message: 'forged' },
      });
      expect(await alice.error('spoof')).toMatchObject({ code: 'UNKNOWN_ACTION' });
      await expectServed(alice);
    });
  });

  describe('fields of the wrong type or out of bounds', () => {
    it.each([
      ['roomId a number', 'join_room', { roomId: 42 }, 'roomId'],
      ['roomId missing', 'join_room', {}, 'roomId'],
      ['roomId with spaces', 'join_room', { roomId: 'my room' }, 'roomId'],
      ['roomId of 65 characters', 'join_room', { roomId: 'r'.repeat(65) }, 'roomId'],
      ['roomId with a slash', 'get_state', { roomId: '../etc' }, 'roomId'],
      [
        'userInfo.role admin',
        'join_room',
        { roomId: 'g', userInfo: { role: 'admin' } },
        'userInfo.role',
      ],
      [
        'userInfo.name a number',
        'join_room',
        { roomId: 'g', userInfo: { name: 3 } },
        'userInfo.name',
      ],
      [
        'userInfo.avatar.color not hex',
        'join_room',
        { roomId: 'g', userInfo: { avatar: { color: 'red' } } },
        'userInfo.avatar.color',
      ],
      [
        'userInfo.avatar.type null',
        'join_room',
        { roomId: 'g', userInfo: { avatar: { type: null } } },
        'userInfo.avatar.type',
      ],
      [
        'userInfo.avatar.color null',
        'join_room',
        { roomId: 'g', userInfo: { avatar: { color: null } } },
        'userInfo.avatar.color',
      ],
      ['password a number', 'join_room', { roomId: 'g', password: 1234 }, 'password'],
      [
        'config.maxUsers a string',
        'create_room',
        { roomId: 'g', config: { maxUsers: '10' } },
        'config.maxUsers',
      ],
      [
        'config.maxUsers zero',
        'create_room',
        { roomId: 'g', config: { maxUsers: 0 } },
        'config.maxUsers',
      ],
      [
        'config.persistent a string',
        'create_room',
        { roomId: 'g', config: { persistent: 'yes' } },
        'config.persistent',
      ],
      [
        'config.defaultRole host',
        'create_room',
        { roomId: 'g', config: { defaultRole: 'host' } },
        'config.defaultRole',
      ],
      [
        'targetUserId a number',
        'send_message',
        { targetUserId: 7, message: { type: 'x' } },
        'targetUserId',
      ],
      ['requestId an object', 'ping', { requestId: { id: 1 } }, 'requestId'],
      // Found by the fuzz test: arrays passed where objects belong.
      ['config an array', 'create_room', { roomId: 'g', config: [{ maxUsers: 5 }] }, 'config'],
      ['userInfo an array', 'join_room', { roomId: 'g', userInfo: [{ name: 'a' }] }, 'userInfo'],
      [
        'userInfo.avatar an array',
        'join_room',
        { roomId: 'g', userInfo: { avatar: [{ type: 'x' }] } },
        'userInfo.avatar',
      ],
    ])(
      'refuses %s with VALIDATION_FAILED naming the field',
      async (_case, action, fields, field) => {
        const alice = await connect('alice');
        const requestId = alice.nextRequestId();
        alice.send({ action, requestId, ...fields });
        const error = await alice.next('error');
        expect(error).toMatchObject({ code: 'VALIDATION_FAILED', field });
        if (typeof (fields as { requestId?: unknown }).requestId !== 'object') {
          expect(error.requestId).toBe(requestId);
        }
        await alice.expectNothing(50);
        await expectServed(alice);
      },
    );

    it.each([
      ['join_room', { roomId: 'g', userInfo: { name: 42 } }, 'userInfo.name must be a string'],
      ['join_room', { roomId: 'g', password: 7 }, 'password must be a string'],
      ['create_room', { roomId: 'g', config: { name: 7 } }, 'config.name must be a string'],
    ])(
      'says what is wrong with a field of the wrong type (%s %j)',
      async (action, fields, text) => {
        const alice = await connect('alice');
        const requestId = alice.request(action, fields);
        expect((await alice.error(requestId)).message).toContain(text);
      },
    );

    it('creates no room for a refused join or create_room', async () => {
      const alice = await connect('alice');
      const badJoin = alice.request('join_room', { roomId: 'g', userInfo: { role: 'admin' } });
      expect((await alice.error(badJoin)).code).toBe('VALIDATION_FAILED');
      const badCreate = alice.request('create_room', {
        roomId: 'g',
        config: { maxUsers: '10' },
      });
      expect((await alice.error(badCreate)).code).toBe('VALIDATION_FAILED');
      const getState = alice.request('get_state', { roomId: 'g' });
      expect((await alice.error(getState)).code).toBe('ROOM_NOT_FOUND');
      const created = alice.request('create_room', { roomId: 'g' });
      expect((await alice.reply(created)).event).toBe('room_created');
    });
  });

  it('refuses update_state ops that are arrays with VALIDATION_FAILED, not INTERNAL_ERROR', async () => {
    const alice = await connect('alice');
    await alice.join('g');
    for (const ops of [[[]], [[{ op: 'add', collection: 'annotations', id: 'a', item: {} }]]]) {
      const requestId = alice.request('update_state', { roomId: 'g', ops });
      expect(await alice.error(requestId)).toMatchObject({
        code: 'VALIDATION_FAILED',
        field: 'ops',
        requestId,
      });
    }
    await expectServed(alice);
  });

  describe('frames the socket cannot take', () => {
    it('closes the socket with 1003 on a binary frame, and the others carry on', async () => {
      const alice = await connect('alice');
      const bob = await connect('bob');
      await alice.join('gallery');
      await bob.join('gallery');
      await alice.next('user_joined');

      bob.sendRaw(Buffer.from(JSON.stringify({ action: 'ping', requestId: 'bin' })), {
        binary: true,
      });
      expect((await bob.waitForClose()).code).toBe(1003);
      expect(bob.received.filter((message) => message.event === 'pong')).toEqual([]);
      expect((await alice.next('user_left')).userId).toBe('bob');
      await expectServed(alice);
      await expectServerServesNewRoom('after-binary');
    });

    it('closes the socket with 1009 on a frame over MAX_MESSAGE_BYTES, and takes one just under it', async () => {
      const alice = await connect('alice');
      const bob = await connect('bob');
      await alice.join('gallery');
      await bob.join('gallery');
      await alice.next('user_joined');

      const fits = { type: 'blob', data: { text: '' } };
      const overhead = JSON.stringify({ action: 'broadcast', roomId: 'gallery', message: fits });
      fits.data.text = 'a'.repeat(MAX_MESSAGE_BYTES - Buffer.byteLength(overhead) - 10);
      bob.broadcast('gallery', fits);
      expect((await alice.next('message')).message).toStrictEqual(fits);

      const tooBig = {
        action: 'broadcast',
        roomId: 'gallery',
        message: { type: 'blob', data: { text: 'b'.repeat(MAX_MESSAGE_BYTES + 1) } },
      };
      bob.send(tooBig);
      expect((await bob.waitForClose()).code).toBe(1009);
      expect((await alice.next('user_left')).userId).toBe('bob');
      await alice.expectNothing(50, 'message');
      await expectServed(alice);
      await expectServerServesNewRoom('after-oversize');
    });

    it("answers the requests sent before a frame it refuses, then closes with that frame's code", async () => {
      const refusedFrames = [
        {
          name: 'too big',
          frame: JSON.stringify({ action: 'ping', pad: 'x'.repeat(MAX_MESSAGE_BYTES) }),
          binary: false,
          code: 1009,
        },
        { name: 'not UTF-8', frame: Buffer.from([0x7b, 0xff, 0x7d]), binary: false, code: 1007 },
        { name: 'binary, not opted in', frame: Buffer.from('{}'), binary: true, code: 1003 },
      ];
      for (const { name, frame, binary, code } of refusedFrames) {
        const bob = await connect(`bob-${code}`);
        const socket = (bob.socket as unknown as { _socket: Socket })._socket;
        // One write: the server reads the pings and the refused frame in the same chunk, so the
        // refusal comes while the pings' replies are still queued.
        socket.cork();
        const requestIds = [1, 2, 3].map(() => bob.request('ping'));
        bob.sendRaw(frame, { binary });
        socket.uncork();
        for (const requestId of requestIds) {
          const reply = await bob.reply(requestId);
          expect({ name, event: reply.event }).toEqual({ name, event: 'pong' });
        }
        expect({ name, code: (await bob.waitForClose()).code }).toEqual({ name, code });
      }
      await expectServerServesNewRoom('after-refused-frames');
    });
  });

  describe('prototype keys', () => {
    let before: ReturnType<typeof prototypeKeys>;

    beforeEach(() => {
      before = prototypeKeys();
    });

    const expectNoPollution = () => {
      expect(prototypeKeys()).toEqual(before);
      for (const key of ['polluted', 'role', 'isAdmin', 'sceneUrl']) {
        expect({ key, value: ({} as Record<string, unknown>)[key] }).toEqual({
          key,
          value: undefined,
        });
      }
      expect(Object.getPrototypeOf({})).toBe(Object.prototype);
    };

    /** The server's stored objects keep their ordinary prototypes. */
    const expectStoredStateIntact = async (roomId: string) => {
      const store = fixture.server.app.get<RoomStore>(ROOM_STORE);
      const state = await store.getState(roomId);
      for (const value of [state, state.treeViewState, state.sessionSettings]) {
        expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
      }
      for (const value of [state.annotations, state.focusPoints]) {
        expect(Object.getPrototypeOf(value)).toBe(Array.prototype);
      }
      for (const item of [...state.annotations, ...state.focusPoints]) {
        expect(Object.getPrototypeOf(item)).toBe(Object.prototype);
      }
    };

    // Hand-written: JSON.stringify never emits a "__proto__" key from an object literal.
    const protoFrames: Array<[string, string]> = [
      ['at the top level', '{"action":"ping","requestId":"p-top","__proto__":{"polluted":"top"}}'],
      [
        'in userInfo',
        '{"action":"join_room","requestId":"p-user","roomId":"proto-room","userInfo":{"name":"Mallory","__proto__":{"role":"host","polluted":"user"}}}',
      ],
      [
        'in userInfo.avatar',
        '{"action":"join_room","requestId":"p-avatar","roomId":"proto-room","userInfo":{"avatar":{"__proto__":{"polluted":"avatar"}}}}',
      ],
      [
        'in config',
        '{"action":"create_room","requestId":"p-config","roomId":"proto-new","config":{"__proto__":{"persistent":true,"polluted":"config"}}}',
      ],
      [
        'in patch',
        '{"action":"update_state","requestId":"p-patch","roomId":"proto-room","baseVersion":0,"patch":{"__proto__":{"sceneUrl":"https://evil.example/x","polluted":"patch"}}}',
      ],
      [
        'in patch.treeViewState',
        '{"action":"update_state","requestId":"p-tree","roomId":"proto-room","baseVersion":0,"patch":{"treeViewState":{"__proto__":{"polluted":"tree"}}}}',
      ],
      [
        'in an op item',
        '{"action":"update_state","requestId":"p-item","roomId":"proto-room","ops":[{"op":"add","collection":"annotations","id":"a1","item":{"__proto__":{"polluted":"item"}}}]}',
      ],
      [
        'in broadcast message.data',
        '{"action":"broadcast","requestId":"p-data","roomId":"proto-room","message":{"type":"x","data":{"__proto__":{"polluted":"data","isAdmin":true}}}}',
      ],
      [
        'in broadcast message',
        '{"action":"broadcast","requestId":"p-msg","roomId":"proto-room","message":{"type":"x","__proto__":{"polluted":"message"}}}',
      ],
      [
        'deep inside send_message data',
        '{"action":"send_message","requestId":"p-direct","targetUserId":"bob","message":{"type":"x","data":{"a":[{"b":{"__proto__":{"polluted":"deep"}}}]}}}',
      ],
    ];

    it.each(protoFrames)(
      'refuses a "__proto__" key %s with VALIDATION_FAILED and pollutes nothing',
      async (_where, frame) => {
        const alice = await connect('alice');
        const bob = await connect('bob');
        await alice.join('proto-room', { userInfo: { name: 'Alice' } });
        await bob.join('proto-room', { userInfo: { name: 'Bob' } });
        await alice.next('user_joined');
        const requestId = (JSON.parse(frame) as { requestId: string }).requestId;

        const mallory = await connect('mallory');
        const sender = frame.includes('"join_room"') ? mallory : alice;
        sender.sendRaw(frame);
        expect(await sender.error(requestId)).toMatchObject({
          code: 'VALIDATION_FAILED',
          requestId,
        });
        await bob.expectNothing(50);

        expectNoPollution();
        await expectStoredStateIntact('proto-room');
        const stateId = alice.request('get_state', { roomId: 'proto-room' });
        expect((await alice.reply(stateId)).data).toStrictEqual({
          requestId: stateId,
          roomId: 'proto-room',
          version: 0,
          state: INITIAL_STATE,
        });
        const missing = alice.request('get_state', { roomId: 'proto-new' });
        expect((await alice.error(missing)).code).toBe('ROOM_NOT_FOUND');

        // Mallory's refused join changed nothing: a plain join gets the default role.
        const room = await mallory.join('proto-room');
        expect(room.users).toEqual([
          expect.objectContaining({ id: 'alice', name: 'Alice', role: 'host' }),
          expect.objectContaining({ id: 'bob', name: 'Bob', role: 'editor' }),
          expect.objectContaining({ id: 'mallory', name: 'mallory', role: 'editor' }),
        ]);
        for (const user of room.users) {
          expect(Object.keys(user).sort()).toEqual(
            ['connected', 'id', 'lastSeen', 'name', 'role', 'slot'].sort(),
          );
        }
        await expectServed(sender);
      },
    );

    it('treats a "__proto__" key written with JSON escapes like the plain one', async () => {
      const alice = await connect('alice');
      const bob = await connect('bob');
      await alice.join('proto-room');
      await bob.join('proto-room');
      await alice.next('user_joined');
      const escaped = '\\u005f\\u005fproto\\u005f\\u005f';
      const frames: Array<[string, string]> = [
        [
          'e-data',
          `{"action":"broadcast","requestId":"e-data","roomId":"proto-room","message":{"type":"x","data":{"${escaped}":{"polluted":"escaped"}}}}`,
        ],
        [
          'e-tree',
          `{"action":"update_state","requestId":"e-tree","roomId":"proto-room","baseVersion":0,"patch":{"treeViewState":{"${escaped}":{"polluted":"escaped"}}}}`,
        ],
      ];
      for (const [, frame] of frames) {
        alice.sendRaw(frame);
      }
      alice.request('ping');
      const answers = [];
      for (let next = await alice.nextAny(); next.event !== 'pong'; next = await alice.nextAny()) {
        answers.push(next);
      }
      expect(answers).toEqual(
        frames.map(([requestId]) => ({
          event: 'error',
          data: expect.objectContaining({ code: 'VALIDATION_FAILED', requestId }),
        })),
      );
      await bob.expectNothing(50);
      expectNoPollution();
      await expectStoredStateIntact('proto-room');
    });

    it('keeps "constructor" and "prototype" keys as plain data and pollutes nothing', async () => {
      const alice = await connect('alice');
      const bob = await connect('bob');
      await alice.join('proto-room');
      await bob.join('proto-room');
      await alice.next('user_joined');

      const sneaky = { constructor: { prototype: { polluted: 'ctor', isAdmin: true } } };
      alice.broadcast('proto-room', { type: 'x', data: sneaky });
      // toEqual: an own "constructor" key defeats toStrictEqual's type check.
      expect((await bob.next('message')).message).toEqual({ type: 'x', data: sneaky });

      // Legitimate data in a state item too: the change commits, and the item is stored as sent.
      const item = { constructor: { prototype: { a: 1 } }, prototype: { a: 1 } };
      const requestId = alice.request('update_state', {
        roomId: 'proto-room',
        ops: [{ op: 'add', collection: 'annotations', id: 'c1', item }],
      });
      expect(await replyOf(alice, requestId, 'state_updated')).toMatchObject({ version: 1 });
      const stored = await replyOf<{ state: { annotations: unknown[] } }>(
        alice,
        alice.request('get_state', { roomId: 'proto-room' }),
        'state',
      );
      expect(stored.state.annotations).toEqual([{ id: 'c1', ...item }]);

      expectNoPollution();
      await expectStoredStateIntact('proto-room');
      expect(({} as { constructor: unknown }).constructor).toBe(Object);
      await expectServed(alice);
      await expectServed(bob);
    });
  });

  it('keeps serving every room and every open offender after a barrage of bad input', async () => {
    const before = prototypeKeys();
    const [alice, bob, carol, dave] = await connectAll('alice', 'bob', 'carol', 'dave');
    await alice.join('busy');
    await bob.join('busy');
    await alice.next('user_joined');

    const garbage = [
      'garbage',
      '[]',
      'null',
      '{"requestId":"g1"}',
      '{"action":"nope","requestId":"g2"}',
      '{"action":"$rejected_frame"}',
      '{"action":"join_room","roomId":7}',
      '{"action":"create_room","config":{"maxUsers":"10"}}',
      '{"action":"update_state","roomId":"busy","patch":{"sceneLoaded":true}}',
      '{"action":"broadcast","roomId":"busy","message":{"type":""}}',
      '{"action":"ping","__proto__":{"polluted":true}}',
      '{"action":"update_state","roomId":"busy","ops":[{"op":"add","collection":"annotations","id":"z","item":{"__proto__":{"x":1}}}]}',
      '{"a":' + '['.repeat(1000) + ']'.repeat(1000) + '}',
      '{"action":"send_message","targetUserId":"no one","message":{"type":"x","data":' +
        '{"x":'.repeat(300) +
        '1' +
        '}'.repeat(302),
    ];
    for (const client of [alice, bob]) {
      for (const text of garbage) {
        client.sendRaw(text);
      }
    }
    for (const client of [alice, bob]) {
      for (let i = 0; i < garbage.length; i += 1) {
        expect((await client.next('error')).code).toEqual(expect.any(String));
      }
    }
    carol.sendRaw(Buffer.from([0, 1, 2, 3]), { binary: true });
    dave.sendRaw('x'.repeat(MAX_MESSAGE_BYTES + 100));
    expect((await carol.waitForClose()).code).toBe(1003);
    expect((await dave.waitForClose()).code).toBe(1009);

    expect(prototypeKeys()).toEqual(before);
    await expectServed(alice);
    await expectServed(bob);
    alice.broadcast('busy', { type: 'still-here' });
    expect((await bob.next('message')).message).toStrictEqual({ type: 'still-here' });
    const stateId = bob.request('get_state', { roomId: 'busy' });
    expect((await bob.reply(stateId)).data).toMatchObject({ version: 0, state: INITIAL_STATE });
    await expectServerServesNewRoom('fresh');

    const health = await fetch(`${fixture.server.httpUrl}/health`);
    expect(health.status).toBe(200);
  });
});
