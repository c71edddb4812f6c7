/** The COCO evaluator against pycocotools (the project venv's, installed by scripts/setup.sh) on many generated cases. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { COCO_STAT_NAMES } from '../../protocol/trainer-messages';
import { evaluateCoco } from '../../evaluation/coco-eval-io';
import { IOU_THRS, REC_THRS } from '../../evaluation/coco-eval';
import { makeCase, type CaseOptions } from '../support/coco-cases';
import { runPycocotools } from '../support/pycocotools';

const TOL = 1e-4;

describe('COCO evaluator properties', () => {
  it('perfect detections give AP = AR = 1; a permutation of distinct-score detections changes nothing', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e6 }), (seed) => {
        const c = makeCase(seed, { images: 8, categories: 3 });
        c.gt.annotations.forEach((a) => {
          a.iscrowd = 0;
          a.area = a.bbox[2] * a.bbox[3];
        });
        const perfect = c.gt.annotations.map((a, i) => ({ image_id: a.image_id, category_id: a.category_id, bbox: a.bbox, score: 1 - i * 1e-6 }));
        const r = evaluateCoco(c.gt, perfect);
        if (c.gt.annotations.length > 0) {
          expect(r.stats.AP).toBeCloseTo(1, 12);
          expect(r.stats.AR100).toBeCloseTo(1, 12);
        }
        const dets = c.dets.map((d, i) => ({ ...d, score: ((i * 7919) % 10007) / 10007 + 1e-9 * i }));
        const a = evaluateCoco(c.gt, dets);
        const b = evaluateCoco(c.gt, [...dets].reverse());
        expect(b.stats).toEqual(a.stats);
      }),
      { numRuns: 40 },
    );
  });
});

describe('COCO evaluator vs pycocotools', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-cocoeval-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('thresholds are bit-identical to numpy.linspace', () => {
    expect(IOU_THRS[8]).toBe(0.8999999999999999);
    expect(IOU_THRS.indexOf(0.75)).toBe(5);
    expect(REC_THRS[35]).toBe(35 * 0.01);
    expect(REC_THRS[35]).not.toBe(35 / 100);
  });

  it('agrees on all 12 stats and per-class AP over 160 generated cases', () => {
    const specs: { seed: number; opts: CaseOptions }[] = [];
    for (let s = 0; s < 120; s++) specs.push({ seed: 1000 + s, opts: {} });
    for (let s = 0; s < 15; s++) specs.push({ seed: 5000 + s, opts: { crowdedDets: 130, images: 6 } });
    for (let s = 0; s < 10; s++) specs.push({ seed: 7000 + s, opts: { idZero: true } });
    for (let s = 0; s < 15; s++) specs.push({ seed: 9000 + s, opts: { images: 60, categories: 8 } });
    const files = specs.map(({ seed, opts }, i) => {
      const c = makeCase(seed, opts);
      const gt = path.join(dir, `gt${i}.json`);
      const dets = path.join(dir, `dt${i}.json`);
      fs.writeFileSync(gt, JSON.stringify(c.gt));
      fs.writeFileSync(dets, JSON.stringify(c.dets));
      return { gt, dets, c };
    });
    // two edge cases: no detections at all; only crowd GT
    const empty = makeCase(42);
    files.push({ gt: path.join(dir, 'gtE.json'), dets: path.join(dir, 'dtE.json'), c: { gt: empty.gt, dets: [] } });
    const crowdOnly = makeCase(43);
    crowdOnly.gt.annotations.forEach((a) => (a.iscrowd = 1));
    files.push({ gt: path.join(dir, 'gtC.json'), dets: path.join(dir, 'dtC.json'), c: crowdOnly });
    for (const f of files.slice(-2)) {
      fs.writeFileSync(f.gt, JSON.stringify(f.c.gt));
      fs.writeFileSync(f.dets, JSON.stringify(f.c.dets));
    }
    const oracle = runPycocotools(
      files.map(({ gt, dets }) => ({ gt, dets })),
      dir,
    );
    let worst = 0;
    files.forEach((f, i) => {
      const ours = evaluateCoco(f.c.gt, f.c.dets);
      COCO_STAT_NAMES.forEach((name, s) => {
        const diff = Math.abs(ours.stats[name] - oracle[i].stats[s]);
        worst = Math.max(worst, diff);
        if (diff > TOL) throw new Error(`case ${i} (${f.gt}): ${name} ours ${ours.stats[name]} vs pycocotools ${oracle[i].stats[s]}`);
      });
      for (const r of Object.values(ours.perClass)) {
        const want = oracle[i].perClass[String(r.id)];
        if (want === null) expect(r.AP).toBeNull();
        else expect(Math.abs((r.AP ?? NaN) - want)).toBeLessThan(TOL);
      }
    });
    // the implementation mirrors pycocotools' arithmetic, so it is in fact far tighter than 1e-4
    expect(worst).toBeLessThan(1e-12);
    // the cases really exercise something: not all stats are trivial
    expect(oracle.some((o) => o.stats[0] > 0.05 && o.stats[0] < 0.95)).toBe(true);
    expect(oracle.some((o) => o.stats[3] === -1 || o.stats[5] === -1)).toBe(true);
  });
});
