/**
 * Stage one of the paper space: 100 architectures sampled from the `paper` profile's structural
 * space (every named backbone incl. mobilenet_v2, ga-rpn and rpn, 2fc / cascade / retina, every
 * input size) are each built by the trainer (input rescaled to 96x64), have the cost model's
 * parameter count, train one step and evaluate (test/native/helpers/paper-space.ts).
 */
import { checkArchitecture, stageOneSample } from './helpers/paper-space';
import { requireTrainer } from './helpers/trainer';

const archs = stageOneSample(100);

describe('paper space, stage one', () => {
  beforeAll(() => requireTrainer());

  it('samples 100 distinct architectures covering every module kind', () => {
    expect(new Set(archs).size).toBe(100);
    for (const part of ['/mobilenet_v2/', '/resnext101_32x4d/', '/ga-rpn/', '/rpn/', '/none/retina', 'cascade(', '/2fc']) {
      expect({ part, found: archs.some((a) => a.includes(part)) }).toEqual({ part, found: true });
    }
  });

  it.each(archs.map((arch) => ({ arch })))('$arch builds with the cost model\'s parameters, trains a step and evaluates', async ({ arch }) => {
    const r = await checkArchitecture({ arch, recipe: 'paper-stage-one' });
    expect({ code: r.code, stderr: r.stderr, invalid: r.invalid }).toEqual({ code: 0, stderr: '', invalid: [] });
    expect(r.params).toBe(r.costParams);
    expect(r.kind).toBe('ok');
    expect(r.evaluated).toBe(true);
  });
});
