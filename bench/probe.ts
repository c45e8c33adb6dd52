// The overload mode's probe: can a responsive client still get membership and state events in
// time while the room is flooded with poses? An actor drives a third user in and out of the room
// and updates the room state once a second; a reader in the same room times each event from the
// actor's send to its arrival. It runs in a thread of its own (ProbeThread, probe-worker.ts),
// which neither the load nor the bench's own work at the window's edges holds up.
import { WebSocket } from 'ws';
import { nowMs, sleep, withTimeout } from './clock.js';
import { summarizeLatency, type LatencySummary } from './latency.js';
import {
  connectUrl,
  joinRoomFrame,
  leaveRoomFrame,
  parseServerFrame,
  PoseFrameMatcher,
  updateStateFrame,
  type ServerFrame,
} from './protocol.js';

const ACTION_INTERVAL_MS = 1000;
let probeRuns = 0;

export interface ProbeSummary extends LatencySummary {
  /** Events sent in the window whose arrival the reader had not seen when it ended. */
  unanswered: number;
  /** Seconds in which an action was not sent because the previous one was still outstanding. */
  skipped: number;
  errors: number;
  errorSamples: string[];
  closes: string[];
}

/** A plain client that hands every non-pose event to a handler. */
class ProbeClient {
  private handler: (frame: ServerFrame) => void = () => undefined;
  /** Set when the bench drops the connection itself: that close is not the server's doing. */
  private terminated = false;

  private constructor(
    readonly userId: string,
    readonly socket: WebSocket,
    private readonly poses: PoseFrameMatcher,
    readonly closes: string[],
  ) {
    socket.on('message', (data: Buffer) => {
      if (this.poses.matches(data)) {
        return;
      }
      const frame = parseServerFrame(data);
      if (frame) {
        this.handler(frame);
      }
    });
    socket.on('close', (code, reason) => {
      if (!this.terminated) {
        closes.push(`${userId}: ${code} ${reason.toString()}`.trim());
      }
    });
  }

  static async connect(
    url: string,
    userId: string,
    roomId: string,
    closes: string[],
    timeoutMs: number,
  ): Promise<ProbeClient> {
    const socket = new WebSocket(connectUrl(url, userId), {
      perMessageDeflate: false,
      handshakeTimeout: timeoutMs,
    });
    socket.on('error', () => undefined);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('error', reject);
      }),
      timeoutMs,
      `probe ${userId} connecting`,
    );
    return new ProbeClient(userId, socket, new PoseFrameMatcher(roomId), closes);
  }

  onEvent(handler: (frame: ServerFrame) => void): void {
    this.handler = handler;
  }

  send(frame: string): void {
    if (this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(frame);
    }
  }

  /** Joins and returns room_joined, or throws on an error reply or a timeout. */
  async join(roomId: string, timeoutMs: number): Promise<ServerFrame> {
    const requestId = `probe-join-${this.userId}`;
    const reply = new Promise<ServerFrame>((resolve, reject) => {
      this.onEvent((frame) => {
        if (frame.data?.requestId !== requestId) {
          return;
        }
        if (frame.event === 'room_joined') {
          resolve(frame);
        } else if (frame.event === 'error') {
          reject(new Error(`probe ${this.userId} could not join: ${frame.data.code}`));
        }
      });
    });
    this.send(joinRoomFrame(roomId, requestId, this.userId));
    return withTimeout(reply, timeoutMs, `probe ${this.userId} joining`);
  }

  terminate(): void {
    this.terminated = true;
    this.socket.terminate();
  }
}

interface Outstanding {
  sentAt: number;
}

export class MembershipStateProbe {
  private version = 0;
  private tick = 0;
  private moverInRoom = false;
  private pendingMembership: (Outstanding & { expect: 'user_joined' | 'user_left' }) | undefined;
  private pendingState: (Outstanding & { version: number }) | undefined;
  private latencies: number[] = [];
  private skipped = 0;
  private errors = 0;
  private errorSamples: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private measuring = false;

  private constructor(
    private readonly roomId: string,
    private readonly actor: ProbeClient,
    private readonly reader: ProbeClient,
    private readonly mover: ProbeClient,
    private readonly closes: string[],
  ) {}

  /**
   * Joins the actor first, so that it is the room's host (the first joiner) and may update the
   * state whatever the room's default role; then the reader; the mover only connects.
   */
  static async start(
    url: string,
    roomId: string,
    timeoutMs: number,
  ): Promise<MembershipStateProbe> {
    const closes: string[] = [];
    // Fresh userIds per probe: a previous step's mover, not yet dropped by the server, would
    // otherwise hand its membership to the new one (session replacement) and hide user_joined.
    const run = `${process.pid}-${++probeRuns}`;
    const connect = (name: string): Promise<ProbeClient> =>
      ProbeClient.connect(url, `bench-probe-${name}-${run}`, roomId, closes, timeoutMs);
    const actor = await connect('actor');
    const reader = await connect('reader');
    const mover = await connect('mover');
    const probe = new MembershipStateProbe(roomId, actor, reader, mover, closes);
    try {
      const joined = await actor.join(roomId, timeoutMs);
      probe.version = joined.data?.roomInfo?.state?.version ?? 0;
      await reader.join(roomId, timeoutMs);
    } catch (error) {
      probe.close();
      throw error;
    }
    actor.onEvent((frame) => probe.onActorEvent(frame));
    reader.onEvent((frame) => probe.onReaderEvent(frame));
    mover.onEvent((frame) => probe.onMoverEvent(frame));
    return probe;
  }

