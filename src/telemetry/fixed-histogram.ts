/**
 * A histogram with fixed bucket bounds, cheap enough for the hot path: `observe` is a short
 * scan over a preallocated array and allocates nothing. Exported at scrape time in the
 * Prometheus text format (cumulative `_bucket` counts, `_sum`, `_count`).
 */
export class FixedHistogram {
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  /** `bounds`: upper bounds in ascending order, in the unit observed (seconds). */
  constructor(readonly bounds: readonly number[]) {
    for (let index = 1; index < bounds.length; index++) {
      if (!(bounds[index] > bounds[index - 1])) {
        throw new Error('FixedHistogram bounds must be ascending');
      }
    }
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let index = 0;
    while (index < bounds.length && value > bounds[index]) {
      index++;
    }
    this.counts[index]++;
    this.sum += value;
    this.count++;
  }

  /** The exposition lines for `name` (HELP and TYPE included). */
  toPrometheus(name: string, help: string): string {
    return `${histogramHeader(name, help)}${this.samples(name)}`;
  }

  /** The sample lines only; `labels` is a rendered label list such as `action="join_room"`. */
  samples(name: string, labels = ''): string {
    const prefix = labels === '' ? '' : `${labels},`;
    const suffix = labels === '' ? '' : `{${labels}}`;
    const lines: string[] = [];
    let cumulative = 0;
    for (let index = 0; index < this.bounds.length; index++) {
      cumulative += this.counts[index];
      lines.push(`${name}_bucket{${prefix}le="${this.bounds[index]}"} ${cumulative}`);
    }
    cumulative += this.counts[this.bounds.length];
    lines.push(`${name}_bucket{${prefix}le="+Inf"} ${cumulative}`);
    lines.push(`${name}_sum${suffix} ${this.sum}`);
    lines.push(`${name}_count${suffix} ${this.count}`);
    return `${lines.join('\n')}\n`;
  }
}

export function histogramHeader(name: string, help: string): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} histogram\n`;
}

/** Bounds for handling one client request, in seconds: 100 µs to 5 s. */
export const REQUEST_SECONDS_BOUNDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

/** Bounds for fan-outs, in seconds: 10 µs to 100 ms. */
export const FANOUT_SECONDS_BOUNDS = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1,
];

/** Bounds for how late a pose tick ran past its due time, in seconds: 1 ms to 1 s. */
export const TICK_LATENESS_SECONDS_BOUNDS = [
  0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];
