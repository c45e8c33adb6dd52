import { ProtocolError } from '../protocol/protocol-error.js';
import {
  ErrorCode,
  type JsonObject,
  type RoomState,
  type StateCollection,
  type StateItem,
  type StateOp,
} from '../protocol/protocol.js';
import type { StateChange } from '../rooms/room-store.js';

export function initialRoomState(): RoomState {
  return {
    version: 0,
    sceneUrl: null,
    sceneLoaded: false,
    treeViewState: {},
    annotations: [],
    focusPoints: [],
    sessionSettings: {},
  };
}

/**
 * Applies one `update_state` request to a state, all or nothing: returns the next state (version
 * + 1) or throws without touching the input. Pure, so every RoomStore applies the same rules.
 */
export function applyStateChange(
  state: RoomState,
  change: StateChange,
  maxBytes: number,
): RoomState {
  if (change.patch && change.baseVersion !== state.version) {
    throw new ProtocolError(
      ErrorCode.StaleVersion,
      `State changed since version ${String(change.baseVersion)}; it is at ${state.version}`,
      { currentVersion: state.version },
    );
  }
  const next: RoomState = { ...state, ...change.patch, version: state.version + 1 };
  if (change.ops) {
    next.annotations = state.annotations;
    next.focusPoints = state.focusPoints;
    // Each touched collection is copied and searched once, then edited in place: O(items + ops).
    const edits = collectionEdits(state, change.ops);
    for (const op of change.ops) {
      (edits.get(op.collection) as CollectionEdit).apply(op);
    }
    for (const [collection, edit] of edits) {
      next[collection] = edit.result();
    }
  }
  const size = Buffer.byteLength(JSON.stringify(next));
  if (size > maxBytes) {
    throw new ProtocolError(
      ErrorCode.StateTooLarge,
      `The room state would be ${size} bytes; the limit is ${maxBytes}`,
    );
  }
  return next;
}

/** An edit of each collection the ops touch, knowing where the items with the ops' ids are. */
function collectionEdits(
  state: RoomState,
  ops: readonly StateOp[],
): Map<StateCollection, CollectionEdit> {
  const ids = new Map<StateCollection, Set<string>>();
  for (const op of ops) {
    const wanted = ids.get(op.collection);
    if (wanted) {
      wanted.add(op.id);
    } else {
      ids.set(op.collection, new Set([op.id]));
    }
  }
  const edits = new Map<StateCollection, CollectionEdit>();
  for (const [collection, wanted] of ids) {
    edits.set(collection, new CollectionEdit(state[collection], wanted));
  }
  return edits;
}

/**
 * One request's ops on one collection, applied in order on a private copy (the committed state's
 * array and items are never written to), each seeing the result of the one before, with the
 * results and errors of a search for the first item with the op's id. One pass over the items
 * finds the ops' ids; each op then costs O(1).
 */
class CollectionEdit {
  /** The copy being edited; undefined where an item was removed (dropped by result()). */
  private readonly items: (StateItem | undefined)[];
  /** Of the ops' ids: id -> index of the first item still there with that id. */
  private readonly first = new Map<string, number>();
  /**
   * index -> index of the next item with the same id (absent: none), for the items with the
   * ops' ids. Ops never make two items share an id, but a stored state may hold some (a room
   * file): removing the first one then exposes the next, as a search from the start finds it.
   */
  private readonly sameIdAfter = new Map<number, number>();
  private removed = 0;

  constructor(items: readonly StateItem[], ids: ReadonlySet<string>) {
    this.items = items.slice();
    for (let index = items.length - 1; index >= 0; index--) {
      const id = items[index].id;
      if (ids.has(id)) {
        const after = this.first.get(id);
        if (after !== undefined) {
          this.sameIdAfter.set(index, after);
        }
        this.first.set(id, index);
      }
    }
  }

  apply(op: StateOp): void {
    const index = this.first.get(op.id) ?? -1;
    switch (op.op) {
      case 'add':
        if (index !== -1) {
          throw new ProtocolError(ErrorCode.ItemExists, `${op.collection} already has ${op.id}`);
        }
        this.first.set(op.id, this.items.length);
        this.items.push({ ...(op.item as JsonObject), id: op.id });
        return;
      case 'update':
        if (index === -1) {
          throw new ProtocolError(ErrorCode.ItemNotFound, `${op.collection} has no ${op.id}`);
        }
        this.items[index] = { ...this.items[index], ...(op.item as JsonObject), id: op.id };
        return;
      case 'remove': {
        if (index === -1) {
          throw new ProtocolError(ErrorCode.ItemNotFound, `${op.collection} has no ${op.id}`);
        }
        this.items[index] = undefined;
        this.removed++;
        const after = this.sameIdAfter.get(index);
        if (after === undefined) {
          this.first.delete(op.id);
        } else {
          this.first.set(op.id, after);
        }
        return;
      }
    }
  }

  /** The edited collection, in order: a new array, whatever the ops were. */
  result(): StateItem[] {
    if (this.removed === 0) {
      return this.items as StateItem[];
    }
    return this.items.filter((item): item is StateItem => item !== undefined);
  }
}
