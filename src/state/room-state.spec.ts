import { ProtocolError } from '../protocol/protocol-error.js';
import { ErrorCode, type RoomState } from '../protocol/protocol.js';
import type { StateChange } from '../rooms/room-store.js';
import { applyStateChange, initialRoomState } from './room-state.js';

const LIMIT = 262144;

/** Runs a change that must fail and returns the ProtocolError it threw. */
function failure(state: RoomState, change: StateChange, maxBytes = LIMIT): ProtocolError {
  try {
    applyStateChange(state, change, maxBytes);
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return error as ProtocolError;
  }
  throw new Error('applyStateChange was expected to throw');
}

/** A state at version 3 with one annotation and one focus point. */
function populatedState(): RoomState {
  return {
    ...initialRoomState(),
    version: 3,
    sceneUrl: 'https://example.test/scene.glb',
    annotations: [{ id: 'a1', text: 'first', x: 1 }],
    focusPoints: [{ id: 'f1', label: 'door' }],
  };
}

describe('initialRoomState', () => {
  it('is the state of a new room', () => {
    expect(initialRoomState()).toStrictEqual({
      version: 0,
      sceneUrl: null,
      sceneLoaded: false,
      treeViewState: {},
      annotations: [],
      focusPoints: [],
      sessionSettings: {},
    });
  });

  it('returns a fresh object each time', () => {
    const first = initialRoomState();
    first.annotations.push({ id: 'x' });
    expect(initialRoomState().annotations).toEqual([]);
  });
});

