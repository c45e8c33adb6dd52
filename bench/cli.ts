// npm run bench -- [options]: see options.ts (HELP) for the modes and the output.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startBusyTenant } from './busy-tenant.js';
import { sleep, withTimeout } from './clock.js';
import {
  backgroundHostLoad,
  measureConnections,
  measureLoadStep,
  unmeasuredFigures,
  type ConnectionFigures,
  type LoadFigures,
  type Progress,
} from './measure.js';
import type { MonotonicWindow } from './cpu-profile.js';
import {
  HELP,
  OVERLOAD_STEPS,
  parseOptions,
  SPLIT_STEP,
  SPLIT_TARGET_RATIO,
  UsageError,
  type BenchOptions,
  type Step,
} from './options.js';
import { openFilesLimit } from './proc-stats.js';
import {
  locateRedisProcess,
  redactedRedisUrl,
  RedisAdmin,
  RedisUnavailableError,
  RedisWatch,
  type RedisFigures,
  type RedisProcess,
} from './redis-admin.js';
import { roundOrder, summarizeRounds } from './repeat.js';
import {
  BACKGROUND_BUSY_PERCENT,
  connectionRatios,
  loadRatios,
  Table,
  writeJsonLine,
  type Ratios,
} from './report.js';
import { killAllServers, liveServerCount, REPOSITORY_ROOT } from './server-process.js';
import {
  newProfileDirectory,
  PROBE_MEMBERS,
  startInstances,
  startTarget,
  stopTarget,
  type Target,
  type TargetKind,
} from './server-target.js';
import { StartGate, type GateParty } from './start-gate.js';

/** File descriptors the bench needs besides its sockets: workers, pipes, /proc reads. */
const SPARE_DESCRIPTORS = 64;
const OVERLOAD_PHASES = ['overload', 'overload', 'recovery'];
/** The environment that makes our server a cluster instance; the local layout goes without. */
const CLUSTER_ENV = ['REDIS_URL', 'REDIS_KEY_PREFIX'];
/** Longest wait for the cleanups (Redis keys) after Ctrl-C, once the servers are gone. */
const INTERRUPT_CLEANUP_MS = 3000;

/** Work to finish after Ctrl-C once the servers have stopped, e.g. deleting --split's keys. */
const interruptCleanups = new Set<() => Promise<void>>();

/** --split's three layouts of the same rooms, each on fresh server processes. */
type LayoutName = 'single' | 'split' | 'local';

interface Layout {
  name: LayoutName;
  instances: number;
  /** Cluster mode: REDIS_URL and a fresh REDIS_KEY_PREFIX. */
  cluster: boolean;
}

interface LayoutResult {
  layout: Layout;
  keyPrefix: string | null;
  figures: LoadFigures;
  redis: RedisFigures;
  /** Keys of keyPrefix deleted after the layout; null if none were to be or the cleanup failed. */
  keysDeleted: number | null;
}

function splitLayouts(instances: number): Layout[] {
  return [
    { name: 'single', instances: 1, cluster: true },
    { name: 'split', instances, cluster: true },
    { name: 'local', instances: 1, cluster: false },
  ];
}

function layoutTitle(layout: Layout): string {
  return layout.name === 'split' ? `split x${layout.instances}` : layout.name;
}

/** A run that cannot go on, reported as its message alone (no stack). */
class BenchFailure extends Error {}

function stepLabel(step: Step): string {
  return `${step.rooms}x${step.usersPerRoom}`;
}

function targetKinds(options: BenchOptions): TargetKind[] {
  if (options.baselineOnly) {
    return ['baseline'];
  }
  const primary: TargetKind = options.url === undefined ? 'ours' : 'url';
  return options.baseline ? [primary, 'baseline'] : [primary];
}

function failedStart(kind: TargetKind, step: Step, error: unknown): LoadFigures {
  const message = error instanceof Error ? error.message : String(error);
  return { ...unmeasuredFigures(kind, step, null), failure: `server failed to start: ${message}` };
}

class Bench {
  private readonly table: Table;
  private readonly problems: string[] = [];
  /** --busy-tenant's process: its CPU is ours to add, not another process's. */
  private tenantPid: number | undefined;

  constructor(private readonly options: BenchOptions) {
    // --split names its rows by layout and ratio: split/single needs a wider server column.
    this.table = new Table(options.jsonOnly, options.mode === 'split' ? 12 : 10);
  }

