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
    ...options.serverEnv,
  };
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
  // --server-env is for our server; the baseline has nothing to configure but where to listen.
  const env = kind === 'ours' ? serverEnvFor(steps, options) : { PORT: '0', HOST: '127.0.0.1' };
  const server = await ServerProcess.start({
    kind,
    env,
    nodeFlags,
    echoLabel: options.jsonOnly ? undefined : `${kind} server`,
  });
  return { kind, url: server.url, process: server, rss: new RssSampler(server.pid) };
}

export function newProfileDirectory(options: BenchOptions, kind: TargetKind): string | undefined {
  return options.cpuProf && kind === 'ours'
    ? mkdtempSync(join(tmpdir(), 'bench-cpu-prof-'))
    : undefined;
}

/** Stops a started server (SIGTERM) and reads its CPU profile if it wrote one. */
export async function stopTarget(
  target: Target,
  profileDirectory: string | undefined,
  measuredWindows: MonotonicWindow[] = [],
): Promise<StoppedTarget> {
  target.rss?.stop();
  if (!target.process) {
    return { cpuProfile: undefined, problem: undefined };
  }
  const { graceful } = await target.process.stop();
  let problem = graceful ? undefined : `${target.kind} server needed SIGKILL to stop`;
  if (graceful && target.process.exitCode !== 0 && target.process.exitCode !== null) {
    problem = `${target.kind} server exited with code ${target.process.exitCode}`;
  }
  if (profileDirectory === undefined) {
    return { cpuProfile: undefined, problem };
  }
  const file = newestProfileIn(profileDirectory);
  if (file === undefined) {
    return { cpuProfile: undefined, problem: problem ?? 'no .cpuprofile was written' };
  }
  return { cpuProfile: topSelfTime(file, 20, measuredWindows), problem };
}
