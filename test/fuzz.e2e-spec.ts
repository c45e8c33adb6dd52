import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientPool } from './support/fixtures.js';
import {
  deepObjectFrame,
  FrameGenerator,
  INVALID_UTF8_CLOSE,
  issue8CrashFrame,
  type FuzzFrame,
} from './support/fuzz-frames.js';
import { ServerProcess } from './support/server-process.js';
import {
  ClientAction,
  CloseCode,
  ErrorCode,
  ServerEvent,
  type ErrorPayload,
} from '../src/protocol/protocol.js';
import { TestClient } from './support/test-client.js';

// Issue 8: no frame may crash or stall the server. A real `node dist/main.js` per test, so a crash
// is a process exit this file sees, and seeded frames, so a failure reproduces:
// FUZZ_SEED=<seed printed below> npx jest test/fuzz.e2e-spec.ts --selectProjects e2e
// (the path goes first: --selectProjects takes every name after it as a project).

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : 0x5eed_0008;
const PHASE_A_FRAMES = 3000;
const PHASE_B_FRAMES = 500;
/** Each fuzz client waits for a pong this often, so at most this many frames are in flight. */
const SYNC_EVERY = 16;
/** A sync pong (or an expected close) slower than this is a stall. */
const STALL_MS = 10_000;
/** Phase A stops sending here even if frames are left, to stay inside the jest timeout. */
const PHASE_A_BUDGET_MS = 25_000;

const RATE_LIMITS_OFF = {
  RATE_POSES_PER_SEC: '0',
  RATE_ACTIONS_PER_SEC: '0',
  RATE_BYTES_PER_SEC: '0',
  RATE_VIOLATIONS_BEFORE_CLOSE: '0',
};

/**
 * Closes a fuzzed client may get: binary (1003), not UTF-8 (1007), policy (1008: abuse, rate
 * limits), over MAX_MESSAGE_BYTES (1009), session replaced (4000). 1011 (an unexpected error on
 * the socket) and 1006 (no close frame: the process died) are bugs.
 */
const ALLOWED_CLOSES = new Set<number>([
  CloseCode.UnsupportedData,
  INVALID_UTF8_CLOSE,
  CloseCode.PolicyViolation,
  CloseCode.MessageTooBig,
  CloseCode.SessionReplaced,
]);

function seedOf(name: string): number {
  let hash = SEED >>> 0;
  for (const char of name) {
    hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
  }
  return hash;
}

function preview(data: string | Buffer, max = 300): string {
  const text = typeof data === 'string' ? data : `<${data.length} bytes> ${data.toString('hex')}`;
  return text.length > max
    ? `${JSON.stringify(text.slice(0, max))}... (${text.length} chars)`
    : JSON.stringify(text);
}

/** `promise`'s value, or undefined after `ms`; the timer never outlives the race. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, ms, undefined);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

type Outcome = { error: ErrorPayload } | { closed: { code: number; reason: string } };

/** The first `error` event the client gets, or its close; undefined if neither comes in `ms`. */
function errorOrClose(client: TestClient, ms: number): Promise<Outcome | undefined> {
  const outcome = new Promise<Outcome>((resolve) => {
    client.socket.on('message', (raw: Buffer) => {
      const message = JSON.parse(raw.toString()) as { event: string; data: ErrorPayload };
      if (message.event === ServerEvent.Error) {
        resolve({ error: message.data });
      }
    });
    void client.closed.then((closed) => resolve({ closed }));
  });
  return within(outcome, ms);
}

function bump(counts: Record<string, number>, key: string | number): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

