// The main thread's side of the simulated users: splits them over worker threads, drives the
// phases of a step (join, send, measure, close) and adds up what the workers counted.
import { Worker } from 'node:worker_threads';
import { nowMs, sleep, withTimeout } from './clock.js';
import { userIdOf } from './protocol.js';
import type {
  ClientKind,
  ClientSpec,
  ConnectResult,
  FromWorker,
  ToWorker,
  WindowResult,
} from './worker-messages.js';

const REPLY_TIMEOUT_MS = 15_000;
/** A common start a little ahead, so every worker has its timers armed before the first send. */
const SEND_START_DELAY_MS = 50;

export interface JoinSummary {
  wanted: number;
  joined: number;
  joinedByRoom: number[];
  /** Users joined per server instance (one entry unless --split). */
  joinedByInstance: number[];
  failures: number;
  failureSamples: string[];
  seconds: number;
}

export interface WorkerHealth {
  eventLoopUtilization: number;
  lagMaxMs: number;
  lagP99Ms: number;
}

export interface WindowSummary {
  /** Poses sent per second by all users. */
  sentPerSecond: number;
  /** Deliveries per second the sends call for: each send times (joined members of its room - 1). */
  offeredPerSecond: number;
  deliveredPerSecond: number;
  sent: number;
  expectedDeliveries: number;
  posesReceived: number;
  latencies: Float64Array;
  framesParsed: number;
  unknownSlotPoses: number;
  skippedSends: number;
  /**
   * With server ticks: sender-ticks left without a fresh pose because a user's two sends were
   * more than a tick apart (the generator ran late), so not offered; 0 without ticks.
   */
  lateSendTicks: number;
  errors: number;
  errorSamples: string[];
  closes: number;
  closeSamples: string[];
  workers: WorkerHealth[];
  /** The whole bench process (main thread and workers), in % of one core. */
  cpuPercent: number;
}

/** One worker thread with request/reply over postMessage; replies come back in request order. */
class WorkerChannel {
  private readonly waiters: {
    type: FromWorker['type'];
    resolve: (message: FromWorker) => void;
    reject: (error: Error) => void;
  }[] = [];
  private failure: Error | undefined;

