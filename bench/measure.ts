// One step against one target: join the users, send, measure the window, close. Every wait has a
// timeout, and a step that goes wrong still returns figures saying what went wrong.
import { sleep } from './clock.js';
import { monotonicNowUs, type CpuProfileSummary, type MonotonicWindow } from './cpu-profile.js';
import { summarizeLatency, type LatencySummary } from './latency.js';
import { LoadGenerator, type JoinSummary, type WindowSummary } from './load-generator.js';
import type { BenchOptions, Step } from './options.js';
import type { ProbeSummary } from './probe.js';
import { ProbeThread } from './probe-thread.js';
import { CpuWindow, HostCpuWindow, hostCpuCount, medianRss } from './proc-stats.js';
import { roomIdOf } from './protocol.js';
import { accountOf, scrapeServers, type ServerAccount } from './server-account.js';
import { instancesOf, type ServerInstance, type Target, type TargetKind } from './server-target.js';
import type { GateParty } from './start-gate.js';
import type { ClientKind } from './worker-messages.js';

const CLIENT_TIMEOUT_MS = 15_000;
const CONNECT_CONCURRENCY_PER_WORKER = 100;
/** Offered deliveries/s one generator thread keeps up with: 250k/s kept it ~50% busy on this host. */
const DELIVERIES_PER_WORKER = 300_000;
/** How long after the window the probe waits for the events it sent in it. */
const PROBE_GRACE_MS = 3000;
const ELU_SATURATED = 0.9;
const LAG_SATURATED_MS = 50;
const SKIPPED_SATURATED_SHARE = 0.001;
const MB = 1024 * 1024;

export interface GeneratorFigures {
  workers: number;
  client: ClientKind;
  cpuPercent: number | null;
  eventLoopUtilization: number[];
  lagMaxMs: number | null;
  lagP99Ms: number | null;
  skippedSends: number;
  /**
   * --tick-ms: sender-ticks not offered because the user's sends were more than a tick apart,
   * so no fresh pose of its came for that tick (the generator ran late).
   */
  lateSendTicks: number;
  framesParsed: number;
  /** --binary: received pose entries from slots no known member had (not counted as delivered). */
  unknownSlotPoses: number;
  saturated: boolean;
  saturationReasons: string[];
}

/** One server process of a --split layout. */
export interface InstanceFigures {
  pid: number;
  url: string;
  /** Users that joined through this instance. */
  users: number;
  cpuPercent: number | null;
  rssMb: number | null;
  rssMaxMb: number | null;
}

export interface LoadFigures {
  server: TargetKind;
  ok: boolean;
  failure: string | null;
  clients: {
    wanted: number;
    joined: number;
    joinFailures: number;
    joinFailureSamples: string[];
    joinSeconds: number | null;
  };
  sentPerSec: number | null;
  offeredPerSec: number | null;
  deliveredPerSec: number | null;
  deliveryRatio: number | null;
  latencyMs: LatencySummary | null;
  errors: number;
  errorSamples: string[];
  closes: number;
  closeSamples: string[];
  serverCpuPercent: number | null;
  serverRssMb: number | null;
  serverRssMaxMb: number | null;
  serverCpuUsPerDelivery: number | null;
  generator: GeneratorFigures | null;
  /**
   * busyPercent: all cores during the window. backgroundBusyPercent: before the servers
   * started, i.e. load that is not the bench's (another process competing for the cores).
   */
  host: { cpus: number; busyPercent: number | null; backgroundBusyPercent: number | null };
  probe?: ProbeSummary | null;
  /** Ours (and a --url server that lets us read /metrics): its drops and ticks in the window. */
  serverAccount?: ServerAccount | null;
  cpuProfile?: CpuProfileSummary | null;
  /** --split: each server process; serverCpuPercent and serverRssMb are then their sums. */
  instances?: InstanceFigures[];
}

