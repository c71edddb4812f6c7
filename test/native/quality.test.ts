/**
 * The issue's quality bar for the trainer: the run of bench/quality-job.ts (resnet18 FPN 2fc,
 * GN+WS from scratch, 10 epochs on 400 generated 128x128 images) reaches AP50 >= 0.80 within 10
 * minutes on the project's 2-core machine; so do the same run with a GA-RPN and with a
 * MobileNetV2 backbone. The time is measured by bench/trainer-quality.sh and
 * recorded in BENCHMARKS.md (315 s idle, AP50 1.00 / AP 0.83), never asserted here; the AP50
 * bound leaves 0.2 of margin for thread-order noise.
 *
 * Part of the default suite (about 14 minutes of one of CI's two cores for the three runs on session
 * 12's VM, about twice that on slower ones). SMNAS_SKIP_QUALITY=1 skips it for quick local runs (the
 * run fails under CI=true: no-skip-reporter).
 *
 * One trainer thread: jest runs two workers on CI's two cores, so another trainer is usually running
 * beside these. Measured on the 2-core VM (2026-12-01, this job, images/s): 2 threads alone 6.3;
 * beside a 1-thread trainer, 2 threads 3.1 against 1 thread 5.5 (OpenMP's barriers wait on a thread
 * the other process has the core of). The 2-thread time on an idle machine is what
 * bench/trainer-quality.sh measures.
 */
import { QUALITY_ARCH, QUALITY_GA_RPN_ARCH, QUALITY_MOBILENET_ARCH, qualityRunJob, QUALITY_DATA } from '../../bench/quality-job';
import { evaluatorArgv, requireTrainer, resultOf, runTrainer, shapesDataset, tmpDir } from './helpers/trainer';
import { itIf } from '../support/gate';

const skip = process.env.SMNAS_SKIP_QUALITY === '1';

beforeAll(() => {
  if (!skip) requireTrainer();
});

const itQuality = itIf(!skip, 'trainer quality runs: SMNAS_SKIP_QUALITY=1 (refused under CI=true)');

// measured with bench/trainer-quality.sh on 2026-11-30 (BENCHMARKS.md): resnet18 rpn AP50 1.00 in
// 315 s; ga-rpn AP50 1.00 / AP 0.83 in 338 s; mobilenet_v2 AP50 1.00 / AP 0.84 in 193 s
itQuality.each([QUALITY_ARCH, QUALITY_GA_RPN_ARCH, QUALITY_MOBILENET_ARCH])('%s, GN+WS from scratch, 10 epochs on 400 images: AP50 >= 0.80', async (arch) => {
  const d = QUALITY_DATA;
  const job = qualityRunJob({ arch, dataRoot: shapesDataset(d.train, d.val, d.size, d.seed), outDir: tmpDir('quality'), evaluator: evaluatorArgv(), threads: 1 });
  const run = await runTrainer(job);
  expect({ code: run.code, invalid: run.invalid }).toEqual({ code: 0, invalid: [] });
  const stats = resultOf(run).metrics!.stats!;
  expect(stats.AP50).toBeGreaterThanOrEqual(0.8);
  expect(stats.AP).toBeGreaterThan(0.5);
}, 45 * 60_000);
