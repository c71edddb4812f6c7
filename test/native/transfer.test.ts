/**
 * Transfer (SPEC 6): a detector initialised from the final model's weights on a data set with
 * another number of classes. Only the class-dependent predictors may differ in shape; they keep
 * their fresh initialisation. Anything else that does not fit is an invalid job naming initWeights.
 * (Regression: torch::load swapped the 4-class predictor into a 10-class model silently, and BDD
 * transfer crashed with "Target 10 is out of bounds".)
 */
import { writeSynthDetection } from '../../datasets/synth/detection';
import { getDetectionRecipe } from '../../protocol/recipes';
import { buildDetectionJob } from '../../protocol/job-builder';
import { resultOf, runTrainer, shapesDataset, tmpDir } from './helpers/trainer';

const ARCHS = [
  '96x96/basicblock_16_11-21-21-21/fpn(P2-P4,c=32)/rpn/cascade(n=2)',
  '96x96/basicblock_16_11-21-21-21/fpn(P2-P4,c=32)/none/retina',
];

describe('transfer from detector weights', () => {
  const tenClasses = tmpDir('ten-classes');
  beforeAll(() => writeSynthDetection({ out: tenClasses, format: 'coco', train: 12, val: 6, size: 96, classes: 10, seed: 7 }));

  it.each(ARCHS)('%s: 4-class weights initialise a 10-class detector, predictors re-initialised', async (arch) => {
    const recipe = { ...getDetectionRecipe('toy-final'), epochs: 1, maxIterations: 3 };
    const source = buildDetectionJob({ command: 'train', arch, recipe, numClasses: 4, dataRoot: shapesDataset(24, 8, 96), outDir: tmpDir('src'), seed: 1, threads: 1 });
    const s = await runTrainer(source);
    expect(s.code).toBe(0);
    const target = buildDetectionJob({
      command: 'train', arch, recipe, numClasses: 10, dataRoot: tenClasses, outDir: tmpDir('dst'), seed: 1, threads: 1,
      initWeights: resultOf(s).weights, initKind: 'detector',
    });
    const t = await runTrainer(target);
    expect(t.code).toBe(0);
    expect(resultOf(t).kind).toBe('ok');
    expect(t.stderr).toMatch(/class predictors differ in shape/);
  }, 300_000);

  it('weights of another norm are rejected naming initWeights', async () => {
    const arch = ARCHS[0];
    const recipe = { ...getDetectionRecipe('toy-final'), epochs: 1, maxIterations: 2 };
    const s = await runTrainer(buildDetectionJob({ command: 'train', arch, recipe, numClasses: 4, dataRoot: shapesDataset(24, 8, 96), outDir: tmpDir('src-bn'), seed: 1, threads: 1 }));
    expect(s.code).toBe(0);
    const r = await runTrainer(buildDetectionJob({
      command: 'train', arch, recipe: { ...recipe, norm: 'gn' }, numClasses: 10, dataRoot: tenClasses, outDir: tmpDir('dst-gn'), seed: 1, threads: 1,
      initWeights: resultOf(s).weights, initKind: 'detector',
    }));
    expect(r.code).toBe(2);
    expect(r.messages.find((m) => m.type === 'error')).toMatchObject({ kind: 'invalid_job', field: 'initWeights' });
  }, 300_000);
});
