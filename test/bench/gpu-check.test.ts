/**
 * The GPU check's prepared inputs (bench/gpu/jobs.ts, used by `bash bench/gpu-check.sh --prepare`):
 * every job, with the placeholders and device filled in as bench/gpu-check.sh does on the GPU
 * machine (or with --device cpu), is a valid trainer job; the runs compare what they say they do.
 * Cheap: no data, no trainer.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { GPU_CHECK_RUNS, GPU_CHECK_SCALES, gpuCheckJobs, gpuCheckManifest, torchvisionSettings } from '../../bench/gpu/jobs';
import { DetectionJobSchema } from '../../protocol/job';
import { PROJECT_ROOT } from '../../common/paths';

/** What bench/gpu-check.sh's job_file() does with sed. */
function filled(job: unknown, device: 'cuda:0' | 'cpu'): unknown {
  const text = JSON.stringify(job)
    .replaceAll('@WORK@', '/tmp/smnas-gpu-check')
    .replaceAll('@DATA@', '/repo/.gpu-check/full/data')
    .replaceAll('"device":"cuda:0"', `"device":"${device}"`);
  return JSON.parse(text);
}

describe('GPU check job files', () => {
  for (const scaleName of ['full', 'smoke'] as const) {
    const s = GPU_CHECK_SCALES[scaleName];
    const jobs = gpuCheckJobs(s);

    it(`${scaleName}: every job is valid on cuda:0 and on the CPU, with the scale's input, batch and iterations`, () => {
      expect(Object.keys(jobs).sort()).toEqual([...GPU_CHECK_RUNS.map((r) => r.name), 'resume-a', 'resume-b', 'resume-c'].sort());
      for (const [name, job] of Object.entries(jobs)) {
        for (const device of ['cuda:0', 'cpu'] as const) {
          const r = DetectionJobSchema.safeParse(filled(job, device));
          expect(r.success).toBe(true);
          if (!r.success) continue;
          expect(r.data.device).toBe(device);
          expect(r.data.outDir).toBe(`/tmp/smnas-gpu-check/runs/${name}`);
          expect(r.data.layout.input.width).toBe(Math.ceil(s.width / 32) * 32);
          expect(r.data.layout.input.height).toBe(Math.ceil(s.height / 32) * 32);
          expect(r.data.recipe.batchSize).toBe(s.batch);
          expect(r.data.recipe.augment).toEqual({ flip: false, scaleJitter: [1, 1] });
        }
      }
      for (const run of GPU_CHECK_RUNS) {
        const job = jobs[run.name];
        expect(job.arch.startsWith(`${s.width}x${s.height}/`)).toBe(true);
        expect(job.recipe.norm).toBe(run.norm);
        expect(job.recipe.mixedPrecision ?? 'off').toBe(run.precision);
        if (run.command === 'train') {
          expect(job.recipe.maxIterations).toBe(s.warmupIterations + s.timedIterations);
          // enough epochs that maxIterations, not the epoch count, ends the run
          expect(job.recipe.epochs * Math.ceil(s.train / s.batch)).toBeGreaterThanOrEqual(job.recipe.maxIterations!);
        } else {
          expect(job.initKind).toBe('detector');
          expect(job.initWeights).toBe(`@WORK@/runs/${run.weightsFrom}/weights`);
          expect(jobs[run.weightsFrom!].arch).toBe(job.arch);
        }
      }
      expect(GPU_CHECK_RUNS.filter((r) => r.precision === 'fp16').every((r) => r.cudaOnly)).toBe(true);
    });

    it(`${scaleName}: the resume runs are one job twice, then resumed from the first checkpoint`, () => {
      const [a, b, c] = [jobs['resume-a'], jobs['resume-b'], jobs['resume-c']];
      const strip = (j: typeof a) => ({ ...j, outDir: '', resume: false });
      expect(strip(b)).toEqual(strip(a));
      expect(strip(c)).toEqual(strip(a));
      expect([a.resume, b.resume, c.resume]).toEqual([false, false, true]);
      expect(a.checkpoint.everyIterations).toBe(s.resumeEvery);
      expect(a.recipe.maxIterations).toBe(s.resumeIterations);
      expect(s.resumeIterations).toBeGreaterThan(s.resumeEvery);
    });

    it(`${scaleName}: torchvision reads the native R50 recipe's numbers`, () => {
      const tv = torchvisionSettings(s);
      const r = jobs['train-r50-fp32'].recipe;
      expect(tv).toMatchObject({ batch: s.batch, fcWidth: r.fcWidth, rpn: r.rpn, roi: r.roi, test: r.test, optimizer: r.optimizer, numClasses: s.classes });
      expect(jobs['train-r50-fp32'].layout.head).toMatchObject({ kind: '2fc', fcWidth: tv.fcWidth, numClasses: s.classes });
      expect(gpuCheckManifest(scaleName).models.r50.arch).toBe(jobs['train-r50-fp32'].arch);
    });
  }

  it('the models are the paper Table 5 pair: R50-FPN and Table 2 E0', () => {
    const jobs = gpuCheckJobs(GPU_CHECK_SCALES.full);
    expect(jobs['train-r50-fp32'].arch).toBe('800x600/resnet50/fpn(P1-P4,c=256)/rpn/2fc');
    expect(jobs['train-e0-fp32'].arch).toBe('800x600/basicblock_64_1-21-21-12/fpn(P2-P5,c=128)/rpn/2fc');
  });

  it('bench/gpu-check.sh --help documents the device call', () => {
    const r = spawnSync('bash', [path.join(PROJECT_ROOT, 'bench', 'gpu-check.sh'), '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/carry: +\["\.gpu-check"\]/);
    expect(r.stdout).toMatch(/--prepare/);
  });
});
