import { performance } from 'node:perf_hooks';
import type { RawData, WebSocket } from 'ws';
import {
  ClientAction,
  CloseCode,
  CloseReason,
  ErrorCode,
  ServerEvent,
} from '../protocol/protocol.js';
import { ConnectionBudget, type RateLimits } from '../limits/connection-budget.js';
import type { StructuredLogger } from '../logging/structured-logger.js';
import { MessageKind, type ServerCounters } from '../telemetry/server-counters.js';
import { isBinaryPose, parseBinaryPose, type BinaryPose } from './binary-pose.parser.js';
import { parseClientFrame, type ParsedFrame } from './client-frame.parser.js';
import { requestIdOf } from './protocol-exception.filter.js';

/**
 * How long reading may stay paused behind a slow handler before the connection is closed, and how
 * long a decided close may wait behind the handlers of the frames before it.
 */
export const STALLED_INPUT_CLOSE_MS = 10_000;

/** How long the close of a client flooding pings has to go out before its socket is cut off. */
export const FLOOD_CUT_OFF_MS = 1000;

export interface InboundOptions {
  maxJsonDepth: number;
  maxPayload: number;
  /** MAX_PENDING_MESSAGES: frames waiting behind a slow handler before reading pauses. */
  maxPendingMessages: number;
  rateLimits: RateLimits;
  logger: StructuredLogger;
  /** Messages and bytes in, by kind (plain increments; exported by /metrics). */
  counters?: ServerCounters;
  /** Whether a parsed message is a throwaway broadcast (a pose): dropped, never refused. */
  isThrowaway(message: Record<string, unknown>): boolean;
  /**
   * Asked for every throwaway broadcast within budget, with the room it is for as sent: true
   * drops it (the server is behind).
   */
  shed(socket: WebSocket, roomId: unknown): boolean;
  /** Counts a throwaway broadcast (to `roomId`, as sent) dropped for being over the budget. */
  countDrop(socket: WebSocket, roomId: unknown): void;
  /**
   * Relays a throwaway broadcast at once, outside the queue, when nothing of this connection is
   * waiting before it; false when it needs an answer (it is invalid, say), which then comes from
   * its handler in the queue as for any other frame.
   */
  relayAtOnce(socket: WebSocket, message: Record<string, unknown>): boolean;
  /**
   * A binary frame: a pose of the binary channel (or, when poses are not throwaway, the broadcast
   * it stands for), a refused frame, or undefined: the client did not opt in (closed 1003).
   */
  readBinary(socket: WebSocket, data: Buffer): BinaryPose | ParsedFrame | undefined;
  /** relayAtOnce for a binary pose: false when it needs its handler's answer (not a member). */
  relayBinaryPose(pose: BinaryPose): boolean;
  /** Sends a reply that did not come from a handler (RATE_LIMITED). */
  reply(socket: WebSocket, reply: unknown): void;
  /** Closes the socket after what is already queued for it, replies included. */
  closeSocket(socket: WebSocket, code: number, reason: string): void;
}

/**
 * One socket's inbound side: parses each frame once, charges it to the connection's budget,
 * and queues it so the connection's messages are handled one at a time, in arrival order. Past
 * MAX_PENDING_MESSAGES queued frames it stops reading the socket until the queue drains; a socket
 * that stays paused, or keeps sending what is refused, is closed 1008. Nothing a frame does can
 * throw out of here: an unexpected error closes this one socket with 1011.
 */
export class ClientInbound {
  private readonly budget: ConnectionBudget;
  private queue: Promise<void> = Promise.resolve();
  private pending = 0;
  private paused = false;
  /** Set once a close is decided: later frames are ignored, earlier ones still answered. */
  private closing = false;
  private stallTimer?: NodeJS.Timeout;
  /** Set once a close waits behind the queue: it goes out by then, answered or not. */
  private closeTimer?: NodeJS.Timeout;
  /** Set once a ping flood stopped reading for good (cutOff). */
  private cutOffTimer?: NodeJS.Timeout;

  constructor(
    private readonly socket: WebSocket,
    private readonly options: InboundOptions,
    private readonly dispatch: (frame: ParsedFrame) => Promise<void>,
  ) {
    this.budget = new ConnectionBudget(options.rateLimits, options.maxPayload, performance.now());
  }

  readonly receive = (data: RawData, isBinary: boolean): void => {
    try {
      this.accept(data, isBinary);
    } catch (error) {
      this.fail(error);
    }
  };

