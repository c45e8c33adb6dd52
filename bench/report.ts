// The two outputs: one JSON line per step on stdout, and table rows on stderr for people.
import type { CpuProfileSummary } from './cpu-profile.js';
import type { ConnectionFigures, LoadFigures } from './measure.js';
import type { ProbeSummary } from './probe.js';
import type { MedianFigures } from './repeat.js';
import type { RedisFigures } from './redis-admin.js';
import type { ServerAccount } from './server-account.js';

/** Host CPU busy before a server started above which a step's figures are marked disturbed. */
export const BACKGROUND_BUSY_PERCENT = 20;

export interface Ratios {
  deliveredPerSec: number | null;
  p99: number | null;
  serverCpuPercent: number | null;
  serverRssMaxMb: number | null;
}

export interface ConnectionRatios {
  rssPerConnection: number | null;
  idleRss: number | null;
}

/** ours / baseline, or null when either is unknown (or the baseline is 0). */
export function ratio(
  ours: number | null | undefined,
  baseline: number | null | undefined,
): number | null {
  return ours === null || ours === undefined || !baseline ? null : ours / baseline;
}

/** The figures a load step's ratios compare, from one run or from the medians of rounds. */
export interface RatioInputs {
  deliveredPerSec: number | null;
  p99: number | null | undefined;
  serverCpuPercent: number | null;
  serverRssMaxMb: number | null;
}

export function ratiosOf(ours: RatioInputs, baseline: RatioInputs): Ratios {
  return {
    deliveredPerSec: ratio(ours.deliveredPerSec, baseline.deliveredPerSec),
    p99: ratio(ours.p99, baseline.p99),
    serverCpuPercent: ratio(ours.serverCpuPercent, baseline.serverCpuPercent),
    serverRssMaxMb: ratio(ours.serverRssMaxMb, baseline.serverRssMaxMb),
  };
}

export function loadRatios(ours: LoadFigures, baseline: LoadFigures): Ratios {
  return ratiosOf(
    { ...ours, p99: ours.latencyMs?.p99 },
    { ...baseline, p99: baseline.latencyMs?.p99 },
  );
}

export function connectionRatios(
  ours: ConnectionFigures,
  baseline: ConnectionFigures,
): ConnectionRatios {
  return {
    rssPerConnection: ratio(ours.rssPerConnectionKb, baseline.rssPerConnectionKb),
    idleRss: ratio(ours.idleRssMb, baseline.idleRssMb),
  };
}

/** Three decimals are plenty for every figure, and keep the JSON line readable. */
function rounded(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isInteger(value)
    ? Math.round(value * 1000) / 1000
    : value;
}

export function writeJsonLine(record: object): void {
  process.stdout.write(`${JSON.stringify(record, rounded)}\n`);
}

export class Table {
  /** The main rows again, without progress lines in between, for a run of several steps. */
  private readonly summary: string[] = [];

  /** serverWidth: the server column, wider for --split's names (split/single). */
  constructor(
    private readonly quiet: boolean,
    private readonly serverWidth = 10,
  ) {}

  line(text = ''): void {
    if (!this.quiet) {
      process.stderr.write(`${text}\n`);
    }
  }

  printSummary(): void {
    if (this.summary.length > 0) {
      this.line('summary:');
      this.loadHeader();
      for (const text of this.summary) {
        this.line(text);
      }
    }
  }

  loadHeader(): void {
    this.line(
      row([
        ['step', 7],
        ['server', this.serverWidth],
        ['joined', 11],
        ['sent/s', 8],
        ['offered/s', 10],
        ['deliv/s', 10],
        ['ratio', 6],
        ['p50ms', 7],
        ['p95ms', 7],
        ['p99ms', 7],
        ['maxms', 7],
        ['err', 4],
        ['cpu%', 6],
        ['rssMB', 7],
        ['rssMax', 7],
        ['generator', 0],
      ]),
    );
  }

  /**
   * name: what the server column says, by default figures.server. withDetails: false prints the
   * row alone (a summary: its generator cell still marks saturated and disturbed figures).
   */
  loadRow(
    label: string,
    figures: LoadFigures,
    name: string = figures.server,
    withDetails = true,
  ): void {
    const joined = `${figures.clients.joined}/${figures.clients.wanted}`;
    const latency = figures.latencyMs;
    this.mainRow(
      row([
        [label, 7],
        [name, this.serverWidth],
        [joined, 11],
        [count(figures.sentPerSec), 8],
        [count(figures.offeredPerSec), 10],
        [count(figures.deliveredPerSec), 10],
        [fixed(figures.deliveryRatio, 3), 6],
        [ms(latency?.p50), 7],
        [ms(latency?.p95), 7],
        [ms(latency?.p99), 7],
        [ms(latency?.max), 7],
        [String(figures.errors + figures.closes), 4],
        [fixed(figures.serverCpuPercent, 1), 6],
        [fixed(figures.serverRssMb, 1), 7],
        [fixed(figures.serverRssMaxMb, 1), 7],
        [generatorCell(figures), 0],
      ]),
    );
    if (!withDetails) {
      return;
    }
    this.problems(figures);
    if (figures.serverAccount) {
      this.serverAccount(figures.serverAccount);
    }
    if (figures.probe !== undefined) {
      this.probe(figures.probe);
    }
    if (figures.cpuProfile) {
      this.cpuProfile(figures.cpuProfile);
    }
  }

