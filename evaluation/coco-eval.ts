/**
 * COCO bbox evaluation, a faithful re-implementation of pycocotools' COCOeval (evaluate,
 * accumulate, summarize) that agrees with it to 1e-4 on all 12 statistics. The quirks that change
 * numbers are replicated on purpose (see docs/evaluation.md and trainer-guide.md §3):
 *  - thresholds bit-identical to numpy.linspace; inclusive area bounds (area 1024 is small AND medium);
 *  - GT ignore = iscrowd; GT area from the annotation's `area` field, detection area = w*h;
 *  - crowd IoU = intersection over the detection's area; a crowd GT can absorb many detections;
 *  - stable score sorts (ties keep file order), 100 detections per image *per category*;
 *  - the GT-id-0 sentinel: a match to a GT with id 0 counts as unmatched;
 *  - precision envelope + searchsorted(left), np.spacing(1) in the precision denominator.
 *
 * Pure: takes columnar typed arrays (no per-detection objects in hot loops). coco-eval-io.ts
 * builds them from JSON files with validation.
 */
import { COCO_STAT_NAMES, type CocoStats } from '../protocol/trainer-messages';

/** numpy.linspace(.5, .95, 10) */
export const IOU_THRS: readonly number[] = Array.from({ length: 10 }, (_, k) => (k === 9 ? 0.95 : 0.5 + k * ((0.95 - 0.5) / 9)));
/** numpy.linspace(0, 1, 101): k*0.01, not k/100 (they differ in the last bit for several k) */
export const REC_THRS: readonly number[] = Array.from({ length: 101 }, (_, k) => (k === 100 ? 1.0 : k * 0.01));
export const MAX_DETS = [1, 10, 100] as const;
export const AREA_RANGES: readonly (readonly [number, number])[] = [
  [0, 1e10],
  [0, 32 * 32],
  [32 * 32, 96 * 96],
  [96 * 96, 1e10],
];
export const AREA_LABELS = ['all', 'small', 'medium', 'large'] as const;

const T = IOU_THRS.length;
const R = REC_THRS.length;
const A = AREA_RANGES.length;
const M = MAX_DETS.length;
const EPS = 2.220446049250313e-16; // np.spacing(1)

/** Ground truth in columns. Index arrays refer to positions in `imgIds` / `catIds`. */
export interface GtColumns {
  /** sorted unique image ids (pycocotools Params.imgIds) */
  imgIds: ArrayLike<number>;
  /** sorted unique category ids */
  catIds: ArrayLike<number>;
  n: number;
  imgIdx: Int32Array;
  catIdx: Int32Array;
  /** x, y, w, h interleaved (4*n) */
  box: Float64Array;
  area: Float64Array;
  crowd: Uint8Array;
  /** annotation id (kept as a number: a match to id 0 counts as unmatched, as in pycocotools) */
  id: Float64Array;
}

/** Detections in columns, in file order (file order breaks score ties). */
export interface DetColumns {
  n: number;
  imgIdx: Int32Array;
  catIdx: Int32Array;
  box: Float64Array;
  score: Float64Array;
}

export interface PerClassResult {
  /** AP@[.5:.95], all areas, 100 dets; null when the class has no (non-crowd) ground truth */
  AP: number | null;
  AP50: number | null;
  AP75: number | null;
  AR100: number | null;
  numGt: number;
  numDets: number;
}

export interface CocoEvalResult {
  stats: CocoStats;
  /** per category id */
  perClass: Map<number, PerClassResult>;
}

/** Group member lists by key (k * numImages + i), stable (keeps file order); a counting sort. */
function groupBy(keys: Int32Array, numKeys: number): { start: Int32Array; members: Int32Array } {
  const start = new Int32Array(numKeys + 1);
  for (let j = 0; j < keys.length; j++) start[keys[j] + 1]++;
  for (let q = 0; q < numKeys; q++) start[q + 1] += start[q];
  const fill = start.slice(0, numKeys);
  const members = new Int32Array(keys.length);
  for (let j = 0; j < keys.length; j++) members[fill[keys[j]]++] = j;
  return { start, members };
}

/** outcome of one detection at one (area range, IoU threshold), as accumulate() sees it */
const FP = 0;
const TP = 1;
const IGNORED = 2;

/**
 * Evaluate; returns the 12 summary statistics (-1 where pycocotools reports -1: no non-crowd
 * ground truth in that range) and per-class figures.
 */
