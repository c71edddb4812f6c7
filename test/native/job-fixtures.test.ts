/**
 * The valid job files the native job-parser fuzz test starts from (native/tests/test_job.cpp
 * mutates every field of them and checks each mutation is parsed or rejected with a JobError
 * naming that field). They are written by the TypeScript job builder, the one source of the job
 * format; this test fails when they drift from what the builder writes now.
 * Regenerate with SMNAS_UPDATE_FIXTURES=1 node_modules/.bin/jest test/native/job-fixtures.test.ts
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../../common/paths';
import { buildClassificationJob, buildDetectionJob } from '../../protocol/job-builder';
import { getClassificationRecipe, getDetectionRecipe } from '../../protocol/recipes';

const DIR = path.join(PROJECT_ROOT, 'native', 'tests', 'fixtures');

const fixtures: Record<string, unknown> = {
  'job-train.json': buildDetectionJob({
    command: 'train',
    arch: '64x64/basicblock_8_1-21-21-21/fpn(P2-P4,c=16)/ga-rpn/cascade(n=3)',
    recipe: { ...getDetectionRecipe('toy'), mixedPrecision: 'bf16' },
    numClasses: 4,
    dataRoot: '/data/shapes',
    outDir: '/runs/fixture',
    evaluator: ['/usr/bin/smnas', 'eval'],
    initWeights: '/w/backbone.pt',
    initKind: 'backbone',
    checkpoint: { everyIterations: 5 },
    threads: 2,
    // the latency protocol's fields, so the native fuzz test mutates them too
    bench: { warmup: 2, iterations: 3, images: 3, rounds: 4 },
  }),
  'job-export.json': buildDetectionJob({
    command: 'export',
    arch: '64x64/basicblock_8_1-21-21-21/fpn(P1-P5,c=16)/none/retina',
    recipe: getDetectionRecipe('toy'),
    numClasses: 4,
    dataRoot: '/data/shapes',
    outDir: '/runs/fixture-export',
    initWeights: '/runs/fixture/weights',
    initKind: 'detector',
    export: { out: '/runs/model.onnx', inputSize: [64, 96], opset: 17, parityImages: 2 },
  }),
  'job-classify-train.json': buildClassificationJob({
    command: 'classify-train',
    arch: '64x64/mbblock_8_1-21-21-21/none/none/retina',
    recipe: getClassificationRecipe('toy'),
    dataRoot: '/data/classes',
    outDir: '/runs/fixture-cls',
  }),
};

test.each(Object.keys(fixtures))('%s is what the job builder writes', (name) => {
  const want = JSON.stringify(fixtures[name], null, 1) + '\n';
  const file = path.join(DIR, name);
  if (process.env.SMNAS_UPDATE_FIXTURES === '1') fs.writeFileSync(file, want);
  expect({ file, text: fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '(missing)' }).toEqual({ file, text: want });
});