/** Something else to measure over exactly the window, e.g. Redis's CPU (--split). */
export interface WindowWatch {
  windowStarted(): void;
  windowEnded(): void;
}

export function workersFor(step: Step, options: BenchOptions): number {
  if (options.workers !== 'auto') {
    return options.workers;
  }
  const offered = step.rooms * step.usersPerRoom * options.hz * (step.usersPerRoom - 1);
  return Math.max(1, Math.min(hostCpuCount(), Math.ceil(offered / DELIVERIES_PER_WORKER), 2));
}

function emptyFigures(
  target: Target,
  step: Step,
  workers: number,
  options: BenchOptions,
): LoadFigures {
  return unmeasuredFigures(target.kind, step, {
    workers,
    client: options.client,
    cpuPercent: null,
    eventLoopUtilization: [],
    lagMaxMs: null,
    lagP99Ms: null,
    skippedSends: 0,
    lateSendTicks: 0,
    framesParsed: 0,
    unknownSlotPoses: 0,
    saturated: false,
    saturationReasons: [],
  });
}

/** A step's figures before anything was measured (or when nothing could be). */
export function unmeasuredFigures(
  kind: TargetKind,
  step: Step,
  generator: GeneratorFigures | null,
): LoadFigures {
  return {
    server: kind,
    ok: false,
    failure: null,
    clients: {
      wanted: step.rooms * step.usersPerRoom,
      joined: 0,
      joinFailures: 0,
      joinFailureSamples: [],
      joinSeconds: null,
    },
    sentPerSec: null,
    offeredPerSec: null,
    deliveredPerSec: null,
    deliveryRatio: null,
    latencyMs: null,
    errors: 0,
    errorSamples: [],
    closes: 0,
    closeSamples: [],
    serverCpuPercent: null,
    serverRssMb: null,
    serverRssMaxMb: null,
    serverCpuUsPerDelivery: null,
    generator,
    host: { cpus: hostCpuCount(), busyPercent: null, backgroundBusyPercent: null },
  };
}

function toMb(bytes: number | undefined): number | null {
  return bytes === undefined ? null : bytes / MB;
}

/** The sum, or null when any part is unknown (a process gone, or no process at all). */
function sumOf(values: (number | undefined)[]): number | undefined {
  if (values.length === 0 || values.some((value) => value === undefined)) {
    return undefined;
  }
  return (values as number[]).reduce((sum, value) => sum + value, 0);
}

export type Progress = (text: string) => void;

export interface StepOutcome {
  figures: LoadFigures;
  /** When the window ran, to cut a CPU profile to it; undefined if the step never got there. */
  window: MonotonicWindow | undefined;
}

/**
 * Runs one load step (rooms x users at hz) against a target that is already up. A target of
 * several instances (--split) gets the users of each room spread over them; its CPU and RSS
 * are the sums over its processes. With a `gate` (--side-by-side), sending starts once the other
 * server's users have joined too.
 */
