import { Inject, Injectable } from '@nestjs/common';
import { toOutgoingFrame } from '../bus/outgoing-frame.js';
import { appConfig, type AppConfig } from '../config/app.config.js';
import type { HistoryEntry, RoomHistory } from '../history/room-history.js';
import { CLUSTER, historyCapOf, type Cluster } from './cluster.js';
import {
  decodeEnvelope,
  envelopeSeqKey,
  historyEpochKey,
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
      .exec();
    const [current, seq, entries] = (replies ?? []).map(([error, value]) => {
      if (error) {
        throw error;
      }
      return value;
    }) as [string | null, string | null, Array<[string, string[]]>];
    const newest = Number(seq ?? 0);
    if (current !== epoch || lastSeq > newest || newest - lastSeq > this.cap) {
      return undefined;
    }
    return this.missedOf(entries, lastSeq, newest, userId);
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

function fieldOf(fields: readonly string[], name: string): string {
  const index = fields.indexOf(name);
  return index >= 0 && index % 2 === 0 ? fields[index + 1] : '';
}
