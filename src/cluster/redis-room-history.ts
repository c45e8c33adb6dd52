import { Inject, Injectable } from '@nestjs/common';
import { toOutgoingFrame } from '../bus/outgoing-frame.js';
import { appConfig, type AppConfig } from '../config/app.config.js';
import type { HistoryEntry, HistoryPosition, RoomHistory } from '../history/room-history.js';
import { CLUSTER, historyCapOf, type Cluster } from './cluster.js';
import {
  decodeEnvelope,
  envelopeSeqKey,
  historyEpochKey,
  historyJoinedKey,
  historyKey,
  withSeq,
} from './room-envelope.js';

/**
 * A cluster's room history: the stream Redis keeps per room as it numbers envelopes
 * (lua/numbering.ts), so a client may resume on any instance. Snapshots from the store carry
 * their position (epoch and seq), taken in the same script.
 */
@Injectable()
export class RedisRoomHistory implements RoomHistory {
  private readonly cap: number;

  constructor(
    @Inject(CLUSTER) private readonly cluster: Cluster,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
  ) {
    this.cap = historyCapOf(config);
  }

  get enabled(): boolean {
    return this.cap > 0;
  }

  /** The store's snapshots carry it. */
  position(): undefined {
    return undefined;
  }

  async since(
    roomId: string,
    epoch: string,
    lastSeq: number,
    userId: string,
  ): Promise<readonly HistoryEntry[] | undefined> {
    const { publisher, keyPrefix } = this.cluster;
    const replies = await publisher
      .multi()
      .get(historyEpochKey(keyPrefix, roomId))
      .get(envelopeSeqKey(keyPrefix, roomId))
      .xrange(historyKey(keyPrefix, roomId), `(0-${lastSeq}`, '+', 'COUNT', this.cap + 1)
      .get(historyJoinedKey(keyPrefix, roomId, userId))
      .exec();
    const [current, seq, entries, joined] = (replies ?? []).map(([error, value]) => {
      if (error) {
        throw error;
      }
      return value;
    }) as [string | null, string | null, Array<[string, string[]]>, string | null];
    const newest = Number(seq ?? 0);
    if (current !== epoch || lastSeq > newest || newest - lastSeq > this.cap) {
      return undefined;
    }
    if (joinedAfter(joined, epoch, lastSeq)) {
      return undefined;
    }
    return this.missedOf(entries, lastSeq, newest, userId);
  }

  /**
   * Kept for as long as the history may hold events from before the join (RESUME_HISTORY_MS,
   * plus a minute for clocks and stragglers); a lost write only leaves a resume as it was.
   */
  markJoined(roomId: string, userId: string, position: HistoryPosition): void {
    const { publisher, keyPrefix } = this.cluster;
    const ttlMs = this.config.resume.historyMs + JOINED_MARK_MARGIN_MS;
    publisher
      .set(
        historyJoinedKey(keyPrefix, roomId, userId),
        `${position.epoch} ${position.seq}`,
        'PX',
        ttlMs,
      )
      .catch(() => undefined);
  }

  /**
   * Nothing to do here: a room's history goes with the room, in the script that deletes it
   * (lua/delete-room.ts), so a room created again under its id starts a new epoch.
   */
  forget(): void {}

  /** The entries after lastSeq up to newest, if none is missing or too old; those for userId. */
  private missedOf(
    entries: Array<[string, string[]]>,
    lastSeq: number,
    newest: number,
    userId: string,
  ): HistoryEntry[] | undefined {
    const oldestKept = Date.now() - this.config.resume.historyMs;
    const missed: HistoryEntry[] = [];
    let expected = lastSeq + 1;
    for (const [id, fields] of entries) {
      const seq = Number(id.slice('0-'.length));
      if (seq !== expected || Number(fieldOf(fields, 't')) < oldestKept) {
        return undefined;
      }
      expected++;
      const envelope = decodeEnvelope(fieldOf(fields, 'e'));
      if (envelope.except === userId || (envelope.to !== null && envelope.to !== userId)) {
        continue;
      }
      missed.push({ seq, frame: toOutgoingFrame(withSeq(envelope.message, seq)) });
    }
    return expected - 1 === newest ? missed : undefined;
  }
}

const JOINED_MARK_MARGIN_MS = 60_000;

/** Whether a member's join mark ("<epoch> <seq>") is in this epoch and after `lastSeq`. */
function joinedAfter(mark: string | null, epoch: string, lastSeq: number): boolean {
  if (mark === null) {
    return false;
  }
  const [markEpoch, markSeq] = mark.split(' ');
  return markEpoch === epoch && lastSeq < Number(markSeq);
}

function fieldOf(fields: readonly string[], name: string): string {
  const index = fields.indexOf(name);
  return index >= 0 && index % 2 === 0 ? fields[index + 1] : '';
}