  /** --repeat: a server's medians over the rounds, in the columns of a load row. */
  medianRow(label: string, name: string, medians: MedianFigures): void {
    this.mainRow(
      row([
        [label, 7],
        [name, this.serverWidth],
        [`${medians.rounds} runs`, 11],
        ['', 8],
        ['', 10],
        [count(medians.deliveredPerSec), 10],
        [fixed(medians.deliveryRatio, 3), 6],
        ['', 7],
        ['', 7],
        [ms(medians.p99), 7],
        ['', 7],
        ['', 4],
        [fixed(medians.serverCpuPercent, 1), 6],
        ['', 7],
        [fixed(medians.serverRssMaxMb, 1), 7],
      ]),
    );
  }

  ratioRow(label: string, ratios: Ratios, name = 'ours/base'): void {
    this.mainRow(
      row([
        [label, 7],
        [name, this.serverWidth],
        ['', 11],
        ['', 8],
        ['', 10],
        [times(ratios.deliveredPerSec), 10],
        ['', 6],
        ['', 7],
        ['', 7],
        [times(ratios.p99), 7],
        ['', 7],
        ['', 4],
        [times(ratios.serverCpuPercent), 6],
        ['', 7],
        [times(ratios.serverRssMaxMb), 7],
      ]),
    );
  }

  /**
   * --split, below a layout's row: each server process, Redis, and where the machine's CPU went
   * in the window (the instances, Redis and the generator share the cores).
   */
  splitDetails(figures: LoadFigures, redis: RedisFigures, usesRedis: boolean): void {
    const instances = figures.instances ?? [];
    instances.forEach((instance, index) => {
      this.line(
        `    instance ${index + 1}/${instances.length} pid ${instance.pid}: ${instance.users} users, ` +
          `cpu ${fixed(instance.cpuPercent, 1)}%, rss ${fixed(instance.rssMb, 1)} MB ` +
          `(peak ${fixed(instance.rssMaxMb, 1)})`,
      );
    });
    const redisName = usesRedis ? 'redis' : 'redis (not used by this layout)';
    this.line(
      redis.pid === null
        ? `    ${redisName}: cpu ${redis.note ?? 'n/a'}`
        : `    ${redisName} pid ${redis.pid}: cpu ${fixed(redis.cpuPercent, 1)}%, ` +
            `rss ${fixed(redis.rssMb, 1)} MB` +
            (redis.note ? ` (${redis.note})` : ''),
    );
    const parts: [string, number | null][] = [
      [instances.length > 1 ? `${instances.length} servers` : 'server', figures.serverCpuPercent],
      ['redis', redis.cpuPercent],
      ['bench', figures.generator?.cpuPercent ?? null],
    ];
    const known = parts.filter((part): part is [string, number] => part[1] !== null);
    const cores = figures.host.cpus;
    this.line(
      `    cpu in the window, 100% = one core of ${cores}: ` +
        known.map(([what, value]) => `${what} ${value.toFixed(1)}%`).join(' + ') +
        ` = ${known.reduce((sum, [, value]) => sum + value, 0).toFixed(1)}% of ${cores * 100}%; ` +
        `host ${fixed(figures.host.busyPercent, 0)}% busy`,
    );
  }

  connectionsHeader(): void {
    this.line(
      row([
        ['server', 10],
        ['joined', 13],
        ['join s', 7],
        ['idleRssMB', 10],
        ['joinedRssMB', 12],
        ['rssMaxMB', 9],
        ['KB/conn', 8],
        ['closes', 6],
      ]),
    );
  }

  connectionsRow(figures: ConnectionFigures): void {
    this.line(
      row([
        [figures.server, 10],
        [`${figures.joined}/${figures.wanted}`, 13],
        [fixed(figures.joinSeconds, 1), 7],
        [fixed(figures.idleRssMb, 1), 10],
        [fixed(figures.joinedRssMb, 1), 12],
        [fixed(figures.rssMaxMb, 1), 9],
        [fixed(figures.rssPerConnectionKb, 1), 8],
        [String(figures.closes), 6],
      ]),
    );
    if (figures.failure) {
      this.line(`    FAILED: ${figures.failure}`);
    }
    if (figures.joinFailures > 0) {
      this.line(`    ${figures.joinFailures} join failures, e.g. ${figures.joinFailureSamples[0]}`);
    }
  }

  connectionsRatioRow(ratios: ConnectionRatios): void {
    this.line(
      row([
        ['ours/base', 10],
        ['', 13],
        ['', 7],
        [times(ratios.idleRss), 10],
        ['', 12],
        ['', 9],
        [times(ratios.rssPerConnection), 8],
      ]),
    );
  }

