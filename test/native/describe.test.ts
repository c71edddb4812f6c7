/**
 * The native trainer's `describe` (parameters counted on the built libtorch modules, FLOPs from
 * the layout) against the search library's cost model, module by module, for many sampled
 * architectures; and job validation errors that name the field (exit 2).
 */
import { layoutCost } from '../../search/cost';
import { formatArch } from '../../search/notation';
import { Rng } from '../../search/rng';
import { getSearchSpaces, sampleArchs, stageTwoSpaceFrom } from '../../search/space';
import { buildDetectionJob } from '../../protocol/job-builder';
import { getDetectionRecipe } from '../../protocol/recipes';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TrainerExit } from '../../protocol/trainer-messages';
import { requireTrainer, resultOf, runTrainer, shapesDataset, tmpDir } from './helpers/trainer';

function sample(): { arch: string; recipe: string }[] {
  const out: { arch: string; recipe: string }[] = [];
  for (const profile of ['toy', 'paper'] as const) {
    const s = getSearchSpaces(profile);
    const rng = new Rng(profile === 'toy' ? 11 : 12);
    const one = sampleArchs(s.stageOne, rng, 60).map(formatArch).slice(0, profile === 'toy' ? 12 : 8);
    const recipe = profile === 'toy' ? 'toy-stage-one' : 'paper-stage-one';
    out.push(...one.map((arch) => ({ arch, recipe })));
    // stage two around a few stage-one candidates (encoded backbones, other FPN widths)
    for (const a of sampleArchs(s.stageOne, rng, 30).slice(0, 3)) {
      const two = stageTwoSpaceFrom(a, { profile });
      out.push(...sampleArchs(two, rng, 2).map((x) => ({ arch: formatArch(x), recipe })));
    }
  }
  return out;
}

describe('smnas-trainer describe', () => {
  beforeAll(() => requireTrainer());
  const cases = sample();

  it('samples a varied set of architectures', () => {
    expect(cases.length).toBeGreaterThanOrEqual(25);
    expect(cases.some((c) => c.arch.includes('retina'))).toBe(true);
    expect(cases.some((c) => c.arch.includes('cascade'))).toBe(true);
    expect(cases.some((c) => c.arch.includes('/none/') || c.arch.includes('/none/retina'))).toBe(true);
  });

  it.each(cases)('params and FLOPs of $arch equal the cost model module by module', async ({ arch, recipe }) => {
    const r = getDetectionRecipe(recipe);
    const job = buildDetectionJob({ command: 'describe', arch, recipe: r, numClasses: 7, outDir: tmpDir('describe'), threads: 1 });
    const run = await runTrainer(job);
    expect(run.invalid).toEqual([]);
    expect({ code: run.code, stderr: run.code === 0 ? '' : run.stderr }).toEqual({ code: 0, stderr: '' });
    const modules = resultOf(run).modules!;
    const cost = layoutCost(job.layout);
    for (const m of ['backbone', 'neck', 'rpn', 'head'] as const) {
      expect({ m, params: modules[m].params }).toEqual({ m, params: cost.modules[m].params });
      expect({ m, flops: modules[m].flops }).toEqual({ m, flops: cost.modules[m].flops });
    }
  });
});

describe('smnas-trainer job validation', () => {
  const arch = '64x64/basicblock_8_1-21-21-21/fpn(P2-P4,c=16)/rpn/2fc';
  const base = () =>
    buildDetectionJob({ command: 'train', arch, recipe: getDetectionRecipe('toy'), numClasses: 4, dataRoot: shapesDataset(16, 8), outDir: tmpDir('invalid') });

  const cases: [string, (j: Record<string, any>) => void, string][] = [
    ['a negative learning rate', (j) => (j.recipe.optimizer.lr = -1), 'recipe.optimizer.lr'],
    ['an unknown norm', (j) => (j.recipe.norm = 'ln'), 'recipe.norm'],
    ['a bad device', (j) => (j.device = 'gpu0'), 'device'],
    ['a block whose input does not chain', (j) => (j.layout.backbone.stages[1].blocks[0].inChannels = 3), 'layout.backbone.stages.1.blocks.0.inChannels'],
    ['a missing data section', (j) => delete j.data, 'data'],
    ['a class count that disagrees with the head', (j) => (j.numClasses = 9), 'layout.head.numClasses'],
    ['a string where a number belongs', (j) => (j.seed = 'one'), 'seed'],
    ['fp16 mixed precision on the CPU', (j) => (j.recipe.mixedPrecision = 'fp16'), 'recipe.mixedPrecision'],
    ['an unknown mixed precision', (j) => (j.recipe.mixedPrecision = 'fp8'), 'recipe.mixedPrecision'],
  ];

  it.each(cases)('rejects %s with exit 2 naming the field', async (_name, mutate, field) => {
    const job = base() as Record<string, any>;
    mutate(job);
    const run = await runTrainer(job as { command: string; outDir: string });
    expect(run.code).toBe(TrainerExit.invalidJob);
    expect(run.invalid).toEqual([]);
    const err = run.messages.find((m) => m.type === 'error');
    expect(err).toMatchObject({ type: 'error', kind: 'invalid_job', field });
    expect(run.messages.some((m) => m.type === 'started')).toBe(false); // before any work
  });

  it('reports a missing dataset as bad data (exit 3) naming the file', async () => {
    const job = base();
    job.data = { root: '/nonexistent/shapes', trainSplit: 'train', valSplit: 'val' };
    const run = await runTrainer(job);
    expect(run.code).toBe(TrainerExit.badData);
    const err = run.messages.find((m) => m.type === 'error');
    expect(err).toMatchObject({ kind: 'bad_data' });
    expect(err && err.type === 'error' && err.message).toContain('/nonexistent/shapes/annotations/instances_train.json');
  });

  it('refuses a file_name leading out of the images folder as bad data (exit 3) naming the record, before training', async () => {
    const root = tmpDir('hostile-data');
    fs.cpSync(shapesDataset(16, 8), root, { recursive: true });
    const file = path.join(root, 'annotations', 'instances_train.json');
    const inst = JSON.parse(fs.readFileSync(file, 'utf8'));
    inst.images[2].file_name = '../../../etc/passwd';
    fs.writeFileSync(file, JSON.stringify(inst));
    const job = base();
    job.data = { root, trainSplit: 'train', valSplit: 'val' };
    const run = await runTrainer(job);
    expect(run.code).toBe(TrainerExit.badData);
    const err = run.messages.find((m) => m.type === 'error');
    expect(err && err.type === 'error' && err.message).toContain(`${file}: images[2].file_name '../../../etc/passwd' has a '..' segment`);
    expect(run.messages.some((m) => m.type === 'progress')).toBe(false);
  });
});
