/**
 * The GPU check's inputs (bench/gpu-check.sh, issue #16), built here because the GPU machine has
 * no Node: every trainer job file of the check (through protocol/job-builder.ts, so each is
 * zod-valid and carries the layout that search/layout-resolve.ts resolves), the settings the
 * torchvision reference reads (bench/gpu/torchvision_ref.py), and a manifest. `--prepare` runs
 *   node dist/bench/gpu/jobs.js <dir>
 * which writes <dir>/<scale>/{jobs/*.json, torchvision.json, manifest.json} for both scales.
 *
 * Paths that only the machine running the check knows stay placeholders, replaced by the script:
 * `@DATA@` (the data set of the scale) and `@WORK@` (its work folder). Every job names device
 * `cuda:0`; `--device cpu` rewrites it.
 *
 * Models (paper Table 5, VOC at 800x600: FPN w R50 38.4 ms vs E0 21.5 ms, ratio 0.56):
 * - r50: `resnet50/fpn(P1-P4,c=256)/rpn/2fc`, the parameter-for-parameter twin of torchvision's
 *   fasterrcnn_resnet50_fpn and of mmdetection's R50-FPN (docs/search.md). Their fifth RPN level
 *   is a parameter-free max-pool of P4 in our numbering; this layout has four RPN levels.
 * - e0: `basicblock_64_1-21-21-12/fpn(P2-P5,c=128)/rpn/2fc`, the paper's Table 2 row E0 (backbone,
 *   neck, RPN and head as printed) at Table 5's 800x600 instead of Table 2's 512x512.
 * Recipe: `paper-final` (BN as the paper's final models, fc 1024, mmdetection's RPN/RoI/test
 * sample counts) with augmentation off (torchvision's reference neither flips nor jitters; a jitter
 * above 1 would also change the padded size), and a fixed iteration count.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DetectionJob } from '../../protocol/job';
import { buildDetectionJob } from '../../protocol/job-builder';
import type { DetectionRecipe, MixedPrecision, Norm } from '../../protocol/recipe';
import { getDetectionRecipe } from '../../protocol/recipes';

export const GPU_CHECK_MODELS = {
  r50: { label: 'ResNet-50-FPN', notation: 'resnet50/fpn(P1-P4,c=256)/rpn/2fc' },
  e0: { label: 'E0 (paper Table 2)', notation: 'basicblock_64_1-21-21-12/fpn(P2-P5,c=128)/rpn/2fc' },
} as const;
export type GpuCheckModel = keyof typeof GPU_CHECK_MODELS;

export interface GpuCheckScale {
  width: number;
  height: number;
  /** generated images per split (data synth, then JPEG: bench/gpu-check.sh --prepare) */
  train: number;
  val: number;
  classes: number;
  batch: number;
  /** training iterations before the timed window, and in it */
  warmupIterations: number;
  timedIterations: number;
  benchWarmup: number;
  benchIterations: number;
  /** trainer data-loading threads and intra-op threads (0 = libtorch's default) */
  workers: number;
  threads: number;
  /** resume check: iterations, checkpoint interval */
  resumeIterations: number;
  resumeEvery: number;
}

/** `full`: the GPU run (H200, < 8 minutes with the build). `smoke`: the CPU dry run (2 cores, minutes). */
export const GPU_CHECK_SCALES: Record<'full' | 'smoke', GpuCheckScale> = {
  full: {
    width: 800,
    height: 600,
    train: 64,
    val: 8,
    classes: 4,
    batch: 8,
    warmupIterations: 5,
    timedIterations: 20,
    benchWarmup: 10,
    benchIterations: 50,
    workers: 8,
    threads: 0,
    resumeIterations: 6,
    resumeEvery: 3,
  },
  smoke: {
    width: 320,
    height: 256,
    train: 8,
    val: 2,
    classes: 4,
    batch: 2,
    warmupIterations: 1,
    timedIterations: 2,
    benchWarmup: 1,
    benchIterations: 3,
    workers: 1,
    threads: 2,
    resumeIterations: 4,
    resumeEvery: 2,
  },
};

