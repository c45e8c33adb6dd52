import { FixedHistogram } from './fixed-histogram.js';

describe('FixedHistogram', () => {
  it('counts each value in the first bucket whose bound it does not exceed, cumulatively', () => {
    const histogram = new FixedHistogram([0.1, 1, 10]);
    for (const value of [0.05, 0.1, 0.5, 1, 5, 50]) {
      histogram.observe(value);
    }
    expect(histogram.toPrometheus('x_seconds', 'Test.')).toBe(
      [
        '# HELP x_seconds Test.',
        '# TYPE x_seconds histogram',
        'x_seconds_bucket{le="0.1"} 2',
        'x_seconds_bucket{le="1"} 4',
        'x_seconds_bucket{le="10"} 5',
        'x_seconds_bucket{le="+Inf"} 6',
        'x_seconds_sum 56.65',
        'x_seconds_count 6',
        '',
      ].join('\n'),
    );
  });

  it('exports zeros before any observation', () => {
    const text = new FixedHistogram([1]).toPrometheus('y', 'Y.');
    expect(text).toContain('y_bucket{le="+Inf"} 0\ny_sum 0\ny_count 0\n');
  });

  it('puts labels before le, and on _sum and _count', () => {
    const histogram = new FixedHistogram([1]);
    histogram.observe(2);
    expect(histogram.samples('z', 'action="join_room"')).toBe(
      [
        'z_bucket{action="join_room",le="1"} 0',
        'z_bucket{action="join_room",le="+Inf"} 1',
        'z_sum{action="join_room"} 2',
        'z_count{action="join_room"} 1',
        '',
      ].join('\n'),
    );
  });

  it('refuses bounds that are not ascending', () => {
    expect(() => new FixedHistogram([1, 1])).toThrow(/ascending/);
  });
});
