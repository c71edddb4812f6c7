/**
 * Integration tests of the native trainer on generated shapes data: durability (SIGKILL + resume
 * gives byte-identical weights and detections; SIGTERM checkpoints and exits 5 within seconds),
 * divergence reporting, and short training runs that must learn (lower bounds with margin; the
 * full-length quality runs are bench/ scripts, results in BENCHMARKS.md).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildDetectionJob } from '../../protocol/job-builder';
import { getDetectionRecipe } from '../../protocol/recipes';
import { TrainerExit, type TrainerMessage } from '../../protocol/trainer-messages';
import { evaluatorArgv, requireTrainer, resultOf, runTrainer, shapesDataset, startTrainer, tmpDir } from './helpers/trainer';

const SMALL = '64x64/basicblock_8_1-21-21-21/fpn(P1-P4,c=16)/rpn/2fc';

function smallJob(outDir: string, overrides: { maxIterations?: number; everyIterations?: number; lr?: number } = {}) {
  const recipe = getDetectionRecipe('toy-stage-two');
  recipe.maxIterations = overrides.maxIterations ?? 12;
  recipe.batchSize = 4;
  if (overrides.lr !== undefined) recipe.optimizer.lr = overrides.lr;
  return buildDetectionJob({
    command: 'train',
    arch: SMALL,
    recipe,
    numClasses: 4,
    dataRoot: shapesDataset(48, 16),
    outDir,
    seed: 7,
    threads: 1,
    evaluator: evaluatorArgv(),
    checkpoint: { everyIterations: overrides.everyIterations ?? 4, everySeconds: 0, keep: 2 },
  });
}

describe('durability', () => {
  beforeAll(() => requireTrainer());

  it('SIGKILL after a checkpoint, then resume: same weights, detections and metrics as an uninterrupted run', async () => {
    const a = smallJob(tmpDir('uninterrupted'));
    const ra = await runTrainer(a);
    expect(ra.invalid).toEqual([]);
    expect(ra.code).toBe(0);

    const b = smallJob(tmpDir('killed'));
    let killedAt = -1;
    const first = startTrainer(b, (m, child) => {
      if (m.type === 'checkpoint' && m.iteration === 8 && killedAt < 0) {
        killedAt = m.iteration;
        child.kill('SIGKILL');
      }
    });
    const rb1 = await first.done;
    expect(rb1.signal).toBe('SIGKILL');
    expect(killedAt).toBe(8);
    // a partial checkpoint left by a crash must be skipped with a warning, never loaded
    fs.writeFileSync(path.join(b.outDir, 'checkpoints', 'ckpt-11.pt'), 'truncated');
    const resumed = { ...b, resume: true };
    const rb2 = await runTrainer(resumed);
    expect(rb2.code).toBe(0);
    expect(rb2.stderr).toMatch(/skipping unreadable checkpoint .*ckpt-11\.pt/);
    const started = rb2.messages.find((m) => m.type === 'started') as Extract<TrainerMessage, { type: 'started' }>;
    expect(started.resumedFrom).toMatchObject({ iteration: 8 });

    expect(fs.readFileSync(path.join(b.outDir, 'weights')).equals(fs.readFileSync(path.join(a.outDir, 'weights')))).toBe(true);
    expect(fs.readFileSync(path.join(b.outDir, 'detections_val.json'), 'utf8')).toBe(fs.readFileSync(path.join(a.outDir, 'detections_val.json'), 'utf8'));
    expect(resultOf(rb2).metrics).toEqual(resultOf(ra).metrics);
    // `eval` of the final weights reproduces the end-of-training evaluation
    const evalJob = { ...a, command: 'eval', initWeights: path.join(a.outDir, 'weights'), initKind: 'detector', outDir: tmpDir('eval') };
    const re = await runTrainer(evalJob);
    expect(re.code).toBe(0);
    expect(resultOf(re).metrics).toEqual(resultOf(ra).metrics);
    expect(fs.readFileSync(path.join(evalJob.outDir, 'detections_val.json'), 'utf8')).toBe(fs.readFileSync(path.join(a.outDir, 'detections_val.json'), 'utf8'));
    const metrics = JSON.parse(fs.readFileSync(path.join(b.outDir, 'metrics.json'), 'utf8'));
    expect(Object.keys(metrics.stats).sort()).toEqual(['AP', 'AP50', 'AP75', 'APl', 'APm', 'APs', 'AR1', 'AR10', 'AR100', 'ARl', 'ARm', 'ARs']);
  });

  it('SIGTERM writes a checkpoint and exits 5 within seconds', async () => {
    const job = smallJob(tmpDir('sigterm'), { maxIterations: 400, everyIterations: 0 });
    let sentAt = 0;
    const run = startTrainer(job, (m, child) => {
      if (m.type === 'progress' && m.iteration === 3 && !sentAt) {
        sentAt = Date.now();
        child.kill('SIGTERM');
      }
    });
    const r = await run.done;
    const elapsed = Date.now() - sentAt;
    expect(r.code).toBe(TrainerExit.interrupted);
    expect(elapsed).toBeLessThan(15000);
    const ckpt = r.messages.find((m) => m.type === 'checkpoint');
    expect(ckpt).toBeDefined();
    expect(fs.existsSync((ckpt as { path: string }).path)).toBe(true);
    expect(r.messages[r.messages.length - 1]).toMatchObject({ type: 'error', kind: 'interrupted' });
  });

  it('reports a NaN loss as a diverged result with exit 4', async () => {
    const job = smallJob(tmpDir('diverge'), { maxIterations: 30, lr: 1e6 });
    job.recipe.optimizer.clipGradNorm = 0;
    job.recipe.schedule = { kind: 'cosine', minLr: 1e6, warmupIterations: 0, warmupRatio: 1 };
    const r = await runTrainer(job);
    expect(r.code).toBe(TrainerExit.diverged);
    expect(resultOf(r)).toMatchObject({ kind: 'diverged' });
    expect(resultOf(r).message).toMatch(/non-finite loss .* at iteration \d+/);
  });
});

/**
 * Short from-scratch runs on 200 generated 128x128 images that must learn. Lower bounds leave about
 * half the measured value as margin (measured on the shared 2-core VM, 1 thread, seed 3):
 * 2fc AP50 0.49 (3 epochs), cascade(n=3) 0.54 (3 epochs), retina 0.44 (6 epochs; seeds 4 and 5:
 * 0.43, 0.54). Before the retina tower had its GroupNorm it reached 0.05-0.07 in 6 epochs.
 */