export interface GpuCheckRun {
  /** file stem of the job (jobs/<name>.json) and of the run folder (@WORK@/runs/<name>) */
  name: string;
  command: 'train' | 'bench';
  model: GpuCheckModel;
  norm: Norm;
  precision: MixedPrecision;
  /** fp16 autocast is CUDA-only (the trainer rejects it on the CPU) */
  cudaOnly: boolean;
  /** the training run whose weights a bench run loads */
  weightsFrom?: string;
}

/** What the check runs, in order. */
export const GPU_CHECK_RUNS: GpuCheckRun[] = [
  { name: 'train-r50-fp32', command: 'train', model: 'r50', norm: 'bn', precision: 'off', cudaOnly: false },
  { name: 'train-r50-bf16', command: 'train', model: 'r50', norm: 'bn', precision: 'bf16', cudaOnly: false },
  { name: 'train-e0-fp32', command: 'train', model: 'e0', norm: 'bn', precision: 'off', cudaOnly: false },
  { name: 'train-e0-bf16', command: 'train', model: 'e0', norm: 'bn', precision: 'bf16', cudaOnly: false },
  { name: 'train-e0-fp16', command: 'train', model: 'e0', norm: 'bn', precision: 'fp16', cudaOnly: true },
  // the search stages' recipe (GN + Weight Standardization from scratch) on the same model
  { name: 'train-e0-gnws-bf16', command: 'train', model: 'e0', norm: 'gn+ws', precision: 'bf16', cudaOnly: false },
  { name: 'bench-r50', command: 'bench', model: 'r50', norm: 'bn', precision: 'off', cudaOnly: false, weightsFrom: 'train-r50-fp32' },
  { name: 'bench-e0', command: 'bench', model: 'e0', norm: 'bn', precision: 'off', cudaOnly: false, weightsFrom: 'train-e0-fp32' },
];

export function archOf(model: GpuCheckModel, s: GpuCheckScale): string {
  return `${s.width}x${s.height}/${GPU_CHECK_MODELS[model].notation}`;
}

export function recipeFor(s: GpuCheckScale, norm: Norm, precision: MixedPrecision, iterations: number): DetectionRecipe {
  const r = getDetectionRecipe('paper-final');
  r.name = `gpu-check-${norm}-${precision}`;
  r.norm = norm;
  r.batchSize = s.batch;
  r.augment = { flip: false, scaleJitter: [1, 1] };
  r.workers = s.workers;
  r.maxIterations = iterations;
  r.epochs = Math.max(1, Math.ceil((iterations * s.batch) / s.train));
  if (precision !== 'off') r.mixedPrecision = precision;
  return r;
}

const WORK = '@WORK@';
const DATA = '@DATA@';

