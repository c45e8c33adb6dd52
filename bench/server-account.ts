/**
 * Our server's own account of a step, read from its /metrics before and after the window: the
 * poses it dropped and why, and with --tick-ms how late its pose ticks ran. It says where a
 * delivery ratio under 1 went: dropped by the server (shed, slow clients) or never sent in time.
 * The baseline serves no /metrics, and a --url server may want credentials: then there is none.
 */
export interface ServerAccount {
  dropped: { slowClient: number; shed: number; rateLimited: number };
  /** With server ticks: ticks run and skipped, and how late the run ones were (upper bounds). */
  ticks: TickAccount | null;
}

export interface TickAccount {
  run: number;
  skipped: number;
  /** A histogram bucket's upper bound in ms; null: later than the last bound. */
  lateP50Ms: number | null;
  lateP90Ms: number | null;
  lateP99Ms: number | null;
}

/** A scrape's samples, keyed by the line's name and labels as the server wrote them. */
export type MetricSamples = Map<string, number>;

const SCRAPE_TIMEOUT_MS = 2000;
const DROPPED = 'gms_messages_dropped_total';
const TICKS_SKIPPED = 'gms_pose_ticks_skipped_total';
const LATENESS = 'gms_pose_tick_lateness_seconds';

/** The Prometheus text format's sample lines: `name{labels} value`; comments skipped. */
export function parseSamples(text: string): MetricSamples {
  const samples: MetricSamples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) {
      continue;
    }
    const space = line.lastIndexOf(' ');
    const value = Number(line.slice(space + 1));
    if (space > 0 && Number.isFinite(value)) {
      samples.set(line.slice(0, space), value);
    }
  }
  return samples;
}

/** /metrics of the servers behind these ws:// URLs, summed; undefined if any did not answer. */
export async function scrapeServers(wsUrls: string[]): Promise<MetricSamples | undefined> {
  const sum: MetricSamples = new Map();
  for (const wsUrl of wsUrls) {
    const samples = await scrape(wsUrl);
    if (!samples) {
      return undefined;
    }
    for (const [key, value] of samples) {
      sum.set(key, (sum.get(key) ?? 0) + value);
    }
  }
  return sum;
}

async function scrape(wsUrl: string): Promise<MetricSamples | undefined> {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  url.pathname = '/metrics';
  url.search = '';
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
    return response.ok ? parseSamples(await response.text()) : undefined;
  } catch {
    return undefined;
  }
}

/** What happened between two scrapes; undefined when the server has no such metrics. */
export function accountOf(before: MetricSamples, after: MetricSamples): ServerAccount | undefined {
  if (!after.has(`${DROPPED}{reason="shed"}`)) {
    return undefined;
  }
  const delta = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
  const run = delta(`${LATENESS}_count`);
  const skipped = delta(TICKS_SKIPPED);
  return {
    dropped: {
      slowClient: delta(`${DROPPED}{reason="slow_client"}`),
      shed: delta(`${DROPPED}{reason="shed"}`),
      rateLimited: delta(`${DROPPED}{reason="rate_limited"}`),
    },
    ticks:
      run + skipped > 0
        ? {
            run,
            skipped,
            lateP50Ms: latenessQuantileMs(before, after, run, 0.5),
            lateP90Ms: latenessQuantileMs(before, after, run, 0.9),
            lateP99Ms: latenessQuantileMs(before, after, run, 0.99),
          }
        : null,
  };
}

/** The upper bound (ms) of the first bucket that holds the q-quantile of the ticks in between. */
function latenessQuantileMs(
  before: MetricSamples,
  after: MetricSamples,
  count: number,
  q: number,
): number | null {
  if (count === 0) {
    return null;
  }
  const prefix = `${LATENESS}_bucket{le="`;
  const buckets = [...after.keys()]
    .filter((key) => key.startsWith(prefix) && !key.endsWith('"+Inf"}'))
    .map((key) => ({ key, boundMs: Number(key.slice(prefix.length, -2)) * 1000 }))
    .sort((a, b) => a.boundMs - b.boundMs);
  for (const { key, boundMs } of buckets) {
    const atMost = (after.get(key) ?? 0) - (before.get(key) ?? 0);
    if (atMost >= q * count) {
      return boundMs;
    }
  }
  return null;
}
