// npm run bench -- [options]: see options.ts (HELP) for the modes and the output.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from './clock.js';
import {
  backgroundHostLoad,
  measureConnections,
  measureLoadStep,
  type ConnectionFigures,
  type LoadFigures,
  type Progress,
} from './measure.js';
import type { MonotonicWindow } from './cpu-profile.js';
import {
  HELP,
  OVERLOAD_STEPS,
  parseOptions,
  UsageError,
  type BenchOptions,
  type Step,
} from './options.js';
import { hostCpuCount, openFilesLimit } from './proc-stats.js';
import {
  BACKGROUND_BUSY_PERCENT,
  connectionRatios,
  loadRatios,
  Table,
  writeJsonLine,
} from './report.js';
import { killAllServers, liveServerCount, REPOSITORY_ROOT } from './server-process.js';
import {
  newProfileDirectory,
  PROBE_MEMBERS,
  startTarget,
  stopTarget,
  type Target,
  type TargetKind,
} from './server-target.js';

/** File descriptors the bench needs besides its sockets: workers, pipes, /proc reads. */
const SPARE_DESCRIPTORS = 64;
const OVERLOAD_PHASES = ['overload', 'overload', 'recovery'];

function stepLabel(step: Step): string {
  return `${step.rooms}x${step.usersPerRoom}`;
}

function targetKinds(options: BenchOptions): TargetKind[] {
  const primary: TargetKind = options.url === undefined ? 'ours' : 'url';
  return options.baseline ? [primary, 'baseline'] : [primary];
}

function failedStart(kind: TargetKind, step: Step, error: unknown): LoadFigures {
  const message = error instanceof Error ? error.message : String(error);
  return {
    server: kind,
    ok: false,
    failure: `server failed to start: ${message}`,
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
    generator: null,
    host: { cpus: hostCpuCount(), busyPercent: null, backgroundBusyPercent: null },
  };
}

class Bench {
  private readonly table: Table;
  private readonly problems: string[] = [];

  constructor(private readonly options: BenchOptions) {
    this.table = new Table(options.jsonOnly);
  }

  async run(): Promise<boolean> {
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

  private progress(label: string, kind: TargetKind): Progress {
    return (text) => this.table.line(`[${label} ${kind}] ${text}`);
  }

  /** Each step on fresh servers: ours (or --url), then the baseline. */
  private async runFreshSteps(): Promise<void> {
    const options = this.options;
    this.describeRun();
    for (const step of options.steps) {
      const label = stepLabel(step);
      const results = new Map<TargetKind, LoadFigures>();
      for (const kind of targetKinds(options)) {
        const progress = this.progress(label, kind);
        const profileDirectory = newProfileDirectory(options, kind);
        let figures: LoadFigures;
        let window: MonotonicWindow | undefined;
        let target: Target | undefined;
        try {
          const background = await this.backgroundLoad(progress, undefined);
          progress(kind === 'url' ? `targeting ${options.url}` : 'starting server');
          target = await startTarget(kind, [step], options, profileDirectory);
          ({ figures, window } = await measureLoadStep(
            target,
            step,
            options,
            false,
            progress,
            background,
          ));
        } catch (error) {
          figures = failedStart(kind, step, error);
        }
        if (target) {
          await this.stop(target, profileDirectory, figures, window ? [window] : [], progress);
        }
        this.table.loadHeader();
        this.table.loadRow(label, figures);
        this.check(label, figures);
        results.set(kind, figures);
      }
      this.reportLoadStep(step, label, results, {});
    }
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
      ...Object.fromEntries(results),
      ratio,
    });
  }

  /** Warns when something besides the bench keeps the cores busy: figures would suffer. */
  private async backgroundLoad(progress: Progress, serverPid: number | undefined): Promise<number> {
    const busy = await backgroundHostLoad(serverPid);
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
      warmupS: this.options.warmupS,
      durationS: this.options.durationS,
      ...Object.fromEntries(results),
      ratio,
    });
  }

  /** What --smoke fails on: no start, nothing delivered, errors, failed joins, dropped users. */
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
  }

  private describeRun(): void {
    const options = this.options;
    this.table.line(
      `bench: ${options.mode}, ${options.steps.map(stepLabel).join(', ')} at ${options.hz} Hz, ` +
        `warmup ${options.warmupS} s, window ${options.durationS} s, ` +
        `servers: ${targetKinds(options).join(' then ')}`,
    );
  }
}

/** Fails early, with the fix, when the step needs more sockets than `ulimit -n` allows. */
function checkOpenFiles(options: BenchOptions): void {
  const clients =
    options.mode === 'connections'
      ? options.connections
      : Math.max(...options.steps.map((step) => step.rooms * step.usersPerRoom)) + PROBE_MEMBERS;
  const needed = clients + SPARE_DESCRIPTORS;
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
  if (options.url === undefined && !existsSync(join(REPOSITORY_ROOT, 'dist', 'main.js'))) {
    throw new UsageError("dist/main.js is missing: run 'npm run build' (npm run bench does).");
  }
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
          process.exit(130);
        }
        setTimeout(waitForServers, 50);
      };
      waitForServers();
    });
  }
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
    process.stderr.write(`bench: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
