import type { LoadFigures } from './measure.js';
import { median, medianFigures, roundOrder, summarizeRounds } from './repeat.js';
import type { TargetKind } from './server-target.js';

/** The figures --repeat reads, the rest left out. */
function figures(
  server: TargetKind,
  cpu: number,
  p99: number,
  delivered = 1000,
  ok = true,
): LoadFigures {
  return {
    server,
    ok,
    deliveredPerSec: delivered,
    deliveryRatio: delivered / 1000,
    latencyMs: { samples: 10, p50: 1, p95: p99 / 2, p99, max: p99 * 2 },
    serverCpuPercent: cpu,
    serverRssMaxMb: server === 'baseline' ? 90 : 135,
    serverCpuUsPerDelivery: (cpu * 10_000) / delivered,
  } as LoadFigures;
}

describe('--repeat', () => {
  it('runs the servers in the given order in odd rounds and reversed in even ones', () => {
    const kinds: TargetKind[] = ['ours', 'baseline'];
    expect([1, 2, 3, 4].map((round) => roundOrder(kinds, round))).toEqual([
      ['ours', 'baseline'],
      ['baseline', 'ours'],
      ['ours', 'baseline'],
      ['baseline', 'ours'],
    ]);
    expect(kinds).toEqual(['ours', 'baseline']);
  });

  it.each([
    [[5, 1, 3], 3],
    [[4, 1, 3, 2], 2.5],
    [[7], 7],
    [[null, 2, undefined, 4], 3],
    [[], null],
  ])('median of %j is %p', (values, expected) => {
    expect(median(values)).toBe(expected);
  });

  it('leaves a round that failed out of the medians', () => {
    const medians = medianFigures([
      figures('ours', 60, 5),
      figures('ours', 0, 0, 0, false),
      figures('ours', 80, 9),
    ]);
    expect(medians).toEqual({
      rounds: 2,
      deliveredPerSec: 1000,
      deliveryRatio: 1,
      p99: 7,
      serverCpuPercent: 70,
      serverRssMaxMb: 135,
      serverCpuUsPerDelivery: 700,
    });
  });

  it('gives the ratio of the medians and the spread of the rounds own ratios', () => {
    const round = (ours: LoadFigures, baseline: LoadFigures): Map<TargetKind, LoadFigures> =>
      new Map([
        ['ours', ours],
        ['baseline', baseline],
      ]);
    const summary = summarizeRounds(
      [
        round(figures('ours', 66, 8), figures('baseline', 55, 4)),
        round(figures('ours', 84, 12), figures('baseline', 50, 6)),
        round(figures('ours', 70, 10), figures('baseline', 70, 5)),
      ],
      ['ours', 'baseline'],
      'ours',
    );
    expect(summary.medians.ours.serverCpuPercent).toBe(70);
    expect(summary.medians.baseline.serverCpuPercent).toBe(55);
    expect(summary.ratio?.serverCpuPercent).toBeCloseTo(70 / 55);
    expect(summary.ratio?.p99).toBeCloseTo(10 / 5);
    expect(summary.ratio?.serverRssMaxMb).toBeCloseTo(1.5);
    expect(summary.roundRatios?.min.serverCpuPercent).toBeCloseTo(1);
    expect(summary.roundRatios?.max.serverCpuPercent).toBeCloseTo(84 / 50);
    expect(summary.roundRatios?.min.p99).toBeCloseTo(2);
    expect(summary.roundRatios?.max.p99).toBeCloseTo(2);
  });

  it('has no ratios without a baseline', () => {
    const summary = summarizeRounds(
      [new Map([['ours', figures('ours', 66, 8)]])],
      ['ours'],
      'ours',
    );
    expect(summary.medians.ours.serverCpuPercent).toBe(66);
    expect(summary.ratio).toBeNull();
    expect(summary.roundRatios).toBeNull();
  });
});
