import { Scrape } from './prometheus-text.js';

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

const SCRAPE_TIMEOUT_MS = 2000;
const DROPPED = 'gms_messages_dropped_total';
const TICKS_SKIPPED = 'gms_pose_ticks_skipped_total';
const LATENESS = 'gms_pose_tick_lateness_seconds';

/**
 * /metrics of the servers behind these ws:// URLs as one scrape (Scrape.value sums a metric over
 * the instances); undefined if any did not answer with a scrape.
 */
export async function scrapeServers(wsUrls: string[]): Promise<Scrape | undefined> {
  const scrapes: Scrape[] = [];
  for (const wsUrl of wsUrls) {
    const scrape = await scrapeServer(wsUrl);
    if (!scrape) {
      return undefined;
    }
    scrapes.push(scrape);
  }
  return new Scrape(scrapes.flatMap((scrape) => scrape.samples));
}

async function scrapeServer(wsUrl: string): Promise<Scrape | undefined> {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  url.pathname = '/metrics';
  url.search = '';
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
    return response.ok ? Scrape.parse(await response.text()) : undefined;
  } catch {
    return undefined;
  }
}

/** What happened between two scrapes; undefined when the server has no such metrics. */
export function accountOf(before: Scrape, after: Scrape): ServerAccount | undefined {
  if (!after.has(DROPPED)) {
    return undefined;
  }
  const delta = (name: string, labels: Record<string, string> = {}) =>
    after.value(name, labels) - before.value(name, labels);
  const run = delta(`${LATENESS}_count`);
  const skipped = delta(TICKS_SKIPPED);
  const lateMs = (q: number) => latenessQuantileMs(before, after, run, q);
  return {
    dropped: {
      slowClient: delta(DROPPED, { reason: 'slow_client' }),
      shed: delta(DROPPED, { reason: 'shed' }),
      rateLimited: delta(DROPPED, { reason: 'rate_limited' }),
    },
    ticks:
      run + skipped > 0
        ? { run, skipped, lateP50Ms: lateMs(0.5), lateP90Ms: lateMs(0.9), lateP99Ms: lateMs(0.99) }
        : null,
  };
}

/** The upper bound (ms) of the first bucket that holds the q-quantile of the ticks in between. */
function latenessQuantileMs(
  before: Scrape,
  after: Scrape,
  count: number,
  q: number,
): number | null {
  if (count === 0) {
    return null;
  }
  const bucket = `${LATENESS}_bucket`;
  const bounds = [
    ...new Set(after.samples.filter((sample) => sample.name === bucket).map((s) => s.labels.le)),
  ]
    .filter((le) => le !== '+Inf')
    .sort((a, b) => Number(a) - Number(b));
  for (const le of bounds) {
    const atMost = after.value(bucket, { le }) - before.value(bucket, { le });
    if (atMost >= q * count) {
      return Number(le) * 1000;
    }
  }
  return null;
}
