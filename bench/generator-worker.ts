// One thread of simulated users: connects and joins them, sends their poses at the set rate with
// evenly spread phases, and counts what they receive. Poses are recognized by their first bytes
// and only every n-th one is read for its timestamp, so the generator stays cheap next to the
// server it measures. With --binary the users offer gallery.v2, send binary pose frames and
// count the entries of the binary frames they receive (docs/binary-poses.md); with --quantized
// they offer gallery.v2q and send and read the 16-byte quantized entries instead.
import { performance } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';
import {
  BINARY_SUBPROTOCOL,
  BinaryPoseFrames,
  countOf,
  QuantizedPoseFrames,
  quantizedTimeAt,
  ServerPoseReader,
  slotAt,
  timestampAt,
  type PoseFrameBuilder,
} from './binary-poses.js';
import { QUANTIZED_SUBPROTOCOL, restoreTimestamp } from './quantized-poses.js';
import { nowMs, withTimeout } from './clock.js';
import {
  RawWebSocket,
  wsPackageSocket,
  type SimSocket,
  type SocketHandlers,
} from './raw-websocket.js';
import {
  connectUrl,
  isPoseEvent,
  joinRoomFrame,
  JOIN_REQUEST_ID,
  parseServerFrame,
  PoseFrameMatcher,
  PoseFrames,
  poseTimestampOf,
  roomIdOf,
  timestampOfPoseEvent,
  type ServerFrame,
} from './protocol.js';
import type {
  ClientSpec,
  ConnectRequest,
  ConnectResult,
  FromWorker,
  StartSendingRequest,
  ToWorker,
  WindowResult,
} from './worker-messages.js';

const MAX_LATENCY_SAMPLES = 1_000_000;
const MAX_PROBLEM_SAMPLES = 5;
const LAG_CHECK_MS = 20;

interface SimUser {
  readonly spec: ClientSpec;
  socket: SimSocket | undefined;
  readonly matcher: PoseFrameMatcher;
  readonly poses: PoseFrames;
  /**
   * --binary: this user's pose frames (quantized with --quantized), and its slot in the room
   * (-1 until room_joined).
   */
  readonly binaryPoses: PoseFrameBuilder | undefined;
  slot: number;
  joined: boolean;
  /** nowMs of this user's previous pose sent, NaN before the first. */
  lastSentAt: number;
  /** Settles the join: undefined on success, else why it failed. */
  settleJoin?: (failure?: string) => void;
}

class Counters {
  sentByRoom: number[];
  tickSlotsByRoom: number[];
  posesReceived = 0;
  latencies: number[] = [];
  latencySeen = 0;
  framesParsed = 0;
  unknownSlotPoses = 0;
  skippedSends = 0;
  lags: number[] = [];
  startedAt = performance.now();
  eluStart = performance.eventLoopUtilization();

  constructor(roomCount: number) {
    this.sentByRoom = new Array<number>(roomCount).fill(0);
    this.tickSlotsByRoom = new Array<number>(roomCount).fill(0);
  }

  addLatency(ms: number): void {
    this.latencySeen++;
    if (this.latencies.length < MAX_LATENCY_SAMPLES) {
      this.latencies.push(ms);
      return;
    }
    // Reservoir sampling keeps the kept samples a fair draw from all of them.
    const slot = Math.floor(Math.random() * this.latencySeen);
    if (slot < MAX_LATENCY_SAMPLES) {
      this.latencies[slot] = ms;
    }
  }
}

/**
 * The ticks a send gives a fresh pose to, on average over the servers' tick phase (which the
 * generator does not know): a server tick publishes a sender's newest pose when one came since
 * the last tick, so a send `gapMs` after the same user's previous one is the first of a new tick
 * with probability min(1, gapMs / tickMs). A user sending evenly every period <= tickMs is so
 * credited window / tickMs in all, as before; a send that ran late leaves the tick it missed
 * uncredited, instead of counting it against the server. NaN (no previous send) credits 1.
 */