/** What the fuzz clients of one phase sent and got back. */
class Tally {
  frames = 0;
  bytes = 0;
  reconnects = 0;
  /** Frames per template action (whole-frame kinds such as `binary` count as their own). */
  readonly actions: Record<string, number> = {};
  readonly mutations: Record<string, number> = {};
  readonly events: Record<string, number> = {};
  readonly errorCodes: Record<string, number> = {};
  readonly closeCodes: Record<string, number> = {};
  /** Requests the reply rule says must be answered, that were not by the next pong. */
  readonly unanswered: string[] = [];
  /** Pongs or expected closes that never came. */
  readonly stalls: string[] = [];
  /** Frames answered INTERNAL_ERROR, or sent just before a close the frame did not ask for. */
  readonly suspicious: string[] = [];

  report(title: string, started: number): string {
    return [
      `[fuzz] ${title}: seed=${SEED} frames=${this.frames} bytes=${this.bytes} ` +
        `reconnects=${this.reconnects} in ${Date.now() - started} ms`,
      `[fuzz]   actions: ${JSON.stringify(this.actions)}`,
      `[fuzz]   mutations: ${JSON.stringify(this.mutations)}`,
      `[fuzz]   events: ${JSON.stringify(this.events)}`,
      `[fuzz]   error codes: ${JSON.stringify(this.errorCodes)}`,
      `[fuzz]   close codes: ${JSON.stringify(this.closeCodes)}`,
      ...this.unanswered.slice(0, 5).map((line) => `[fuzz]   UNANSWERED ${line}`),
      ...this.stalls.slice(0, 5).map((line) => `[fuzz]   STALL ${line}`),
      ...this.suspicious.slice(0, 5).map((line) => `[fuzz]   SUSPICIOUS ${line}`),
    ].join('\n');
  }
}

/** A server process of this file, with its own DATA_DIR. */
class FuzzServer {
  private constructor(
    readonly process: ServerProcess,
    readonly wsUrl: string,
    readonly httpUrl: string,
    private readonly dataDir: string,
  ) {}

  static async start(env: Record<string, string>): Promise<FuzzServer> {
    const dataDir = await mkdtemp(join(tmpdir(), 'gms-fuzz-'));
    const server = ServerProcess.start({
      HOST: '127.0.0.1',
      PORT: '0',
      DATA_DIR: dataDir,
      ...env,
    });
    const port = await server.port();
    return new FuzzServer(server, `ws://127.0.0.1:${port}`, `http://127.0.0.1:${port}`, dataDir);
  }

  get alive(): boolean {
    return !this.process.hasExited;
  }

  /** Fails with the process's exit and the end of its output when it is no longer running. */
  async assertAlive(): Promise<void> {
    // A crash in progress: the socket dropped a moment before the process is gone.
    await within(this.process.exited, 200);
    if (!this.alive) {
      const exit = await this.process.exited;
      const stdout = this.process.stdoutLines.slice(-5).join('\n');
      throw new Error(
        `the server process exited (code ${exit.code}, signal ${exit.signal}).\n` +
          `stderr (end): ${this.process.stderr.slice(-1500)}\nstdout (end): ${stdout}`,
      );
    }
  }

  async health(): Promise<number> {
    const response = await fetch(`${this.httpUrl}/health`);
    return response.status;
  }

  /** Errors the server logged (1011 closes, INTERNAL_ERROR, unhandled rejections). */
  loggedErrors(): string[] {
    return [...this.process.stdoutLines, ...this.process.stderr.split('\n')].filter((line) =>
      /\b(ERROR|FATAL)\b/.test(line),
    );
  }

  async stop(): Promise<void> {
    await this.process.stop();
    await rm(this.dataDir, { recursive: true, force: true });
  }
}

/** Two clean clients in their own room, joined before the fuzzing starts. */
class Canary {
  private constructor(
    readonly a: TestClient,
    readonly b: TestClient,
    readonly roomId: string,
  ) {}

  static async open(server: FuzzServer, pool: ClientPool): Promise<Canary> {
    const roomId = `canary-${SEED}`;
    const a = await pool.connect(server.wsUrl, { userId: 'canary-a' });
    const b = await pool.connect(server.wsUrl, { userId: 'canary-b' });
    await a.join(roomId);
    await b.join(roomId);
    await a.next('user_joined');
    return new Canary(a, b, roomId);
  }