export function gpuCheckJobs(s: GpuCheckScale): Record<string, DetectionJob> {
  const jobs: Record<string, DetectionJob> = {};
  const iterations = s.warmupIterations + s.timedIterations;
  for (const run of GPU_CHECK_RUNS) {
    jobs[run.name] = buildDetectionJob({
      command: run.command,
      arch: archOf(run.model, s),
      recipe: recipeFor(s, run.norm, run.precision, iterations),
      numClasses: s.classes,
      dataRoot: DATA,
      outDir: `${WORK}/runs/${run.name}`,
      device: 'cuda:0',
      threads: s.threads,
      seed: 0,
      ...(run.weightsFrom ? { initWeights: `${WORK}/runs/${run.weightsFrom}/weights`, initKind: 'detector' as const } : {}),
      bench: { warmup: s.benchWarmup, iterations: s.benchIterations },
      // no checkpoint inside the timed window; train() always writes one at the end
      checkpoint: { everyIterations: 0, everySeconds: 0, keep: 1 },
    });
  }
  // Resume check (test/native/train.test.ts's durability test, without Node): the same short
  // E0 run twice (run-to-run determinism on this device), then from the first checkpoint of the
  // second run in a fresh folder with resume: true; compare the weights files.
  const resume = (name: string, resumeFlag: boolean) =>
    buildDetectionJob({
      command: 'train',
      arch: archOf('e0', s),
      recipe: recipeFor(s, 'bn', 'off', s.resumeIterations),
      numClasses: s.classes,
      dataRoot: DATA,
      outDir: `${WORK}/runs/${name}`,
      device: 'cuda:0',
      threads: s.threads,
      seed: 7,
      resume: resumeFlag,
      checkpoint: { everyIterations: s.resumeEvery, everySeconds: 0, keep: 10 },
    });
  jobs['resume-a'] = resume('resume-a', false);
  jobs['resume-b'] = resume('resume-b', false);
  jobs['resume-c'] = resume('resume-c', true);
  return jobs;
}

/** What bench/gpu/torchvision_ref.py needs to match the native runs (read from the r50 jobs). */
export function torchvisionSettings(s: GpuCheckScale) {
  const job = gpuCheckJobs(s)['train-r50-fp32'];
  const r = job.recipe;
  return {
    width: s.width,
    height: s.height,
    // the trainer's padded input (multiples of 32), for the record: torchvision pads the same way
    paddedInput: { width: job.layout.input.width, height: job.layout.input.height },
    numClasses: s.classes,
    batch: s.batch,
    warmupIterations: s.warmupIterations,
    timedIterations: s.timedIterations,
    benchWarmup: s.benchWarmup,
    benchIterations: s.benchIterations,
    fcWidth: r.fcWidth,
    rpn: r.rpn,
    roi: r.roi,
    test: r.test,
    optimizer: r.optimizer,
    warmup: { iterations: r.schedule.warmupIterations, ratio: r.schedule.warmupRatio },
    fpnChannels: 256,
  };
}

export function gpuCheckManifest(scaleName: 'full' | 'smoke') {
  const s = GPU_CHECK_SCALES[scaleName];
  return {
    scale: scaleName,
    ...s,
    models: Object.fromEntries(Object.entries(GPU_CHECK_MODELS).map(([k, m]) => [k, { label: m.label, arch: archOf(k as GpuCheckModel, s) }])),
    recipe: 'paper-final (BN, fc 1024, RPN 256 samples 2000/1000 proposals, RoI 512 samples), no flip or scale jitter',
    runs: GPU_CHECK_RUNS,
  };
}

/** Writes <dir>/<scale>/{jobs/*.json, torchvision.json, manifest.json} for both scales. */
export function writeGpuCheckInputs(dir: string): string[] {
  const written: string[] = [];
  for (const scale of ['full', 'smoke'] as const) {
    const s = GPU_CHECK_SCALES[scale];
    const jobsDir = path.join(dir, scale, 'jobs');
    fs.mkdirSync(jobsDir, { recursive: true });
    for (const [name, job] of Object.entries(gpuCheckJobs(s))) {
      const file = path.join(jobsDir, `${name}.json`);
      fs.writeFileSync(file, JSON.stringify(job) + '\n');
      written.push(file);
    }
    fs.writeFileSync(path.join(dir, scale, 'torchvision.json'), JSON.stringify(torchvisionSettings(s), null, 2) + '\n');
    fs.writeFileSync(path.join(dir, scale, 'manifest.json'), JSON.stringify(gpuCheckManifest(scale), null, 2) + '\n');
  }
  return written;
}

if (require.main === module) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: node dist/bench/gpu/jobs.js <dir>\n');
    process.exit(2);
  }
  const files = writeGpuCheckInputs(dir);
  process.stdout.write(`${files.length} job files under ${dir}\n`);
}