function tickCredit(gapMs: number, tickMs: number): number {
  return Number.isNaN(gapMs) ? 1 : Math.min(1, gapMs / tickMs);
}

class GeneratorWorker {
  private users: SimUser[] = [];
  private roomCount = 0;
  private sampleEvery = 16;
  private poseCountdown = 16;
  private binary = false;
  /** --quantized: entries are 16 bytes with a 32-bit time (restored near the receiver's clock). */
  private quantized = false;
  /** --binary, per room: the slots of the members seen in room_joined and user_joined. */
  private slotsByRoom: Set<number>[] = [];
  /** --binary, per room: recognizes the room's server pose frames. */
  private readersByRoom: ServerPoseReader[] = [];
  private window: Counters | undefined;
  private errors = 0;
  private errorSamples: string[] = [];
  private closes = 0;
  private closeSamples: string[] = [];
  private closingAll = false;
  private sendTimer: NodeJS.Timeout | undefined;
  /** The servers' pose tick, 0 for none (start-sending). */
  private tickMs = 0;
  private lagTimer: NodeJS.Timeout | undefined;

  constructor(private readonly post: (message: FromWorker, transfer?: ArrayBuffer[]) => void) {}

  async handle(message: ToWorker): Promise<void> {
    switch (message.type) {
      case 'connect':
        this.post(await this.connectAll(message));
        break;
      case 'start-sending':
        this.startSending(message);
        break;
      case 'window-start':
        this.window = new Counters(this.roomCount);
        this.startLagMonitor();
        break;
      case 'window-end': {
        const result = this.endWindow();
        this.post(result, [result.latencies.buffer as ArrayBuffer]);
        break;
      }
      case 'stop-sending':
        clearTimeout(this.sendTimer);
        break;
      case 'close':
        await this.closeAll();
        this.post({ type: 'closed' });
        break;
    }
  }

  // --- joining -------------------------------------------------------------------------------

  private async connectAll(request: ConnectRequest): Promise<ConnectResult> {
    const started = performance.now();
    this.roomCount = request.roomCount;
    this.sampleEvery = request.sampleEvery;
    this.poseCountdown = request.sampleEvery;
    this.binary = request.binary;
    this.quantized = request.binary && request.quantized;
    this.slotsByRoom = Array.from({ length: request.roomCount }, () => new Set<number>());
    this.readersByRoom = request.binary
      ? Array.from(
          { length: request.roomCount },
          (_, room) => new ServerPoseReader(roomIdOf(room), this.quantized),
        )
      : [];
    const failureSamples: string[] = [];
    let failures = 0;
    const noteFailure = (why: string): void => {
      failures++;
      if (failureSamples.length < MAX_PROBLEM_SAMPLES) {
        failureSamples.push(why);
      }
    };
    const queue = [...request.clients];
    const connectNext = async (): Promise<void> => {
      for (let spec = queue.shift(); spec; spec = queue.shift()) {
        const failure = await this.connectOne(request, spec);
        if (failure !== undefined) {
          noteFailure(`${spec.userId}: ${failure}`);
        }
      }
    };
    const lanes = Array.from({ length: Math.min(request.concurrency, queue.length) }, connectNext);
    try {
      await withTimeout(Promise.all(lanes), request.phaseTimeoutMs, 'joining');
    } catch {
      // Whoever has not joined by now counts as failed; the step goes on with the rest.
      failures += queue.length;
      queue.length = 0;
      for (const user of this.users.filter((candidate) => !candidate.joined)) {
        user.settleJoin?.('join phase timed out');
      }
      await Promise.all(lanes);
      failureSamples.unshift(`join phase timed out after ${request.phaseTimeoutMs} ms`);
    }
    this.users = this.users.filter((user) => user.joined);
    // Problems during the joins are reported as join failures, not as errors of the step.
    this.errors = 0;
    this.errorSamples = [];
    this.closes = 0;
    this.closeSamples = [];
    return {
      type: 'connected',
      joinedByRoom: this.joinedByRoom(),
      joinedByInstance: this.joinedByInstance(request.urls.length),
      failures,
      failureSamples,
      elapsedMs: performance.now() - started,
    };
  }