  /** Never closed, and a broadcast from one still reaches the other. */
  async assertRelays(): Promise<void> {
    expect({ a: this.a.closeCode, b: this.b.closeCode }).toEqual({ a: undefined, b: undefined });
    const n = Date.now();
    this.a.broadcast(this.roomId, { type: 'canary', data: { n } });
    const relayed = await this.b.next('message', 5000);
    expect(relayed).toMatchObject({ roomId: this.roomId, senderId: 'canary-a' });
    expect(relayed.message).toMatchObject({ type: 'canary', data: { n } });
  }
}

/**
 * One fuzzed user: sends frames, tallies what comes back, reconnects (same userId, rejoining its
 * rooms) whenever the server closed its socket, and checks the reply rule at every pong.
 */
class FuzzClient {
  private client?: TestClient;
  private readonly pending = new Map<string, FuzzFrame>();
  /** Our own requests (rejoins, sync pings) waiting for their reply. */
  private readonly waiting = new Map<string, () => void>();
  private recent: FuzzFrame[] = [];
  private requests = 0;

  constructor(
    private readonly server: FuzzServer,
    readonly userId: string,
    private readonly rooms: readonly string[],
    private readonly tally: Tally,
  ) {}

  /** Open, not closing: a frame sent now reaches the server. */
  get open(): boolean {
    return this.client !== undefined && this.client.socket.readyState === this.client.socket.OPEN;
  }

  /** Reconnects unless open; a closing socket is given time to finish closing first. */
  private async reopen(): Promise<void> {
    if (this.open) {
      return;
    }
    if (this.client !== undefined && this.client.closeCode === undefined) {
      if ((await within(this.client.closed, STALL_MS)) === undefined) {
        this.tally.stalls.push(`${this.userId}: the socket did not finish closing`);
        this.client.socket.terminate();
        await this.client.closed;
      }
    }
    await this.connect();
  }

  async connect(): Promise<void> {
    if (this.client !== undefined) {
      this.tally.reconnects++;
    }
    const client = await TestClient.connect(this.server.wsUrl, { userId: this.userId });
    this.client = client;
    this.pending.clear();
    this.recent = [];
    client.socket.on('message', (raw: Buffer) => this.received(raw));
    client.socket.on('close', (code: number) => this.closed(code));
    for (const roomId of this.rooms) {
      // KICKED, ROOM_FULL or a closed socket are all fine: the frames carry on regardless.
      await this.request(ClientAction.JoinRoom, { roomId }, 3000);
    }
  }

  /** Sends one of our own requests; resolves when it is answered, the socket closes, or `ms`. */
  private async request(
    action: string,
    fields: Record<string, unknown>,
    ms: number,
  ): Promise<'answered' | 'closed' | 'timeout'> {
    const client = this.client as TestClient;
    const requestId = `${this.userId}-own-${++this.requests}`;
    const answered = new Promise<'answered'>((resolve) => {
      this.waiting.set(requestId, () => resolve('answered'));
    });
    client.send({ action, requestId, ...fields });
    const outcome = await within(
      Promise.race([answered, client.closed.then(() => 'closed' as const)]),
      ms,
    );
    this.waiting.delete(requestId);
    // TestClient keeps every event for `next`; nobody reads them here.
    client.received.splice(0);
    return outcome ?? 'timeout';
  }