  async run(): Promise<boolean> {
    const tenant =
      this.options.busyTenantPercent > 0
        ? startBusyTenant(this.options.busyTenantPercent)
        : undefined;
    this.tenantPid = tenant?.pid;
    try {
      return await this.runMode();
    } finally {
      tenant?.stop();
    }
  }

  private async runMode(): Promise<boolean> {
    switch (this.options.mode) {
      case 'load':
      case 'ladder':
      case 'smoke':
        await this.runFreshSteps();
        break;
      case 'overload':
        await this.runOverload();
        break;
      case 'connections':
        await this.runConnections();
        break;
      case 'split':
        return this.runSplit();
    }
    if (this.options.steps.length > 1 && this.options.mode !== 'connections') {
      this.table.printSummary();
    }
    if (this.options.mode === 'smoke') {
      this.table.line(
        this.problems.length === 0
          ? 'smoke: passed'
          : `smoke: FAILED\n  - ${this.problems.join('\n  - ')}`,
      );
      return this.problems.length === 0;
    }
    return true;
  }

  /** who: the server kind, or a --split layout. */
  private progress(label: string, who: string): Progress {
    return (text) => this.table.line(`[${label} ${who}] ${text}`);
  }

  /**
   * Each step on fresh servers: ours (or --url), then the baseline; with --repeat, in rounds
   * whose order alternates, then the medians.
   */
  private async runFreshSteps(): Promise<void> {
    const options = this.options;
    this.describeRun();
    const kinds = targetKinds(options);
    for (const step of options.steps) {
      const label = stepLabel(step);
      const rounds: Map<TargetKind, LoadFigures>[] = [];
      for (let round = 1; round <= options.repeat; round++) {
        const ran = options.sideBySide
          ? await this.runSideBySide(step, label, kinds)
          : await this.runOneAfterTheOther(step, label, roundOrder(kinds, round));
        // Reported in the usual order whichever ran first.
        const results = new Map(kinds.map((kind) => [kind, ran.get(kind)!]));
        const extra = {
          ...(options.repeat > 1 ? { round, rounds: options.repeat } : {}),
          ...(options.sideBySide ? { sideBySide: true } : {}),
        };
        this.reportLoadStep(step, label, results, extra);
        rounds.push(results);
      }
      if (options.repeat > 1) {
        this.reportRepeat(step, label, rounds);
      }
    }
  }

  private async runOneAfterTheOther(
    step: Step,
    label: string,
    kinds: TargetKind[],
  ): Promise<Map<TargetKind, LoadFigures>> {
    const ran = new Map<TargetKind, LoadFigures>();
    for (const kind of kinds) {
      ran.set(kind, await this.runFreshStep(step, label, kind));
    }
    return ran;
  }

  /**
   * --side-by-side: every kind at once, on fresh servers, each loaded by its own generator; they
   * start sending together once all have joined their users.
   */
  private async runSideBySide(
    step: Step,
    label: string,
    kinds: TargetKind[],
  ): Promise<Map<TargetKind, LoadFigures>> {
    const background = await this.backgroundLoad(this.progress(label, 'side by side'), undefined);
    const gate = new StartGate(kinds.length);
    const figures = await Promise.all(
      kinds.map((kind) => this.runFreshStep(step, label, kind, { background, gate: gate.party() })),
    );
    return new Map(kinds.map((kind, index) => [kind, figures[index]]));
  }

  /**
   * One step on a fresh server of one kind; `together` when it runs side by side with another,
   * whose background load was measured before both started.
   */
  private async runFreshStep(
    step: Step,
    label: string,
    kind: TargetKind,
    together?: { background: number; gate: GateParty },
  ): Promise<LoadFigures> {
    const options = this.options;
    const progress = this.progress(label, kind);
    const profileDirectory = newProfileDirectory(options, kind);
    let figures: LoadFigures;
    let window: MonotonicWindow | undefined;
    let target: Target | undefined;
    try {
      const background = together?.background ?? (await this.backgroundLoad(progress, undefined));
      progress(kind === 'url' ? `targeting ${options.url}` : 'starting server');
      target = await startTarget(kind, [step], options, profileDirectory);
      ({ figures, window } = await measureLoadStep(
        target,
        step,
        options,
        false,
        progress,
        background,
        undefined,
        together?.gate,
      ));
    } catch (error) {
      figures = failedStart(kind, step, error);
    } finally {
      together?.gate.leave();
    }
    if (target) {
      await this.stop(target, profileDirectory, figures, window ? [window] : [], progress);
    }
    this.table.loadHeader();
    this.table.loadRow(label, figures);
    this.check(label, figures);
    return figures;
  }