export async function measureLoadStep(
  target: Target,
  step: Step,
  options: BenchOptions,
  withProbe: boolean,
  progress: Progress,
  backgroundBusyPercent: number | null,
  watch?: WindowWatch,
  gate?: GateParty,
): Promise<StepOutcome> {
  let window: MonotonicWindow | undefined;
  const workers = workersFor(step, options);
  const figures = emptyFigures(target, step, workers, options);
  figures.host.backgroundBusyPercent = backgroundBusyPercent;
  const instances = instancesOf(target);
  const urls = target.instances ? target.instances.map((instance) => instance.url) : [target.url];
  let joinedByInstance: number[] = [];
  let cpuByInstance: (number | undefined)[] = [];
  for (const instance of instances) {
    instance.rss.resetMax();
  }
  let generator: LoadGenerator | undefined;
  let probe: ProbeThread | undefined;
  try {
    generator = await LoadGenerator.start(workers);
    if (withProbe) {
      probe = await ProbeThread.start(target.url, roomIdOf(0), CLIENT_TIMEOUT_MS);
    }
    progress(`joining ${figures.clients.wanted} users (${workers} worker(s))`);
    const join = await generator.connect({
      urls,
      client: options.client,
      rooms: step.rooms,
      usersPerRoom: step.usersPerRoom,
      clientTimeoutMs: CLIENT_TIMEOUT_MS,
      phaseTimeoutMs: options.connectTimeoutS * 1000,
      sampleEvery: options.sampleEvery,
      concurrencyPerWorker: CONNECT_CONCURRENCY_PER_WORKER,
      binary: options.binary,
      quantized: options.quantized,
    });
    recordJoin(figures, join);
    joinedByInstance = join.joinedByInstance;
    if (join.joined === 0) {
      figures.failure = `no user could join: ${join.failureSamples.join('; ')}`;
      return { figures, window };
    }
    const joined = `${join.joined} joined in ${join.seconds.toFixed(1)} s`;
    if (gate) {
      progress(`${joined}; waiting for the other server's users to join`);
      await gate.wait();
    }
    progress(`${gate ? 'sending' : joined}; warmup ${options.warmupS} s`);
    if (target.kind !== 'baseline') {
      // Unmeasured, before the load: the first fetch of the process loads its HTTP client, tens
      // of ms of CPU that, in the scrape at the window's start, the server would compete with.
      await scrapeServers(urls);
    }
    generator.startSending(options.hz, options.tickMs);
    await sleep(options.warmupS * 1000);
    const metricsBefore = target.kind === 'baseline' ? undefined : await scrapeServers(urls);
    const serverCpus = instances.map((instance) => new CpuWindow(instance.process.pid));
    const hostCpu = new HostCpuWindow();
    watch?.windowStarted();
    probe?.beginMeasuring(options.durationS * 1000);
    progress(`measuring ${options.durationS} s`);
    const startUs = monotonicNowUs();
    const counts = await generator.measure(options.durationS * 1000, options.tickMs);
    window = { startUs, endUs: monotonicNowUs() };
    cpuByInstance = serverCpus.map((cpu) => cpu.percent());
    watch?.windowEnded();
    if (metricsBefore) {
      const metricsAfter = await scrapeServers(urls);
      figures.serverAccount = metricsAfter
        ? (accountOf(metricsBefore, metricsAfter) ?? null)
        : null;
    }
    figures.serverCpuPercent = sumOf(cpuByInstance) ?? null;
    figures.host.busyPercent = hostCpu.percent();
    figures.serverRssMb = toMb(sumOf(instances.map((instance) => instance.rss.last)));
    if (probe) {
      figures.probe = await probe.endMeasuring(PROBE_GRACE_MS);
    }
    generator.stopSending();
    recordWindow(figures, counts, workers);
    figures.ok = true;
  } catch (error) {
    figures.failure = error instanceof Error ? error.message : String(error);
  } finally {
    await probe?.close();
    if (generator) {
      await generator.closeAll();
      await generator.terminate();
    }
    figures.serverRssMaxMb = toMb(sumOf(instances.map((instance) => instance.rss.max)));
    if (target.instances) {
      figures.instances = instanceFigures(target.instances, joinedByInstance, cpuByInstance);
    }
    const died = exitedDuringStep(target);
    if (died) {
      figures.ok = false;
      figures.failure = died;
    }
  }
  if (withProbe && figures.probe === undefined) {
    figures.probe = null;
  }
  return { figures, window };
}

function instanceFigures(
  instances: ServerInstance[],
  joinedByInstance: number[],
  cpuByInstance: (number | undefined)[],
): InstanceFigures[] {
  return instances.map((instance, index) => ({
    pid: instance.process.pid,
    url: instance.url,
    users: joinedByInstance[index] ?? 0,
    cpuPercent: cpuByInstance[index] ?? null,
    rssMb: toMb(instance.rss.last),
    rssMaxMb: toMb(instance.rss.max),
  }));
}

