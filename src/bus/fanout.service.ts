import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { appConfig, type AppConfig } from '../config/app.config.js';
import { ClientAction, ServerEvent, type ServerMessage } from '../protocol/protocol.js';
import { MessageKind, ServerCounters } from '../telemetry/server-counters.js';
import type { Connection } from '../users/connection.js';
import type { EnqueueResult, OutputLimits, QueuedFrame } from '../users/client-link.js';
import { LoadShedder } from './load-shedder.js';
import { toOutgoingFrame } from './outgoing-frame.js';

export type OverflowListener = (connection: Connection) => void;

/**
 * The only code that writes frames to sockets. Callers hand it a frame built once, however many
 * connections receive it; each connection's frames of one event-loop turn go out in one write.
 * A client that cannot keep up loses throwaway frames (counted) and, past the hard limit, is
 * handed to the overflow listeners to be disconnected.
 */
@Injectable()
export class Fanout {
  private readonly logger = new Logger(Fanout.name);
  private readonly limits: OutputLimits;
  private readonly throwawayTypes: ReadonlySet<string>;
  private dirty: Connection[] = [];
  private flushScheduled = false;
  private droppedTotal = 0;
  private readonly droppedByRoom = new Map<string, number>();
  private readonly overflowListeners: OverflowListener[] = [];
  private readonly beforeFlushListeners: Array<() => void> = [];
  private readonly shedder: LoadShedder;
  /**
   * Not with server ticks: a held pose costs a map write until its tick, the sender's next one
   * replaces it, and a tick that runs late is skipped; the shedder's turns (first pose to the
   * next write) would span the wait for the tick and shed when nothing is behind. Nor with
   * POSE_SHED_TURN_MS=0, for teams that want every pose relayed, however late.
   */
  readonly shedsOnArrival: boolean;

  constructor(
    @Inject(appConfig.KEY) config: AppConfig,
    @Optional() private readonly counters: ServerCounters = new ServerCounters(),
  ) {
    this.limits = {
      softBytes: config.clientBufferSoftBytes,
      maxBytes: config.maxClientBufferBytes,
    };
    this.throwawayTypes = new Set(config.ephemeralMessageTypes);
    this.shedder = new LoadShedder(config.poseShedTurnMs);
    this.shedsOnArrival = config.poseTickMs === 0 && config.poseShedTurnMs > 0;
  }

  /** Whether an application message of this type is throwaway (EPHEMERAL_MESSAGE_TYPES). */
  isThrowaway(messageType: string): boolean {
    return this.throwawayTypes.has(messageType);
  }

  /** Sends one event to one connection (a reply): never dropped. */
  send<E extends ServerEvent>(connection: Connection, message: ServerMessage<E>): void {
    if (message.event === ServerEvent.Error) {
      this.counters.requestError((message.data as { code?: unknown } | undefined)?.code);
    }
    this.sendFrame(connection, toOutgoingFrame(message));
  }

  /**
   * Queues a frame for this turn's write. Returns false when a throwaway frame was dropped for a
   * slow client; the caller counts drops (countDrops), once per fan-out rather than per client.
   */
  sendFrame(connection: Connection, frame: QueuedFrame): boolean {
    const result = this.queue(connection, frame);
    if (result === 'queued') {
      this.counters.sent[frame.kind ?? MessageKind.Control]++;
      this.counters.bytesSent += frame.bytes.length;
    } else if (result === 'dropped') {
      this.counters.droppedSlowClient++;
    }
    return result !== 'dropped';
  }

  /**
   * sendFrame of one throwaway frame (a pose) to each of `recipients` but the one of
   * `exceptUserId`, the counters added once for the lot: this loop runs for every pose and
   * recipient. Answers how many dropped it for being slow; the caller counts them (countDrops).
   */
  sendThrowaway(
    recipients: readonly Connection[],
    exceptUserId: string,
    frame: QueuedFrame,
  ): number {
    let queued = 0;
    let dropped = 0;
    for (const connection of recipients) {
      if (connection.userId === exceptUserId) {
        continue;
      }
      const result = this.queue(connection, frame);
      if (result === 'queued') {
        queued++;
      } else if (result === 'dropped') {
        dropped++;
      }
    }
    this.counters.sent[frame.kind ?? MessageKind.Control] += queued;
    this.counters.bytesSent += queued * frame.bytes.length;
    this.counters.droppedSlowClient += dropped;
    return dropped;
  }