  /**
   * A WebSocket ping from the client. ws reads every control frame itself, whatever the path (the
   * direct reader leaves them to it; they are never compressed), and answers none (autoPong off):
   * one within CLIENT_PINGS_BURST, refilled at CLIENT_PINGS_PER_SEC, gets its pong here; one past
   * it is a flood, which ends the connection (cutOff).
   */
  readonly receivePing = (data: Buffer): void => {
    if (this.budget.chargePing(performance.now()) > 0) {
      this.cutOff();
    } else if (!this.closing && this.socket.readyState === this.socket.OPEN) {
      this.socket.pong(data, false, ignoreError);
    }
  };

  /**
   * Closes 1008 at once, reads nothing more (ws would parse every frame a flood sends until the
   * close handshake ends, 30 s at most) and cuts the socket off once the close has had
   * FLOOD_CUT_OFF_MS to go out: its client does not read its close reply in the meantime.
   */
  private cutOff(): void {
    if (this.cutOffTimer) {
      return;
    }
    this.close(CloseCode.PolicyViolation, CloseReason.PolicyViolation);
    this.socket.pause();
    this.cutOffTimer = setTimeout(() => this.socket.terminate(), FLOOD_CUT_OFF_MS);
    this.cutOffTimer.unref();
  }

  /** Closes the socket after an error nobody answered; the process keeps serving the others. */
  fail(error: unknown): void {
    this.options.logger.error('Unexpected error on a connection; closing it with 1011', error);
    this.close(CloseCode.InternalError, CloseReason.InternalError);
  }

  private accept(data: RawData, isBinary: boolean): void {
    if (this.closing || this.socket.readyState !== this.socket.OPEN) {
      return;
    }
    const frame = isBinary
      ? this.options.readBinary(this.socket, toBuffer(data))
      : parseClientFrame(data, this.options.maxJsonDepth);
    if (!frame) {
      this.closeAfterQueued(CloseCode.UnsupportedData, CloseReason.UnsupportedData);
      return;
    }
    const bytes = byteLength(data);
    if (isBinaryPose(frame)) {
      this.acceptPose(frame, frame.roomId, bytes);
    } else if (!frame.rejected && this.options.isThrowaway(frame.message)) {
      this.acceptPose(frame, frame.message.roomId, bytes);
    } else {
      this.acceptRequest(frame, bytes);
    }
  }

  /**
   * A throwaway broadcast (a pose, JSON or binary): over budget or shed it is dropped (a
   * refusal only when it also broke the byte budget), else relayed at once when nothing of this
   * connection is queued before it, else queued like any frame.
   */
  private acceptPose(pose: BinaryPose | AcceptedFrame, roomId: unknown, bytes: number): void {
    const now = performance.now();
    const counters = this.options.counters;
    if (counters) {
      counters.bytesReceived += bytes;
      counters.received[MessageKind.Pose]++;
    }
    const bytesWait = this.budget.chargeBytes(bytes, now);
    if (bytesWait > 0 || this.budget.chargeMessage(true, now) > 0) {
      this.options.countDrop(this.socket, roomId);
      if (bytesWait > 0 && this.budget.violated(now)) {
        this.closeAfterQueued(CloseCode.PolicyViolation, CloseReason.PolicyViolation);
      }
      return;
    }
    if (this.options.shed(this.socket, roomId)) {
      return;
    }
    // The pose hot path: with nothing queued before it, handling it now keeps the arrival order
    // and spares it the queue's promises and the framework's handler pipeline.
    if (this.pending === 0 && this.relayAtOnce(pose)) {
      return;
    }
    // Read now: a quantized pose's time is restored against its arrival.
    const frame = isBinaryPose(pose) ? parseBinaryPose(pose.frame, pose.sender.userId) : pose;
    this.enqueue(() => this.dispatch(frame));
  }

  private relayAtOnce(pose: BinaryPose | AcceptedFrame): boolean {
    return isBinaryPose(pose)
      ? this.options.relayBinaryPose(pose)
      : this.options.relayAtOnce(this.socket, pose.message);
  }

  /** Any frame but a pose: over budget it is answered RATE_LIMITED, in order with the replies. */
  private acceptRequest(frame: ParsedFrame, bytes: number): void {
    const now = performance.now();
    const counters = this.options.counters;
    if (counters) {
      counters.bytesReceived += bytes;
      counters.received[receivedKind(frame)]++;
    }
    const bytesWait = this.budget.chargeBytes(bytes, now);
    const wait = bytesWait > 0 ? bytesWait : this.budget.chargeMessage(false, now);
    if (wait > 0) {
      this.overBudget(frame, wait, now);
      return;
    }
    if (frame.rejected && frame.rejection.abusive && this.budget.violated(now)) {
      this.closeAfterQueued(CloseCode.PolicyViolation, CloseReason.PolicyViolation);
      return;
    }
    if (counters) {
      this.enqueue(() => this.timedDispatch(frame, counters));
    } else {
      this.enqueue(() => this.dispatch(frame));
    }
  }