function recordJoin(figures: LoadFigures, join: JoinSummary): void {
  figures.clients.joined = join.joined;
  figures.clients.joinFailures = join.failures;
  figures.clients.joinFailureSamples = join.failureSamples;
  figures.clients.joinSeconds = join.seconds;
}

function recordWindow(figures: LoadFigures, window: WindowSummary, workers: number): void {
  figures.sentPerSec = window.sentPerSecond;
  figures.offeredPerSec = window.offeredPerSecond;
  figures.deliveredPerSec = window.deliveredPerSecond;
  figures.deliveryRatio =
    window.expectedDeliveries > 0 ? window.posesReceived / window.expectedDeliveries : null;
  figures.latencyMs = summarizeLatency(window.latencies);
  figures.errors = window.errors;
  figures.errorSamples = window.errorSamples;
  figures.closes = window.closes;
  figures.closeSamples = window.closeSamples;
  if (figures.serverCpuPercent !== null && window.deliveredPerSecond > 0) {
    figures.serverCpuUsPerDelivery =
      ((figures.serverCpuPercent / 100) * 1e6) / window.deliveredPerSecond;
  }
  const elu = window.workers.map((worker) => worker.eventLoopUtilization);
  const lagMax = Math.max(...window.workers.map((worker) => worker.lagMaxMs));
  const lagP99 = Math.max(...window.workers.map((worker) => worker.lagP99Ms));
  const reasons: string[] = [];
  if (Math.max(...elu) >= ELU_SATURATED) {
    reasons.push(`event loop ${(Math.max(...elu) * 100).toFixed(0)}% busy`);
  }
  if (lagP99 >= LAG_SATURATED_MS) {
    reasons.push(`event-loop lag p99 ${lagP99.toFixed(0)} ms`);
  }
  // A stray timer hiccup can skip a send or two; a generator that cannot keep up skips many.
  // With idle event loops, falling behind means the threads were not scheduled: CPU contention.
  if (window.skippedSends > window.sent * SKIPPED_SATURATED_SHARE) {
    const cause =
      Math.max(...elu) >= ELU_SATURATED
        ? 'the workers were too busy'
        : `the workers waited for a core (lag max ${lagMax.toFixed(0)} ms)`;
    reasons.push(`${window.skippedSends} sends skipped a period late: ${cause}`);
  }
  figures.generator = {
    workers,
    client: figures.generator?.client ?? 'raw',
    cpuPercent: window.cpuPercent,
    eventLoopUtilization: elu,
    lagMaxMs: lagMax,
    lagP99Ms: lagP99,
    skippedSends: window.skippedSends,
    lateSendTicks: window.lateSendTicks,
    framesParsed: window.framesParsed,
    unknownSlotPoses: window.unknownSlotPoses,
    saturated: reasons.length > 0,
    saturationReasons: reasons,
  };
}

export interface ConnectionFigures {
  server: TargetKind;
  ok: boolean;
  failure: string | null;
  wanted: number;
  joined: number;
  joinFailures: number;
  joinFailureSamples: string[];
  joinSeconds: number | null;
  idleRssMb: number | null;
  joinedRssMb: number | null;
  rssMaxMb: number | null;
  rssPerConnectionKb: number | null;
  closes: number;
  closeSamples: string[];
}

