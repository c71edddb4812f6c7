/**
 * The quality bar for the trainer: the run of bench/quality-job.ts (resnet18 FPN 2fc,
 * GN+WS from scratch, 10 epochs on 400 generated 128x128 images, sized to take at most 10
 * minutes on the project's 2-core machine; its time is measured by bench/trainer-quality.sh and
 * recorded in BENCHMARKS.md, never asserted here) reaches AP50 >= 0.80. Measured: AP50 1.00,
 * AP 0.83 (BENCHMARKS.md "Quality run repeated"); the bound leaves 0.2 of margin for thread-order noise.
 *
 * Not in the default suite: the run takes 12 minutes of this idle 2-core machine (its 10-minute
 * target is not met yet, BENCHMARKS.md), more beside the other tests, which would triple CI. Run it with
 *   SMNAS_QUALITY=1 npx jest test/native/quality.test.ts
 */
import { qualityRunJob, QUALITY_DATA } from '../../bench/quality-job';
import { evaluatorArgv, requireTrainer, resultOf, runTrainer, shapesDataset, tmpDir } from './helpers/trainer';

beforeAll(() => {
  if (process.env.SMNAS_QUALITY === '1') requireTrainer();
});

const itQuality = process.env.SMNAS_QUALITY === '1' ? it : it.skip;

itQuality('resnet18 FPN 2fc, GN+WS from scratch, 10 epochs on 400 images: AP50 >= 0.80', async () => {
  const d = QUALITY_DATA;
  const job = qualityRunJob({ dataRoot: shapesDataset(d.train, d.val, d.size, d.seed), outDir: tmpDir('quality'), evaluator: evaluatorArgv() });
  const run = await runTrainer(job);
  expect({ code: run.code, invalid: run.invalid }).toEqual({ code: 0, invalid: [] });
  const stats = resultOf(run).metrics!.stats!;
  expect(stats.AP50).toBeGreaterThanOrEqual(0.8);
  expect(stats.AP).toBeGreaterThan(0.5);
}, 45 * 60_000);