export function evaluateCocoColumns(gt: GtColumns, dt: DetColumns, progress?: (done: number, total: number) => void): CocoEvalResult {
  const I = gt.imgIds.length;
  const K = gt.catIds.length;
  const maxDet = MAX_DETS[M - 1];

  const gtKeys = new Int32Array(gt.n);
  for (let j = 0; j < gt.n; j++) gtKeys[j] = gt.catIdx[j] * I + gt.imgIdx[j];
  const dtKeys = new Int32Array(dt.n);
  for (let j = 0; j < dt.n; j++) dtKeys[j] = dt.catIdx[j] * I + dt.imgIdx[j];
  const gtGroups = groupBy(gtKeys, K * I);
  const dtGroups = groupBy(dtKeys, K * I);

  // accumulated per (k, a, m, t): sum over the 101 recall thresholds of interpolated precision, and recall
  const precSum = new Float64Array(K * A * M * T);
  const recall = new Float64Array(K * A * M * T);
  const valid = new Uint8Array(K * A * M);
  const numGtPerClass = new Int32Array(K);
  const numDtPerClass = new Int32Array(K);

  // scratch buffers, grown on demand
  let ious = new Float64Array(1024);
  let gOrder = new Int32Array(64);
  let gMatched = new Uint8Array(64);
  let rc = new Float64Array(1024);
  let pr = new Float64Array(1024);
  const dOrder: number[] = [];

  for (let k = 0; k < K; k++) {
    progress?.(k, K);
    // --- evaluate(): per image of this class ---
    let nK = 0;
    for (let i = 0; i < I; i++) {
      const key = k * I + i;
      nK += Math.min(maxDet, dtGroups.start[key + 1] - dtGroups.start[key]);
      numGtPerClass[k] += gtGroups.start[key + 1] - gtGroups.start[key];
    }
    numDtPerClass[k] = nK;
    const codes = new Uint8Array(nK * A * T);
    const scores = new Float64Array(nK);
    const rank = new Uint8Array(nK);
    const npig = [0, 0, 0, 0];
    let pos = 0;
    for (let i = 0; i < I; i++) {
      const key = k * I + i;
      const g0 = gtGroups.start[key];
      const G = gtGroups.start[key + 1] - g0;
      const d0 = dtGroups.start[key];
      const Dall = dtGroups.start[key + 1] - d0;
      if (G === 0 && Dall === 0) continue;
      // detections by score, descending, stable (Array.prototype.sort is stable)
      dOrder.length = Dall;
      for (let d = 0; d < Dall; d++) dOrder[d] = dtGroups.members[d0 + d];
      if (Dall > 1) dOrder.sort((x, y) => dt.score[y] - dt.score[x]);
      const D = Math.min(Dall, maxDet);
      // IoU [D x G], GT in file order (maskApi bbIou)
      if (ious.length < D * G) ious = new Float64Array(D * G * 2);
      for (let d = 0; d < D; d++) {
        const dj = dOrder[d] * 4;
        const dx = dt.box[dj],
          dy = dt.box[dj + 1],
          dw = dt.box[dj + 2],
          dh = dt.box[dj + 3];
        const da = dw * dh;
        for (let g = 0; g < G; g++) {
          const gj = gtGroups.members[g0 + g];
          const b = gj * 4;
          const gx = gt.box[b],
            gy = gt.box[b + 1],
            gw = gt.box[b + 2],
            gh = gt.box[b + 3];
          let v = 0;
          const w = Math.min(dw + dx, gw + gx) - Math.max(dx, gx);
          if (w > 0) {
            const h = Math.min(dh + dy, gh + gy) - Math.max(dy, gy);
            if (h > 0) {
              const inter = w * h;
              const u = gt.crowd[gj] ? da : da + gw * gh - inter;
              v = inter / u;
            }
          }
          ious[d * G + g] = v;
        }
      }
      if (gOrder.length < G) {
        gOrder = new Int32Array(G * 2);
        gMatched = new Uint8Array(G * 2);
      }
      for (let a = 0; a < A; a++) {
        const lo = AREA_RANGES[a][0];
        const hi = AREA_RANGES[a][1];
        // GT order: not-ignored first, stable; positions >= n0 are ignored
        let n0 = 0;
        for (let g = 0; g < G; g++) {
          const gj = gtGroups.members[g0 + g];
          const ar = gt.area[gj];
          if (!(gt.crowd[gj] || ar < lo || ar > hi)) gOrder[n0++] = g;
        }
        let p = n0;
        for (let g = 0; g < G; g++) {
          const gj = gtGroups.members[g0 + g];
          const ar = gt.area[gj];
          if (gt.crowd[gj] || ar < lo || ar > hi) gOrder[p++] = g;
        }
        npig[a] += n0;
        for (let t = 0; t < T; t++) {
          const thr = Math.min(IOU_THRS[t], 1 - 1e-10);
          gMatched.fill(0, 0, G);
          for (let d = 0; d < D; d++) {
            let best = thr;
            let m = -1;
            const row = d * G;
            for (let q = 0; q < G; q++) {
              const g = gOrder[q];
              const gj = gtGroups.members[g0 + g];
              if (gMatched[q] && !gt.crowd[gj]) continue;
              if (m > -1 && m < n0 && q >= n0) break;
              const v = ious[row + g];
              if (v < best) continue;
              best = v;
              m = q;
            }
            const dj = dOrder[d] * 4;
            const dArea = dt.box[dj + 2] * dt.box[dj + 3];
            const outside = dArea < lo || dArea > hi;
            let code: number;
            if (m === -1) {
              code = outside ? IGNORED : FP;
            } else {
              gMatched[m] = 1;
              const matchedId = gt.id[gtGroups.members[g0 + gOrder[m]]];
              const unmatched = matchedId === 0; // pycocotools' dtMatches==0 sentinel
              const ignored = m >= n0 || (unmatched && outside);
              code = ignored ? IGNORED : unmatched ? FP : TP;
            }
            codes[((pos + d) * A + a) * T + t] = code;
          }
        }
      }
      for (let d = 0; d < D; d++) {
        scores[pos + d] = dt.score[dOrder[d]];
        rank[pos + d] = d;
      }
      pos += D;
    }

    // --- accumulate(): all images of this class, by score (ties: image order, then rank) ---
    const order = new Int32Array(nK);
    for (let j = 0; j < nK; j++) order[j] = j;
    order.sort((x, y) => scores[y] - scores[x] || x - y);
    if (rc.length < nK) {
      rc = new Float64Array(nK * 2);
      pr = new Float64Array(nK * 2);
    }
    for (let a = 0; a < A; a++) {
      const np = npig[a];
      if (np === 0) continue;
      for (let mi = 0; mi < M; mi++) {
        const mDet = MAX_DETS[mi];
        const cell = (k * A + a) * M + mi;
        valid[cell] = 1;
        for (let t = 0; t < T; t++) {
          let tp = 0;
          let fp = 0;
          let nd = 0;
          for (let o = 0; o < nK; o++) {
            const j = order[o];
            if (rank[j] >= mDet) continue;
            const c = codes[(j * A + a) * T + t];
            if (c === TP) tp++;
            else if (c === FP) fp++;
            rc[nd] = tp / np;
            pr[nd] = tp / (fp + tp + EPS);
            nd++;
          }
          recall[cell * T + t] = nd ? rc[nd - 1] : 0;
          // precision envelope, non-increasing from the right
          for (let x = nd - 1; x > 0; x--) if (pr[x] > pr[x - 1]) pr[x - 1] = pr[x];
          // q[r] = pr[searchsorted(rc, recThrs[r], 'left')], 0 past the end
          let sum = 0;
          let x = 0;
          for (let r = 0; r < R; r++) {
            const thrR = REC_THRS[r];
            while (x < nd && rc[x] < thrR) x++;
            if (x >= nd) break;
            sum += pr[x];
          }
          precSum[cell * T + t] = sum;
        }
      }
    }
  }

  progress?.(K, K);

  // --- summarize() ---
  const tAll = Array.from({ length: T }, (_, t) => t);
  const tAt = (thr: number) => tAll.filter((t) => IOU_THRS[t] === thr);
  const mAt = (n: number) => MAX_DETS.indexOf(n as (typeof MAX_DETS)[number]);
  const meanAp = (ts: number[], a: number, mi: number, ks: number[]): number => {
    let s = 0;
    let c = 0;
    for (const k of ks) {
      const cell = (k * A + a) * M + mi;
      if (!valid[cell]) continue;
      for (const t of ts) {
        s += precSum[cell * T + t];
        c += R;
      }
    }
    return c === 0 ? -1 : s / c;
  };
  const meanAr = (a: number, mi: number, ks: number[]): number => {
    let s = 0;
    let c = 0;
    for (const k of ks) {
      const cell = (k * A + a) * M + mi;
      if (!valid[cell]) continue;
      for (let t = 0; t < T; t++) {
        s += recall[cell * T + t];
        c++;
      }
    }
    return c === 0 ? -1 : s / c;
  };
  const allK = Array.from({ length: K }, (_, k) => k);
  const m100 = mAt(100);
  const values = [
    meanAp(tAll, 0, m100, allK),
    meanAp(tAt(0.5), 0, m100, allK),
    meanAp(tAt(0.75), 0, m100, allK),
    meanAp(tAll, 1, m100, allK),
    meanAp(tAll, 2, m100, allK),
    meanAp(tAll, 3, m100, allK),
    meanAr(0, mAt(1), allK),
    meanAr(0, mAt(10), allK),
    meanAr(0, m100, allK),
    meanAr(1, m100, allK),
    meanAr(2, m100, allK),
    meanAr(3, m100, allK),
  ];
  const stats = Object.fromEntries(COCO_STAT_NAMES.map((name, s) => [name, values[s]])) as CocoStats;
  const perClass = new Map<number, PerClassResult>();
  const orNull = (v: number) => (v < 0 ? null : v);
  for (let k = 0; k < K; k++) {
    perClass.set(gt.catIds[k], {
      AP: orNull(meanAp(tAll, 0, m100, [k])),
      AP50: orNull(meanAp(tAt(0.5), 0, m100, [k])),
      AP75: orNull(meanAp(tAt(0.75), 0, m100, [k])),
      AR100: orNull(meanAr(0, m100, [k])),
      numGt: numGtPerClass[k],
      numDets: numDtPerClass[k],
    });
  }
  return { stats, perClass };
}
