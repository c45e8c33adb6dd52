// What a step measures against: a server the bench started (with /proc figures) or a URL.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  newestProfileIn,
  topSelfTime,
  type CpuProfileSummary,
  type MonotonicWindow,
} from './cpu-profile.js';
import type { BenchOptions, Step } from './options.js';
import { RssSampler } from './proc-stats.js';
import { ServerProcess, type ServerKind } from './server-process.js';

export type TargetKind = ServerKind | 'url';

/** The probe's three users join room bench-0 besides the load users. */
export const PROBE_MEMBERS = 3;

export interface Target {
  kind: TargetKind;
  url: string;
  /** Undefined for --url: no CPU or RSS then. */
  process: ServerProcess | undefined;
  rss: RssSampler | undefined;
  /**
   * --split: every server process of the layout; the users of a room are spread over them (see
   * LoadGenerator.connect). url, process and rss are then the first instance's.
   */
  instances?: ServerInstance[];
}

/** One server process of a target. */
export interface ServerInstance {
  url: string;
  process: ServerProcess;
  rss: RssSampler;
}

/** The server processes of a target: none for --url, one, or a --split layout's. */
export function instancesOf(target: Target): ServerInstance[] {
  if (target.instances) {
    return target.instances;
  }
  return target.process && target.rss
    ? [{ url: target.url, process: target.process, rss: target.rss }]
    : [];
}

export interface StoppedTarget {
  cpuProfile: CpuProfileSummary | undefined;
  /** Why the stop was not clean, if it was not. */
  problem: string | undefined;
}

/** The environment our server (and the baseline) get: room limits that fit every step. */
export function serverEnvFor(steps: Step[], options: BenchOptions): Record<string, string> {
  const largestRoom = Math.max(...steps.map((step) => step.usersPerRoom)) + PROBE_MEMBERS;
  const mostRooms = Math.max(...steps.map((step) => step.rooms));
  return {
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    MAX_USERS_PER_ROOM: String(Math.max(50, largestRoom)),
    MAX_ROOMS: String(Math.max(1000, mostRooms + 10)),
    ...tickEnv(options),
    ...overloadEnv(options),
    ...options.serverEnv,
  };
}

/** --tick-ms for either server: both read POSE_TICK_MS. */
/**
 * --overload keeps one server across its steps, and the bench drops each step's users without a
 * close frame: with resume on, their seats would stay held for the grace period and fill the
 * next step's rooms (ROOM_FULL for its joiners and its probe).
 */
function overloadEnv(options: BenchOptions): Record<string, string> {
  return options.mode === 'overload' ? { RECONNECT_GRACE_MS: '0' } : {};
}

function tickEnv(options: BenchOptions): Record<string, string> {
  return options.tickMs > 0 ? { POSE_TICK_MS: String(options.tickMs) } : {};
}

/**
 * --binary (--quantized): ours needs nothing (gallery.v2 or gallery.v2q is the client's choice);
 * the baseline is told.
 */
function baselineBinaryEnv(options: BenchOptions): Record<string, string> {
  if (!options.binary) {
    return {};
  }
  return options.quantized
    ? { BASELINE_BINARY: '1', BASELINE_QUANTIZED: '1' }
    : { BASELINE_BINARY: '1' };
}

export async function startTarget(
  kind: TargetKind,
  steps: Step[],
  options: BenchOptions,
  profileDirectory: string | undefined,
): Promise<Target> {
  if (kind === 'url') {
    return { kind, url: options.url as string, process: undefined, rss: undefined };
  }
  const nodeFlags =
    kind === 'ours' && profileDirectory !== undefined
      ? ['--cpu-prof', `--cpu-prof-dir=${profileDirectory}`]
      : [];
  // --server-env is for our server; the baseline has nothing to configure but where to listen
  // and its tick.
  const env =
    kind === 'ours'
      ? serverEnvFor(steps, options)
      : { PORT: '0', HOST: '127.0.0.1', ...tickEnv(options), ...baselineBinaryEnv(options) };
  const server = await ServerProcess.start({
    kind,
    env,
    nodeFlags,
    echoLabel: options.jsonOnly ? undefined : `${kind} server`,
  });
  return { kind, url: server.url, process: server, rss: new RssSampler(server.pid) };
}

export interface InstancesSpec {
  count: number;
  /** Added to serverEnvFor(), e.g. REDIS_URL and REDIS_KEY_PREFIX. */
  env: Record<string, string>;
  /** Taken out of the bench's own environment, e.g. REDIS_URL for the default mode. */
  unsetEnv: string[];
  /** Names the instances in echoed server output. */
  label: string;
}

/** Starts `count` processes of our server at once; if one fails, stops the others and throws. */
export async function startInstances(
  spec: InstancesSpec,
  steps: Step[],
  options: BenchOptions,
): Promise<Target> {
  const env = { ...serverEnvFor(steps, options), ...spec.env };
  const started = await Promise.allSettled(
    Array.from({ length: spec.count }, (_, index) =>
      ServerProcess.start({
        kind: 'ours',
        env,
        unsetEnv: spec.unsetEnv,
        echoLabel: options.jsonOnly
          ? undefined
          : spec.count > 1
            ? `${spec.label} server ${index + 1}/${spec.count}`
            : `${spec.label} server`,
      }),
    ),
  );
  const servers = started.flatMap((result) =>
    result.status === 'fulfilled' ? [result.value] : [],
  );
  const failed = started.find((result) => result.status === 'rejected');
  if (failed) {
    await Promise.all(servers.map((server) => server.stop()));
    throw failed.reason;
  }
  const instances = servers.map((server) => ({
    url: server.url,
    process: server,
    rss: new RssSampler(server.pid),
  }));
  const first = instances[0];
  return { kind: 'ours', url: first.url, process: first.process, rss: first.rss, instances };
}

export function newProfileDirectory(options: BenchOptions, kind: TargetKind): string | undefined {
  return options.cpuProf && kind === 'ours'
    ? mkdtempSync(join(tmpdir(), 'bench-cpu-prof-'))
    : undefined;
}

/**
 * Stops a started server (SIGTERM; all of a --split layout's at once) and reads its CPU profile
 * if it wrote one.
 */
export async function stopTarget(
  target: Target,
  profileDirectory: string | undefined,
  measuredWindows: MonotonicWindow[] = [],
): Promise<StoppedTarget> {
  const instances = instancesOf(target);
  if (instances.length === 0) {
    return { cpuProfile: undefined, problem: undefined };
  }
  const problems = await Promise.all(
    instances.map(async ({ process: server, rss }, index) => {
      rss.stop();
      const name = `${target.kind} server${instances.length > 1 ? ` ${index + 1}` : ''}`;
      const { graceful } = await server.stop();
      if (!graceful) {
        return `${name} needed SIGKILL to stop`;
      }
      const code = server.exitCode;
      return code !== 0 && code !== null ? `${name} exited with code ${code}` : undefined;
    }),
  );
  const problem = problems.filter((text) => text !== undefined).join('; ') || undefined;
  if (profileDirectory === undefined) {
    return { cpuProfile: undefined, problem };
  }
  const file = newestProfileIn(profileDirectory);
  if (file === undefined) {
    return { cpuProfile: undefined, problem: problem ?? 'no .cpuprofile was written' };
  }
  return { cpuProfile: topSelfTime(file, 20, measuredWindows), problem };
}
