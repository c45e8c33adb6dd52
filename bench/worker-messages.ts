// What the main thread and the generator workers say to each other.

export interface ClientSpec {
  userId: string;
  roomIndex: number;
  /** Which of ConnectRequest.urls the user connects to (--split: one server instance each). */
  instance: number;
}

/** raw: the bench's own minimal client (cheap); ws: the `ws` package, to cross-check it. */
export type ClientKind = 'raw' | 'ws';

export interface ConnectRequest {
  type: 'connect';
  /** The servers' URLs; ClientSpec.instance picks one. */
  urls: string[];
  client: ClientKind;
  roomCount: number;
  clients: ClientSpec[];
  /** Handshakes plus joins in flight at once per worker: a burst beyond the listen backlog fails. */
  concurrency: number;
  clientTimeoutMs: number;
  phaseTimeoutMs: number;
  sampleEvery: number;
  /** --binary: offer gallery.v2, learn slots from the joins, send and read poses as binary. */
  binary: boolean;
  /** --quantized (with binary): offer gallery.v2q, send and read 16-byte quantized entries. */
  quantized: boolean;
}

export interface StartSendingRequest {
  type: 'start-sending';
  hz: number;
  /** The shared clock time (nowMs) of this worker's first send. */
  startAtMs: number;
  /** The servers' pose tick (--tick-ms), 0 for none: sends are then credited per tick. */
  tickMs: number;
}

export type ToWorker =
  | ConnectRequest
  | StartSendingRequest
  | { type: 'window-start' }
  | { type: 'window-end' }
  | { type: 'stop-sending' }
  | { type: 'close' };

export interface ConnectResult {
  type: 'connected';
  joinedByRoom: number[];
  joinedByInstance: number[];
  failures: number;
  failureSamples: string[];
  elapsedMs: number;
}

/** One worker's counts over the measured window (errors and closes: since the joins). */
export interface WindowResult {
  type: 'window';
  durationMs: number;
  sentByRoom: number[];
  /**
   * With server ticks, per room: the ticks the sends gave a fresh pose to, each send credited
   * min(1, gap / tickMs) for the gap since its user's previous send (see tickCredit).
   */
  tickSlotsByRoom: number[];
  posesReceived: number;
  /** End-to-end latencies (ms) of every sampleEvery-th pose received in the window. */
  latencies: Float64Array;
  framesParsed: number;
  /** --binary: pose entries from a slot no member of the room had been seen with (not counted). */
  unknownSlotPoses: number;
  skippedSends: number;
  errors: number;
  errorSamples: string[];
  closes: number;
  closeSamples: string[];
  eventLoopUtilization: number;
  lagMaxMs: number;
  lagP99Ms: number;
}

export type FromWorker = ConnectResult | WindowResult | { type: 'closed' };
