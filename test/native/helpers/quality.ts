/**
 * The trainer's quality bar: the run of bench/quality-job.ts (GN+WS from scratch, 10 epochs on 400
 * generated 128x128 images) reaches AP50 >= 0.80 within 10 minutes on the project's 2-core machine.
 * The time is measured by bench/trainer-quality.sh and recorded in BENCHMARKS.md, never asserted
 * here; the AP50 bound leaves 0.2 of margin for thread-order noise. One test file per architecture
 * (quality*.test.ts), so that jest's two workers share the three runs.
 *
 * SMNAS_SKIP_QUALITY=1 skips them for quick local runs (the run fails under CI=true: no-skip-reporter).
 *
 * One trainer thread: jest runs two workers on CI's two cores, so another trainer is usually running
 * beside these. Measured on the 2-core VM (2026-12-01, this job, images/s): 2 threads alone 6.3;
 * beside a 1-thread trainer, 2 threads 3.1 against 1 thread 5.5 (OpenMP's barriers wait on a thread
 * the other process has the core of). The 2-thread time on an idle machine is what
 * bench/trainer-quality.sh measures.
 */
import { qualityRunJob, QUALITY_DATA } from '../../../bench/quality-job';
import { itIf } from '../../support/gate';
import { evaluatorArgv, requireTrainer, resultOf, runTrainer, shapesDataset, tmpDir } from './trainer';

/** Defines the quality test of one architecture (call once, at the top of a test file). */
export function qualityTest(arch: string, o: { warmupIterations?: number } = {}): void {
  const skip = process.env.SMNAS_SKIP_QUALITY === '1';
  beforeAll(() => {
    if (!skip) requireTrainer();
  });
  const itQuality = itIf(!skip, 'trainer quality runs: SMNAS_SKIP_QUALITY=1 (refused under CI=true)');
  itQuality(
    `${arch}, GN+WS from scratch, 10 epochs on 400 images: AP50 >= 0.80`,
    async () => {
      const d = QUALITY_DATA;
      const job = qualityRunJob({ arch, dataRoot: shapesDataset(d.train, d.val, d.size, d.seed), outDir: tmpDir('quality'), evaluator: evaluatorArgv(), threads: 1, ...o });
      const run = await runTrainer(job);
      expect({ code: run.code, invalid: run.invalid }).toEqual({ code: 0, invalid: [] });
      const stats = resultOf(run).metrics!.stats!;
      expect(stats.AP50).toBeGreaterThanOrEqual(0.8);
      expect(stats.AP).toBeGreaterThan(0.5);
    },
    45 * 60_000,
  );
}
