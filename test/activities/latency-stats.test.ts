/**
 * The latency protocol's statistics (activities/latency-stats.ts): percentiles as numpy computes
 * them, a round's latency as the mean of its forwards, the spread over rounds, and which
 * measurement is kept (re-measure while noisy; the steadiest marked unreliable at the end).
 */
import { judgeMeasurements, percentile, roundStats } from '../../activities/latency-stats';

describe('percentile', () => {
  test('linear interpolation between closest ranks (numpy default)', () => {
    const v = [4, 1, 3, 2, 5];
    expect(percentile(v, 0.5)).toBe(3);
    expect(percentile(v, 0.1)).toBeCloseTo(1.4, 12); // numpy.percentile([1..5], 10) = 1.4
    expect(percentile(v, 0.9)).toBeCloseTo(4.6, 12);
    expect(percentile([7], 0.9)).toBe(7);
    expect(() => percentile([], 0.5)).toThrow(/no values/);
  });
});

describe('roundStats', () => {
  test('median, p10, p90, spread over the rounds; per-image percentiles over every forward', () => {
    // 5 rounds of 2 forwards: round latencies 11, 11, 10, 12, 12
    const s = roundStats([
      [10, 12],
      [11, 11],
      [10, 10],
      [12, 12],
      [11, 13],
    ]);
    expect(s.roundMs).toEqual([11, 11, 10, 12, 12]);
    expect(s.medianMs).toBe(11);
    expect(s.p10Ms).toBeCloseTo(10.4, 12);
    expect(s.p90Ms).toBeCloseTo(12, 12);
    expect(s.spread).toBeCloseTo((12 - 10.4) / 11, 12);
    expect(s.meanMs).toBeCloseTo(11.2, 12);
    expect(s.stdMs).toBeCloseTo(Math.sqrt((0.2 ** 2 * 2 + 1.2 ** 2 + 0.8 ** 2 * 2) / 4), 12);
    expect(s.imageP50Ms).toBe(11);
    expect(s.imageP90Ms).toBeCloseTo(12.1, 12);
  });
  test('a steady host has spread 0; invalid timings are refused', () => {
    expect(roundStats([[5], [5], [5]]).spread).toBe(0);
    expect(() => roundStats([])).toThrow(/at least one round/);
    expect(() => roundStats([[1], []])).toThrow(/at least one round/);
    expect(() => roundStats([[1], [Number.NaN]])).toThrow(/invalid timing/);
    expect(() => roundStats([[-1]])).toThrow(/invalid timing/);
  });
});

describe('judgeMeasurements', () => {
  test('the first measurement within maxSpread is kept as reliable', () => {
    expect(judgeMeasurements([0.05], 0.1, 3)).toEqual({ chosen: 0, reliable: true, reason: null });
    expect(judgeMeasurements([0.3, 0.08], 0.1, 3)).toEqual({ chosen: 1, reliable: true, reason: null });
  });
  test('too noisy: measure again until maxMeasurements, then the steadiest, unreliable, with the reason', () => {
    expect(judgeMeasurements([0.3], 0.1, 3)).toBe('measure-again');
    expect(judgeMeasurements([0.3, 0.5], 0.1, 3)).toBe('measure-again');
    const v = judgeMeasurements([0.3, 0.5, 0.2], 0.1, 3);
    expect(v).not.toBe('measure-again');
    if (v === 'measure-again') return;
    expect(v.chosen).toBe(2);
    expect(v.reliable).toBe(false);
    expect(v.reason).toMatch(/noisy host: the spread .* stayed above 0.1 in all 3 measurements \(0.300, 0.500, 0.200\)/);
    // one measurement allowed: no second chance, but never silently reliable
    expect(judgeMeasurements([0.3], 0.1, 1)).toMatchObject({ chosen: 0, reliable: false });
  });
});