  /** --repeat: each server's medians over the step's rounds, their ratios and the rounds' spread. */
  private reportRepeat(step: Step, label: string, rounds: Map<TargetKind, LoadFigures>[]): void {
    const options = this.options;
    const kinds = targetKinds(options);
    const summary = summarizeRounds(rounds, kinds, options.url === undefined ? 'ours' : 'url');
    this.table.line(`${label}: medians of ${rounds.length} rounds`);
    this.table.loadHeader();
    for (const kind of kinds) {
      this.table.medianRow(
        label,
        `${kind === 'baseline' ? 'base' : kind} med`,
        summary.medians[kind],
      );
    }
    if (summary.ratio) {
      this.table.ratioRow(label, summary.ratio, 'med o/b');
    }
    if (summary.roundRatios) {
      this.table.ratioRow(label, summary.roundRatios.min, 'lowest');
      this.table.ratioRow(label, summary.roundRatios.max, 'highest');
    }
    this.table.line();
    writeJsonLine({
      type: 'repeat',
      mode: options.mode,
      step: label,
      time: new Date().toISOString(),
      rounds: rounds.length,
      rooms: step.rooms,
      usersPerRoom: step.usersPerRoom,
      hz: options.hz,
      tickMs: options.tickMs,
      busyTenantPercent: options.busyTenantPercent,
      binary: options.binary,
      quantized: options.quantized,
      sideBySide: options.sideBySide,
      warmupS: options.warmupS,
      durationS: options.durationS,
      ...summary,
    });
  }

  /** One server process per kind for all three steps: overload, more overload, recovery. */
  private async runOverload(): Promise<void> {
    const options = this.options;
    this.describeRun();
    const resultsByStep = options.steps.map(() => new Map<TargetKind, LoadFigures>());
    for (const kind of targetKinds(options)) {
      const progress = this.progress('overload', kind);
      const profileDirectory = newProfileDirectory(options, kind);
      let target: Target | undefined;
      try {
        progress('starting server (kept for all steps)');
        target = await startTarget(kind, options.steps, options, profileDirectory);
      } catch (error) {
        options.steps.forEach((step, index) =>
          resultsByStep[index].set(kind, failedStart(kind, step, error)),
        );
        continue;
      }
      const windows: MonotonicWindow[] = [];
      for (const [index, step] of options.steps.entries()) {
        const label = stepLabel(step);
        if (target.process && !target.process.isRunning) {
          const gone = new Error(`it exited earlier (${target.process.exitDescription})`);
          resultsByStep[index].set(kind, failedStart(kind, step, gone));
          continue;
        }
        const stepProgress = this.progress(label, kind);
        const background = await this.backgroundLoad(stepProgress, target.process?.pid);
        const { figures, window } = await measureLoadStep(
          target,
          step,
          options,
          kind !== 'baseline',
          stepProgress,
          background,
        );
        if (window) {
          windows.push(window);
        }
        this.table.loadHeader();
        this.table.loadRow(label, figures);
        resultsByStep[index].set(kind, figures);
        // Let the server take the closed sockets down before the next step joins.
        await sleep(1000);
      }
      const lastStep = resultsByStep[resultsByStep.length - 1].get(kind);
      if (lastStep) {
        await this.stop(target, profileDirectory, lastStep, windows, progress);
        if (lastStep.cpuProfile) {
          this.table.line('  (the CPU profile covers the windows of all three overload steps)');
          this.table.cpuProfile(lastStep.cpuProfile);
        }
      }
    }
    // The default sequence has named phases; a --steps sequence is just numbered.
    const phases = options.steps === OVERLOAD_STEPS ? OVERLOAD_PHASES : [];
    options.steps.forEach((step, index) =>
      this.reportLoadStep(step, stepLabel(step), resultsByStep[index], {
        stepIndex: index,
        phase: phases[index] ?? null,
        serverKeptAcrossSteps: true,
      }),
    );
  }