  /**
   * Sends one frame (reconnecting first if needed); unless flooding, waits for the close the
   * frame must cause.
   */
  async send(frame: FuzzFrame, { flood = false } = {}): Promise<void> {
    await this.reopen();
    const client = this.client as TestClient;
    this.tally.frames++;
    this.tally.bytes += Buffer.byteLength(frame.data);
    bump(this.tally.actions, frame.kind.split('+')[0]);
    for (const mutation of frame.mutations.length > 0 ? frame.mutations : ['none']) {
      bump(this.tally.mutations, mutation);
    }
    this.recent.push(frame);
    if (frame.expectReplyTo !== undefined) {
      this.pending.set(frame.expectReplyTo, frame);
    }
    client.sendRaw(frame.data, { binary: frame.binary });
    if (frame.expectClose !== undefined && !flood) {
      const closed = await within(client.closed, STALL_MS);
      if (closed === undefined) {
        this.tally.stalls.push(
          `${this.userId}: no close ${frame.expectClose} after ${frame.kind} ${preview(frame.data)}`,
        );
        client.socket.terminate();
        await client.closed;
      } else if (closed.code !== frame.expectClose) {
        this.tally.suspicious.push(
          `${this.userId}: close ${closed.code} instead of ${frame.expectClose} after ${frame.kind}`,
        );
      }
    }
  }

  /**
   * A ping whose pong proves every earlier frame was handled: those the reply rule says get a
   * reply must have had it by then (one connection's messages are handled in order).
   */
  async sync(): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      await this.reopen();
      const client = this.client as TestClient;
      const outcome = await this.request(ClientAction.Ping, {}, STALL_MS);
      if (outcome === 'closed') {
        continue;
      }
      if (outcome === 'timeout') {
        this.tally.stalls.push(
          `${this.userId}: no pong within ${STALL_MS} ms after ` + this.lastFrames(),
        );
        client.socket.terminate();
        await client.closed;
        return;
      }
      for (const [id, frame] of this.pending) {
        this.tally.unanswered.push(`${this.userId} ${id}: ${frame.kind} ${preview(frame.data)}`);
      }
      this.pending.clear();
      this.recent = [];
      return;
    }
  }

  close(): void {
    this.client?.close();
  }

  /** The last few frames sent since the previous pong, for a report. */
  private lastFrames(count = 3): string {
    return this.recent
      .slice(-count)
      .map((frame) => `${frame.kind} ${preview(frame.data, 160)}`)
      .join(' | ');
  }

  private received(raw: Buffer): void {
    const message = JSON.parse(raw.toString()) as {
      event: string;
      data: { code?: string; requestId?: unknown };
    };
    bump(this.tally.events, message.event);
    const requestId = message.data?.requestId;
    const frame = typeof requestId === 'string' ? this.pending.get(requestId) : undefined;
    if (frame) {
      this.pending.delete(requestId as string);
    }
    if (typeof requestId === 'string') {
      this.waiting.get(requestId)?.();
    }
    if (message.event === ServerEvent.Error) {
      bump(this.tally.errorCodes, message.data.code ?? '(none)');
      if (message.data.code === ErrorCode.InternalError) {
        this.tally.suspicious.push(
          `${this.userId}: INTERNAL_ERROR for ${
            frame
              ? `${frame.kind} ${preview(frame.data)}`
              : `one of the last frames: ${this.lastFrames()}`
          }`,
        );
      }
    }
  }

  private closed(code: number): void {
    bump(this.tally.closeCodes, code);
    const asked = this.recent.some((frame) => frame.expectClose === code);
    const unasked = code !== CloseCode.PolicyViolation && code !== CloseCode.SessionReplaced;
    if (!ALLOWED_CLOSES.has(code) || (!asked && unasked)) {
      this.tally.suspicious.push(`${this.userId}: close ${code} after ` + this.lastFrames());
    }
    this.pending.clear();
  }
}

/**
 * Runs `fuzz`; if it fails because the server died (a reconnect refused, a pong never coming),
 * returns quietly: `assertServerSurvived` then reports the crash with the process's own output.
 */
async function untilCrash(server: FuzzServer, fuzz: () => Promise<void>): Promise<void> {
  try {
    await fuzz();
  } catch (error) {
    await within(server.process.exited, 200);
    if (server.alive) {
      throw error;
    }
  }
}

