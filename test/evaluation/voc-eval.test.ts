/** VOC mAP against a hand-computed case and a straightforward reference (py-faster-rcnn style) on random cases. */
import { evaluateVocColumns, vocAp } from '../../evaluation/voc-eval';
import { DetectionCollector, indexGroundTruth } from '../../evaluation/coco-eval-io';
import type { CocoDetection, CocoInstances } from '../../datasets/coco-schema';
import { makeCase } from '../support/coco-cases';

function run(gt: CocoInstances, dets: CocoDetection[], voc07 = false) {
  const index = indexGroundTruth(gt);
  const c = new DetectionCollector(index, 'dets');
  dets.forEach((d, i) => c.add(d, i));
  return evaluateVocColumns(index.columns, c.columns(), { voc07 });
}

/** Reference: objects and plain loops, written independently of voc-eval.ts. */
function referenceVoc(gt: CocoInstances, dets: CocoDetection[], voc07: boolean): number {
  const iou = (a: number[], b: number[]) => {
    const iw = Math.max(0, Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]));
    const ih = Math.max(0, Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]));
    const inter = iw * ih;
    const u = a[2] * a[3] + b[2] * b[3] - inter;
    return u > 0 ? inter / u : 0;
  };
  const imgOrder = [...gt.images].map((i) => i.id).sort((a, b) => a - b);
  const aps: number[] = [];
  for (const cat of [...gt.categories].sort((a, b) => a.id - b.id)) {
    const gts = gt.annotations.filter((a) => a.category_id === cat.id);
    const npos = gts.filter((g) => !g.iscrowd).length;
    if (npos === 0) continue;
    const records: { score: number; tp: number; fp: number }[] = [];
    for (const img of imgOrder) {
      const g = gts.filter((a) => a.image_id === img).map((a) => ({ ...a, used: false }));
      const ds = dets.filter((d) => d.image_id === img && d.category_id === cat.id).sort((a, b) => b.score - a.score);
      for (const d of ds) {
        let best = -1;
        let bi = -1;
        g.forEach((x, i) => {
          const o = iou(d.bbox, x.bbox);
          if (o > best) [best, bi] = [o, i];
        });
        if (bi >= 0 && best >= 0.5) {
          if (g[bi].iscrowd) continue; // difficult: neither
          if (!g[bi].used) {
            g[bi].used = true;
            records.push({ score: d.score, tp: 1, fp: 0 });
          } else records.push({ score: d.score, tp: 0, fp: 1 });
        } else records.push({ score: d.score, tp: 0, fp: 1 });
      }
    }
    // stable sort keeps image order on ties, as the implementation documents
    records.sort((a, b) => b.score - a.score);
    let tp = 0;
    let fp = 0;
    const rec: number[] = [];
    const prec: number[] = [];
    for (const r of records) {
      tp += r.tp;
      fp += r.fp;
      rec.push(tp / npos);
      prec.push(tp / (tp + fp));
    }
    let ap = 0;
    if (voc07) {
      // thresholds as numpy.arange(0, 1.1, 0.1) computes them: k * 0.1 (so 0.30000000000000004)
      for (let k = 0; k <= 10; k++) {
        const t = k * 0.1;
        const ps = prec.filter((_, i) => rec[i] >= t);
        ap += (ps.length ? Math.max(...ps) : 0) / 11;
      }
    } else {
      const mrec = [0, ...rec, 1];
      const mpre = [0, ...prec, 0];
      for (let i = mpre.length - 2; i >= 0; i--) mpre[i] = Math.max(mpre[i], mpre[i + 1]);
      for (let i = 1; i < mrec.length; i++) if (mrec[i] !== mrec[i - 1]) ap += (mrec[i] - mrec[i - 1]) * mpre[i];
    }
    aps.push(ap);
  }
  return aps.length ? aps.reduce((a, b) => a + b, 0) / aps.length : 0;
}

describe('VOC mAP', () => {
  const gt: CocoInstances = {
    images: [
      { id: 1, file_name: 'a', width: 100, height: 100 },
      { id: 2, file_name: 'b', width: 100, height: 100 },
    ],
    categories: [
      { id: 1, name: 'a' },
      { id: 2, name: 'b' },
    ],
    annotations: [
      { id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], area: 100, iscrowd: 0 },
      { id: 2, image_id: 2, category_id: 1, bbox: [50, 50, 20, 20], area: 400, iscrowd: 0 },
      { id: 3, image_id: 1, category_id: 1, bbox: [60, 0, 10, 10], area: 100, iscrowd: 1 }, // difficult
    ],
  };
  const dets: CocoDetection[] = [
    { image_id: 1, category_id: 1, bbox: [60, 0, 10, 10], score: 0.95 }, // on the difficult object: ignored
    { image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], score: 0.9 }, // TP
    { image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], score: 0.85 }, // duplicate: FP
    { image_id: 2, category_id: 1, bbox: [50, 50, 20, 20], score: 0.7 }, // TP
    { image_id: 2, category_id: 2, bbox: [0, 0, 5, 5], score: 0.5 }, // class without GT: not in mAP
  ];

  it('hand-computed case: all-points and 11-point', () => {
    // TP, FP, TP -> rec [.5, .5, 1], prec [1, .5, 2/3]
    const r = run(gt, dets);
    expect(r.mAP).toBeCloseTo(0.5 * 1 + 0.5 * (2 / 3), 12);
    expect(r.perClass.get(2)!.AP).toBeNull();
    const r07 = run(gt, dets, true);
    expect(r07.mAP).toBeCloseTo((6 * 1 + 5 * (2 / 3)) / 11, 12);
    expect(vocAp([], [], 'area')).toBe(0);
  });

  it('matches the reference on 60 random cases (both metrics)', () => {
    for (let s = 0; s < 60; s++) {
      const c = makeCase(300 + s);
      for (const voc07 of [false, true]) {
        const got = run(c.gt, c.dets, voc07).mAP;
        const want = referenceVoc(c.gt, c.dets, voc07);
        if (Math.abs(got - want) > 1e-10) throw new Error(`case ${s} voc07=${voc07}: ${got} vs ${want}`);
      }
    }
  });
});