  private async runConnections(): Promise<void> {
    const options = this.options;
    this.table.line(
      `bench: connections, ${options.connections} idle joined users in rooms of ` +
        `${options.usersPerRoom}, settle ${options.settleS} s, servers: ${targetKinds(options).join(' then ')}`,
    );
    const results = new Map<TargetKind, ConnectionFigures>();
    for (const kind of targetKinds(options)) {
      const progress = this.progress(`${options.connections} conns`, kind);
      let target: Target | undefined;
      let figures: ConnectionFigures;
      try {
        progress('starting server');
        const step = {
          rooms: Math.ceil(options.connections / options.usersPerRoom),
          usersPerRoom: options.usersPerRoom,
        };
        target = await startTarget(kind, [step], options, undefined);
        figures = await measureConnections(target, options, progress);
      } catch (error) {
        figures = {
          server: kind,
          ok: false,
          failure: `server failed to start: ${error instanceof Error ? error.message : String(error)}`,
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
      }
      if (target) {
        const stopped = await stopTarget(target, undefined);
        if (stopped.problem) {
          progress(stopped.problem);
        }
      }
      this.table.connectionsHeader();
      this.table.connectionsRow(figures);
      results.set(kind, figures);
    }
    const primary = results.get(options.url === undefined ? 'ours' : 'url');
    const baseline = results.get('baseline');
    const ratio = primary && baseline ? connectionRatios(primary, baseline) : null;
    if (ratio) {
      this.table.connectionsRatioRow(ratio);
    }
    writeJsonLine({
      type: 'connections',
      time: new Date().toISOString(),
      connections: options.connections,
      usersPerRoom: options.usersPerRoom,
      settleS: options.settleS,
      binary: options.binary,
      quantized: options.quantized,
      ...Object.fromEntries(results),
      ratio,
    });
  }

  /**
   * --split: the step on one cluster instance, on N cluster instances sharing one Redis (every
   * room on every instance), and on one instance without Redis; then the ratios. False if a
   * layout failed to run (missing the target is a result, not a failure).
   */
  private async runSplit(): Promise<boolean> {
    const options = this.options;
    const step = options.steps[0];
    const label = stepLabel(step);
    let admin: RedisAdmin;
    try {
      admin = await RedisAdmin.connect(options.redisUrl);
    } catch (error) {
      if (error instanceof RedisUnavailableError) {
        throw new BenchFailure(error.message);
      }
      throw error;
    }
    try {
      const info = await admin.serverInfo();
      const redisProcess = await locateRedisProcess(options.redisUrl, info);
      const layouts = splitLayouts(options.splitInstances);
      this.table.line(
        `bench: split, ${label} at ${options.hz} Hz, warmup ${options.warmupS} s, ` +
          `window ${options.durationS} s, layouts: ` +
          layouts
            .map(
              (layout) =>
                `${layout.name} (${layout.instances} instance${layout.instances > 1 ? 's' : ''}` +
                `${layout.cluster ? ', REDIS_URL' : ', no Redis'})`,
            )
            .join(' then '),
      );
      this.table.line(
        `  Redis ${redactedRedisUrl(options.redisUrl)} (${info.version ?? 'version unknown'}): ` +
          (redisProcess.pid === null
            ? `its CPU is ${redisProcess.note}`
            : `pid ${redisProcess.pid} on this host, its CPU is read from /proc`) +
          `; users: user u of each room on instance u % ${options.splitInstances}`,
      );
      const run = `${process.pid}-${randomBytes(3).toString('hex')}`;
      const results: LayoutResult[] = [];
      for (const layout of layouts) {
        results.push(await this.runLayout(layout, step, admin, redisProcess, run));
      }
      this.reportSplit(step, label, results);
      return results.every((result) => result.figures.ok);
    } finally {
      await admin.close();
    }
  }

  /** One --split layout: fresh servers, the step, stop, then delete the layout's Redis keys. */
  private async runLayout(
    layout: Layout,
    step: Step,
    admin: RedisAdmin,
    redisProcess: RedisProcess,
    run: string,
  ): Promise<LayoutResult> {
    const options = this.options;
    const label = stepLabel(step);
    const title = layoutTitle(layout);
    const progress = this.progress(label, title);
    const keyPrefix = layout.cluster ? `bench-split-${run}-${layout.name}:` : null;
    const cleanup = async (): Promise<number | null> => {
      if (keyPrefix === null) {
        return null;
      }
      try {
        return await admin.deleteKeys(keyPrefix);
      } catch (error) {
        progress(
          `WARNING: could not delete the keys of ${keyPrefix} ` +
            `(${error instanceof Error ? error.message : String(error)}); delete them with ` +
            `redis-cli -u URL --scan --pattern '${keyPrefix}*' | xargs redis-cli -u URL del`,
        );
        return null;
      }
    };
    const onInterrupt = async (): Promise<void> => {
      await cleanup();
    };
    interruptCleanups.add(onInterrupt);
    const watch = new RedisWatch(redisProcess);
    let figures: LoadFigures;
    let target: Target | undefined;
    try {
      const background = await this.backgroundLoad(progress, undefined);
      progress(
        `starting ${layout.instances} server${layout.instances > 1 ? 's' : ''}` +
          (keyPrefix === null ? ' without REDIS_URL' : ` with REDIS_KEY_PREFIX=${keyPrefix}`),
      );
      target = await startInstances(
        {
          count: layout.instances,
          env:
            keyPrefix === null ? {} : { REDIS_URL: options.redisUrl, REDIS_KEY_PREFIX: keyPrefix },
          unsetEnv: keyPrefix === null ? CLUSTER_ENV : [],
          label: title,
        },
        [step],
        options,
      );
      ({ figures } = await measureLoadStep(
        target,
        step,
        options,
        false,
        progress,
        background,
        watch,
      ));
    } catch (error) {
      figures = failedStart('ours', step, error);
    }
    if (target) {
      await this.stop(target, undefined, figures, [], progress);
    }
    // After the servers stopped: a live instance would write its presence keys again.
    const keysDeleted = await cleanup();
    interruptCleanups.delete(onInterrupt);
    if (keysDeleted !== null) {
      progress(`deleted ${keysDeleted} Redis keys of ${keyPrefix}`);
    }
    const redis = watch.figures();
    this.table.loadHeader();
    this.table.loadRow(label, figures, title);
    this.table.splitDetails(figures, redis, layout.cluster);
    return { layout, keyPrefix, figures, redis, keysDeleted };
  }

  /** The three layouts again, their ratios and the issue's target; one JSON line per layout. */
  private reportSplit(step: Step, label: string, results: LayoutResult[]): void {
    const options = this.options;
    const byName = (name: LayoutName): LoadFigures | undefined =>
      results.find((result) => result.layout.name === name)?.figures;
    const single = byName('single');
    const split = byName('split');
    const local = byName('local');
    const ratiosOf = (
      ours: LoadFigures | undefined,
      base: LoadFigures | undefined,
    ): Ratios | null => (ours?.ok && base?.ok ? loadRatios(ours, base) : null);
    const ratio = {
      splitPerSingle: ratiosOf(split, single),
      splitPerLocal: ratiosOf(split, local),
      singlePerLocal: ratiosOf(single, local),
    };
    const achieved = ratio.splitPerSingle?.deliveredPerSec ?? null;
    const issueStep =
      step.rooms === SPLIT_STEP.rooms && step.usersPerRoom === SPLIT_STEP.usersPerRoom;
    const target = {
      what: 'deliveredPerSec split/single',
      atLeast: SPLIT_TARGET_RATIO,
      step: `${SPLIT_STEP.rooms}x${SPLIT_STEP.usersPerRoom}`,
      ratio: achieved,
      met: achieved === null ? null : achieved >= SPLIT_TARGET_RATIO,
    };
    this.table.line();
    this.table.line('summary:');
    this.table.loadHeader();
    for (const result of results) {
      this.table.loadRow(label, result.figures, layoutTitle(result.layout), false);
    }
    for (const [name, ratios] of [
      ['split/single', ratio.splitPerSingle],
      ['split/local', ratio.splitPerLocal],
      ['single/local', ratio.singlePerLocal],
    ] as const) {
      this.table.ratioRow(label, ratios ?? emptyRatios(), name);
    }
    this.table.line(
      `target (issue, at ${target.step}): split delivers >= ${SPLIT_TARGET_RATIO}x single's ` +
        `deliv/s: ${achieved === null ? 'n/a (a layout failed)' : `x${achieved.toFixed(2)}, ${target.met ? 'met' : 'NOT met'}`}` +
        (issueStep ? '' : ` (this run's step is ${label}, not the issue's)`),
    );
    this.table.line();
    for (const result of results) {
      writeJsonLine({
        type: 'split',
        layout: result.layout.name,
        step: label,
        time: new Date().toISOString(),
        rooms: step.rooms,
        usersPerRoom: step.usersPerRoom,
        hz: options.hz,
        binary: options.binary,
        quantized: options.quantized,
        warmupS: options.warmupS,
        durationS: options.durationS,
        instances: result.layout.instances,
        cluster: result.layout.cluster,
        redisUrl: result.layout.cluster ? redactedRedisUrl(options.redisUrl) : null,
        keyPrefix: result.keyPrefix,
        keysDeleted: result.keysDeleted,
        ours: result.figures,
        redis: result.redis,
        ratio,
        target,
      });
    }
  }

  /** Warns when something besides the bench keeps the cores busy: figures would suffer. */
  private async backgroundLoad(progress: Progress, serverPid: number | undefined): Promise<number> {
    const busy = await backgroundHostLoad([serverPid, this.tenantPid]);
    if (busy >= BACKGROUND_BUSY_PERCENT) {
      progress(
        `WARNING: other processes keep the host ${busy.toFixed(0)}% busy before the step: ` +
          'they compete for the cores, the figures will be lower and noisier',
      );
    }
    return busy;
  }

  private async stop(
    target: Target,
    profileDirectory: string | undefined,
    figures: LoadFigures,
    windows: MonotonicWindow[],
    progress: Progress,
  ): Promise<void> {
    const stopped = await stopTarget(target, profileDirectory, windows);
    if (stopped.problem) {
      progress(stopped.problem);
    }
    if (profileDirectory !== undefined) {
      figures.cpuProfile = stopped.cpuProfile ?? null;
    }
  }

  private reportLoadStep(
    step: Step,
    label: string,
    results: Map<TargetKind, LoadFigures>,
    extra: Record<string, unknown>,
  ): void {
    const primary = results.get(this.options.url === undefined ? 'ours' : 'url');
    const baseline = results.get('baseline');
    const ratio = primary && baseline ? loadRatios(primary, baseline) : null;
    if (ratio) {
      this.table.ratioRow(label, ratio);
    }
    this.table.line();
    writeJsonLine({
      type: 'step',
      mode: this.options.mode,
      step: label,
      ...extra,
      time: new Date().toISOString(),
      rooms: step.rooms,
      usersPerRoom: step.usersPerRoom,
      hz: this.options.hz,
      tickMs: this.options.tickMs,
      busyTenantPercent: this.options.busyTenantPercent,
      binary: this.options.binary,
      quantized: this.options.quantized,
      warmupS: this.options.warmupS,
      durationS: this.options.durationS,
      ...Object.fromEntries(results),
      ratio,
    });
  }

  /**
   * What --smoke fails on: no start, nothing delivered, errors, failed joins, dropped users, and
   * ours without its /metrics account.
   */
  private check(label: string, figures: LoadFigures): void {
    const where = `${label} ${figures.server}`;
    if (!figures.ok) {
      const firstLines = (figures.failure ?? 'failed').split('\n').slice(0, 3).join(' / ');
      this.problems.push(`${where}: ${firstLines}`);
    } else if (!figures.deliveredPerSec) {
      this.problems.push(`${where}: delivered nothing`);
    }
    if (figures.errors > 0) {
      this.problems.push(`${where}: ${figures.errors} error events (${figures.errorSamples[0]})`);
    }
    if (figures.clients.joinFailures > 0) {
      this.problems.push(`${where}: ${figures.clients.joinFailures} users could not join`);
    }
    if (figures.closes > 0) {
      this.problems.push(`${where}: ${figures.closes} connections dropped by the server`);
    }
    // Ours always serves its /metrics to the bench (AUTH_MODE=none): none means a metric moved.
    if (figures.server === 'ours' && figures.ok && !figures.serverAccount) {
      this.problems.push(
        `${where}: no drop or tick figures from its /metrics ` +
          '(AUTH_MODE or METRICS_PORT in --server-env?)',
      );
    }
    if (this.options.tickMs > 0 && figures.serverAccount && !figures.serverAccount.ticks) {
      this.problems.push(`${where}: no pose ticks in its /metrics with --tick-ms`);
    }
  }

  private describeRun(): void {
    const options = this.options;
    this.table.line(
      `bench: ${options.mode}, ${options.steps.map(stepLabel).join(', ')} at ${options.hz} Hz, ` +
        `warmup ${options.warmupS} s, window ${options.durationS} s, ` +
        (options.tickMs > 0 ? `tick ${options.tickMs} ms, ` : '') +
        (options.busyTenantPercent > 0
          ? `a busy tenant at ${options.busyTenantPercent}% of a core, `
          : '') +
        (options.binary
          ? options.quantized
            ? 'quantized binary poses (gallery.v2q), '
            : 'binary poses (gallery.v2), '
          : '') +
        `servers: ${targetKinds(options).join(options.sideBySide ? ' and ' : ' then ')}` +
        (options.sideBySide ? ', side by side, each with its own generator' : ''),
    );
  }
}

/** Fails early, with the fix, when the step needs more sockets than `ulimit -n` allows. */
function checkOpenFiles(options: BenchOptions): void {
  const clients =
    options.mode === 'connections'
      ? options.connections
      : Math.max(...options.steps.map((step) => step.rooms * step.usersPerRoom)) + PROBE_MEMBERS;
  // Side by side, each server's users are open in the bench at the same time.
  const needed = clients * (options.sideBySide ? 2 : 1) + SPARE_DESCRIPTORS;
  const { soft, hard } = openFilesLimit();
  if (needed > soft) {
    const fix =
      needed <= hard
        ? `Raise it first, e.g. 'ulimit -n ${Math.min(hard, Math.max(needed * 2, 65536))}'.`
        : `Even the hard limit is ${hard}: raise it as root (limits.conf, systemd LimitNOFILE, ` +
          `or docker run --ulimit nofile=${needed * 2}), or run fewer users.`;
    throw new UsageError(
      `this run needs about ${needed} open files (one per simulated user, in the bench and in ` +
        `the server), but 'ulimit -n' is ${soft}. ${fix}`,
    );
  }
}

function checkBuilt(options: BenchOptions): void {
  if (
    options.url === undefined &&
    !options.baselineOnly &&
    !existsSync(join(REPOSITORY_ROOT, 'dist', 'main.js'))
  ) {
    throw new UsageError("dist/main.js is missing: run 'npm run build' (npm run bench does).");
  }
}

function emptyRatios(): Ratios {
  return { deliveredPerSec: null, p99: null, serverCpuPercent: null, serverRssMaxMb: null };
}

function installCleanup(): void {
  // Whatever happens, no server outlives the bench.
  process.on('exit', () => killAllServers('SIGKILL'));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping the servers\n`);
      killAllServers('SIGTERM');
      const deadline = Date.now() + 3000;
      const waitForServers = (): void => {
        if (liveServerCount() === 0 || Date.now() > deadline) {
          void runInterruptCleanups().finally(() => process.exit(130));
          return;
        }
        setTimeout(waitForServers, 50);
      };
      waitForServers();
    });
  }
}

/** Once the servers are gone: what the run must not leave behind (--split's Redis keys). */
async function runInterruptCleanups(): Promise<void> {
  if (interruptCleanups.size === 0) {
    return;
  }
  process.stderr.write('bench: deleting the Redis keys of the interrupted run\n');
  const all = Promise.allSettled([...interruptCleanups].map((cleanup) => cleanup()));
  await withTimeout(all, INTERRUPT_CLEANUP_MS, 'deleting the Redis keys').catch(() => undefined);
}

async function main(): Promise<number> {
  let options: BenchOptions | undefined;
  try {
    options = parseOptions(process.argv.slice(2));
    if (options === undefined) {
      process.stdout.write(HELP);
      return 0;
    }
    checkBuilt(options);
    checkOpenFiles(options);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`bench: ${error.message}\n(see npm run bench -- --help)\n`);
      return 2;
    }
    throw error;
  }
  installCleanup();
  const passed = await new Bench(options).run();
  return passed ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    const text =
      error instanceof BenchFailure
        ? error.message
        : error instanceof Error
          ? error.stack
          : String(error);
    process.stderr.write(`bench: ${text}\n`);
    process.exit(1);
  },
);
