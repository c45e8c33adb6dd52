import type { RoomState, ServerEventMap, StateItem, StateOp } from '../../src/protocol/protocol.js';

export type StateUpdate = ServerEventMap['state_updated'];

/**
 * The state after a `state_updated` the server applied (validated, all or nothing): its rules
 * without the checks. A patch replaces sections, `update` merges shallowly.
 */
export function applyStateUpdate(state: RoomState, update: StateUpdate): RoomState {
  const next: RoomState = { ...state, ...update.patch, version: update.version };
  for (const op of update.ops ?? []) {
    next[op.collection] = applyOp(next[op.collection], op);
  }
  return next;
}

function applyOp(items: StateItem[], op: StateOp): StateItem[] {
  const index = items.findIndex((item) => item.id === op.id);
  switch (op.op) {
    case 'add':
      return [...items.filter((item) => item.id !== op.id), { ...op.item, id: op.id }];
    case 'update': {
      if (index === -1) {
        return items;
      }
      const updated = items.slice();
      updated[index] = { ...items[index], ...op.item, id: op.id };
      return updated;
    }
    case 'remove':
      return items.filter((item) => item.id !== op.id);
  }
}
