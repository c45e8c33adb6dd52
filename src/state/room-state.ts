import { ProtocolError } from '../protocol/protocol-error.js';
import {
  ErrorCode,
  type JsonObject,
  type RoomState,
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
    for (const op of change.ops) {
      next[op.collection] = applyOp(next[op.collection], op);
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

function applyOp(items: StateItem[], op: StateOp): StateItem[] {
  const index = items.findIndex((item) => item.id === op.id);
  switch (op.op) {
    case 'add':
      if (index !== -1) {
        throw new ProtocolError(ErrorCode.ItemExists, `${op.collection} already has ${op.id}`);
      }
      return [...items, { ...(op.item as JsonObject), id: op.id }];
    case 'update': {
      if (index === -1) {
        throw new ProtocolError(ErrorCode.ItemNotFound, `${op.collection} has no ${op.id}`);
      }
      const updated = items.slice();
      updated[index] = { ...items[index], ...(op.item as JsonObject), id: op.id };
      return updated;
    }
    case 'remove':
      if (index === -1) {
        throw new ProtocolError(ErrorCode.ItemNotFound, `${op.collection} has no ${op.id}`);
      }
      return items.filter((_, i) => i !== index);
  }
}