describe('applyStateChange', () => {
  describe('patch', () => {
    it('replaces top-level sections when baseVersion is the current version', () => {
      const state = populatedState();
      const next = applyStateChange(
        state,
        {
          baseVersion: 3,
          patch: { sceneLoaded: true, treeViewState: { open: ['n1'] }, sessionSettings: { a: 1 } },
        },
        LIMIT,
      );
      expect(next).toStrictEqual({
        ...state,
        version: 4,
        sceneLoaded: true,
        treeViewState: { open: ['n1'] },
        sessionSettings: { a: 1 },
      });
    });

    it('replaces a section as a whole rather than merging it', () => {
      const state = { ...initialRoomState(), sessionSettings: { keep: false, other: 1 } };
      const next = applyStateChange(
        state,
        { baseVersion: 0, patch: { sessionSettings: { keep: true } } },
        LIMIT,
      );
      expect(next.sessionSettings).toStrictEqual({ keep: true });
    });

    it('can set sceneUrl back to null', () => {
      const next = applyStateChange(
        populatedState(),
        { baseVersion: 3, patch: { sceneUrl: null } },
        LIMIT,
      );
      expect(next.sceneUrl).toBeNull();
    });

    it.each([
      ['older', 2],
      ['newer', 4],
      ['zero', 0],
    ])('rejects a %s baseVersion with STALE_VERSION and the current version', (_label, base) => {
      const state = populatedState();
      const error = failure(state, { baseVersion: base, patch: { sceneLoaded: true } });
      expect(error.code).toBe(ErrorCode.StaleVersion);
      expect(error.details.currentVersion).toBe(3);
      expect(state).toStrictEqual(populatedState());
    });

    it('rejects a patch without baseVersion with STALE_VERSION and the current version', () => {
      const error = failure(populatedState(), { patch: { sceneLoaded: true } });
      expect(error.code).toBe(ErrorCode.StaleVersion);
      expect(error.details.currentVersion).toBe(3);
    });

    it('never lets a patch set the version', () => {
      const patch = { sceneLoaded: true, version: 99 } as StateChange['patch'];
      const next = applyStateChange(populatedState(), { baseVersion: 3, patch }, LIMIT);
      expect(next.version).toBe(4);
    });
  });

  describe('ops', () => {
    it('adds an item with its id, without needing a baseVersion', () => {
      const state = populatedState();
      const next = applyStateChange(
        state,
        { ops: [{ op: 'add', collection: 'annotations', id: 'a2', item: { text: 'second' } }] },
        LIMIT,
      );
      expect(next.annotations).toStrictEqual([
        { id: 'a1', text: 'first', x: 1 },
        { id: 'a2', text: 'second' },
      ]);
      expect(next.focusPoints).toStrictEqual(state.focusPoints);
      expect(next.version).toBe(4);
    });

    it('ignores a stale baseVersion when there is no patch', () => {
      const next = applyStateChange(
        populatedState(),
        { baseVersion: 0, ops: [{ op: 'add', collection: 'focusPoints', id: 'f2', item: {} }] },
        LIMIT,
      );
      expect(next.focusPoints.map((item) => item.id)).toEqual(['f1', 'f2']);
    });

    it('lets two editors add different items from the same version', () => {
      const base = populatedState();
      const first = applyStateChange(
        base,
        { baseVersion: 3, ops: [{ op: 'add', collection: 'annotations', id: 'x', item: {} }] },
        LIMIT,
      );
      const second = applyStateChange(
        first,
        { baseVersion: 3, ops: [{ op: 'add', collection: 'annotations', id: 'y', item: {} }] },
        LIMIT,
      );
      expect(second.annotations.map((item) => item.id)).toEqual(['a1', 'x', 'y']);
      expect(second.version).toBe(5);
    });

    it('rejects adding an existing id with ITEM_EXISTS', () => {
      const error = failure(populatedState(), {
        ops: [{ op: 'add', collection: 'annotations', id: 'a1', item: { text: 'dup' } }],
      });
      expect(error.code).toBe(ErrorCode.ItemExists);
    });

    it('keeps collections apart: an annotation id may also be a focus point id', () => {
      const next = applyStateChange(
        populatedState(),
        { ops: [{ op: 'add', collection: 'focusPoints', id: 'a1', item: {} }] },
        LIMIT,
      );
      expect(next.focusPoints.map((item) => item.id)).toEqual(['f1', 'a1']);
      expect(next.annotations).toHaveLength(1);
    });

    it('updates an item by merging its fields and keeping its id', () => {
      const next = applyStateChange(
        populatedState(),
        {
          ops: [
            {
              op: 'update',
              collection: 'annotations',
              id: 'a1',
              item: { id: 'hijacked', text: 'edited', y: 2 },
            },
          ],
        },
        LIMIT,
      );
      expect(next.annotations).toStrictEqual([{ id: 'a1', text: 'edited', x: 1, y: 2 }]);
    });

    it('keeps the position of an updated item', () => {
      const state = {
        ...initialRoomState(),
        annotations: [{ id: 'a' }, { id: 'b' }, { id: 'c' }],
      };
      const next = applyStateChange(
        state,
        { ops: [{ op: 'update', collection: 'annotations', id: 'b', item: { n: 1 } }] },
        LIMIT,
      );
      expect(next.annotations).toStrictEqual([{ id: 'a' }, { id: 'b', n: 1 }, { id: 'c' }]);
    });

    it('rejects updating a missing id with ITEM_NOT_FOUND', () => {
      const error = failure(populatedState(), {
        ops: [{ op: 'update', collection: 'focusPoints', id: 'nope', item: { label: 'x' } }],
      });
      expect(error.code).toBe(ErrorCode.ItemNotFound);
    });

    it('removes an item', () => {
      const next = applyStateChange(
        populatedState(),
        { ops: [{ op: 'remove', collection: 'focusPoints', id: 'f1' }] },
        LIMIT,
      );
      expect(next.focusPoints).toStrictEqual([]);
      expect(next.annotations).toHaveLength(1);
    });

    it('rejects removing a missing id with ITEM_NOT_FOUND', () => {
      const error = failure(populatedState(), {
        ops: [{ op: 'remove', collection: 'annotations', id: 'gone' }],
      });
      expect(error.code).toBe(ErrorCode.ItemNotFound);
    });

    it('applies ops in order, each seeing the result of the one before', () => {
      const next = applyStateChange(
        initialRoomState(),
        {
          ops: [
            { op: 'add', collection: 'annotations', id: 'n', item: { v: 1 } },
            { op: 'update', collection: 'annotations', id: 'n', item: { v: 2 } },
            { op: 'add', collection: 'annotations', id: 'm', item: {} },
            { op: 'remove', collection: 'annotations', id: 'm' },
          ],
        },
        LIMIT,
      );
      expect(next.annotations).toStrictEqual([{ id: 'n', v: 2 }]);
      expect(next.version).toBe(1);
    });

    it('applies a patch and ops of one request together', () => {
      const next = applyStateChange(
        populatedState(),
        {
          baseVersion: 3,
          patch: { sceneLoaded: true },
          ops: [{ op: 'remove', collection: 'annotations', id: 'a1' }],
        },
        LIMIT,
      );
      expect(next.sceneLoaded).toBe(true);
      expect(next.annotations).toStrictEqual([]);
      expect(next.version).toBe(4);
    });
  });

  describe('several ops in one request', () => {
    it('adds, updates then removes the same id', () => {
      const state = populatedState();
      const next = applyStateChange(
        state,
        {
          ops: [
            { op: 'add', collection: 'annotations', id: 'n', item: { v: 1, keep: true } },
            { op: 'update', collection: 'annotations', id: 'n', item: { v: 2 } },
            { op: 'remove', collection: 'annotations', id: 'n' },
          ],
        },
        LIMIT,
      );
      expect(next.annotations).toStrictEqual(state.annotations);
      expect(next.annotations).not.toBe(state.annotations);
      expect(next.version).toBe(4);
    });

    it('updates the same id twice, the second update merging into the first', () => {
      const next = applyStateChange(
        populatedState(),
        {
          ops: [
            { op: 'update', collection: 'annotations', id: 'a1', item: { text: 'one', y: 1 } },
            { op: 'update', collection: 'annotations', id: 'a1', item: { text: 'two', z: 2 } },
          ],
        },
        LIMIT,
      );
      expect(next.annotations).toStrictEqual([{ id: 'a1', text: 'two', x: 1, y: 1, z: 2 }]);
    });

    it('removes then adds the same id: the new item goes last, without the old fields', () => {
      const state = {
        ...initialRoomState(),
        annotations: [{ id: 'a', old: true }, { id: 'b' }, { id: 'c' }],
      };
      const next = applyStateChange(
        state,
        {
          ops: [
            { op: 'remove', collection: 'annotations', id: 'a' },
            { op: 'add', collection: 'annotations', id: 'a', item: { fresh: true } },
          ],
        },
        LIMIT,
      );
      expect(next.annotations).toStrictEqual([{ id: 'b' }, { id: 'c' }, { id: 'a', fresh: true }]);
    });

    it('rejects an update after a remove of the same id with ITEM_NOT_FOUND', () => {
      const error = failure(populatedState(), {
        ops: [
          { op: 'remove', collection: 'annotations', id: 'a1' },
          { op: 'update', collection: 'annotations', id: 'a1', item: {} },
        ],
      });
      expect(error.code).toBe(ErrorCode.ItemNotFound);
      expect(error.message).toBe('annotations has no a1');
    });

    it('rejects a second add of the same id with ITEM_EXISTS', () => {
      const state = populatedState();
      const error = failure(state, {
        ops: [
          { op: 'add', collection: 'focusPoints', id: 'f2', item: {} },
          { op: 'add', collection: 'focusPoints', id: 'f2', item: {} },
        ],
      });
      expect(error.code).toBe(ErrorCode.ItemExists);
      expect(error.message).toBe('focusPoints already has f2');
      expect(state).toStrictEqual(populatedState());
    });

    it('applies interleaved ops on two collections, each to its own', () => {
      const state = populatedState();
      const next = applyStateChange(
        state,
        {
          ops: [
            { op: 'add', collection: 'annotations', id: 'x', item: { n: 1 } },
            { op: 'add', collection: 'focusPoints', id: 'x', item: { n: 2 } },
            { op: 'update', collection: 'annotations', id: 'a1', item: { text: 'edited' } },
            { op: 'remove', collection: 'focusPoints', id: 'f1' },
            { op: 'update', collection: 'focusPoints', id: 'x', item: { m: 3 } },
            { op: 'remove', collection: 'annotations', id: 'x' },
          ],
        },
        LIMIT,
      );
      expect(next.annotations).toStrictEqual([{ id: 'a1', text: 'edited', x: 1 }]);
      expect(next.focusPoints).toStrictEqual([{ id: 'x', n: 2, m: 3 }]);
      expect(state).toStrictEqual(populatedState());
    });

    it('leaves a collection no op touches as it was, the same array', () => {
      const state = populatedState();
      const next = applyStateChange(
        state,
        { ops: [{ op: 'update', collection: 'annotations', id: 'a1', item: { x: 2 } }] },
        LIMIT,
      );
      expect(next.focusPoints).toBe(state.focusPoints);
      expect(next.annotations).not.toBe(state.annotations);
    });

    it('applies 100 updates of the last of 20,000 items', () => {
      const annotations = Array.from({ length: 20000 }, (_, i) => ({ id: String(i) }));
      const state = { ...initialRoomState(), annotations };
      const ops: StateChange['ops'] = Array.from({ length: 100 }, (_, i) => ({
        op: 'update' as const,
        collection: 'annotations' as const,
        id: '19999',
        item: i % 2 === 0 ? { n: i } : { [`k${i}`]: true },
      }));
      const next = applyStateChange(state, { ops }, 4 * LIMIT);
      const expected: Record<string, unknown> = { id: '19999', n: 98 };
      for (let i = 1; i < 100; i += 2) {
        expected[`k${i}`] = true;
      }
      expect(next.annotations).toHaveLength(20000);
      expect(next.annotations[19999]).toStrictEqual(expected);
      expect(next.annotations.slice(0, 19999).every((item, i) => item === annotations[i])).toBe(
        true,
      );
      expect(state.annotations[19999]).toStrictEqual({ id: '19999' });
      expect(next.version).toBe(1);
    });

    it('removes, updates and adds among 20,000 items, keeping the order', () => {
      const annotations = Array.from({ length: 20000 }, (_, i) => ({ id: String(i) }));
      const state = { ...initialRoomState(), annotations };
      const next = applyStateChange(
        state,
        {
          ops: [
            { op: 'remove', collection: 'annotations', id: '0' },
            { op: 'update', collection: 'annotations', id: '10000', item: { n: 1 } },
            { op: 'remove', collection: 'annotations', id: '19999' },
            { op: 'add', collection: 'annotations', id: '0', item: {} },
            { op: 'remove', collection: 'annotations', id: '5000' },
          ],
        },
        4 * LIMIT,
      );
      const ids = next.annotations.map((item) => item.id);
      expect(ids).toHaveLength(19998);
      expect(ids.slice(0, 2)).toEqual(['1', '2']);
      expect(ids.slice(-2)).toEqual(['19998', '0']);
      expect(ids).not.toContain('5000');
      expect(next.annotations[ids.indexOf('10000')]).toStrictEqual({ id: '10000', n: 1 });
      expect(state.annotations).toHaveLength(20000);
      expect(state.annotations[0]).toStrictEqual({ id: '0' });
    });

    it('acts on the first of items sharing an id, as a stored state may hold', () => {
      const state = {
        ...initialRoomState(),
        annotations: [{ id: 'd', n: 1 }, { id: 'e' }, { id: 'd', n: 2 }],
      };
      const updated = applyStateChange(
        state,
        { ops: [{ op: 'update', collection: 'annotations', id: 'd', item: { u: true } }] },
        LIMIT,
      );
      expect(updated.annotations).toStrictEqual([
        { id: 'd', n: 1, u: true },
        { id: 'e' },
        { id: 'd', n: 2 },
      ]);
      const next = applyStateChange(
        state,
        {
          ops: [
            { op: 'remove', collection: 'annotations', id: 'd' },
            { op: 'update', collection: 'annotations', id: 'd', item: { u: true } },
          ],
        },
        LIMIT,
      );
      expect(next.annotations).toStrictEqual([{ id: 'e' }, { id: 'd', n: 2, u: true }]);
      expect(
        failure(state, {
          ops: [
            { op: 'remove', collection: 'annotations', id: 'd' },
            { op: 'add', collection: 'annotations', id: 'd', item: {} },
          ],
        }).code,
      ).toBe(ErrorCode.ItemExists);
      const gone = applyStateChange(
        state,
        {
          ops: [
            { op: 'remove', collection: 'annotations', id: 'd' },
            { op: 'remove', collection: 'annotations', id: 'd' },
            { op: 'add', collection: 'annotations', id: 'd', item: { n: 3 } },
          ],
        },
        LIMIT,
      );
      expect(gone.annotations).toStrictEqual([{ id: 'e' }, { id: 'd', n: 3 }]);
    });
  });

  describe('all or nothing', () => {
    it('leaves the input state unchanged when a later op fails', () => {
      const state = populatedState();
      const error = failure(state, {
        ops: [
          { op: 'add', collection: 'annotations', id: 'a2', item: { text: 'new' } },
          { op: 'update', collection: 'annotations', id: 'a1', item: { text: 'changed' } },
          { op: 'remove', collection: 'focusPoints', id: 'f1' },
          { op: 'remove', collection: 'focusPoints', id: 'missing' },
        ],
      });
      expect(error.code).toBe(ErrorCode.ItemNotFound);
      expect(state).toStrictEqual(populatedState());
    });

    it('leaves the input state unchanged when the ops succeed but a stale patch rides along', () => {
      const state = populatedState();
      const error = failure(state, {
        baseVersion: 1,
        patch: { sceneLoaded: true },
        ops: [{ op: 'add', collection: 'annotations', id: 'a2', item: {} }],
      });
      expect(error.code).toBe(ErrorCode.StaleVersion);
      expect(state).toStrictEqual(populatedState());
    });

    it('never mutates the input, even on success', () => {
      const state = populatedState();
      const next = applyStateChange(
        state,
        {
          baseVersion: 3,
          patch: { sceneUrl: 'other.glb' },
          ops: [
            { op: 'update', collection: 'annotations', id: 'a1', item: { text: 'changed' } },
            { op: 'add', collection: 'focusPoints', id: 'f2', item: {} },
          ],
        },
        LIMIT,
      );
      expect(state).toStrictEqual(populatedState());
      expect(next).not.toBe(state);
    });
  });

  describe('version', () => {
    it('adds exactly 1 per call, whatever the number of ops', () => {
      let state = initialRoomState();
      state = applyStateChange(
        state,
        {
          ops: [
            { op: 'add', collection: 'annotations', id: '1', item: {} },
            { op: 'add', collection: 'annotations', id: '2', item: {} },
            { op: 'add', collection: 'focusPoints', id: '3', item: {} },
          ],
        },
        LIMIT,
      );
      expect(state.version).toBe(1);
      state = applyStateChange(state, { baseVersion: 1, patch: { sceneLoaded: true } }, LIMIT);
      expect(state.version).toBe(2);
      state = applyStateChange(
        state,
        { ops: [{ op: 'remove', collection: 'annotations', id: '1' }] },
        LIMIT,
      );
      expect(state.version).toBe(3);
    });

    it('does not move when the change fails', () => {
      const state = populatedState();
      failure(state, { ops: [{ op: 'remove', collection: 'annotations', id: 'missing' }] });
      expect(state.version).toBe(3);
    });
  });

  describe('size limit', () => {
    it('rejects a state whose JSON would exceed maxBytes with STATE_TOO_LARGE', () => {
      const state = initialRoomState();
      const error = failure(
        state,
        {
          ops: [
            { op: 'add', collection: 'annotations', id: 'big', item: { text: 'x'.repeat(2000) } },
          ],
        },
        1024,
      );
      expect(error.code).toBe(ErrorCode.StateTooLarge);
      expect(state).toStrictEqual(initialRoomState());
    });

    it('counts bytes, not characters', () => {
      const text = '\u00e9'.repeat(600); // 600 characters, 1200 bytes in UTF-8
      const change: StateChange = {
        ops: [{ op: 'add', collection: 'annotations', id: 'e', item: { text } }],
      };
      expect(failure(initialRoomState(), change, 1024).code).toBe(ErrorCode.StateTooLarge);
    });

    it('accepts a state of exactly maxBytes', () => {
      const change: StateChange = {
        ops: [{ op: 'add', collection: 'annotations', id: 'e', item: { text: '' } }],
      };
      const size = Buffer.byteLength(
        JSON.stringify(applyStateChange(initialRoomState(), change, LIMIT)),
      );
      const next = applyStateChange(initialRoomState(), change, size);
      expect(next.annotations).toHaveLength(1);
      expect(failure(initialRoomState(), change, size - 1).code).toBe(ErrorCode.StateTooLarge);
    });

    it('still allows a change that shrinks a state', () => {
      const change: StateChange = {
        ops: [{ op: 'add', collection: 'annotations', id: 'big', item: { t: 'x'.repeat(500) } }],
      };
      const big = applyStateChange(initialRoomState(), change, LIMIT);
      const limit = Buffer.byteLength(JSON.stringify(big)) + 5;
      const smaller = applyStateChange(
        big,
        { ops: [{ op: 'remove', collection: 'annotations', id: 'big' }] },
        limit,
      );
      expect(smaller.annotations).toEqual([]);
    });
  });
});
