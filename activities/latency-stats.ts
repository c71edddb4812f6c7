/**
 * The latency protocol's statistics, computed here for every backend (the native trainer's
 * `bench`, and any other backend that reports per-round, per-forward timings): a round's latency is
 * the mean of its forwards over the image sample; the figure is the median over rounds, with p10,
 * p90 and the spread (p90 - p10) / median of the round latencies, which says how steady the host
 * was. Pure.
 */

/** Linear interpolation between closest ranks (numpy's default; the trainer's own percentile). */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new Error('percentile of no values');
  if (!(q >= 0 && q <= 1)) throw new Error(`percentile: q ${q} outside [0, 1]`);
  const v = [...values].sort((a, b) => a - b);
  const pos = q * (v.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, v.length - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

function mean(v: readonly number[]): number {
  return v.reduce((a, b) => a + b, 0) / v.length;
}

export interface RoundStats {
  /** each round's latency: the mean of its forwards */
  roundMs: number[];
  medianMs: number;
  meanMs: number;
  p10Ms: number;
  p90Ms: number;
  /** sample standard deviation of the round latencies */
  stdMs: number;
  /** median and p90 over every timed forward */
  imageP50Ms: number;
  imageP90Ms: number;
  /** (p90Ms - p10Ms) / medianMs */
  spread: number;
}

/** Statistics of one measurement: `rounds[r][i]` is the i-th timed forward of round r, in ms. */
export function roundStats(rounds: readonly (readonly number[])[]): RoundStats {
  if (rounds.length === 0 || rounds.some((r) => r.length === 0)) throw new Error('latency statistics need at least one round of at least one forward');
  for (const r of rounds) for (const t of r) if (!Number.isFinite(t) || t < 0) throw new Error(`latency statistics: invalid timing ${t}`);
  const roundMs = rounds.map((r) => mean(r));
  const all = rounds.flat();
  const medianMs = percentile(roundMs, 0.5);
  const p10Ms = percentile(roundMs, 0.1);
  const p90Ms = percentile(roundMs, 0.9);
  const m = mean(roundMs);
  const stdMs = roundMs.length > 1 ? Math.sqrt(roundMs.reduce((a, x) => a + (x - m) ** 2, 0) / (roundMs.length - 1)) : 0;
  return {
    roundMs,
    medianMs,
    meanMs: mean(all),
    p10Ms,
    p90Ms,
    stdMs,
    imageP50Ms: percentile(all, 0.5),
    imageP90Ms: percentile(all, 0.9),
    spread: medianMs > 0 ? (p90Ms - p10Ms) / medianMs : 0,
  };
}

export interface Verdict {
  /** index of the measurement whose figure is kept */
  chosen: number;
  reliable: boolean;
  /** why it is unreliable; null when reliable */
  reason: string | null;
}

/**
 * Which of the measurements taken so far to keep, and whether to take another: the first whose
 * spread is within maxSpread is kept as reliable; when none is and `maxMeasurements` were taken,
 * the steadiest (smallest spread) is kept, marked unreliable with the reason.
 */
export function judgeMeasurements(spreads: readonly number[], maxSpread: number, maxMeasurements: number): Verdict | 'measure-again' {
  const ok = spreads.findIndex((s) => s <= maxSpread);
  if (ok >= 0) return { chosen: ok, reliable: true, reason: null };
  if (spreads.length < maxMeasurements) return 'measure-again';
  let chosen = 0;
  spreads.forEach((s, i) => {
    if (s < spreads[chosen]) chosen = i;
  });
  const list = spreads.map((s) => s.toFixed(3)).join(', ');
  return {
    chosen,
    reliable: false,
    reason: `noisy host: the spread (p90 - p10) / median of the round latencies stayed above ${maxSpread} in all ${spreads.length} measurements (${list}); the steadiest is recorded`,
  };
}
