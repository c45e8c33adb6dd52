import { randomBytes } from 'node:crypto';
import type { HistoryEntry, HistoryPosition, RecordingRoomHistory } from './room-history.js';

export interface RoomHistoryLimits {
  /** False: nothing is numbered or kept. */
  enabled: boolean;
  maxEvents: number;
  maxAgeMs: number;
}

interface TimedEntry extends HistoryEntry {
  readonly at: number;
}

interface RoomLog {
  readonly epoch: string;
  seq: number;
  /** Oldest first; only the newest maxEvents, none older than maxAgeMs once pruned. */
  readonly entries: TimedEntry[];
  /** The seq of the newest event dropped from `entries`: a resume from before it cannot recover. */
  droppedUpTo: number;
  /** Per member, the seq of its join's snapshot: a resume from before it cannot recover. */
  readonly joinedAt: Map<string, number>;
}

/**
 * Past this many joins remembered in a room, those the history has dropped every event before are
 * let go: a resume from before one of them is refused for that already (droppedUpTo). So a room
 * remembers at most about as many joins as it keeps events, plus its members.
 */
const JOINS_BEFORE_PRUNING = 256;

/**
 * The history of this process's rooms, in memory. The epoch is random per room and process, so
 * after a restart every client's epoch is stale and it gets a snapshot.
 */
export class MemoryRoomHistory implements RecordingRoomHistory {
  private readonly rooms = new Map<string, RoomLog>();

  constructor(
    private readonly limits: RoomHistoryLimits,
    private readonly now: () => number = Date.now,
  ) {}

  get enabled(): boolean {
    return this.limits.enabled;
  }

  nextSeq(roomId: string): number {
    const log = this.logOf(roomId);
    log.seq += 1;
    return log.seq;
  }

  record(roomId: string, entry: HistoryEntry): void {
    const log = this.logOf(roomId);
    if (this.limits.maxEvents === 0) {
      log.droppedUpTo = entry.seq;
      return;
    }
    log.entries.push({ ...entry, at: this.now() });
    if (log.entries.length > this.limits.maxEvents) {
      this.dropOldest(log);
    }
    // Old events go as new ones come, so a busy room holds RESUME_HISTORY_MS of them at most.
    this.pruneExpired(log);
  }

  position(roomId: string): HistoryPosition | undefined {
    if (!this.limits.enabled) {
      return undefined;
    }
    const { epoch, seq } = this.logOf(roomId);
    return { epoch, seq };
  }

  since(
    roomId: string,
    epoch: string,
    lastSeq: number,
    userId: string,
  ): readonly HistoryEntry[] | undefined {
    const log = this.rooms.get(roomId);
    if (!log || log.epoch !== epoch || lastSeq > log.seq) {
      return undefined;
    }
    this.pruneExpired(log);
    if (lastSeq < log.droppedUpTo || lastSeq < (log.joinedAt.get(userId) ?? 0)) {
      return undefined;
    }
    const missed: HistoryEntry[] = [];
    for (const entry of log.entries) {
      if (entry.seq <= lastSeq || entry.except === userId) {
        continue;
      }
      if (entry.to !== undefined && entry.to !== userId) {
        continue;
      }
      missed.push(entry);
    }
    return missed;
  }

  markJoined(roomId: string, userId: string, position: HistoryPosition): void {
    const log = this.rooms.get(roomId);
    if (!log || log.epoch !== position.epoch) {
      return;
    }
    log.joinedAt.set(userId, position.seq);
    if (log.joinedAt.size > JOINS_BEFORE_PRUNING) {
      this.pruneExpired(log);
      for (const [member, seq] of log.joinedAt) {
        if (seq <= log.droppedUpTo) {
          log.joinedAt.delete(member);
        }
      }
    }
  }

  forget(roomId: string): void {
    this.rooms.delete(roomId);
  }

  private logOf(roomId: string): RoomLog {
    let log = this.rooms.get(roomId);
    if (!log) {
      log = {
        epoch: randomBytes(8).toString('hex'),
        seq: 0,
        entries: [],
        droppedUpTo: 0,
        joinedAt: new Map(),
      };
      this.rooms.set(roomId, log);
    }
    return log;
  }

  private pruneExpired(log: RoomLog): void {
    const oldest = this.now() - this.limits.maxAgeMs;
    while (log.entries.length > 0 && log.entries[0].at < oldest) {
      this.dropOldest(log);
    }
  }

  private dropOldest(log: RoomLog): void {
    const dropped = log.entries.shift();
    if (dropped) {
      log.droppedUpTo = dropped.seq;
    }
  }
}
