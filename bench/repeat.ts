// --repeat: the same step in several rounds, summed up by medians. On a machine whose speed
// wanders (a shared or virtual one), a server's CPU can move by a third between two runs of
// the same load; the median of a few rounds, each server's order alternating, holds still.
import type { LoadFigures } from './measure.js';
import { loadRatios, ratiosOf, type Ratios } from './report.js';
import type { TargetKind } from './server-target.js';

/** The figures of one server that --repeat takes the median of. */
export interface MedianFigures {
  /** Rounds whose run went through (a failed start or step is left out). */
  rounds: number;
  deliveredPerSec: number | null;
  deliveryRatio: number | null;
  p99: number | null;
  serverCpuPercent: number | null;
  serverRssMaxMb: number | null;
  serverCpuUsPerDelivery: number | null;
}

export interface RepeatSummary {
  /** Per server kind, in the order the kinds were given. */
  medians: Record<string, MedianFigures>;
  /** The medians' ratios, primary/baseline; null without both. */
  ratio: Ratios | null;
  /** The lowest and highest of the rounds' own ratios (rounds where both ran). */
  roundRatios: { min: Ratios; max: Ratios } | null;
}

/** Odd rounds (1, 3, ...) run the servers in the given order, even ones in reverse. */
export function roundOrder<T>(kinds: readonly T[], round: number): T[] {
  return round % 2 === 1 ? [...kinds] : [...kinds].reverse();
}

/** The middle value (the mean of the two middle ones for an even count); null for none. */
export function median(values: readonly (number | null | undefined)[]): number | null {
  const known = values
    .filter((value): value is number => typeof value === 'number' && Number.isFinite(value))
    .sort((a, b) => a - b);
  if (known.length === 0) {
    return null;
  }
  const middle = known.length >> 1;
  return known.length % 2 === 1 ? known[middle] : (known[middle - 1] + known[middle]) / 2;
}

export function medianFigures(rounds: readonly LoadFigures[]): MedianFigures {
  const ran = rounds.filter((figures) => figures.ok);
  const of = (pick: (figures: LoadFigures) => number | null | undefined): number | null =>
    median(ran.map(pick));
  return {
    rounds: ran.length,
    deliveredPerSec: of((figures) => figures.deliveredPerSec),
    deliveryRatio: of((figures) => figures.deliveryRatio),
    p99: of((figures) => figures.latencyMs?.p99),
    serverCpuPercent: of((figures) => figures.serverCpuPercent),
    serverRssMaxMb: of((figures) => figures.serverRssMaxMb),
    serverCpuUsPerDelivery: of((figures) => figures.serverCpuUsPerDelivery),
  };
}

/**
 * The rounds of one step (each a map from server kind to its figures) summed up: each kind's
 * medians, and `primary` (ours, or --url) against the baseline.
 */
export function summarizeRounds(
  rounds: readonly ReadonlyMap<TargetKind, LoadFigures>[],
  kinds: readonly TargetKind[],
  primary: TargetKind,
): RepeatSummary {
  const medians: Record<string, MedianFigures> = {};
  for (const kind of kinds) {
    medians[kind] = medianFigures(rounds.flatMap((round) => round.get(kind) ?? []));
  }
  const roundRatios = rounds.flatMap((round) => {
    const ours = round.get(primary);
    const baseline = round.get('baseline');
    return ours?.ok && baseline?.ok ? [loadRatios(ours, baseline)] : [];
  });
  const ours = medians[primary];
  const baseline = medians.baseline;
  return {
    medians,
    ratio: ours && baseline ? ratiosOf(ours, baseline) : null,
    roundRatios: roundRatios.length > 0 ? spread(roundRatios) : null,
  };
}

const RATIO_KEYS = ['deliveredPerSec', 'p99', 'serverCpuPercent', 'serverRssMaxMb'] as const;

function spread(ratios: readonly Ratios[]): { min: Ratios; max: Ratios } {
  const pick = (choose: (values: number[]) => number): Ratios => {
    const result = {} as Ratios;
    for (const key of RATIO_KEYS) {
      const values = ratios
        .map((entry) => entry[key])
        .filter((value): value is number => value !== null);
      result[key] = values.length > 0 ? choose(values) : null;
    }
    return result;
  };
  return {
    min: pick((values) => Math.min(...values)),
    max: pick((values) => Math.max(...values)),
  };
}
