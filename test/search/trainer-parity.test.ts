/**
 * The cost model against the native trainer's `describe` (which builds the model from the same
 * DetectorLayout and counts its real parameters): per module, params and FLOPs must be equal.
 * Needs native/build/smnas-trainer (scripts/setup.sh builds it); skipped, and says so, without it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TRAINER_BIN } from '../../common/paths';
import { buildDetectionJob } from '../../protocol/job-builder';
import { getDetectionRecipe } from '../../protocol/recipes';
import { layoutCost } from '../../search/cost';
import { formatArch } from '../../search/notation';
import { Rng } from '../../search/rng';
import { getSearchSpaces, sampleArch, stageTwoSpaceFrom } from '../../search/space';
import { describeIf } from '../support/gate';

const maybe = describeIf(fs.existsSync(TRAINER_BIN), `trainer-parity tests: ${TRAINER_BIN} is not built (scripts/setup.sh builds it)`);

const FIXED = [
  '128x128/resnet18/fpn(P1-P4,c=64)/rpn/2fc',
  '96x96/bottleneck_16_111-2111-211111-211/fpn(P2-P6,c=32)/none/retina',
  '128x96/Xbottleneck_16_11-21-21-21/fpn(P1-P5,c=32)/rpn/cascade(n=3)',
  '64x64/basicblock_12_12-11-211-2/none/rpn/cascade(n=4)',
  '96x64/basicblock_16_11-21-21-21/none/none/retina',
  '128x128/bottleneck_8_1-2-2-2/fpn(P3-P3,c=16)/rpn/cascade(n=2)',
  // a paper input size that is not a multiple of 32 (the layout carries it padded: 1344x800)
  '1333x800/resnet18/fpn(P1-P5,c=128)/rpn/cascade(n=3)',
];

maybe('cost model == smnas-trainer describe, module by module', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-parity-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const rng = new Rng(2024);
  const toy = getSearchSpaces('toy');
  const sampled: string[] = [];
  for (let i = 0; i < 2; i++) {
    const a = sampleArch(toy.stageOne, rng);
    sampled.push(formatArch(a), formatArch(sampleArch(stageTwoSpaceFrom(a, { profile: 'toy' }), rng)));
  }

  test.each([...FIXED, ...sampled])('%s', (arch) => {
    const out = fs.mkdtempSync(path.join(dir, 'job-'));
    const job = buildDetectionJob({ command: 'describe', arch, recipe: getDetectionRecipe('toy-stage-one'), numClasses: 7, outDir: out });
    const file = path.join(out, 'job.json');
    fs.writeFileSync(file, JSON.stringify(job));
    const r = spawnSync(TRAINER_BIN, ['describe', '--job', file], { encoding: 'utf8', timeout: 60000 });
    expect(r.status).toBe(0);
    const result = r.stdout
      .split('\n')
      .filter((l) => l.trim().startsWith('{'))
      .map((l) => JSON.parse(l))
      .find((m) => m.type === 'result' && m.modules);
    expect(result).toBeDefined();
    const ours = layoutCost(job.layout, 1000).modules;
    for (const m of ['backbone', 'neck', 'rpn', 'head'] as const) {
      expect({ module: m, params: result.modules[m].params, flops: result.modules[m].flops }).toEqual({
        module: m,
        params: ours[m].params,
        flops: ours[m].flops,
      });
    }
  });
});
