import type { ServerEventMap } from '../src/protocol/protocol.js';
import { INITIAL_STATE, useTestServer } from './support/fixtures.js';
import type { TestClient } from './support/test-client.js';

type StateUpdated = ServerEventMap['state_updated'];

describe('room state: update_state and get_state', () => {
  const { start, connect, connectAll } = useTestServer({ lazy: true });

  /** alice (host), bob (editor), carol (viewer) in `gallery`; every join event consumed. */
  const editorsAndViewer = async () => {
    const [alice, bob, carol] = await connectAll('alice', 'bob', 'carol');
    await alice.join('gallery', { userInfo: { role: 'host' } });
    await bob.join('gallery', { userInfo: { role: 'editor' } });
    const carolRoom = await carol.join('gallery', { userInfo: { role: 'viewer' } });
    expect(carolRoom.users.find((user) => user.id === 'carol')?.role).toBe('viewer');
    await alice.next('user_joined');
    await alice.next('user_joined');
    await bob.next('user_joined');
    return { alice, bob, carol };
  };

  const getState = async (client: TestClient, roomId = 'gallery') => {
    const requestId = client.request('get_state', { roomId });
    const reply = await client.reply(requestId);
    if (reply.event !== 'state') {
      throw new Error(`get_state failed: ${JSON.stringify(reply)}`);
    }
    return reply.data as ServerEventMap['state'];
  };

  /** Sends update_state and returns the sender's own state_updated (its reply). */
  const update = async (client: TestClient, fields: Record<string, unknown>) => {
    const requestId = client.request('update_state', { roomId: 'gallery', ...fields });
    const reply = await client.reply(requestId);
    if (reply.event !== 'state_updated') {
      throw new Error(`update_state failed: ${JSON.stringify(reply)}`);
    }
    return reply.data as StateUpdated;
  };

  describe('with default limits', () => {
    beforeEach(async () => {
      await start();
    });

    it('gives a new room exactly the initial state, in room_joined and get_state', async () => {
      const alice = await connect('alice');
      const room = await alice.join('fresh-room');
      expect(room.state).toStrictEqual(INITIAL_STATE);

      const requestId = alice.request('get_state', { roomId: 'fresh-room' });
      const reply = await alice.reply(requestId);
      expect(reply).toStrictEqual({
        event: 'state',
        data: { requestId, roomId: 'fresh-room', version: 0, state: INITIAL_STATE },
      });

      const created = alice.request('create_room', { roomId: 'created-room' });
      expect((await alice.reply(created)).event).toBe('room_created');
      expect((await alice.join('created-room')).state).toStrictEqual(INITIAL_STATE);
    });

    it('applies a patch at the current baseVersion and sends state_updated to every member, requestId only to the sender', async () => {
      const { alice, bob, carol } = await editorsAndViewer();
      const patch = {
        sceneUrl: 'https://example.com/scene.gltf',
        sceneLoaded: true,
        treeViewState: { expanded: ['root', 'root/a'], selected: null, extra: { deep: [1] } },
        sessionSettings: { units: 'm', showGrid: true },
      };
      const requestId = bob.request('update_state', { roomId: 'gallery', baseVersion: 0, patch });

      const event = { roomId: 'gallery', version: 1, patch, updatedBy: 'bob' };
      expect(await bob.reply(requestId)).toStrictEqual({
        event: 'state_updated',
        data: { requestId, ...event },
      });
      expect(await alice.next('state_updated')).toStrictEqual(event);
      expect(await carol.next('state_updated')).toStrictEqual(event);

      const { version, state } = await getState(carol);
      expect(version).toBe(1);
      expect(state).toStrictEqual({ ...INITIAL_STATE, ...patch, version: 1 });
      await alice.expectNothing(50);
      await bob.expectNothing(0);
    });

    it('replaces whole top-level sections: a second patch does not merge into the first', async () => {
      const { alice } = await editorsAndViewer();
      await update(alice, { baseVersion: 0, patch: { treeViewState: { a: 1 } } });
      await update(alice, { baseVersion: 1, patch: { treeViewState: { b: 2 }, sceneUrl: null } });
      const { state } = await getState(alice);
      expect(state.treeViewState).toStrictEqual({ b: 2 });
      expect(state.sceneUrl).toBeNull();
      expect(state.version).toBe(2);
    });

    it('leaves the sections a patch does not name untouched', async () => {
      const { alice, bob } = await editorsAndViewer();
      const full = {
        sceneUrl: 'https://example.com/scene.gltf',
        sceneLoaded: false,
        treeViewState: { expanded: ['root'] },
        sessionSettings: { units: 'm' },
      };
      await update(alice, { baseVersion: 0, patch: full });
      await update(alice, { baseVersion: 1, patch: { sceneLoaded: true } });
      const expected = { ...INITIAL_STATE, ...full, sceneLoaded: true, version: 2 };
      expect((await getState(bob)).state).toStrictEqual(expected);

      const late = await connect('late');
      expect((await late.join('gallery')).state).toStrictEqual(expected);
    });

    it('refuses a stale or future baseVersion with STALE_VERSION and currentVersion, changing nothing', async () => {
      const { alice, bob, carol } = await editorsAndViewer();
      await update(alice, { baseVersion: 0, patch: { sceneLoaded: true } });
      await bob.next('state_updated');
      await carol.next('state_updated');
      const before = await getState(bob);

      for (const baseVersion of [0, 5]) {
        const requestId = bob.request('update_state', {
          roomId: 'gallery',
          baseVersion,
          patch: { sceneUrl: 'https://example.com/other.gltf' },
        });
        expect(await bob.error(requestId)).toMatchObject({
          code: 'STALE_VERSION',
          currentVersion: 1,
          requestId,
        });
      }
      const after = await getState(bob);
      expect(after.version).toBe(1);
      expect(after.state).toStrictEqual(before.state);
      await alice.expectNothing(50, 'state_updated');
      await carol.expectNothing(0);
    });

    it('refuses a patch without baseVersion with VALIDATION_FAILED naming baseVersion', async () => {
      const { alice } = await editorsAndViewer();
      const requestId = alice.request('update_state', {
        roomId: 'gallery',
        patch: { sceneLoaded: true },
      });
      expect(await alice.error(requestId)).toMatchObject({
        code: 'VALIDATION_FAILED',
        field: 'baseVersion',
        requestId,
      });
      expect((await getState(alice)).version).toBe(0);
    });

    it.each([
      ['annotations', { annotations: [] }],
      ['version', { version: 7 }],
      ['an unknown key', { cameraPose: { x: 1 } }],
    ])('refuses a patch of %s with VALIDATION_FAILED', async (_case, patch) => {
      const { alice, bob } = await editorsAndViewer();
      const requestId = alice.request('update_state', {
        roomId: 'gallery',
        baseVersion: 0,
        patch,
      });
      const error = await alice.error(requestId);
      expect(error.code).toBe('VALIDATION_FAILED');
      expect(error.field).toMatch(/^patch/);
      expect(await getState(alice)).toMatchObject({ version: 0, state: INITIAL_STATE });
      await bob.expectNothing(50);
    });

    it.each([
      ['sceneLoaded a string', { sceneLoaded: 'yes' }, 'patch.sceneLoaded'],
      ['sceneUrl a number', { sceneUrl: 5 }, 'patch.sceneUrl'],
      ['treeViewState an array', { treeViewState: [1] }, 'patch.treeViewState'],
      ['sessionSettings a string', { sessionSettings: 'dark' }, 'patch.sessionSettings'],
      // null would break every reader of the state, and a persistent room's file at the next boot.
      ['sceneLoaded null', { sceneLoaded: null }, 'patch.sceneLoaded'],
      ['treeViewState null', { treeViewState: null }, 'patch.treeViewState'],
      ['sessionSettings null', { sessionSettings: null }, 'patch.sessionSettings'],
    ])(
      'refuses a patch with %s with VALIDATION_FAILED naming the field',
      async (_c, patch, field) => {
        const { alice } = await editorsAndViewer();
        const requestId = alice.request('update_state', {
          roomId: 'gallery',
          baseVersion: 0,
          patch,
        });
        expect(await alice.error(requestId)).toMatchObject({ code: 'VALIDATION_FAILED', field });
      },
    );

    it('refuses an update_state with neither patch nor ops, and malformed ops, with VALIDATION_FAILED', async () => {
      const { alice } = await editorsAndViewer();
      const bad: Array<Record<string, unknown>> = [
        {},
        { ops: [] },
        { ops: 'add' },
        { ops: [{ op: 'upsert', collection: 'annotations', id: 'a1', item: {} }] },
        { ops: [{ op: 'add', collection: 'users', id: 'a1', item: {} }] },
        { ops: [{ op: 'add', collection: 'annotations', item: {} }] },
        { ops: [{ op: 'add', collection: 'annotations', id: 'a1' }] },
        { ops: [{ op: 'add', collection: 'annotations', id: 'a1', item: [1] }] },
        { baseVersion: -1, patch: { sceneLoaded: true } },
        { baseVersion: '0', patch: { sceneLoaded: true } },
      ];
      for (const fields of bad) {
        const requestId = alice.request('update_state', { roomId: 'gallery', ...fields });
        const error = await alice.error(requestId);
        expect({ fields, code: error.code }).toEqual({ fields, code: 'VALIDATION_FAILED' });
        expect(typeof error.field).toBe('string');
      }
      expect((await getState(alice)).version).toBe(0);
    });

    it('adds, updates and removes annotations and focus points with ops, no baseVersion needed', async () => {
      const { alice, bob, carol } = await editorsAndViewer();
      const addOps = [
        {
          op: 'add',
          collection: 'annotations',
          id: 'a1',
          item: { text: 'hello', position: [1, 2, 3] },
        },
        { op: 'add', collection: 'focusPoints', id: 'f1', item: { target: [0, 0, 0], fov: 45 } },
      ];
      const added = await update(bob, { ops: addOps });
      expect(added).toMatchObject({ version: 1, ops: addOps, updatedBy: 'bob' });
      expect(added).not.toHaveProperty('patch');
      const seenByAlice = await alice.next('state_updated');
      expect(seenByAlice).toStrictEqual({
        roomId: 'gallery',
        version: 1,
        ops: addOps,
        updatedBy: 'bob',
      });
      expect(await carol.next('state_updated')).toStrictEqual(seenByAlice);

      let { state } = await getState(carol);
      expect(state.annotations).toStrictEqual([{ id: 'a1', text: 'hello', position: [1, 2, 3] }]);
      expect(state.focusPoints).toStrictEqual([{ id: 'f1', target: [0, 0, 0], fov: 45 }]);

      // `update` merges the item's fields into the stored item (the implementation's reading).
      await update(alice, {
        ops: [
          { op: 'update', collection: 'annotations', id: 'a1', item: { text: 'edited' } },
          { op: 'update', collection: 'focusPoints', id: 'f1', item: { fov: 60 } },
        ],
      });
      ({ state } = await getState(alice));
      expect(state.version).toBe(2);
      expect(state.annotations).toStrictEqual([{ id: 'a1', text: 'edited', position: [1, 2, 3] }]);
      expect(state.focusPoints).toStrictEqual([{ id: 'f1', target: [0, 0, 0], fov: 60 }]);

      const removed = await update(bob, {
        ops: [
          { op: 'remove', collection: 'annotations', id: 'a1' },
          { op: 'remove', collection: 'focusPoints', id: 'f1' },
        ],
      });
      expect(removed.version).toBe(3);
      ({ state } = await getState(bob));
      expect(state).toStrictEqual({ ...INITIAL_STATE, version: 3 });
    });

    it('answers ITEM_EXISTS for adding an existing id and ITEM_NOT_FOUND for updating or removing a missing one', async () => {
      const { alice, bob } = await editorsAndViewer();
      await update(alice, {
        ops: [{ op: 'add', collection: 'annotations', id: 'a1', item: { text: 'one' } }],
      });
      await bob.next('state_updated');

      const cases: Array<[Record<string, unknown>, string]> = [
        [{ op: 'add', collection: 'annotations', id: 'a1', item: { text: 'dup' } }, 'ITEM_EXISTS'],
        [
          { op: 'update', collection: 'annotations', id: 'zz', item: { text: 'x' } },
          'ITEM_NOT_FOUND',
        ],
        [{ op: 'remove', collection: 'annotations', id: 'zz' }, 'ITEM_NOT_FOUND'],
        [{ op: 'update', collection: 'focusPoints', id: 'a1', item: { fov: 1 } }, 'ITEM_NOT_FOUND'],
        [{ op: 'remove', collection: 'focusPoints', id: 'a1' }, 'ITEM_NOT_FOUND'],
      ];
      for (const [op, code] of cases) {
        const requestId = bob.request('update_state', { roomId: 'gallery', ops: [op] });
        expect(await bob.error(requestId)).toMatchObject({ code, requestId });
      }
      const { state } = await getState(bob);
      expect(state.version).toBe(1);
      expect(state.annotations).toStrictEqual([{ id: 'a1', text: 'one' }]);
      expect(state.focusPoints).toStrictEqual([]);
      await alice.expectNothing(50);
    });

    it('refuses ops holding what the server would not store, naming the field', async () => {
      const { alice, bob } = await editorsAndViewer();
      await update(alice, {
        ops: [{ op: 'add', collection: 'annotations', id: 'a1', item: { text: 'one' } }],
      });
      await bob.next('state_updated');
      const before = await getState(alice);

      const annotation = { collection: 'annotations', id: 'a1' };
      const attempts: Array<[Record<string, unknown>, string]> = [
        [{ op: 'update', ...annotation, item: { id: 'zzz', text: 'y' } }, 'ops.0.item.id'],
        [{ op: 'add', collection: 'annotations', id: 'a2', item: { id: 'a9' } }, 'ops.0.item.id'],
        [{ op: 'update', ...annotation, item: { text: 'y' }, extra: 'junk' }, 'ops.0.extra'],
        [{ op: 'add', collection: 'focusPoints', id: 'f1', item: {}, note: 1 }, 'ops.0.note'],
        [{ op: 'remove', ...annotation, item: { text: 'gone' } }, 'ops.0.item'],
      ];
      for (const [op, field] of attempts) {
        const requestId = alice.request('update_state', { roomId: 'gallery', ops: [op] });
        expect({ op, error: await alice.error(requestId) }).toMatchObject({
          op,
          error: { code: 'VALIDATION_FAILED', field, requestId },
        });
      }
      expect(await getState(alice)).toStrictEqual({ ...before, requestId: expect.any(String) });
      await bob.expectNothing(50);

      // An item.id equal to the op's id is what gets stored: the echo, merged as the docs say
      // (shallowly into the stored item), gives the server's item.
      const ops = [{ op: 'update', ...annotation, item: { id: 'a1', text: 'two' } }];
      await update(alice, { ops });
      const seen = await bob.next('state_updated');
      expect(seen.ops).toStrictEqual(ops);
      const stored = before.state.annotations[0];
      expect((await getState(bob)).state.annotations).toStrictEqual([
        { ...stored, ...seen.ops?.[0].item },
      ]);
    });

    it('applies a request all or nothing: a good op followed by a bad one changes nothing', async () => {
      const { alice, bob } = await editorsAndViewer();
      await update(alice, {
        ops: [{ op: 'add', collection: 'annotations', id: 'a1', item: { text: 'one' } }],
      });
      await bob.next('state_updated');
      const before = await getState(alice);

      const attempts: Array<[Record<string, unknown>, string]> = [
        [
          {
            ops: [
              { op: 'add', collection: 'annotations', id: 'a2', item: { text: 'two' } },
              { op: 'update', collection: 'annotations', id: 'missing', item: { text: 'x' } },
            ],
          },
          'ITEM_NOT_FOUND',
        ],
        [
          {
            ops: [
              { op: 'remove', collection: 'annotations', id: 'a1' },
              { op: 'add', collection: 'focusPoints', id: 'f1', item: {} },
              { op: 'add', collection: 'focusPoints', id: 'f1', item: {} },
            ],
          },
          'ITEM_EXISTS',
        ],
        [
          {
            baseVersion: 1,
            patch: { sceneUrl: 'https://example.com/x.gltf', sceneLoaded: true },
            ops: [{ op: 'remove', collection: 'annotations', id: 'missing' }],
          },
          'ITEM_NOT_FOUND',
        ],
        [
          {
            baseVersion: 0,
            patch: { sceneLoaded: true },
            ops: [{ op: 'add', collection: 'annotations', id: 'a3', item: {} }],
          },
          'STALE_VERSION',
        ],
      ];
      for (const [fields, code] of attempts) {
        const requestId = alice.request('update_state', { roomId: 'gallery', ...fields });
        expect(await alice.error(requestId)).toMatchObject({ code, requestId });
      }
      expect(await getState(alice)).toStrictEqual({
        ...before,
        requestId: expect.any(String),
      });
      await bob.expectNothing(50);
    });

    it('lets two editors add different annotations concurrently without baseVersion', async () => {
      const { alice, bob, carol } = await editorsAndViewer();
      const fromAlice = alice.request('update_state', {
        roomId: 'gallery',
        ops: [{ op: 'add', collection: 'annotations', id: 'by-alice', item: { text: 'A' } }],
      });
      const fromBob = bob.request('update_state', {
        roomId: 'gallery',
        ops: [{ op: 'add', collection: 'annotations', id: 'by-bob', item: { text: 'B' } }],
      });
      const aliceReply = await alice.reply(fromAlice);
      const bobReply = await bob.reply(fromBob);
      expect(aliceReply.event).toBe('state_updated');
      expect(bobReply.event).toBe('state_updated');
      const versions = [aliceReply, bobReply].map((reply) => (reply.data as StateUpdated).version);
      expect(versions.sort()).toEqual([1, 2]);

      const carolSaw = [await carol.next('state_updated'), await carol.next('state_updated')];
      expect(carolSaw.map((event) => event.version)).toEqual([1, 2]);

      const { state } = await getState(carol);
      expect(state.version).toBe(2);
      expect(state.annotations).toHaveLength(2);
      expect(state.annotations).toEqual(
        expect.arrayContaining([
          { id: 'by-alice', text: 'A' },
          { id: 'by-bob', text: 'B' },
        ]),
      );
    });

    it('numbers many concurrent updates from several editors 1, 2, 3... with no gap, as every member sees them', async () => {
      const [alice, bob, dave, erin, carol] = await connectAll(
        'alice',
        'bob',
        'dave',
        'erin',
        'carol',
      );
      const editors = [alice, bob, dave, erin];
      for (const client of editors) {
        await client.join('gallery');
      }
      await carol.join('gallery', { userInfo: { role: 'viewer' } });
      const members = [...editors, carol];
      for (const member of members) {
        member.received.splice(0).forEach((message) => expect(message.event).toBe('user_joined'));
      }

      const perEditor = 15;
      const total = perEditor * editors.length;
      const sent = new Map<TestClient, string[]>(editors.map((client) => [client, []]));
      for (let i = 0; i < perEditor; i += 1) {
        for (const client of editors) {
          sent.get(client)!.push(
            client.request('update_state', {
              roomId: 'gallery',
              ops: [
                {
                  op: 'add',
                  collection: i % 2 === 0 ? 'annotations' : 'focusPoints',
                  id: `${client.userId}-${i}`,
                  item: { i },
                },
              ],
            }),
          );
        }
      }

      for (const member of members) {
        const seen: StateUpdated[] = [];
        while (seen.length < total) {
          const message = await member.nextAny(5000);
          if (message.event === 'user_joined') {
            continue;
          }
          expect(message.event).toBe('state_updated');
          seen.push(message.data as StateUpdated);
        }
        expect(seen.map((event) => event.version)).toEqual(
          Array.from({ length: total }, (_, index) => index + 1),
        );
        const ownRequestIds = seen
          .filter((event) => event.requestId !== undefined)
          .map((event) => event.requestId);
        expect(ownRequestIds).toEqual(sent.get(member) ?? []);
        for (const event of seen) {
          expect(event.requestId === undefined).toBe(event.updatedBy !== member.userId);
        }
      }

      const { state } = await getState(carol);
      expect(state.version).toBe(total);
      expect(state.annotations.length + state.focusPoints.length).toBe(total);
    });

    it('answers get_state with state {requestId, roomId, version, state}', async () => {
      const { alice, carol } = await editorsAndViewer();
      const patch = {
        sceneUrl: 'https://example.com/a.glb',
        sceneLoaded: true,
        treeViewState: { open: ['x'] },
        sessionSettings: { units: 'cm' },
      };
      await update(alice, { baseVersion: 0, patch });
      await update(alice, {
        ops: [{ op: 'add', collection: 'focusPoints', id: 'f1', item: { fov: 30 } }],
      });
      const requestId = carol.request('get_state', { roomId: 'gallery' });
      expect(await carol.reply(requestId)).toStrictEqual({
        event: 'state',
        data: {
          requestId,
          roomId: 'gallery',
          version: 2,
          state: {
            ...INITIAL_STATE,
            ...patch,
            version: 2,
            focusPoints: [{ id: 'f1', fov: 30 }],
          },
        },
      });
    });

    it('refuses update_state from a viewer with FORBIDDEN, and from outsiders with NOT_IN_ROOM or ROOM_NOT_FOUND', async () => {
      const { alice, carol } = await editorsAndViewer();
      const outsider = await connect('outsider');

      const byViewer = carol.request('update_state', {
        roomId: 'gallery',
        ops: [{ op: 'add', collection: 'annotations', id: 'v1', item: {} }],
      });
      expect(await carol.error(byViewer)).toMatchObject({ code: 'FORBIDDEN', requestId: byViewer });
      const viewerPatch = carol.request('update_state', {
        roomId: 'gallery',
        baseVersion: 0,
        patch: { sceneLoaded: true },
      });
      expect(await carol.error(viewerPatch)).toMatchObject({ code: 'FORBIDDEN' });

      const notMember = outsider.request('update_state', {
        roomId: 'gallery',
        ops: [{ op: 'add', collection: 'annotations', id: 'o1', item: {} }],
      });
      expect(await outsider.error(notMember)).toMatchObject({ code: 'NOT_IN_ROOM' });
      const notMemberGet = outsider.request('get_state', { roomId: 'gallery' });
      expect(await outsider.error(notMemberGet)).toMatchObject({ code: 'NOT_IN_ROOM' });
      const missing = outsider.request('update_state', {
        roomId: 'no-such-room',
        ops: [{ op: 'add', collection: 'annotations', id: 'o1', item: {} }],
      });
      expect(await outsider.error(missing)).toMatchObject({ code: 'ROOM_NOT_FOUND' });
      const missingGet = outsider.request('get_state', { roomId: 'no-such-room' });
      expect(await outsider.error(missingGet)).toMatchObject({ code: 'ROOM_NOT_FOUND' });

      expect((await getState(alice)).state).toStrictEqual(INITIAL_STATE);
      await alice.expectNothing(50);
    });
  });

  describe('with MAX_STATE_BYTES=2048', () => {
    beforeEach(async () => {
      await start({ MAX_STATE_BYTES: '2048' });
    });

    it('refuses a change that would make the serialized state too large with STATE_TOO_LARGE', async () => {
      const alice = await connect('alice');
      const bob = await connect('bob');
      await alice.join('gallery');
      await bob.join('gallery');
      await alice.next('user_joined');
      const note = (id: string) => ({
        op: 'add',
        collection: 'annotations',
        id,
        item: { text: 'x'.repeat(700) },
      });

      await update(alice, { ops: [note('n1')] });
      await update(alice, { ops: [note('n2')] });
      const tooMuch = alice.request('update_state', { roomId: 'gallery', ops: [note('n3')] });
      expect(await alice.error(tooMuch)).toMatchObject({
        code: 'STATE_TOO_LARGE',
        requestId: tooMuch,
      });

      const bigPatch = alice.request('update_state', {
        roomId: 'gallery',
        baseVersion: 2,
        patch: { treeViewState: { blob: 'y'.repeat(1000) } },
      });
      expect(await alice.error(bigPatch)).toMatchObject({ code: 'STATE_TOO_LARGE' });

      const { state } = await getState(alice);
      expect(state.version).toBe(2);
      expect(state.annotations.map((item) => item.id)).toEqual(['n1', 'n2']);
      expect(state.treeViewState).toStrictEqual({});
      expect(Buffer.byteLength(JSON.stringify(state))).toBeLessThanOrEqual(2048);

      expect((await bob.next('state_updated')).version).toBe(1);
      expect((await bob.next('state_updated')).version).toBe(2);
      await bob.expectNothing(50);

      // A change that fits still works.
      const removed = await update(alice, {
        ops: [{ op: 'remove', collection: 'annotations', id: 'n1' }],
      });
      expect(removed.version).toBe(3);
    });
  });
});
