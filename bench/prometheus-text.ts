// The Prometheus text format, read: the bench's account of our server (server-account.ts) and
// the /metrics end-to-end tests (test/) both parse scrapes with it.

/** One sample of the Prometheus text format: `name{label="value",...} 12`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the text exposition format into samples; comments (# HELP, # TYPE) are skipped. */
export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) {
      continue;
    }
    const match = SAMPLE.exec(trimmed);
    if (!match) {
      throw new Error(`Not a Prometheus sample: ${line}`);
    }
    const labels: Record<string, string> = {};
    for (const [, key, raw] of (match[2] ?? '').matchAll(LABEL)) {
      labels[key] = raw.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    }
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** The samples of a scrape, looked up by name and (a subset of) labels; absent counts as 0. */
export class Scrape {
  constructor(readonly samples: Sample[]) {}

  static parse(text: string): Scrape {
    return new Scrape(parsePrometheusText(text));
  }

  value(name: string, labels: Record<string, string> = {}): number {
    return this.samples
      .filter(
        (sample) =>
          sample.name === name &&
          Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
      )
      .reduce((sum, sample) => sum + sample.value, 0);
  }

  has(name: string): boolean {
    return this.samples.some((sample) => sample.name === name);
  }
}