/** Idle RSS, then N idle joined users, settle, RSS again: the memory one connection costs. */
export async function measureConnections(
  target: Target,
  options: BenchOptions,
  progress: Progress,
): Promise<ConnectionFigures> {
  const usersPerRoom = options.usersPerRoom;
  const rooms = Math.ceil(options.connections / usersPerRoom);
  const figures: ConnectionFigures = {
    server: target.kind,
    ok: false,
    failure: null,
    wanted: options.connections,
    joined: 0,
    joinFailures: 0,
    joinFailureSamples: [],
    joinSeconds: null,
    idleRssMb: null,
    joinedRssMb: null,
    rssMaxMb: null,
    rssPerConnectionKb: null,
    closes: 0,
    closeSamples: [],
  };
  const pid = target.process?.pid;
  let generator: LoadGenerator | undefined;
  try {
    if (pid !== undefined) {
      progress('reading idle RSS');
      await sleep(2000);
      figures.idleRssMb = toMb(await medianRss(pid));
    }
    generator = await LoadGenerator.start(1);
    progress(`joining ${options.connections} idle users in rooms of ${usersPerRoom}`);
    const join = await generator.connect({
      urls: [target.url],
      client: options.client,
      rooms,
      usersPerRoom,
      clientTimeoutMs: CLIENT_TIMEOUT_MS,
      phaseTimeoutMs: options.connectTimeoutS * 1000,
      sampleEvery: options.sampleEvery,
      concurrencyPerWorker: CONNECT_CONCURRENCY_PER_WORKER,
      totalUsers: options.connections,
      binary: options.binary,
      quantized: options.quantized,
    });
    figures.joined = join.joined;
    figures.joinFailures = join.failures;
    figures.joinFailureSamples = join.failureSamples;
    figures.joinSeconds = join.seconds;
    progress(
      `${join.joined} joined in ${join.seconds.toFixed(1)} s; settling ${options.settleS} s`,
    );
    await sleep(options.settleS * 1000);
    if (pid !== undefined) {
      figures.joinedRssMb = toMb(await medianRss(pid));
    }
    // A zero-length window only to learn whether the server dropped anyone while idle.
    const window = await generator.measure(0);
    figures.closes = window.closes;
    figures.closeSamples = window.closeSamples;
    if (figures.idleRssMb !== null && figures.joinedRssMb !== null && join.joined > 0) {
      figures.rssPerConnectionKb = ((figures.joinedRssMb - figures.idleRssMb) * 1024) / join.joined;
    }
    figures.ok = join.joined > 0;
    if (!figures.ok) {
      figures.failure = `no user could join: ${join.failureSamples.join('; ')}`;
    }
  } catch (error) {
    figures.failure = error instanceof Error ? error.message : String(error);
  } finally {
    if (generator) {
      await generator.closeAll();
      await generator.terminate();
    }
    figures.rssMaxMb = toMb(target.rss?.max);
    const died = exitedDuringStep(target);
    if (died) {
      figures.ok = false;
      figures.failure = died;
    }
  }
  return figures;
}

/** A server that is gone before the bench stopped it: crashed, or killed by someone else. */
function exitedDuringStep(target: Target): string | undefined {
  const instances = instancesOf(target);
  const index = instances.findIndex((instance) => !instance.process.isRunning);
  if (index < 0) {
    return undefined;
  }
  const server = instances[index].process;
  const name = `${target.kind} server${target.instances ? ` ${index + 1}` : ''}`;
  return `${name} exited during the step (${server.exitDescription}); its last output:\n${server.lastOutput}`;
}

/**
 * How busy the machine is with work that is not the bench's: all cores' busy share over half
 * a second, less what the bench process and `benchPids` (a running server, --busy-tenant's
 * process) used meanwhile.
 */
export async function backgroundHostLoad(benchPids: (number | undefined)[]): Promise<number> {
  const host = new HostCpuWindow();
  const processes = benchPids.flatMap((pid) => (pid === undefined ? [] : [new CpuWindow(pid)]));
  const bench = process.cpuUsage();
  const started = performance.now();
  await sleep(500);
  const benchUsage = process.cpuUsage(bench);
  const benchPercent =
    ((benchUsage.user + benchUsage.system) / 1000 / (performance.now() - started)) * 100;
  const ours = processes.reduce((sum, cpu) => sum + (cpu.percent() ?? 0), benchPercent);
  return Math.max(0, host.percent() - ours / hostCpuCount());
}
