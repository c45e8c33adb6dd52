export interface LatencySummary {
  samples: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}

/** Nearest-rank percentiles of latencies in ms; null when there is no sample. */
export function summarizeLatency(values: Float64Array | number[]): LatencySummary {
  const sorted = Float64Array.from(values).sort();
  const at = (fraction: number): number | null =>
    sorted.length === 0
      ? null
      : sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)];
  return {
    samples: sorted.length,
    p50: at(0.5),
    p95: at(0.95),
    p99: at(0.99),
    max: sorted.length === 0 ? null : sorted[sorted.length - 1],
  };
}
