/**
 * Backbone pretraining: classify-train on generated class folders reaches a stated top-1, writes
 * backbone weights, and a detector initialised from them beats the same detector from scratch
 * after the same short schedule: one epoch (50 iterations) at toy-final's lr 0.01, where the
 * initialisation still shows. Measured over seeds 1-5: AP50 from scratch 0.047/0.031/0.049/0.076/0.113,
 * pretrained 0.312/0.174/0.094/0.257/0.128 (top-1 1.0). After two epochs at lr 0.02 (this test's
 * earlier schedule) the two were within noise of each other (pretrained ahead on 2 of 5 seeds), so
 * that comparison only passed for the one seed it was calibrated on. The test compares the mean
 * AP50 of two seeds.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildClassificationJob, buildDetectionJob } from '../../protocol/job-builder';
import { getClassificationRecipe, getDetectionRecipe } from '../../protocol/recipes';
import { classFolders, evaluatorArgv, requireTrainer, resultOf, runTrainer, shapesDataset, startTrainer, tmpDir } from './helpers/trainer';

const ARCH = '128x128/basicblock_8_1-21-21-21/fpn(P1-P4,c=16)/rpn/2fc';

describe('backbone pretraining', () => {
  beforeAll(() => requireTrainer());

  it('classify-train reaches top-1 >= 0.9 and its backbone weights give a better detector than scratch', async () => {
    const cls = buildClassificationJob({
      command: 'classify-train',
      arch: ARCH,
      recipe: getClassificationRecipe('toy-pretrain'),
      dataRoot: classFolders(100, 20),
      outDir: tmpDir('pretrain'),
      seed: 3,
      threads: 1,
    });
    const rc = await runTrainer(cls);
    expect({ code: rc.code, invalid: rc.invalid }).toEqual({ code: 0, invalid: [] });
    const res = resultOf(rc);
    expect(res.metrics!.top1!).toBeGreaterThanOrEqual(0.9);
    expect(res.metrics!.top5!).toBeGreaterThanOrEqual(res.metrics!.top1!);
    const backbone = res.weights!;
    expect(path.basename(backbone)).toBe('backbone_weights');
    expect(fs.existsSync(backbone)).toBe(true);

    // classify-eval reproduces the reported top-1 from the saved classifier
    const ev = await runTrainer({ ...cls, command: 'classify-eval', initWeights: path.join(cls.outDir, 'weights'), outDir: tmpDir('cls-eval') });
    expect(ev.code).toBe(0);
    expect(resultOf(ev).metrics!.top1).toBeCloseTo(res.metrics!.top1!, 6);

    const det = (seed: number, init?: string) => {
      const recipe = getDetectionRecipe('toy-final'); // BN, like the pretrained backbone; lr 0.01
      recipe.epochs = 1;
      recipe.schedule = { kind: 'cosine', minLr: 1e-4, warmupIterations: 30, warmupRatio: 0.001 };
      return buildDetectionJob({
        command: 'train', arch: ARCH, recipe, numClasses: 4, dataRoot: shapesDataset(200, 50), outDir: tmpDir('init'),
        seed, threads: 1, initWeights: init, initKind: 'backbone', evaluator: evaluatorArgv(),
      });
    };
    const seeds = [3, 4];
    const runs = await Promise.all(seeds.flatMap((seed) => [runTrainer(det(seed)), runTrainer(det(seed, backbone))]));
    const ap50 = (i: number) => resultOf(runs[i]).metrics!.stats!.AP50;
    for (let k = 0; k < seeds.length; k++) expect(runs[2 * k + 1].stderr).toContain('initialised the backbone from');
    const scratch = (ap50(0) + ap50(2)) / 2, pretrained = (ap50(1) + ap50(3)) / 2;
    expect(pretrained).toBeGreaterThan(scratch);
  }, 900_000);

  it('rejects backbone weights of another norm with exit 2 naming initWeights', async () => {
    const cls = buildClassificationJob({
      command: 'classify-train', arch: ARCH, recipe: { ...getClassificationRecipe('toy-pretrain'), epochs: 1, maxIterations: 1 },
      dataRoot: classFolders(100, 20), outDir: tmpDir('pretrain-bn'), seed: 3, threads: 1,
    });
    const rc = await runTrainer(cls);
    expect(rc.code).toBe(0);
    const recipe = getDetectionRecipe('toy-stage-two'); // GN+WS: BN weights do not fit
    const job = buildDetectionJob({
      command: 'train', arch: ARCH, recipe, numClasses: 4, dataRoot: shapesDataset(200, 50), outDir: tmpDir('misfit'),
      initWeights: resultOf(rc).weights, initKind: 'backbone',
    });
    const r = await runTrainer(job);
    expect(r.code).toBe(2);
    expect(r.messages.find((m) => m.type === 'error')).toMatchObject({ kind: 'invalid_job', field: 'initWeights' });
  }, 300_000);

  it('classify-train killed after a checkpoint and resumed writes the same backbone weights', async () => {
    const job = (outDir: string) =>
      buildClassificationJob({
        command: 'classify-train', arch: ARCH, recipe: { ...getClassificationRecipe('toy-pretrain'), batchSize: 16, maxIterations: 9 },
        dataRoot: classFolders(100, 20), outDir, seed: 5, threads: 1, checkpoint: { everyIterations: 3, everySeconds: 0, keep: 2 },
      });
    const a = job(tmpDir('cls-a'));
    expect((await runTrainer(a)).code).toBe(0);
    const b = job(tmpDir('cls-b'));
    const first = startTrainer(b, (m, child) => {
      if (m.type === 'checkpoint' && m.iteration === 6) child.kill('SIGKILL');
    });
    expect((await first.done).signal).toBe('SIGKILL');
    const resumed = { ...b, resume: true };
    const r = await runTrainer(resumed);
    expect(r.code).toBe(0);
    expect(r.messages.find((m) => m.type === 'started')).toMatchObject({ resumedFrom: { iteration: 6 } });
    const wa = fs.readFileSync(path.join(a.outDir, 'backbone_weights'));
    expect(fs.readFileSync(path.join(b.outDir, 'backbone_weights')).equals(wa)).toBe(true);
  }, 300_000);
});
