/**
 * Evaluation benchmark: a COCO-val-sized case (5,000 images, ~7 GT boxes each, 100 detections
 * per image, 80 classes) evaluated by `smnas eval`'s code path and by pycocotools in the same run.
 * Both sides go file -> 12 stats in their own process; we report wall time (spawn to exit and the
 * in-process evaluation time) and peak memory (Node process.resourceUsage().maxRSS, Python
 * resource.getrusage().ru_maxrss), and check that the stats agree.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/eval-bench.js [--images 5000] [--dets 100] [--runs 3]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT, VENV_PYTHON } from '../common/paths';
import type { CocoDetection, CocoInstances } from '../datasets/coco-schema';
import { Rng } from '../datasets/prng';
import { evaluateCocoFiles } from '../evaluation/coco-eval-io';
import { COCO_STAT_NAMES } from '../protocol/trainer-messages';

function makeCase(images: number, detsPerImage: number, classes: number, seed: number): { gt: CocoInstances; dets: CocoDetection[] } {
  const rng = new Rng(seed);
  const gt: CocoInstances = { images: [], annotations: [], categories: [] };
  // COCO's category ids have gaps (1..90 for 80 classes)
  for (let k = 0, id = 1; k < classes; k++, id += k % 8 === 0 ? 2 : 1) gt.categories.push({ id, name: `class${k}` });
  const dets: CocoDetection[] = [];
  const box = (W: number, H: number): [number, number, number, number] => {
    const side = Math.exp(rng.uniform(Math.log(6), Math.log(400)));
    const ar = Math.exp(rng.uniform(-0.7, 0.7));
    const w = Math.min(W - 1, side * ar);
    const h = Math.min(H - 1, side / ar);
    return [rng.uniform(0, W - w), rng.uniform(0, H - h), w, h];
  };
  for (let i = 0; i < images; i++) {
    const id = 100000 + i * 7;
    const [W, H] = rng.next() < 0.5 ? [640, 480] : [480, 640];
    gt.images.push({ id, file_name: `${id}.jpg`, width: W, height: H });
    const n = rng.int(0, 14);
    const mine: CocoInstances['annotations'] = [];
    for (let q = 0; q < n; q++) {
      const b = box(W, H);
      const a = {
        id: gt.annotations.length + 1,
        image_id: id,
        category_id: gt.categories[rng.int(0, classes - 1)].id,
        bbox: b,
        area: b[2] * b[3] * rng.uniform(0.5, 0.9),
        iscrowd: (rng.next() < 0.01 ? 1 : 0) as 0 | 1,
      };
      gt.annotations.push(a);
      mine.push(a);
    }
    for (let q = 0; q < detsPerImage; q++) {
      const near = mine.length > 0 && rng.next() < 0.4 ? mine[rng.int(0, mine.length - 1)] : null;
      const b: [number, number, number, number] = near
        ? [
            near.bbox[0] + rng.uniform(-0.2, 0.2) * near.bbox[2],
            near.bbox[1] + rng.uniform(-0.2, 0.2) * near.bbox[3],
            near.bbox[2] * rng.uniform(0.8, 1.2),
            near.bbox[3] * rng.uniform(0.8, 1.2),
          ]
        : box(W, H);
      const cat = near && rng.next() < 0.8 ? near.category_id : gt.categories[rng.int(0, classes - 1)].id;
      dets.push({
        image_id: id,
        category_id: cat,
        bbox: b.map((v) => Math.round(v * 100) / 100) as [number, number, number, number],
        score: Math.round(rng.next() * 1e4) / 1e4,
      });
    }
  }
  return { gt, dets };
}

const PY = `
import json, resource, sys, time, contextlib
t0 = time.time()
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
with contextlib.redirect_stdout(sys.stderr):
    gt = COCO(sys.argv[1]); dt = gt.loadRes(sys.argv[2])
    ev = COCOeval(gt, dt, 'bbox'); ev.evaluate(); ev.accumulate(); ev.summarize()
print(json.dumps({"stats": list(map(float, ev.stats)), "seconds": time.time() - t0, "maxRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
`;

async function child(gtFile: string, detFile: string): Promise<void> {
  const t0 = process.hrtime.bigint();
  const r = await evaluateCocoFiles(gtFile, detFile);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  process.stdout.write(JSON.stringify({ stats: COCO_STAT_NAMES.map((n) => r.stats[n]), seconds, maxRssMB: process.resourceUsage().maxRSS / 1024 }) + '\n');
}

function timed(cmd: string, args: string[]): { out: { stats: number[]; seconds: number; maxRssMB: number }; wall: number } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.slice(-2000)}`);
  return { out: JSON.parse(r.stdout.trim().split('\n').pop()!), wall };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') return child(argv[1], argv[2]);
  const opt = (name: string, d: number) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? Number(argv[i + 1]) : d;
  };
  const images = opt('images', 5000);
  const perImage = opt('dets', 100);
  const runs = opt('runs', 3);
  const dir = path.join(PROJECT_ROOT, 'bench', 'out');
  fs.mkdirSync(dir, { recursive: true });
  const gtFile = path.join(dir, 'eval-gt.json');
  const detFile = path.join(dir, 'eval-dets.json');
  const c = makeCase(images, perImage, 80, 1);
  fs.writeFileSync(gtFile, JSON.stringify(c.gt));
  fs.writeFileSync(detFile, JSON.stringify(c.dets));
  process.stderr.write(
    `case: ${images} images, ${c.gt.annotations.length} GT boxes, ${c.dets.length} detections, 80 classes; dets file ${(fs.statSync(detFile).size / 1e6).toFixed(1)} MB\n`,
  );
  const py = timed(VENV_PYTHON, ['-c', PY, gtFile, detFile]);
  process.stderr.write(`pycocotools: wall ${py.wall.toFixed(2)} s, peak RSS ${py.out.maxRssMB.toFixed(0)} MB\n`);
  const ours = Array.from({ length: runs }, () => timed(process.execPath, [__filename, '--child', gtFile, detFile]));
  const walls = ours.map((o) => o.wall).sort((a, b) => a - b);
  const median = walls[Math.floor(walls.length / 2)];
  const maxDiff = Math.max(...ours[0].out.stats.map((v, s) => Math.abs(v - py.out.stats[s])));
  const result = {
    case: { images, detsPerImage: perImage, classes: 80, gtBoxes: c.gt.annotations.length, detections: c.dets.length },
    pycocotools: { wallSeconds: py.wall, evalSeconds: py.out.seconds, peakRssMB: py.out.maxRssMB },
    smnas: {
      wallSecondsMedian: median,
      wallSeconds: walls,
      evalSeconds: ours.map((o) => o.out.seconds),
      peakRssMB: Math.max(...ours.map((o) => o.out.maxRssMB)),
    },
    speedup: py.wall / median,
    memoryRatio: Math.max(...ours.map((o) => o.out.maxRssMB)) / py.out.maxRssMB,
    maxStatDifference: maxDiff,
    stats: Object.fromEntries(COCO_STAT_NAMES.map((n, s) => [n, ours[0].out.stats[s]])),
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  if (maxDiff > 1e-4) {
    process.stderr.write(`stats differ from pycocotools by ${maxDiff}\n`);
    process.exitCode = 1;
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exitCode = 1;
});