  /**
   * Acts now and once a second after, the last time a second before the window ends: an act at
   * its very end would be timed while the bench takes in the generator's counts, work that
   * competes with the server for the cores and is not the load being measured.
   */
  beginMeasuring(windowMs: number): void {
    this.measuring = true;
    let actsLeft = Math.max(1, Math.floor(windowMs / ACTION_INTERVAL_MS));
    const act = (): void => {
      this.act();
      if (--actsLeft === 0) {
        clearInterval(this.timer);
      }
    };
    act();
    if (actsLeft > 0) {
      this.timer = setInterval(act, ACTION_INTERVAL_MS);
    }
  }

  /**
   * Stops acting and gives the events sent in the window up to graceMs to arrive (the load
   * goes on meanwhile). Those still outstanding count as unanswered, timed up to now.
   */
  async endMeasuring(graceMs: number): Promise<ProbeSummary> {
    clearInterval(this.timer);
    const deadline = nowMs() + graceMs;
    while ((this.pendingMembership || this.pendingState) && nowMs() < deadline) {
      await sleep(20);
    }
    this.measuring = false;
    const now = nowMs();
    const outstanding = [this.pendingMembership, this.pendingState].filter(
      (pending): pending is NonNullable<typeof pending> => pending !== undefined,
    );
    // An unanswered event took at least this long: count it so the max is never flattering.
    const censored = outstanding.map((pending) => now - pending.sentAt);
    return {
      ...summarizeLatency([...this.latencies, ...censored]),
      unanswered: outstanding.length,
      skipped: this.skipped,
      errors: this.errors,
      errorSamples: [...this.errorSamples],
      closes: [...this.closes],
    };
  }

  close(): void {
    clearInterval(this.timer);
    for (const client of [this.actor, this.reader, this.mover]) {
      client.terminate();
    }
  }

  /** Once a second: move the mover in or out, and bump the state, unless still outstanding. */
  private act(): void {
    if (this.pendingMembership) {
      this.skipped++;
    } else {
      const expect = this.moverInRoom ? 'user_left' : 'user_joined';
      this.pendingMembership = { expect, sentAt: nowMs() };
      this.mover.send(
        this.moverInRoom
          ? leaveRoomFrame(this.roomId, `probe-leave-${this.tick}`)
          : joinRoomFrame(this.roomId, `probe-join-${this.tick}`, this.mover.userId),
      );
    }
    if (this.pendingState) {
      this.skipped++;
    } else {
      this.tick++;
      this.pendingState = { version: this.version + 1, sentAt: nowMs() };
      this.actor.send(
        updateStateFrame(this.roomId, this.version, this.tick, `probe-state-${this.tick}`),
      );
    }
  }

  private onReaderEvent(frame: ServerFrame): void {
    const data = frame.data;
    if (frame.event === 'user_joined' && data?.user?.id === this.mover.userId) {
      this.moverInRoom = true;
      this.settleMembership('user_joined');
    } else if (frame.event === 'user_left' && data?.userId === this.mover.userId) {
      this.moverInRoom = false;
      this.settleMembership('user_left');
    } else if (frame.event === 'state_updated' && typeof data?.version === 'number') {
      this.version = Math.max(this.version, data.version);
      if (this.pendingState && data.version >= this.pendingState.version) {
        this.record(this.pendingState.sentAt);
        this.pendingState = undefined;
      }
    }
  }

  private onActorEvent(frame: ServerFrame): void {
    if (frame.event === 'state_updated' && typeof frame.data?.version === 'number') {
      this.version = Math.max(this.version, frame.data.version);
    } else if (frame.event === 'error') {
      if (typeof frame.data?.currentVersion === 'number') {
        this.version = frame.data.currentVersion;
      }
      this.pendingState = undefined;
      this.noteError(`actor: ${frame.data?.code}`);
    }
  }

  private onMoverEvent(frame: ServerFrame): void {
    if (frame.event === 'error') {
      this.pendingMembership = undefined;
      this.noteError(`mover: ${frame.data?.code}`);
    }
  }

  private settleMembership(event: 'user_joined' | 'user_left'): void {
    if (this.pendingMembership?.expect === event) {
      this.record(this.pendingMembership.sentAt);
      this.pendingMembership = undefined;
    }
  }

  private record(sentAt: number): void {
    if (this.measuring) {
      this.latencies.push(nowMs() - sentAt);
    }
  }

  private noteError(what: string): void {
    this.errors++;
    if (this.errorSamples.length < 5) {
      this.errorSamples.push(what);
    }
  }
}