/** The checks every phase ends with. */
async function assertServerSurvived(server: FuzzServer, canary: Canary, tally: Tally) {
  await server.assertAlive();
  expect(await server.health()).toBe(200);
  await canary.assertRelays();
  expect(tally.closeCodes[CloseCode.InternalError] ?? 0).toBe(0);
  expect(tally.errorCodes[ErrorCode.InternalError] ?? 0).toBe(0);
  const unexpected = Object.keys(tally.closeCodes).filter((code) => !ALLOWED_CLOSES.has(+code));
  expect(unexpected).toEqual([]);
  expect(tally.stalls).toEqual([]);
  expect(tally.unanswered).toEqual([]);
  expect(tally.suspicious).toEqual([]);
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

describe('fuzzed frames against a server process (issue 8)', () => {
  const pool = new ClientPool();
  const servers: FuzzServer[] = [];
  const fuzzClients: FuzzClient[] = [];

  const start = async (env: Record<string, string> = {}) => {
    const server = await FuzzServer.start(env);
    servers.push(server);
    return server;
  };

  beforeAll(() => print(`[fuzz] seed ${SEED} (set FUZZ_SEED to replay)`));

  afterEach(async () => {
    fuzzClients.splice(0).forEach((client) => client.close());
    pool.closeAll();
    for (const server of servers.splice(0)) {
      const errors = server.loggedErrors();
      if (errors.length > 0) {
        print(`[fuzz] the server logged ${errors.length} error line(s), first:\n${errors[0]}`);
      }
      await server.stop();
    }
  });

  it('answers the 60 KB frame of issue 8 (30,000 nested arrays and an escape) and keeps serving', async () => {
    const server = await start();
    const canary = await Canary.open(server, pool);
    const probe = await pool.connect(server.wsUrl, { userId: 'probe' });

    const answer = errorOrClose(probe, 5000);
    probe.sendRaw(issue8CrashFrame());
    const outcome = await answer;
    print(`[fuzz] issue 8 frame: ${JSON.stringify(outcome)}`);

    await server.assertAlive();
    if (outcome === undefined) {
      throw new Error('the issue 8 frame got no answer within 5 s: no error event, no close');
    }
    if ('error' in outcome) {
      // No requestId in the frame, so none in the answer.
      expect(outcome.error).toMatchObject({ code: ErrorCode.ValidationFailed });
      expect(outcome.error.requestId).toBeUndefined();
      const requestId = probe.request(ClientAction.Ping);
      expect((await probe.reply(requestId)).event).toBe(ServerEvent.Pong);
    } else {
      expect([CloseCode.PolicyViolation, CloseCode.MessageTooBig]).toContain(outcome.closed.code);
    }
    expect(await server.health()).toBe(200);
    await canary.assertRelays();
    const fresh = await pool.connect(server.wsUrl, { userId: 'fresh' });
    expect((await fresh.reply(fresh.request(ClientAction.Ping))).event).toBe(ServerEvent.Pong);
  }, 20_000);

  it('answers other deep frames (objects, mixed, escapes) and echoes a readable requestId', async () => {
    const server = await start();
    const canary = await Canary.open(server, pool);
    const frames = [
      deepObjectFrame(9_000, 'deep-objects'),
      `{"requestId":"deep-mixed","action":"broadcast","roomId":"r","message":${'[{"k":'.repeat(6_000)}"\\\\"${'}]'.repeat(6_000)}}`,
      `{"action":"update_state","requestId":"deep-patch","roomId":"r","patch":{"treeViewState":${'{"a":'.repeat(40)}1${'}'.repeat(40)}}}`,
      `{"action":"ping","requestId":"deep-proto","x":${'['.repeat(20_000)}{"\\u005f_proto__":1}${']'.repeat(20_000)}}`,
    ];
    for (const frame of frames) {
      const probe = await pool.connect(server.wsUrl, { userId: 'probe' });
      const requestId = (/"requestId":"([^"]+)"/.exec(frame) as RegExpExecArray)[1];
      const answer = errorOrClose(probe, 5000);
      probe.sendRaw(frame);
      const outcome = await answer;
      print(`[fuzz] ${requestId}: ${JSON.stringify(outcome)}`);
      await server.assertAlive();
      if (outcome === undefined) {
        throw new Error(`${requestId} got no answer within 5 s: no error event, no close`);
      }
      if ('error' in outcome) {
        // Nothing this deep is valid: the depth limit, or the handler's own validation.
        expect(outcome.error.code).toBe(ErrorCode.ValidationFailed);
        expect(outcome.error.requestId).toBe(requestId);
      } else {
        expect([CloseCode.PolicyViolation, CloseCode.MessageTooBig]).toContain(outcome.closed.code);
      }
      probe.close();
      await probe.waitForClose();
    }
    expect(await server.health()).toBe(200);
    await canary.assertRelays();
  }, 20_000);

  it(`phase A: ${PHASE_A_FRAMES} seeded frames with rate limits off reach the handlers; nothing crashes or stalls`, async () => {
    const started = Date.now();
    const server = await start({ ...RATE_LIMITS_OFF, KICK_BAN_MS: '0' });
    const canary = await Canary.open(server, pool);
    const tally = new Tally();
    const roomIds = ['fuzz-r1', 'fuzz-r2', 'fuzz-r3'];
    // The host joins first, so it holds every fuzz room and its set_role/kick/delete go deep.
    const userIds = ['fz-host', 'fz-a', 'fz-b', 'fz-c'];
    for (const userId of userIds) {
      const client = new FuzzClient(server, userId, roomIds, tally);
      await client.connect();
      fuzzClients.push(client);
    }
    const deadline = started + PHASE_A_BUDGET_MS;
    const perClient = Math.ceil(PHASE_A_FRAMES / fuzzClients.length);
    await Promise.all(
      fuzzClients.map(async (client, index) => {
        const generator = new FrameGenerator(
          seedOf(client.userId),
          { selfId: client.userId, peerIds: userIds, roomIds },
          `fz${'abcdefgh'[index]}`,
        );
        await untilCrash(server, async () => {
          for (let i = 0; i < perClient && server.alive && Date.now() < deadline; i++) {
            await client.send(generator.next());
            if ((i + 1) % SYNC_EVERY === 0) {
              await client.sync();
            }
          }
          await client.sync();
        });
      }),
    );

    print(tally.report('phase A (rate limits off)', started));
    if (tally.frames < PHASE_A_FRAMES) {
      const why = server.alive ? 'the time budget ran out' : 'the server process exited';
      print(`[fuzz]   WARNING: stopped after ${tally.frames} frames: ${why}`);
    }
    await assertServerSurvived(server, canary, tally);
  }, 45_000);

  it(`phase B: ${PHASE_B_FRAMES} frames as fast as possible under the default limits are refused, not fatal`, async () => {
    const started = Date.now();
    const server = await start();
    const canary = await Canary.open(server, pool);
    const tally = new Tally();
    const client = new FuzzClient(server, 'fz-flood', ['flood-room'], tally);
    await client.connect();
    fuzzClients.push(client);
    const generator = new FrameGenerator(
      seedOf('flood'),
      { selfId: 'fz-flood', peerIds: ['fz-flood', 'fz-nobody'], roomIds: ['flood-room'] },
      'fzflood',
    );

    await untilCrash(server, async () => {
      for (let i = 0; i < PHASE_B_FRAMES && server.alive; i++) {
        // Flooding: an expected close is not waited for, a later frame reconnects instead.
        await client.send(generator.next(), { flood: true });
        if (i % 25 === 24) {
          // Lets close events in, so a closed socket is noticed and replaced.
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      await client.sync();
    });

    print(tally.report('phase B (default limits, flood)', started));
    await assertServerSurvived(server, canary, tally);
    const refused =
      (tally.errorCodes[ErrorCode.RateLimited] ?? 0) +
      (tally.closeCodes[CloseCode.PolicyViolation] ?? 0);
    expect(refused).toBeGreaterThan(0);
  }, 30_000);
});