  /** Requests other than poses are timed, by action; poses cost no clock read. */
  private async timedDispatch(frame: ParsedFrame, counters: ServerCounters): Promise<void> {
    const started = performance.now();
    try {
      await this.dispatch(frame);
    } finally {
      counters.requestDone(actionLabel(frame), (performance.now() - started) / 1000);
    }
  }

  private overBudget(frame: ParsedFrame, retryAfterMs: number, now: number): void {
    if (this.budget.violated(now)) {
      this.closeAfterQueued(CloseCode.PolicyViolation, CloseReason.PolicyViolation);
      return;
    }
    const requestId = requestIdOf(frame.rejected ? frame.rejection : frame.message);
    const data = {
      message: `Rate limit exceeded; retry in ${retryAfterMs} ms`,
      code: ErrorCode.RateLimited,
      retryAfterMs,
      ...(requestId !== undefined ? { requestId } : {}),
    };
    this.enqueue(() => {
      this.options.reply(this.socket, { event: ServerEvent.Error, data });
      return Promise.resolve();
    });
  }

  /** Handles no frame before `work` settles (frames still arrive, and count, meanwhile). */
  waitFor(work: Promise<void>): void {
    this.enqueue(() => work);
  }

  private enqueue(task: () => Promise<void>): void {
    this.pending++;
    if (this.pending >= this.options.maxPendingMessages && !this.paused) {
      this.pause();
    }
    this.queue = this.queue.then(task).then(this.settled, this.failed);
  }

  private readonly settled = (): void => {
    this.pending--;
    if (this.paused && this.pending <= this.options.maxPendingMessages / 2) {
      this.resume();
    }
  };

  private readonly failed = (error: unknown): void => {
    this.settled();
    this.fail(error);
  };

  /** Back-pressure: stop reading until the handlers catch up, and give up if they never do. */
  private pause(): void {
    this.paused = true;
    this.socket.pause();
    this.stallTimer = setTimeout(() => {
      this.options.logger.warn(
        `Closing a connection whose input stayed paused for ${STALLED_INPUT_CLOSE_MS} ms`,
      );
      this.close(CloseCode.PolicyViolation, CloseReason.StalledInput);
    }, STALLED_INPUT_CLOSE_MS);
    this.stallTimer.unref();
  }

  private resume(): void {
    this.paused = false;
    clearTimeout(this.stallTimer);
    if (!this.cutOffTimer) {
      this.socket.resume();
    }
  }

  /** Closes once the frames before this decision have been answered; ignores what comes after. */
  closeAfterQueued(code: number, reason: string): void {
    this.closing = true;
    this.enqueue(() => {
      this.close(code, reason);
      return Promise.resolve();
    });
    // A handler that never settles must not hold the connection open for good.
    this.closeTimer ??= setTimeout(() => this.close(code, reason), STALLED_INPUT_CLOSE_MS);
    this.closeTimer.unref();
  }

  private close(code: number, reason: string): void {
    this.closing = true;
    clearTimeout(this.stallTimer);
    clearTimeout(this.closeTimer);
    if (this.socket.readyState === this.socket.OPEN) {
      this.options.closeSocket(this.socket, code, reason);
    }
  }
}

/** A frame that parsed, with its action. */
type AcceptedFrame = Extract<ParsedFrame, { rejected: false }>;

const KNOWN_ACTIONS: ReadonlySet<string> = new Set(Object.values(ClientAction));

/** A bounded label: a built-in action's name, `rejected` or `other` (custom or unknown). */
function actionLabel(frame: ParsedFrame): string {
  if (frame.rejected) {
    return 'rejected';
  }
  return KNOWN_ACTIONS.has(frame.action) ? frame.action : 'other';
}

/** The kind of a message that is not a pose (poses are told apart by isThrowaway). */
function receivedKind(frame: ParsedFrame): MessageKind {
  if (frame.rejected) {
    return MessageKind.Control;
  }
  switch (frame.action) {
    case ClientAction.UpdateState:
    case ClientAction.GetState:
      return MessageKind.State;
    case ClientAction.Broadcast:
    case ClientAction.SendMessage:
      return MessageKind.Chat;
    default:
      return MessageKind.Control;
  }
}

/** A pong that could not be written: the socket is going, and its close says why. */
function ignoreError(): void {}

function toBuffer(data: RawData): Buffer {
  if (Array.isArray(data)) {
    return Buffer.concat(data);
  }
  return Buffer.isBuffer(data) ? data : Buffer.from(data);
}

function byteLength(data: RawData): number {
  if (Array.isArray(data)) {
    return data.reduce((sum, chunk) => sum + chunk.length, 0);
  }
  return data.byteLength;
}
