import type { RoomState } from '../protocol/protocol.js';
import type { RoomConfig, RoomOwner } from '../rooms/room-store.js';

export const ROOM_PERSISTENCE = Symbol('ROOM_PERSISTENCE');

/** What survives a restart of a persistent room: no members, no bans. */
export interface PersistedRoom {
  roomId: string;
  config: RoomConfig;
  createdAt: number;
  lastActivity: number;
  /** Who created it, so that it still counts against that owner's room quota after a restart. */
  owner?: RoomOwner;
  state: RoomState;
}

/**
 * Durable storage of persistent rooms, one record per room. A resolved `save` or `remove` is
 * durable (it survives a crash of the process or the machine), and the calls for one room take
 * effect in the order they were made.
 */
export interface RoomPersistence {
  /** Every stored room; records that cannot be read are logged and skipped. */
  loadAll(): Promise<PersistedRoom[]>;
  /** Creates or replaces the room's record. */
  save(room: PersistedRoom): Promise<void>;
  /** Removes the room's record; a missing record is not an error. */
  remove(roomId: string): Promise<void>;
}
