import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { get } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './clock.js';

/** The repository root: dist-bench/ sits next to dist/ there. */
export const REPOSITORY_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

const READY_TIMEOUT_MS = 30_000;
/** Our server exits on SIGTERM within SHUTDOWN_TIMEOUT_MS (8 s by default). */
const STOP_TIMEOUT_MS = 12_000;
const LISTENING_LINE = /Listening on http:\/\/[^\s:]+:(\d+)/;
const KEPT_OUTPUT_LINES = 30;
/** Server log lines echoed to the bench's stderr per server, so a flood cannot bury the report. */
const ECHOED_LINES = 20;

export type ServerKind = 'ours' | 'baseline';

export interface StartOptions {
  kind: ServerKind;
  env: Record<string, string>;
  /** Variables of the bench's own environment the server must not inherit (e.g. REDIS_URL). */
  unsetEnv?: string[];
  nodeFlags?: string[];
  /** Prefix for echoed server log lines; undefined keeps them quiet. */
  echoLabel?: string;
}

/** Every child we started, so that an exit or Ctrl-C never leaves a server behind. */
const liveChildren = new Set<ChildProcess>();

export function killAllServers(signal: NodeJS.Signals): void {
  for (const child of liveChildren) {
    child.kill(signal);
  }
}

export function liveServerCount(): number {
  return liveChildren.size;
}

/** A server child process that is listening; stop() is safe to call more than once. */
export class ServerProcess {
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;
  private readonly recentOutput: string[] = [];
  private echoed = 0;
  private listeningPort: number | undefined;

  private constructor(
    readonly kind: ServerKind,
    private readonly child: ChildProcess,
    private readonly echoLabel: string | undefined,
  ) {
    liveChildren.add(child);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        liveChildren.delete(child);
        resolve();
      });
    });
    this.watchOutput(child.stdout);
    this.watchOutput(child.stderr);
  }

  static async start(options: StartOptions): Promise<ServerProcess> {
    const script =
      options.kind === 'ours'
        ? join(REPOSITORY_ROOT, 'dist', 'main.js')
        : join(REPOSITORY_ROOT, 'dist-bench', 'baseline-server.js');
    const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
    for (const key of options.unsetEnv ?? []) {
      delete env[key];
    }
    const child = spawn(process.execPath, [...(options.nodeFlags ?? []), script], {
      cwd: REPOSITORY_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new ServerProcess(options.kind, child, options.echoLabel);
    try {
      await server.waitUntilReady();
      return server;
    } catch (error) {
      await server.stop();
      throw error;
    }
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get port(): number {
    if (this.listeningPort === undefined) {
      throw new Error('server is not listening');
    }
    return this.listeningPort;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/`;
  }

  get isRunning(): boolean {
    return this.exitInfo === undefined;
  }

  get exitCode(): number | null | undefined {
    return this.exitInfo?.code;
  }

  /** How it ended, for a report: 'code 1' or 'signal SIGTERM'. */
  get exitDescription(): string {
    if (!this.exitInfo) {
      return 'still running';
    }
    return this.exitInfo.signal ? `signal ${this.exitInfo.signal}` : `code ${this.exitInfo.code}`;
  }

  /** The last lines the server wrote, for the report of a failed start or a crash. */
  get lastOutput(): string {
    return this.recentOutput.join('\n');
  }

  /** SIGTERM, then SIGKILL if the process has not exited within STOP_TIMEOUT_MS. */
  async stop(): Promise<{ graceful: boolean }> {
    if (!this.isRunning) {
      return { graceful: true };
    }
    this.child.kill('SIGTERM');
    const graceful = await Promise.race([
      this.exited.then(() => true),
      sleep(STOP_TIMEOUT_MS).then(() => false),
    ]);
    if (!graceful) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
    return { graceful };
  }

  private async waitUntilReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (this.listeningPort === undefined) {
      this.throwIfExited('before listening');
      this.listeningPort = listeningPortOf(this.pid);
      if (this.listeningPort === undefined) {
        if (Date.now() > deadline) {
          throw new Error(`${this.kind} server did not listen within ${READY_TIMEOUT_MS} ms`);
        }
        await sleep(50);
      }
    }
    while (!(await isHealthy(this.listeningPort))) {
      this.throwIfExited('before /health answered');
      if (Date.now() > deadline) {
        throw new Error(`${this.kind} server's /health did not answer 200 in time`);
      }
      await sleep(100);
    }
  }

  private throwIfExited(when: string): void {
    if (this.exitInfo !== undefined) {
      const how = this.exitInfo.signal ?? `code ${this.exitInfo.code}`;
      throw new Error(`${this.kind} server exited (${how}) ${when}:\n${this.lastOutput}`);
    }
  }

  private watchOutput(stream: NodeJS.ReadableStream | null): void {
    if (!stream) {
      return;
    }
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        this.onOutputLine(line);
      }
    });
  }

  private onOutputLine(line: string): void {
    const port = LISTENING_LINE.exec(line)?.[1];
    if (port !== undefined && this.listeningPort === undefined) {
      this.listeningPort = Number(port);
    }
    this.recentOutput.push(line);
    if (this.recentOutput.length > KEPT_OUTPUT_LINES) {
      this.recentOutput.shift();
    }
    const worthEchoing = line.trim() !== '' && port === undefined;
    if (this.echoLabel !== undefined && worthEchoing && this.echoed <= ECHOED_LINES) {
      this.echoed++;
      const text =
        this.echoed > ECHOED_LINES ? '(more server output suppressed)' : line.slice(0, 300);
      process.stderr.write(`  [${this.echoLabel}] ${text}\n`);
    }
  }
}

/**
 * The TCP port a process listens on, from /proc. Our server logs its "Listening on" line at
 * level `log`, which LOG_LEVEL=warn (used for benchmarking, to keep logging off the hot path)
 * hides; so with PORT=0 the port is found by matching the process's socket inodes against the
 * kernel's table of listening sockets.
 */
export function listeningPortOf(pid: number): number | undefined {
  return listeningPortsOf(pid)[0];
}

/**
 * Every TCP port a process listens on; empty when it listens on none, or when its descriptors
 * cannot be read (another user's process, without root).
 */
export function listeningPortsOf(pid: number): number[] {
  const inodes = socketInodesOf(pid);
  const ports: number[] = [];
  if (inodes.size === 0) {
    return ports;
  }
  for (const table of [`/proc/${pid}/net/tcp`, `/proc/${pid}/net/tcp6`]) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const listening = fields[3] === '0A';
      if (listening && inodes.has(fields[9])) {
        ports.push(Number.parseInt(fields[1].split(':')[1], 16));
      }
    }
  }
  return ports;
}

function socketInodesOf(pid: number): Set<string> {
  const inodes = new Set<string>();
  let descriptors: string[];
  try {
    descriptors = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return inodes;
  }
  for (const descriptor of descriptors) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${descriptor}`));
      if (match) {
        inodes.add(match[1]);
      }
    } catch {
      // The descriptor closed between the listing and the readlink.
    }
  }
  return inodes;
}

function isHealthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const request = get({ host: '127.0.0.1', port, path: '/health', timeout: 2000 }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(false));
  });
}