  private connectOne(request: ConnectRequest, spec: ClientSpec): Promise<string | undefined> {
    const roomId = roomIdOf(spec.roomIndex);
    const user: SimUser = {
      spec,
      socket: undefined,
      matcher: new PoseFrameMatcher(roomId),
      poses: new PoseFrames(roomId),
      binaryPoses: !request.binary
        ? undefined
        : this.quantized
          ? new QuantizedPoseFrames(roomId)
          : new BinaryPoseFrames(roomId),
      slot: -1,
      joined: false,
      lastSentAt: Number.NaN,
    };
    this.users.push(user);
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => user.settleJoin?.(`no room_joined within ${request.clientTimeoutMs} ms`),
        request.clientTimeoutMs,
      );
      user.settleJoin = (failure) => {
        clearTimeout(timer);
        user.settleJoin = undefined;
        user.joined = failure === undefined;
        if (failure !== undefined) {
          user.socket?.terminate();
        }
        resolve(failure);
      };
      const handlers: SocketHandlers = {
        onOpen: () => user.socket?.send(joinRoomFrame(roomId, JOIN_REQUEST_ID, spec.userId)),
        onText: (payload) => this.onFrame(user, payload),
        onBinary: (payload) => this.onBinary(user, payload),
        onError: (error) => user.settleJoin?.(error.message),
        onClose: (code, reason) => this.onClose(user, code, reason),
      };
      const url = connectUrl(request.urls[spec.instance], spec.userId);
      const subprotocol = !request.binary
        ? undefined
        : this.quantized
          ? QUANTIZED_SUBPROTOCOL
          : BINARY_SUBPROTOCOL;
      user.socket =
        request.client === 'raw'
          ? new RawWebSocket(url, request.clientTimeoutMs, handlers, subprotocol)
          : wsPackageSocket(url, request.clientTimeoutMs, handlers, subprotocol);
    });
  }

  private joinedByRoom(): number[] {
    const counts = new Array<number>(this.roomCount).fill(0);
    for (const user of this.users) {
      counts[user.spec.roomIndex]++;
    }
    return counts;
  }

  private joinedByInstance(instanceCount: number): number[] {
    const counts = new Array<number>(instanceCount).fill(0);
    for (const user of this.users) {
      counts[user.spec.instance]++;
    }
    return counts;
  }

  // --- receiving -----------------------------------------------------------------------------

  private onFrame(user: SimUser, data: Buffer): void {
    if (user.matcher.matches(data)) {
      this.onPose(data, undefined);
      return;
    }
    const frame = parseServerFrame(data);
    if (this.window) {
      this.window.framesParsed++;
    }
    if (!frame) {
      this.noteError(`${user.spec.userId}: unparsable frame`);
      return;
    }
    if (isPoseEvent(frame)) {
      this.onPose(undefined, timestampOfPoseEvent(frame));
    } else if (frame.event === 'room_joined' && frame.data?.requestId === JOIN_REQUEST_ID) {
      if (this.binary) {
        this.learnSlots(user, frame);
      } else {
        user.settleJoin?.();
      }
    } else if (this.binary && frame.event === 'user_joined') {
      const slot = frame.data?.user?.slot;
      if (typeof slot === 'number') {
        this.slotsByRoom[user.spec.roomIndex].add(slot);
      }
    } else if (frame.event === 'error') {
      const code = frame.data?.code ?? 'unknown';
      if (user.settleJoin) {
        user.settleJoin(`error ${code}`);
      } else {
        this.noteError(`${user.spec.userId}: error ${code}`);
      }
    }
  }

  /** --binary: the slots of room_joined's members, ours among them; without ours, no join. */
  private learnSlots(user: SimUser, frame: ServerFrame): void {
    const slots = this.slotsByRoom[user.spec.roomIndex];
    const users = frame.data?.roomInfo?.users ?? frame.data?.users;
    for (const member of Array.isArray(users) ? users : []) {
      if (typeof member?.slot !== 'number') {
        continue;
      }
      slots.add(member.slot);
      if (member.id === user.spec.userId) {
        user.slot = member.slot;
      }
    }
    if (user.slot < 0) {
      user.settleJoin?.('room_joined has no slot for this user (no gallery.v2 support?)');
    } else {
      user.settleJoin?.();
    }
  }

  /**
   * --binary: a server pose frame. Each entry of another known member is one delivered pose
   * (our own slot is skipped); every sampleEvery-th one is timed by the entry's timestamp
   * (--quantized: its low 32 bits, restored as the time nearest to our clock).
   */
  private onBinary(user: SimUser, payload: Buffer): void {
    const reader = this.readersByRoom[user.spec.roomIndex];
    const first = reader === undefined ? -1 : reader.entriesAt(payload);
    if (first < 0) {
      this.noteError(`${user.spec.userId}: not a pose frame of its room (binary)`);
      return;
    }
    const window = this.window;
    if (!window) {
      return;
    }
    const known = this.slotsByRoom[user.spec.roomIndex];
    const own = user.slot;
    const entryBytes = reader.entryBytes;
    const end = first + countOf(payload) * entryBytes;
    for (let entry = first; entry < end; entry += entryBytes) {
      const slot = slotAt(payload, entry);
      if (slot === own) {
        continue;
      }
      if (!known.has(slot)) {
        window.unknownSlotPoses++;
        continue;
      }
      window.posesReceived++;
      if (--this.poseCountdown > 0) {
        continue;
      }
      this.poseCountdown = this.sampleEvery;
      const now = nowMs();
      window.addLatency(
        now -
          (this.quantized
            ? restoreTimestamp(quantizedTimeAt(payload, entry), now)
            : timestampAt(payload, entry)),
      );
    }
  }

  /** Counts a pose; every sampleEvery-th one is timed, from its bytes or its parsed form. */
  private onPose(bytes: Buffer | undefined, parsedTimestamp: number | undefined): void {
    const window = this.window;
    if (!window) {
      return;
    }
    window.posesReceived++;
    if (--this.poseCountdown > 0) {
      return;
    }
    this.poseCountdown = this.sampleEvery;
    const sentAt = parsedTimestamp ?? poseTimestampOf(bytes as Buffer);
    if (Number.isFinite(sentAt)) {
      window.addLatency(nowMs() - sentAt);
    }
  }

  private onClose(user: SimUser, code: number, reason: string): void {
    user.settleJoin?.(`closed ${code} ${reason}`.trim());
    if (user.joined && !this.closingAll) {
      user.joined = false;
      this.closes++;
      if (this.closeSamples.length < MAX_PROBLEM_SAMPLES) {
        this.closeSamples.push(`${user.spec.userId}: ${code} ${reason}`.trim());
      }
    }
  }

  private noteError(what: string): void {
    this.errors++;
    if (this.errorSamples.length < MAX_PROBLEM_SAMPLES) {
      this.errorSamples.push(what);
    }
  }

  // --- sending -------------------------------------------------------------------------------

  /**
   * The j-th send of this worker is due at startAt + j * period / users: each user sends once
   * per period, and the users' phases are spread evenly over it. One timer drives them all.
   * A generator that falls more than a period behind skips the missed sends (counted) rather
   * than bursting them, which would distort latency and is a sign of a saturated generator.
   */
  private startSending(request: StartSendingRequest): void {
    const users = this.users;
    if (users.length === 0) {
      return;
    }
    this.tickMs = request.tickMs;
    const spacingMs = 1000 / request.hz / users.length;
    let sent = 0;
    const tick = (): void => {
      const now = nowMs();
      const due = Math.floor((now - request.startAtMs) / spacingMs) + 1;
      if (due - sent > users.length) {
        if (this.window) {
          this.window.skippedSends += due - sent - users.length;
        }
        sent = due - users.length;
      }
      for (; sent < due; sent++) {
        this.sendPose(users[sent % users.length], sent, now);
      }
      const nextDue = request.startAtMs + sent * spacingMs;
      this.sendTimer = setTimeout(tick, Math.max(0, nextDue - nowMs()));
    };
    this.sendTimer = setTimeout(tick, Math.max(0, request.startAtMs - nowMs()));
  }

  private sendPose(user: SimUser, sequence: number, now: number): void {
    if (!user.joined || !user.socket?.isOpen) {
      return;
    }
    if (user.binaryPoses) {
      user.socket.sendBinary(user.binaryPoses.build(now, sequence));
    } else {
      user.socket.send(user.poses.build(now, sequence));
    }
    if (this.window) {
      this.window.sentByRoom[user.spec.roomIndex]++;
      if (this.tickMs > 0) {
        this.window.tickSlotsByRoom[user.spec.roomIndex] += tickCredit(
          now - user.lastSentAt,
          this.tickMs,
        );
      }
    }
    user.lastSentAt = now;
  }

  // --- measuring the generator itself ----------------------------------------------------------

  private startLagMonitor(): void {
    clearInterval(this.lagTimer);
    let expected = performance.now() + LAG_CHECK_MS;
    this.lagTimer = setInterval(() => {
      const now = performance.now();
      this.window?.lags.push(Math.max(0, now - expected));
      expected = now + LAG_CHECK_MS;
    }, LAG_CHECK_MS);
  }

  private endWindow(): WindowResult {
    clearInterval(this.lagTimer);
    const window = this.window ?? new Counters(this.roomCount);
    this.window = undefined;
    const lags = window.lags.sort((a, b) => a - b);
    return {
      type: 'window',
      durationMs: performance.now() - window.startedAt,
      sentByRoom: window.sentByRoom,
      tickSlotsByRoom: window.tickSlotsByRoom,
      posesReceived: window.posesReceived,
      latencies: Float64Array.from(window.latencies),
      framesParsed: window.framesParsed,
      unknownSlotPoses: window.unknownSlotPoses,
      skippedSends: window.skippedSends,
      errors: this.errors,
      errorSamples: this.errorSamples,
      closes: this.closes,
      closeSamples: this.closeSamples,
      eventLoopUtilization: performance.eventLoopUtilization(window.eluStart).utilization,
      lagMaxMs: lags.length > 0 ? lags[lags.length - 1] : 0,
      lagP99Ms:
        lags.length > 0 ? lags[Math.min(lags.length - 1, Math.floor(lags.length * 0.99))] : 0,
    };
  }

  // --- closing -------------------------------------------------------------------------------

  /** Drops every connection at once (no close handshake: a slow server must not stall us). */
  private async closeAll(): Promise<void> {
    clearTimeout(this.sendTimer);
    clearInterval(this.lagTimer);
    this.closingAll = true;
    for (const user of this.users) {
      user.socket?.terminate();
    }
    // terminate() destroys the TCP sockets at once; one turn lets the last events run.
    await new Promise((resolve) => setImmediate(resolve));
    this.users = [];
    this.closingAll = false;
  }
}

const port = parentPort;
if (!port) {
  throw new Error('generator-worker.js runs as a worker thread of the bench');
}
const worker = new GeneratorWorker((message, transfer) => port.postMessage(message, transfer));
port.on('message', (message: ToWorker) => {
  void worker.handle(message);
});
