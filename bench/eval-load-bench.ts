/**
 * Loading benchmark: a train2017-sized COCO instances file (118,287 images, 860,001 annotations
 * with polygon segmentations, about 390 MB) read by the project's loader (streamed element by
 * element above 64 MB, segmentation dropped, every record validated with zod) against the naive
 * reference in the same run: JSON.parse of the whole file + CocoInstancesSchema.parse. Each runs in
 * its own process; we report wall time and peak RSS.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/eval-load-bench.js [--images 118287] [--annotations 860001]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../common/paths';
import { loadCocoInstances } from '../datasets/coco';
import { CocoInstancesSchema } from '../datasets/coco-schema';
import { Rng } from '../datasets/prng';

function writeBigFile(file: string, images: number, annotations: number): void {
  const rng = new Rng(7);
  const fd = fs.openSync(file, 'w');
  const parts: string[] = [];
  const flush = (force = false) => {
    if (parts.length > 2000 || force) {
      fs.writeSync(fd, parts.join(''));
      parts.length = 0;
    }
  };
  parts.push('{"info": {"description": "train2017-sized synthetic"}, "licenses": [{"id": 1, "name": "x"}], "images": [');
  for (let i = 0; i < images; i++) {
    const id = i + 1;
    parts.push(
      (i ? ',' : '') +
        JSON.stringify({
          license: 1,
          file_name: `${String(id).padStart(12, '0')}.jpg`,
          coco_url: `http://images.cocodataset.org/train2017/${String(id).padStart(12, '0')}.jpg`,
          height: 480,
          width: 640,
          date_captured: '2013-11-14 16:28:13',
          id,
        }),
    );
    flush();
  }
  parts.push('], "annotations": [');
  for (let j = 0; j < annotations; j++) {
    const seg = Array.from({ length: rng.int(20, 50) }, () => Math.round(rng.uniform(0, 600) * 100) / 100);
    const bbox = [rng.uniform(0, 500), rng.uniform(0, 350), rng.uniform(1, 100), rng.uniform(1, 100)].map((v) => Math.round(v * 100) / 100);
    parts.push(
      (j ? ',' : '') +
        JSON.stringify({
          segmentation: [seg],
          area: Math.round(rng.uniform(10, 50000) * 1e4) / 1e4,
          iscrowd: 0,
          image_id: rng.int(1, images),
          bbox,
          category_id: rng.int(1, 80),
          id: j + 1,
        }),
    );
    flush();
  }
  parts.push(
    '], "categories": [' + Array.from({ length: 80 }, (_, k) => JSON.stringify({ supercategory: 's', id: k + 1, name: `c${k + 1}` })).join(',') + ']}',
  );
  flush(true);
  fs.closeSync(fd);
}

async function child(mode: string, file: string): Promise<void> {
  const t0 = process.hrtime.bigint();
  let n: number;
  if (mode === 'loader') n = (await loadCocoInstances(file)).annotations.length;
  else n = CocoInstancesSchema.parse(JSON.parse(fs.readFileSync(file, 'utf8'))).annotations.length;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  process.stdout.write(JSON.stringify({ annotations: n, seconds, maxRssMB: process.resourceUsage().maxRSS / 1024 }) + '\n');
}

function run(mode: string, file: string): { annotations: number; seconds: number; maxRssMB: number; wall: number } | { error: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['--max-old-space-size=16000', __filename, '--child', mode, file], { encoding: 'utf8' });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) return { error: r.stderr.trim().split('\n').slice(-3).join(' ') };
  return { ...JSON.parse(r.stdout), wall };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') return child(argv[1], argv[2]);
  const opt = (name: string, d: number) => (argv.includes(`--${name}`) ? Number(argv[argv.indexOf(`--${name}`) + 1]) : d);
  const dir = path.join(PROJECT_ROOT, 'bench', 'out');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'train2017-like.json');
  writeBigFile(file, opt('images', 118287), opt('annotations', 860001));
  const size = fs.statSync(file).size;
  process.stderr.write(`wrote ${file} (${(size / 1e6).toFixed(0)} MB)\n`);
  const loader = run('loader', file);
  const naive = run('naive', file);
  const result = {
    fileMB: size / 1e6,
    loader,
    naive,
    ...('wall' in loader && 'wall' in naive ? { timeRatio: naive.wall / loader.wall, memoryRatio: loader.maxRssMB / naive.maxRssMB } : {}),
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  fs.rmSync(file);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exitCode = 1;
});
