/**
 * Stage two of the paper space: 100 architectures from the modular spaces around 10 stage-one
 * candidates (encoded basicblock / bottleneck / Xbottleneck / mbblock backbones, FPN widths
 * 128-512), GN + WS as the paper-stage-two recipe: each built by the trainer (input rescaled to
 * 96x64), with the cost model's parameter count, one training step and one evaluation.
 */
import { checkArchitecture, stageTwoSample } from './helpers/paper-space';
import { requireTrainer } from './helpers/trainer';

const archs = stageTwoSample(10, 10);

describe('paper space, stage two', () => {
  beforeAll(() => requireTrainer());

  it('samples 100 distinct architectures', () => {
    expect(new Set(archs).size).toBe(100);
  });

  it.each(archs.map((arch) => ({ arch })))('$arch builds with the cost model\'s parameters, trains a step and evaluates', async ({ arch }) => {
    const r = await checkArchitecture({ arch, recipe: 'paper-stage-two' });
    expect({ code: r.code, stderr: r.stderr, invalid: r.invalid }).toEqual({ code: 0, stderr: '', invalid: [] });
    expect(r.params).toBe(r.costParams);
    expect(r.kind).toBe('ok');
    expect(r.evaluated).toBe(true);
  });
});
