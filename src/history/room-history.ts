import type { QueuedFrame } from '../users/client-link.js';

export const ROOM_HISTORY = Symbol('ROOM_HISTORY');

/** Where a room's history stands: its epoch and the `seq` of its last event. */
export interface HistoryPosition {
  readonly epoch: string;
  readonly seq: number;
}

/** One numbered room event, kept for clients that resume. */
export interface HistoryEntry {
  readonly seq: number;
  readonly frame: QueuedFrame;
  /** Not for this member (the joiner's own `user_joined`, a sender's own message). */
  readonly except?: string;
  /** Only for this member (a direct message, a kick notice). */
  readonly to?: string;
}

/**
 * The recent non-throwaway events of each room, numbered (`seq`) within the room's `epoch`, so
 * that a client whose connection dropped gets exactly what it missed (docs/resume.md). Poses are
 * never numbered nor kept. Disabled (RECONNECT_GRACE_MS=0): nothing is numbered. Kept in this
 * process (MemoryRoomHistory) or in Redis for a cluster (RedisRoomHistory), which numbers there.
 */
export interface RoomHistory {
  readonly enabled: boolean;
  /**
   * Where the room's history stands now, for a snapshot that has no position of its own (a
   * cluster's store puts it in the snapshot: then undefined).
   */
  position(roomId: string): HistoryPosition | undefined;
  /**
   * The events after `lastSeq` that `userId` would have received, in order; undefined when they
   * cannot all be given (another epoch, or some were dropped already).
   */
  since(
    roomId: string,
    epoch: string,
    lastSeq: number,
    userId: string,
  ): Promise<readonly HistoryEntry[] | undefined> | readonly HistoryEntry[] | undefined;
  /**
   * `userId` joined the room with a snapshot at `position`: a resume from before it gets a
   * snapshot, never the events the member was not there for (`since` answers undefined).
   */
  markJoined(roomId: string, userId: string, position: HistoryPosition): void;
  /** The room is gone: its history too (a room created again gets a new epoch). */
  forget(roomId: string): void;
}

/** A history that numbers events itself: the single-instance bus records every event in it. */
export interface RecordingRoomHistory extends RoomHistory {
  /** Numbers the room's next event. */
  nextSeq(roomId: string): number;
  /** Keeps a numbered event (within RESUME_HISTORY_EVENTS and RESUME_HISTORY_MS). */
  record(roomId: string, entry: HistoryEntry): void;
}