describe('short training runs learn', () => {
  const BASE = '128x128/basicblock_8_1-21-21-21/fpn(P1-P4,c=16)';
  function learnJob(head: string, epochs: number, lr?: number) {
    const recipe = getDetectionRecipe('toy-stage-two');
    recipe.epochs = epochs;
    if (lr !== undefined) recipe.optimizer.lr = lr;
    return buildDetectionJob({
      command: 'train',
      arch: `${BASE}/${head}`,
      recipe,
      numClasses: 4,
      dataRoot: shapesDataset(200, 50),
      outDir: tmpDir('learn'),
      seed: 3,
      threads: 1,
      evaluator: evaluatorArgv(),
    });
  }
  const ap50 = async (job: ReturnType<typeof learnJob>) => {
    const r = await runTrainer(job);
    expect({ code: r.code, invalid: r.invalid }).toEqual({ code: 0, invalid: [] });
    const progress = r.messages.filter((m) => m.type === 'progress') as Extract<TrainerMessage, { type: 'progress' }>[];
    expect(progress.length).toBeGreaterThan(0);
    return resultOf(r).metrics!.stats!.AP50;
  };

  it('rpn + 2fc reaches AP50 >= 0.25 in 3 epochs', async () => {
    expect(await ap50(learnJob('rpn/2fc', 3))).toBeGreaterThanOrEqual(0.25);
  }, 600_000);

  it('rpn + cascade(n=3) reaches AP50 >= 0.25 in 3 epochs', async () => {
    expect(await ap50(learnJob('rpn/cascade(n=3)', 3))).toBeGreaterThanOrEqual(0.25);
  }, 600_000);

  it('retina (focal loss, no RPN) learns: AP50 >= 0.2 in 6 epochs', async () => {
    expect(await ap50(learnJob('none/retina', 6))).toBeGreaterThanOrEqual(0.2);
  }, 600_000);
});
