import type { Role, RoomUser, StateOp, StatePatch } from '../protocol/protocol.js';

/** Why a member is no longer in a room. */
export type LeaveReason =
  /** `leave_room`. */
  | 'left'
  /** Its socket closed, missed its heartbeats, or could not keep up. */
  | 'disconnected'
  /** A host kicked it. */
  | 'kicked'
  /** Its instance stopped answering (cluster mode) and another instance removed it. */
  | 'gone';

/** Why a room is gone. */
export type RoomDeletedReason = 'deleted' | 'idle_timeout' | 'empty';

/**
 * The room lifecycle, as typed events. Each is emitted once per change, on the instance that
 * committed it, after the commit (so a listener never sees a change that did not happen).
 */
export interface RoomEventMap {
  'room.created': {
    roomId: string;
    persistent: boolean;
    /** Who created it (`create_room`, or the first `join_room` of a missing room). */
    createdBy?: string;
  };
  'member.joined': {
    roomId: string;
    user: RoomUser;
  };
  'member.left': {
    roomId: string;
    userId: string;
    reason: LeaveReason;
    /** Who hosts the room now, when the host left. */
    newHost?: RoomUser;
    /** The host that kicked it (reason `kicked`). */
    by?: string;
  };
  'member.role_changed': {
    roomId: string;
    userId: string;
    role: Role;
    /** Who changed it; absent when the server did (host handover). */
    by?: string;
  };
  'state.committed': {
    roomId: string;
    version: number;
    patch?: StatePatch;
    ops?: StateOp[];
    updatedBy: string;
  };
  'room.deleted': {
    roomId: string;
    reason: RoomDeletedReason;
    /** The host that deleted it (reason `deleted`). */
    by?: string;
  };
}

export type RoomEventName = keyof RoomEventMap;

export type RoomEventListener<K extends RoomEventName> = (
  event: RoomEventMap[K],
) => void | Promise<void>;