  private mainRow(text: string): void {
    this.line(text);
    this.summary.push(text);
  }

  private problems(figures: LoadFigures): void {
    if (figures.failure) {
      this.line(`    FAILED: ${figures.failure}`);
    }
    if (figures.clients.joinFailures > 0) {
      this.line(
        `    ${figures.clients.joinFailures} join failures, e.g. ${figures.clients.joinFailureSamples[0]}`,
      );
    }
    if (figures.errors > 0) {
      this.line(`    ${figures.errors} error events, e.g. ${figures.errorSamples[0]}`);
    }
    if (figures.closes > 0) {
      this.line(`    ${figures.closes} connections dropped, e.g. ${figures.closeSamples[0]}`);
    }
    const background = figures.host.backgroundBusyPercent;
    if (background !== null && background >= BACKGROUND_BUSY_PERCENT) {
      this.line(`    host was ${background.toFixed(0)}% busy before the step (another process)`);
    }
    if (figures.generator?.saturated) {
      this.line(`    generator saturated: ${figures.generator.saturationReasons.join('; ')}`);
    }
  }

  /**
   * From the server's /metrics: where poses that were not delivered went. A pose shed or rate
   * limited on arrival is lost to its whole room, a slow-client drop to one recipient: not summed.
   */
  private serverAccount(account: ServerAccount): void {
    const { slowClient, shed, rateLimited } = account.dropped;
    let line =
      `    server: ${count(shed)} poses shed and ${count(rateLimited)} rate limited on arrival ` +
      `(each lost to its room), ${count(slowClient)} dropped for slow clients (one each)`;
    const ticks = account.ticks;
    if (ticks) {
      line +=
        `; ticks ${count(ticks.run)} run, ${count(ticks.skipped)} skipped, late p50 ` +
        `${upTo(ticks.lateP50Ms)}, p90 ${upTo(ticks.lateP90Ms)}, p99 ${upTo(ticks.lateP99Ms)}`;
    }
    this.line(line);
  }

  private probe(probe: ProbeSummary | null): void {
    if (probe === null) {
      this.line('    probe: did not run');
      return;
    }
    this.line(
      `    probe (user_joined/user_left/state_updated): ${probe.samples} events, ` +
        `p95 ${ms(probe.p95)} ms, max ${ms(probe.max)} ms, unanswered ${probe.unanswered}, ` +
        `skipped ${probe.skipped}, errors ${probe.errors}` +
        (probe.closes.length > 0 ? `, closed: ${probe.closes.join(', ')}` : ''),
    );
  }

  cpuProfile(profile: CpuProfileSummary): void {
    this.line(
      `    our server's CPU profile, ${profile.scope}: ${profile.samples} samples, ` +
        `${profile.idlePercent.toFixed(1)}% idle (${profile.file})`,
    );
    this.line('      self%  function                                  location');
    for (const entry of profile.top) {
      this.line(
        `      ${entry.selfPercent.toFixed(1).padStart(5)}  ${entry.functionName.slice(0, 40).padEnd(40)}  ${entry.location}`,
      );
    }
  }
}

function row(cells: [string, number][]): string {
  return cells
    .map(([text, width]) => (width > 0 ? text.padEnd(width) : text))
    .join(' ')
    .trimEnd();
}

function count(value: number | null): string {
  return value === null ? '-' : Math.round(value).toLocaleString('en-US');
}

function fixed(value: number | null | undefined, digits: number): string {
  return value === null || value === undefined ? '-' : value.toFixed(digits);
}

function ms(value: number | null | undefined): string {
  if (value === null || value === undefined) {
    return '-';
  }
  return value < 100 ? value.toFixed(1) : value.toFixed(0);
}

/** A histogram bucket's upper bound; null is past the last one (1 s). */
function upTo(boundMs: number | null): string {
  return boundMs === null ? '> 1 s' : `<= ${boundMs} ms`;
}

function times(value: number | null): string {
  return value === null ? '-' : `x${value.toFixed(2)}`;
}

function generatorCell(figures: LoadFigures): string {
  const generator = figures.generator;
  if (!generator || generator.eventLoopUtilization.length === 0) {
    return generator ? `${generator.workers}w` : '-';
  }
  const elu = generator.eventLoopUtilization.map((value) => `${(value * 100).toFixed(0)}%`);
  const background = figures.host.backgroundBusyPercent ?? 0;
  // Marked in the row itself, so that the summary table shows which figures were disturbed.
  const disturbed =
    background >= BACKGROUND_BUSY_PERCENT ? ` (host ${background.toFixed(0)}% busy before)` : '';
  return `${generator.workers}w ${generator.client} elu ${elu.join('/')} cpu ${fixed(generator.cpuPercent, 0)}% ${generator.saturated ? 'SATURATED' : 'ok'}${disturbed}`;
}
