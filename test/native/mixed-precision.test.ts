/**
 * recipe.mixedPrecision 'bf16' on the CPU through the real trainer: a short training run with bf16
 * autocast ends ok with finite losses on every progress line (losses, box coding and NMS are
 * computed in fp32). And `bench` with a dataset times a real validation image, not noise.
 */
import * as path from 'node:path';
import { buildClassificationJob, buildDetectionJob } from '../../protocol/job-builder';
import { getClassificationRecipe, getDetectionRecipe } from '../../protocol/recipes';
import { classFolders, requireTrainer, resultOf, runTrainer, shapesDataset, tmpDir } from './helpers/trainer';

const SMALL = '64x64/basicblock_8_1-21-21-21/fpn(P1-P4,c=16)/rpn/2fc';

describe('mixed precision and bench input', () => {
  beforeAll(() => requireTrainer());

  it('trains with bf16 autocast on the CPU and every loss stays finite', async () => {
    const recipe = getDetectionRecipe('toy-stage-two');
    recipe.maxIterations = 10;
    recipe.batchSize = 4;
    recipe.mixedPrecision = 'bf16';
    const job = buildDetectionJob({ command: 'train', arch: SMALL, recipe, numClasses: 4, dataRoot: shapesDataset(48, 16), outDir: tmpDir('bf16'), seed: 3, threads: 1 });
    const run = await runTrainer(job);
    expect(run.invalid).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('mixed precision: bf16');
    const progress = run.messages.filter((m) => m.type === 'progress');
    expect(progress.length).toBeGreaterThan(0);
    for (const m of progress) {
      if (m.type !== 'progress') continue;
      expect(Number.isFinite(m.loss)).toBe(true);
      for (const v of Object.values(m.losses)) expect(Number.isFinite(v)).toBe(true);
    }
    expect(resultOf(run)).toMatchObject({ kind: 'ok', command: 'train' });
  });

  it('classify-train with bf16 autocast: finite losses, ok result', async () => {
    const recipe = { ...getClassificationRecipe('toy-pretrain'), epochs: 1, maxIterations: 6, mixedPrecision: 'bf16' as const };
    const job = buildClassificationJob({ command: 'classify-train', arch: SMALL, recipe, dataRoot: classFolders(100, 20), outDir: tmpDir('bf16-cls'), seed: 3, threads: 1 });
    const run = await runTrainer(job);
    expect(run.invalid).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('mixed precision: bf16');
    const losses = run.messages.flatMap((m) => (m.type === 'progress' ? [m.loss] : []));
    expect(losses.length).toBeGreaterThan(0);
    for (const l of losses) expect(Number.isFinite(l)).toBe(true);
    expect(resultOf(run)).toMatchObject({ kind: 'ok', command: 'classify-train' });
  });

  it('bench with a dataset times its first validation image; without one, noise', async () => {
    const data = shapesDataset(48, 16);
    const base = { command: 'bench' as const, arch: SMALL, recipe: getDetectionRecipe('toy-stage-two'), numClasses: 4, threads: 1, bench: { warmup: 1, iterations: 3 } };
    const withData = await runTrainer(buildDetectionJob({ ...base, dataRoot: data, outDir: tmpDir('bench-img') }));
    expect(withData.code).toBe(0);
    const b = resultOf(withData).bench!;
    expect(b.input).toMatch(new RegExp(`^${data.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}${path.sep}val${path.sep}.+\\.(png|jpg)$`));
    expect(b.medianMs).toBeGreaterThan(0);
    const noise = await runTrainer(buildDetectionJob({ ...base, outDir: tmpDir('bench-noise') }));
    expect(noise.code).toBe(0);
    expect(resultOf(noise).bench!.input).toBe('noise');
  });
});
