import { Injectable, Optional } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import {
  BinaryFrameType,
  MAX_POSES_PER_FRAME,
  POSE_ENTRY_BYTES,
  PoseFrameFlag,
  copyBytes,
  poseHeaderLength,
  writeFittingEntry,
  writePoseHeader,
  writeQuantizedEntry,
} from '../protocol/binary-poses.js';
import { QUANTIZED_ENTRY_BYTES } from '../protocol/quantized-poses.js';
import type { AppMessage } from '../protocol/protocol.js';
import { MessageKind, ServerCounters } from '../telemetry/server-counters.js';
import type { Connection } from '../users/connection.js';
import { UsersService } from '../users/users.service.js';
import { Fanout } from './fanout.service.js';
import type { OutgoingFrame } from './outgoing-frame.js';
import { allocateBinaryFrame } from './websocket-frame.js';

/** One room's pose entries of this turn, written as they come. */
interface RoomBatch {
  entries: Buffer;
  count: number;
}

const INITIAL_ENTRIES = 16;

/**
 * The binary pose channel's outgoing side (docs/binary-poses.md): each pose for a room's binary
 * members is written once as a 40-byte entry, and just before the turn's writes every room with
 * entries gets one frame, built once and shared by all of its binary members here. With server
 * ticks, a tick's poses all land in one turn: one frame per room per tick. Members that asked for
 * the quantized form (gallery.v2q) get a second frame, built from the same entries, once.
 */
@Injectable()
export class PoseBatches {
  private readonly batches = new Map<string, RoomBatch>();
  private batchNumber = 0;

  constructor(
    private readonly users: UsersService,
    private readonly fanout: Fanout,
    @Optional() private readonly counters: ServerCounters = new ServerCounters(),
  ) {
    fanout.beforeFlush(() => this.flush());
  }

  /** Adds a pose for the room's binary members; the caller checked that it fits (fitsPoseEntry). */
  add(roomId: string, slot: number, message: AppMessage): void {
    const batch = this.batchWithRoom(roomId);
    writeFittingEntry(batch.entries, batch.count * POSE_ENTRY_BYTES, slot, message);
    batch.count++;
  }

  /** Adds a pose already in entry form (40 bytes, read during the call only) as `slot`'s. */
  addEntry(roomId: string, slot: number, entry: Buffer): void {
    const batch = this.batchWithRoom(roomId);
    const offset = batch.count * POSE_ENTRY_BYTES;
    copyBytes(entry, 0, batch.entries, offset, POSE_ENTRY_BYTES);
    batch.entries.writeUInt16LE(slot, offset);
    batch.count++;
  }

  /** The room's batch of this turn with room for one more entry. */
  private batchWithRoom(roomId: string): RoomBatch {
    let batch = this.batches.get(roomId);
    if (!batch) {
      batch = { entries: Buffer.allocUnsafe(INITIAL_ENTRIES * POSE_ENTRY_BYTES), count: 0 };
      this.batches.set(roomId, batch);
    }
    if (batch.count === 0) {
      this.fanout.scheduleFlush();
    }
    const offset = batch.count * POSE_ENTRY_BYTES;
    if (offset === batch.entries.length) {
      const grown = Buffer.allocUnsafe(batch.entries.length * 2);
      batch.entries.copy(grown, 0, 0, offset);
      batch.entries = grown;
    }
    return batch;
  }

  /** Sends every room's frame (or frames, past MAX_POSES_PER_FRAME) to its binary members. */
  flush(): void {
    if (this.batches.size === 0) {
      return;
    }
    let numbered = false;
    for (const [roomId, batch] of this.batches) {
      const members = this.users.membership.members(roomId);
      if (!members || batch.count === 0) {
        continue;
      }
      if (!numbered) {
        this.batchNumber = (this.batchNumber + 1) >>> 0;
        numbered = true;
      }
      const [full, quantized] = formsWanted(members);
      for (let first = 0; first < batch.count; first += MAX_POSES_PER_FRAME) {
        const count = Math.min(MAX_POSES_PER_FRAME, batch.count - first);
        if (full) {
          this.deliver(roomId, members, false, this.frameOf(roomId, batch, first, count, false));
        }
        if (quantized) {
          this.deliver(roomId, members, true, this.frameOf(roomId, batch, first, count, true));
        }
      }
    }
    this.forgetIdle();
  }

  /**
   * A room's batch is kept for the next turn (its buffer already grown to the room's size); one
   * that had nothing this turn is dropped, so rooms that went quiet do not stay.
   */
  private forgetIdle(): void {
    for (const [roomId, batch] of this.batches) {
      if (batch.count === 0) {
        this.batches.delete(roomId);
      }
      batch.count = 0;
    }
  }

  private frameOf(
    roomId: string,
    batch: RoomBatch,
    first: number,
    count: number,
    quantized: boolean,
  ): OutgoingFrame {
    const entryBytes = quantized ? QUANTIZED_ENTRY_BYTES : POSE_ENTRY_BYTES;
    const payloadLength = poseHeaderLength(roomId.length) + count * entryBytes;
    const bytes = allocateBinaryFrame(payloadLength);
    const payloadStart = bytes.length - payloadLength;
    const entriesStart = writePoseHeader(
      bytes,
      payloadStart,
      BinaryFrameType.ServerPoses,
      roomId,
      count,
      this.batchNumber,
      quantized ? PoseFrameFlag.Quantized : 0,
    );
    if (quantized) {
      for (let i = 0; i < count; i++) {
        const from = (first + i) * POSE_ENTRY_BYTES;
        writeQuantizedEntry(bytes, entriesStart + i * QUANTIZED_ENTRY_BYTES, batch.entries, from);
      }
    } else {
      batch.entries.copy(
        bytes,
        entriesStart,
        first * POSE_ENTRY_BYTES,
        (first + count) * POSE_ENTRY_BYTES,
      );
    }
    return {
      json: '',
      bytes,
      binary: bytes.subarray(payloadStart),
      throwaway: true,
      kind: MessageKind.Pose,
    };
  }

  /** To the room's binary members that take this form (quantized or not): one timed fan-out. */
  private deliver(
    roomId: string,
    members: Iterable<Connection>,
    quantized: boolean,
    frame: OutgoingFrame,
  ): void {
    const started = performance.now();
    let dropped = 0;
    for (const member of members) {
      if (
        member.binaryPoses &&
        member.quantizedPoses === quantized &&
        !this.fanout.sendFrame(member, frame)
      ) {
        dropped++;
      }
    }
    if (dropped > 0) {
      this.fanout.countDrops(roomId, dropped);
    }
    this.counters.fanoutSeconds.observe((performance.now() - started) / 1000);
  }
}

/** Which forms the room's binary members here take: [full, quantized]. */
function formsWanted(members: Iterable<Connection>): [boolean, boolean] {
  let full = false;
  let quantized = false;
  for (const member of members) {
    if (member.binaryPoses) {
      if (member.quantizedPoses) {
        quantized = true;
      } else {
        full = true;
      }
    }
  }
  return [full, quantized];
}
