/**
 * Pascal VOC mAP@IoU (default 0.5) with mmdetection's `tpfp_default` matching:
 *  - per image and class, detections by score; each takes the argmax-IoU ground truth over ALL
 *    GTs, difficult ones included (first maximum on ties);
 *  - IoU >= thr: difficult GT -> neither TP nor FP; uncovered GT -> TP; covered GT -> FP (no
 *    fall back to the second-best GT); IoU < thr -> FP;
 *  - all detections of a class sorted by score (stable: ties keep image order, then file order);
 *  - AP: VOC2010+ all-points area under the precision envelope, or VOC2007 11-point;
 *  - mAP over classes with at least one non-difficult GT.
 * Boxes are COCO [x, y, w, h] with no +1 (mmdet's default `use_legacy_coordinate=False`).
 * In the canonical form a VOC `difficult` object is an annotation with iscrowd = 1.
 */
import type { DetColumns, GtColumns } from './coco-eval';

export interface VocClassResult {
  /** null when the class has no non-difficult GT (excluded from mAP) */
  AP: number | null;
  numGt: number;
  numDets: number;
}

export interface VocEvalResult {
  mAP: number;
  metric: 'voc2010' | 'voc07';
  iouThr: number;
  perClass: Map<number, VocClassResult>;
}

/** AP from recall/precision arrays (in score order). */
export function vocAp(recalls: ArrayLike<number>, precisions: ArrayLike<number>, mode: 'area' | '11points'): number {
  const n = recalls.length;
  if (mode === '11points') {
    let ap = 0;
    for (let k = 0; k <= 10; k++) {
      const thr = k * 0.1; // numpy.arange(0, 1.1, 0.1)
      let best = 0;
      for (let i = 0; i < n; i++) if (recalls[i] >= thr && precisions[i] > best) best = precisions[i];
      ap += best;
    }
    return ap / 11;
  }
  const mrec = new Float64Array(n + 2);
  const mpre = new Float64Array(n + 2);
  for (let i = 0; i < n; i++) {
    mrec[i + 1] = recalls[i];
    mpre[i + 1] = precisions[i];
  }
  mrec[n + 1] = 1;
  for (let i = n; i >= 0; i--) if (mpre[i + 1] > mpre[i]) mpre[i] = mpre[i + 1];
  let ap = 0;
  for (let i = 0; i <= n; i++) if (mrec[i + 1] !== mrec[i]) ap += (mrec[i + 1] - mrec[i]) * mpre[i + 1];
  return ap;
}

export function evaluateVocColumns(gt: GtColumns, dt: DetColumns, opts: { voc07?: boolean; iouThr?: number } = {}): VocEvalResult {
  const iouThr = opts.iouThr ?? 0.5;
  const K = gt.catIds.length;
  const I = gt.imgIds.length;
  const eps = 2.220446049250313e-16; // np.finfo(np.float32).eps in mmdet is for float32 arrays; counts are integers so any tiny eps gives the same ratios
  // group GT and detections per (class, image), keeping file order
  const gtBy: number[][] = Array.from({ length: K * I }, () => []);
  for (let j = 0; j < gt.n; j++) gtBy[gt.catIdx[j] * I + gt.imgIdx[j]].push(j);
  const dtBy: number[][] = Array.from({ length: K * I }, () => []);
  for (let j = 0; j < dt.n; j++) dtBy[dt.catIdx[j] * I + dt.imgIdx[j]].push(j);
  const perClass = new Map<number, VocClassResult>();
  const aps: number[] = [];
  for (let k = 0; k < K; k++) {
    let numGt = 0;
    const scores: number[] = [];
    const tp: number[] = [];
    const fp: number[] = [];
    for (let i = 0; i < I; i++) {
      const gts = gtBy[k * I + i];
      for (const g of gts) if (!gt.crowd[g]) numGt++;
      const dets = dtBy[k * I + i].slice().sort((a, b) => dt.score[b] - dt.score[a]);
      const covered = new Uint8Array(gts.length);
      for (const d of dets) {
        const [dx, dy, dw, dh] = [dt.box[4 * d], dt.box[4 * d + 1], dt.box[4 * d + 2], dt.box[4 * d + 3]];
        let best = -Infinity;
        let arg = -1;
        for (let q = 0; q < gts.length; q++) {
          const g = gts[q];
          const [gx, gy, gw, gh] = [gt.box[4 * g], gt.box[4 * g + 1], gt.box[4 * g + 2], gt.box[4 * g + 3]];
          const w = Math.max(0, Math.min(dx + dw, gx + gw) - Math.max(dx, gx));
          const h = Math.max(0, Math.min(dy + dh, gy + gh) - Math.max(dy, gy));
          const inter = w * h;
          const union = Math.max(dw * dh + gw * gh - inter, eps);
          const iou = inter / union;
          if (iou > best) {
            best = iou;
            arg = q;
          }
        }
        let isTp = 0;
        let isFp = 0;
        if (arg >= 0 && best >= iouThr) {
          if (!gt.crowd[gts[arg]]) {
            if (!covered[arg]) {
              covered[arg] = 1;
              isTp = 1;
            } else isFp = 1;
          }
        } else isFp = 1;
        scores.push(dt.score[d]);
        tp.push(isTp);
        fp.push(isFp);
      }
    }
    const order = scores.map((_, j) => j).sort((a, b) => scores[b] - scores[a] || a - b);
    const rec = new Float64Array(order.length);
    const prec = new Float64Array(order.length);
    let ctp = 0;
    let cfp = 0;
    order.forEach((j, o) => {
      ctp += tp[j];
      cfp += fp[j];
      rec[o] = ctp / Math.max(numGt, eps);
      prec[o] = ctp / Math.max(ctp + cfp, eps);
    });
    const ap = numGt > 0 ? vocAp(rec, prec, opts.voc07 ? '11points' : 'area') : null;
    if (ap !== null) aps.push(ap);
    perClass.set(gt.catIds[k], { AP: ap, numGt, numDets: scores.length });
  }
  return { mAP: aps.length ? aps.reduce((s, v) => s + v, 0) / aps.length : 0, metric: opts.voc07 ? 'voc07' : 'voc2010', iouThr, perClass };
}