  /** Queues the frame on the connection: a first frame marks it for this turn's writes. */
  private queue(connection: Connection, frame: QueuedFrame): EnqueueResult {
    const output = connection.output;
    const wasEmpty = !output.hasQueued();
    const result = output.enqueue(frame, this.limits);
    if (result === 'queued' && wasEmpty) {
      this.markDirty(connection);
    } else if (result === 'overflow') {
      this.overflow(connection);
    }
    return result;
  }

  /** Whether a client message is a broadcast of a throwaway type (a pose, by default). */
  isThrowawayBroadcast(message: Record<string, unknown>): boolean {
    if (message.action !== ClientAction.Broadcast) {
      return false;
    }
    const type = (message.message as { type?: unknown } | null | undefined)?.type;
    return typeof type === 'string' && this.isThrowaway(type);
  }

  /**
   * Whether to drop a throwaway broadcast on arrival, before any handler runs, because the
   * server is behind (see LoadShedder). Only broadcasts to a room the sender is in are shed
   * (anything else goes on to be answered); each shed message counts as one drop.
   */
  shedOnArrival(sender: Connection, roomId: unknown): boolean {
    if (!this.shedsOnArrival || !this.isSenderRoom(sender, roomId) || !this.shedder.shouldShed()) {
      return false;
    }
    this.countDrops(roomId, 1);
    this.counters.droppedShed++;
    return true;
  }

  /** Counts a throwaway broadcast its sender sent over its pose budget (to a room it is in). */
  countDropOnArrival(sender: Connection, roomId: unknown): void {
    if (this.isSenderRoom(sender, roomId)) {
      this.countDrops(roomId, 1);
      this.counters.droppedRateLimited++;
    }
  }

  private isSenderRoom(sender: Connection, roomId: unknown): roomId is string {
    return typeof roomId === 'string' && sender.rooms.has(roomId);
  }

  /** Gives up on a connection that cannot keep up: its output is discarded, listeners evict it. */
  overflow(connection: Connection): void {
    connection.output.discard();
    for (const listener of this.overflowListeners) {
      listener(connection);
    }
  }

  onOverflow(listener: OverflowListener): void {
    this.overflowListeners.push(listener);
  }

  droppedMessages(): number {
    return this.droppedTotal;
  }

  droppedMessagesIn(roomId: string): number {
    return this.droppedByRoom.get(roomId) ?? 0;
  }

  /** Forgets a deleted room's drop count. */
  forgetRoom(roomId: string): void {
    this.droppedByRoom.delete(roomId);
  }

  countDrops(roomId: string, count: number): void {
    this.droppedTotal += count;
    this.droppedByRoom.set(roomId, (this.droppedByRoom.get(roomId) ?? 0) + count);
  }

  /** One connection's write; a failure there must not cost the others theirs. */
  private flush(connection: Connection): void {
    try {
      connection.output.flush();
    } catch (error) {
      this.logger.error(`Write to ${connection.userId} failed; closing it: ${String(error)}`);
      connection.output.discard();
      connection.terminate();
    }
  }

  /**
   * Called at the start of every turn's writes, before anything is written: frames it queues go
   * out in the same writes (PoseBatches builds its binary frames there).
   */
  beforeFlush(listener: () => void): void {
    this.beforeFlushListeners.push(listener);
  }

  /** Makes sure this turn's writes run, for a beforeFlush listener with frames to come. */
  scheduleFlush(): void {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushAll);
    }
  }

  private markDirty(connection: Connection): void {
    this.dirty.push(connection);
    this.scheduleFlush();
  }

  /** Once per event-loop turn: every connection with queued frames gets one write. */
  private readonly flushAll = (): void => {
    for (const listener of this.beforeFlushListeners) {
      listener();
    }
    const due = this.dirty;
    this.dirty = [];
    this.flushScheduled = false;
    for (const connection of due) {
      this.flush(connection);
    }
    this.shedder.endTurn();
  };
}
