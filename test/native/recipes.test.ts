import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DetectionJobSchema, ClassificationJobSchema } from '../../protocol/job';
import { buildClassificationJob, buildDetectionJob } from '../../protocol/job-builder';
import { ClassificationRecipeSchema, DetectionRecipeSchema } from '../../protocol/recipe';
import { loadDetectionRecipeFile, resolveDetectionRecipe } from '../../protocol/recipe-file';
import {
  CLASSIFICATION_RECIPE_NAMES,
  DETECTION_RECIPE_NAMES,
  getClassificationRecipe,
  getDetectionRecipe,
} from '../../protocol/recipes';
import { testLayout } from './helpers/layout';

describe('named recipes', () => {
  it('has every SPEC 6 recipe in both profiles, each zod-valid', () => {
    for (const p of ['paper', 'toy']) {
      for (const s of ['stage-one', 'stage-two', 'final', 'transfer']) {
        const r = getDetectionRecipe(`${p}-${s}`);
        expect(DetectionRecipeSchema.parse(r)).toEqual(r);
      }
      expect(ClassificationRecipeSchema.parse(getClassificationRecipe(`${p}-pretrain`)).name).toBe(`${p}-pretrain`);
    }
    expect(DETECTION_RECIPE_NAMES).toHaveLength(9); // SPEC 6's eight, and toy-train (the CLI's default 'toy')
    expect(CLASSIFICATION_RECIPE_NAMES).toHaveLength(2);
  });

  it('follows SPEC 6: stage two is GN+WS cosine, final is BN step at 16 and 22', () => {
    expect(getDetectionRecipe('paper-stage-two').norm).toBe('gn+ws');
    expect(getDetectionRecipe('paper-stage-two').epochs).toBe(9);
    const f = getDetectionRecipe('paper-final');
    expect(f.schedule).toMatchObject({ kind: 'step', milestones: [16, 22], gamma: 0.1 });
    expect(f.epochs).toBe(24);
    // 8 devices of 4 images; the lr scales to the paper's 0.04 for the 32-image global batch
    expect(f.devices).toBe(8);
    expect((f.optimizer.lr * (f.devices! * f.batchSize)) / f.optimizer.lrReferenceBatch!).toBeCloseTo(0.04, 12);
    expect(getDetectionRecipe('toy').name).toBe('toy-train');
    // BN since session 13 (BENCHMARKS.md, "Default recipe": level with torchvision's default there)
    expect(getDetectionRecipe('toy').norm).toBe('bn');
  });

  it('stretches the toy warm-ups for long runs but keeps 12 iterations for the campaign (<= 72)', () => {
    for (const s of ['stage-one', 'stage-two', 'final', 'transfer']) {
      const w = getDetectionRecipe(`toy-${s}`).schedule;
      expect(w.warmupIterations).toBe(12);
      expect(Math.max(w.warmupIterations, Math.round(w.warmupFraction! * 72))).toBe(12);
      expect(Math.max(w.warmupIterations, Math.round(w.warmupFraction! * 600))).toBeGreaterThanOrEqual(100);
    }
  });

  it('returns copies (overriding a field does not change the table)', () => {
    getDetectionRecipe('toy-final').epochs = 99;
    expect(getDetectionRecipe('toy-final').epochs).not.toBe(99);
  });

  it('rejects unknown names and invalid recipe files naming the field', () => {
    expect(() => getDetectionRecipe('nope')).toThrow(/unknown detection recipe 'nope'/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'recipe-'));
    const bad = path.join(dir, 'r.json');
    fs.writeFileSync(bad, JSON.stringify({ ...getDetectionRecipe('toy-final'), optimizer: { lr: -1, momentum: 0.9, weightDecay: 0 } }));
    expect(() => loadDetectionRecipeFile(bad)).toThrow(/r\.json: optimizer\.lr/);
    const wf = path.join(dir, 'w.json');
    const toy = getDetectionRecipe('toy-stage-two');
    fs.writeFileSync(wf, JSON.stringify({ ...toy, schedule: { ...toy.schedule, warmupFraction: 1.5 } }));
    expect(() => loadDetectionRecipeFile(wf)).toThrow(/w\.json: schedule\.warmupFraction/);
    const good = path.join(dir, 'g.json');
    fs.writeFileSync(good, JSON.stringify(getDetectionRecipe('toy-final')));
    expect(resolveDetectionRecipe(good).name).toBe('toy-final');
  });
});

describe('job builder', () => {
  const layout = testLayout({
    size: 128, block: 'basicblock', base: 16, code: '11-21-21-21',
    neck: { kind: 'fpn', from: 1, to: 4, channels: 32 }, head: '2fc', numClasses: 3, fcWidth: 128,
  });
  it('builds zod-valid detection and classification jobs', () => {
    const j = buildDetectionJob({ command: 'train', arch: layout.arch, layout, recipe: getDetectionRecipe('toy'), numClasses: 3, dataRoot: '/d', outDir: '/o' });
    expect(DetectionJobSchema.parse(j)).toEqual(j);
    expect(j.data).toEqual({ root: '/d', trainSplit: 'train', valSplit: 'val' });
    const c = buildClassificationJob({ command: 'classify-train', arch: layout.arch, layout, recipe: getClassificationRecipe('toy'), dataRoot: '/c', outDir: '/o' });
    expect(ClassificationJobSchema.parse(c)).toEqual(c);
  });
  it('names the bad field', () => {
    expect(() => buildDetectionJob({ command: 'bench', arch: layout.arch, layout, recipe: getDetectionRecipe('toy'), numClasses: 3, outDir: '/o', device: 'gpu' })).toThrow(/device/);
    expect(() => buildDetectionJob({ command: 'train', arch: layout.arch, layout, recipe: getDetectionRecipe('toy'), numClasses: 3, outDir: '/o' })).toThrow(/dataRoot/);
  });
});
