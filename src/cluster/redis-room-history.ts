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
      .hget(historyJoinedKey(keyPrefix, roomId), userId)
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
   * A lost write only leaves a resume as it was before marks existed. The marks of a room with no
   * join for RESUME_HISTORY_MS (plus a minute) go: its history holds no event from before them.
   * Past JOINS_BEFORE_PRUNING marks, those older than the history's oldest event go too, since a
   * resume from before one of them finds a gap and gets a snapshot anyway.
   */
  markJoined(roomId: string, userId: string, position: HistoryPosition): void {
    const { publisher, keyPrefix } = this.cluster;
    const key = historyJoinedKey(keyPrefix, roomId);
    publisher
      .multi()
      .hset(key, userId, `${position.epoch} ${position.seq}`)
      .pexpire(key, this.config.resume.historyMs + JOINED_MARK_MARGIN_MS)
      .hlen(key)
      .exec()
      .then((replies) => {
        const count = Number(replies?.[2]?.[1] ?? 0);
        return count > JOINS_BEFORE_PRUNING ? this.pruneJoined(roomId) : undefined;
      })
      .catch(() => undefined);
  }

  /** Drops the join marks from before the oldest event the room's history still holds. */
  private async pruneJoined(roomId: string): Promise<void> {
    const { publisher, keyPrefix } = this.cluster;
    const [oldest] = await publisher.xrange(historyKey(keyPrefix, roomId), '-', '+', 'COUNT', 1);
    const oldestSeq = oldest ? Number(oldest[0].slice('0-'.length)) : Infinity;
    const marks = await publisher.hgetall(historyJoinedKey(keyPrefix, roomId));
    const stale = Object.entries(marks)
      .filter(([, mark]) => Number(mark.split(' ')[1]) < oldestSeq)
      .map(([member]) => member);
    if (stale.length > 0) {
      await publisher.hdel(historyJoinedKey(keyPrefix, roomId), ...stale);
    }
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
const JOINS_BEFORE_PRUNING = 256;

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