  constructor(private readonly worker: Worker) {
    worker.on('message', (message: FromWorker) => {
      const index = this.waiters.findIndex((waiter) => waiter.type === message.type);
      if (index >= 0) {
        this.waiters.splice(index, 1)[0].resolve(message);
      }
    });
    const fail = (error: Error): void => {
      this.failure = error;
      for (const waiter of this.waiters.splice(0)) {
        waiter.reject(error);
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`generator worker exited with code ${code}`)));
  }

  send(message: ToWorker): void {
    this.worker.postMessage(message);
  }

  request<T extends FromWorker>(
    message: ToWorker,
    replyType: T['type'],
    timeoutMs: number,
  ): Promise<T> {
    if (this.failure) {
      return Promise.reject(this.failure);
    }
    const reply = new Promise<T>((resolve, reject) => {
      this.waiters.push({ type: replyType, resolve: resolve as (m: FromWorker) => void, reject });
    });
    this.worker.postMessage(message);
    return withTimeout(reply, timeoutMs, `generator worker reply '${replyType}'`);
  }

  async terminate(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

export interface ConnectOptions {
  /**
   * The servers' URLs. With several (--split), user u of every room connects to urls[u % n], so
   * that each room has members on every server as soon as it has n users.
   */
  urls: string[];
  client: ClientKind;
  rooms: number;
  usersPerRoom: number;
  clientTimeoutMs: number;
  phaseTimeoutMs: number;
  sampleEvery: number;
  concurrencyPerWorker: number;
  /** Fewer users than rooms x usersPerRoom: the last room is filled only partly. */
  totalUsers?: number;
  /** --binary: poses as gallery.v2 binary frames. */
  binary?: boolean;
  /** --quantized: the binary poses in the quantized form (gallery.v2q). */
  quantized?: boolean;
}

export class LoadGenerator {
  private joinedByRoom: number[] = [];

  private constructor(private readonly channels: WorkerChannel[]) {}

  static async start(workerCount: number): Promise<LoadGenerator> {
    const script = new URL('./generator-worker.js', import.meta.url);
    const channels = Array.from(
      { length: workerCount },
      () => new WorkerChannel(new Worker(script)),
    );
    // Let the threads load their modules before the first timed phase.
    await sleep(100);
    return new LoadGenerator(channels);
  }

  get workerCount(): number {
    return this.channels.length;
  }

  /**
   * Opens and joins rooms x usersPerRoom users, split round-robin over the workers and, by their
   * index in the room, over the URLs.
   */
  async connect(options: ConnectOptions): Promise<JoinSummary> {
    const perWorker: ClientSpec[][] = this.channels.map(() => []);
    const wanted = options.totalUsers ?? options.rooms * options.usersPerRoom;
    for (let room = 0; room < options.rooms; room++) {
      for (let user = 0; user < options.usersPerRoom; user++) {
        const global = room * options.usersPerRoom + user;
        if (global >= wanted) {
          break;
        }
        perWorker[global % perWorker.length].push({
          userId: userIdOf(room, user),
          roomIndex: room,
          instance: user % options.urls.length,
        });
      }
    }
    const results = await Promise.all(
      this.channels.map((channel, index) =>
        channel.request<ConnectResult>(
          {
            type: 'connect',
            urls: options.urls,
            client: options.client,
            roomCount: options.rooms,
            clients: perWorker[index],
            concurrency: options.concurrencyPerWorker,
            clientTimeoutMs: options.clientTimeoutMs,
            phaseTimeoutMs: options.phaseTimeoutMs,
            sampleEvery: options.sampleEvery,
            binary: options.binary ?? false,
            quantized: options.quantized ?? false,
          },
          'connected',
          options.phaseTimeoutMs + REPLY_TIMEOUT_MS,
        ),
      ),
    );
    this.joinedByRoom = new Array<number>(options.rooms).fill(0);
    for (const result of results) {
      result.joinedByRoom.forEach((count, room) => (this.joinedByRoom[room] += count));
    }
    const joinedByInstance = options.urls.map((_, instance) =>
      results.reduce((sum, result) => sum + result.joinedByInstance[instance], 0),
    );
    return {
      wanted,
      joined: this.joinedByRoom.reduce((sum, count) => sum + count, 0),
      joinedByRoom: [...this.joinedByRoom],
      joinedByInstance,
      failures: results.reduce((sum, result) => sum + result.failures, 0),
      failureSamples: results.flatMap((result) => result.failureSamples).slice(0, 5),
      seconds: Math.max(...results.map((result) => result.elapsedMs)) / 1000,
    };
  }

  /**
   * Starts every user's poses. Worker w holds users w, w + W, w + 2W, ... so offsetting its
   * start by w periods/users spreads all users' phases evenly over one period.
   */
  startSending(hz: number, tickMs = 0): void {
    const startAt = nowMs() + SEND_START_DELAY_MS;
    const periodMs = 1000 / hz;
    this.channels.forEach((channel, index) =>
      channel.send({
        type: 'start-sending',
        hz,
        startAtMs: startAt + (index * periodMs) / Math.max(1, this.joinedTotal),
        tickMs,
      }),
    );
  }

  stopSending(): void {
    for (const channel of this.channels) {
      channel.send({ type: 'stop-sending' });
    }
  }

  /**
   * Counts over a window of durationMs while the users keep sending. With server ticks
   * (tickMs > 0) a room is offered one pose per sender, recipient and tick that the sender's
   * sends gave a fresh pose to (WindowResult.tickSlotsByRoom), at most one per tick.
   */
  async measure(durationMs: number, tickMs = 0): Promise<WindowSummary> {
    const cpuStart = process.cpuUsage();
    const wallStart = performance.now();
    for (const channel of this.channels) {
      channel.send({ type: 'window-start' });
    }
    await sleep(durationMs);
    const results = await Promise.all(
      this.channels.map((channel) =>
        channel.request<WindowResult>({ type: 'window-end' }, 'window', REPLY_TIMEOUT_MS),
      ),
    );
    const cpu = process.cpuUsage(cpuStart);
    const wallMs = performance.now() - wallStart;
    return this.summarize(results, ((cpu.user + cpu.system) / 1000 / wallMs) * 100, tickMs);
  }

  async closeAll(): Promise<void> {
    await Promise.all(
      this.channels.map((channel) =>
        channel.request({ type: 'close' }, 'closed', REPLY_TIMEOUT_MS).catch(() => undefined),
      ),
    );
  }

  async terminate(): Promise<void> {
    await Promise.all(this.channels.map((channel) => channel.terminate()));
  }

  private get joinedTotal(): number {
    return this.joinedByRoom.reduce((sum, count) => sum + count, 0);
  }

  private summarize(results: WindowResult[], cpuPercent: number, tickMs: number): WindowSummary {
    let sentPerSecond = 0;
    let offeredPerSecond = 0;
    let deliveredPerSecond = 0;
    let sent = 0;
    let expectedDeliveries = 0;
    for (const result of results) {
      const seconds = result.durationMs / 1000;
      result.sentByRoom.forEach((count, room) => {
        const recipients = Math.max(0, (this.joinedByRoom[room] ?? 0) - 1);
        sent += count;
        sentPerSecond += count / seconds;
        if (tickMs === 0) {
          expectedDeliveries += count * recipients;
          offeredPerSecond += (count * recipients) / seconds;
        }
      });
      deliveredPerSecond += result.posesReceived / seconds;
    }
    let lateSendTicks = 0;
    if (tickMs > 0 && results.length > 0) {
      // A room's senders may be spread over the workers: its sends are capped as a whole.
      const seconds = Math.max(...results.map((result) => result.durationMs)) / 1000;
      this.joinedByRoom.forEach((members, room) => {
        const roomTicks = (members * seconds * 1000) / tickMs;
        const roomSent = results.reduce((sum, result) => sum + (result.sentByRoom[room] ?? 0), 0);
        const roomSlots = results.reduce(
          (sum, result) => sum + (result.tickSlotsByRoom[room] ?? 0),
          0,
        );
        const freshTicks = Math.min(roomSlots, roomTicks);
        const offered = freshTicks * Math.max(0, members - 1);
        lateSendTicks += Math.min(roomSent, roomTicks) - freshTicks;
        expectedDeliveries += offered;
        offeredPerSecond += offered / seconds;
      });
    }
    return {
      sentPerSecond,
      offeredPerSecond,
      deliveredPerSecond,
      sent,
      expectedDeliveries,
      posesReceived: results.reduce((sum, result) => sum + result.posesReceived, 0),
      latencies: concatenate(results.map((result) => result.latencies)),
      framesParsed: results.reduce((sum, result) => sum + result.framesParsed, 0),
      unknownSlotPoses: results.reduce((sum, result) => sum + result.unknownSlotPoses, 0),
      skippedSends: results.reduce((sum, result) => sum + result.skippedSends, 0),
      lateSendTicks,
      errors: results.reduce((sum, result) => sum + result.errors, 0),
      errorSamples: results.flatMap((result) => result.errorSamples).slice(0, 5),
      closes: results.reduce((sum, result) => sum + result.closes, 0),
      closeSamples: results.flatMap((result) => result.closeSamples).slice(0, 5),
      workers: results.map((result) => ({
        eventLoopUtilization: result.eventLoopUtilization,
        lagMaxMs: result.lagMaxMs,
        lagP99Ms: result.lagP99Ms,
      })),
      cpuPercent,
    };
  }
}

function concatenate(arrays: Float64Array[]): Float64Array {
  const all = new Float64Array(arrays.reduce((sum, array) => sum + array.length, 0));
  let offset = 0;
  for (const array of arrays) {
    all.set(array, offset);
    offset += array.length;
  }
  return all;
}
