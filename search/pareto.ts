/**
 * Pareto fronts: minimise cost, maximise score (mAP).
 *
 * a dominates b  <=>  a.cost <= b.cost && a.score >= b.score && (a.cost < b.cost || a.score > b.score)
 *
 * so exact duplicates never dominate each other and share a rank, and of two points with equal
 * cost the one with the higher score dominates. Rank 0 is the Pareto front; rank k is the front
 * of what is left after removing ranks < k.
 *
 * `nonDominatedSort` is O(N log N): sort by (cost asc, score desc), then place each point in the
 * first front whose last member does not dominate it, found by binary search (the fronts' last
 * members are ordered, see the comment in the loop). `naiveNonDominatedSort` is the O(N^2)
 * reference the tests and benchmarks compare against.
 *
 * Pure: no Node APIs.
 */

export interface Point {
  cost: number;
  score: number;
}

export interface Fronts {
  /** rank of each input point */
  ranks: Int32Array;
  /** indices of the points of each rank, ordered by cost ascending (then score descending, then index) */
  fronts: number[][];
}

export function dominates(a: Point, b: Point): boolean {
  return a.cost <= b.cost && a.score >= b.score && (a.cost < b.cost || a.score > b.score);
}

function checkFinite(points: readonly Point[]): void {
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    if (!Number.isFinite(p.cost) || !Number.isFinite(p.score))
      throw new RangeError(`point ${i}: cost and score must be finite numbers (got ${p.cost}, ${p.score})`);
  }
}

export function nonDominatedSort(points: readonly Point[]): Fronts {
  checkFinite(points);
  const n = points.length;
  const cost = new Float64Array(n);
  const score = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    cost[i] = points[i].cost;
    score[i] = points[i].score;
  }
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  // typed-array sort with a comparator: cost asc, score desc, index asc (stable, deterministic)
  order.sort((a, b) => cost[a] - cost[b] || score[b] - score[a] || a - b);

  const ranks = new Int32Array(n);
  // Last member of each front. Members of one front have non-decreasing cost and score (no member
  // dominates another), so the last is the one with the highest score. Front k dominates p iff its
  // last member L has (L.score, -L.cost) > (p.score, -p.cost) lexicographically; these keys are
  // non-increasing in k, so the first front that does not dominate p is found by binary search.
  const lastScore: number[] = [];
  const lastCost: number[] = [];
  const fronts: number[][] = [];
  for (let t = 0; t < n; t++) {
    const i = order[t];
    const s = score[i];
    const c = cost[i];
    let lo = 0;
    let hi = fronts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const dom = lastScore[mid] > s || (lastScore[mid] === s && lastCost[mid] < c);
      if (dom) lo = mid + 1;
      else hi = mid;
    }
    if (lo === fronts.length) fronts.push([]);
    fronts[lo].push(i);
    lastScore[lo] = s;
    lastCost[lo] = c;
    ranks[i] = lo;
  }
  return { ranks, fronts };
}

/** O(N^2) reference: rank = peel off the non-dominated set repeatedly. For tests and benchmarks. */
export function naiveNonDominatedSort(points: readonly Point[]): Fronts {
  checkFinite(points);
  const n = points.length;
  const ranks = new Int32Array(n).fill(-1);
  const fronts: number[][] = [];
  let left = n;
  for (let r = 0; left > 0; r++) {
    const front: number[] = [];
    for (let i = 0; i < n; i++) {
      if (ranks[i] !== -1) continue;
      let dominated = false;
      for (let j = 0; j < n && !dominated; j++) if (j !== i && ranks[j] === -1 && dominates(points[j], points[i])) dominated = true;
      if (!dominated) front.push(i);
    }
    for (const i of front) ranks[i] = r;
    front.sort((a, b) => points[a].cost - points[b].cost || points[b].score - points[a].score || a - b);
    fronts.push(front);
    left -= front.length;
  }
  return { ranks, fronts };
}

/**
 * Crowding distance (NSGA-II) of the members of one front, over both objectives normalised by
 * their range; the extremes of each objective get Infinity. Returned in the order of `front`.
 * Exact duplicates get the same distance (the one of their group), so ties stay ties.
 */
export function crowdingDistance(points: readonly Point[], front: readonly number[]): number[] {
  const m = front.length;
  const dist = new Array<number>(m).fill(0);
  if (m <= 2) return dist.fill(Infinity);
  for (const key of ['cost', 'score'] as const) {
    const idx = Array.from({ length: m }, (_, k) => k).sort((a, b) => points[front[a]][key] - points[front[b]][key] || a - b);
    const lo = points[front[idx[0]]][key];
    const hi = points[front[idx[m - 1]]][key];
    const range = hi - lo;
    for (let t = 0; t < m; t++) {
      const v = points[front[idx[t]]][key];
      if (v === lo || v === hi) {
        dist[idx[t]] = Infinity;
        continue;
      }
      if (range === 0) continue;
      // neighbours with a different value (so duplicates do not shrink each other's distance)
      let a = t - 1;
      while (a > 0 && points[front[idx[a]]][key] === v) a--;
      let b = t + 1;
      while (b < m - 1 && points[front[idx[b]]][key] === v) b++;
      dist[idx[t]] += (points[front[idx[b]]][key] - points[front[idx[a]]][key]) / range;
    }
  }
  return dist;
}
