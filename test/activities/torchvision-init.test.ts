/**
 * The REAL native trainer through activities/training.ts with a torchvision ImageNet-format
 * checkpoint: a resnet18 written by Debian's torchvision (/usr/bin/python3,
 * test/support/torchvision_weights.py: randomly initialised, BN statistics calibrated) passes the
 * campaign's start check (checkBackboneWeights) as .pth and .safetensors, and a detection
 * training job with initKind 'torchvision' and recipe.backbone = PRETRAINED_BACKBONE runs through
 * trainDetector (train + evaluate on generated data, CPU); the same file in a resnet34 detector is
 * an InvalidJob naming initWeights. Fails (does not skip) without the trainer or torchvision.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { createControlActivities, createGpuActivities } from '../../activities';
import type { BackboneWeightsPlan, DataSummary, TrainOutcome, TrainRequest } from '../../activities/types';
import { PROJECT_ROOT, TRAINER_BIN } from '../../common/paths';
import { makePaperCampaign } from '../../protocol/campaign';
import { PRETRAINED_BACKBONE } from '../../protocol/recipe';
import { getDetectionRecipe } from '../../protocol/recipes';
import { tmpDir } from './mock-trainer';
import { prepareToyData, realTrainerDeps } from './real-trainer-fixture';

const PY = '/usr/bin/python3';
const HELPER = path.join(PROJECT_ROOT, 'test', 'support', 'torchvision_weights.py');

describe('torchvision weights through the campaign activities (real trainer, CPU)', () => {
  const work = tmpDir('smnas-tvinit-');
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
  const deps = realTrainerDeps(work, { threads: 2, checkpoint: { everyIterations: 0, everySeconds: 0 } });
  const weights = path.join(work, 'tv');
  const recipeFile = path.join(work, 'recipe.json');
  let data: DataSummary;

  beforeAll(async () => {
    expect({ trainer: TRAINER_BIN, built: fs.existsSync(TRAINER_BIN) }).toEqual({ trainer: TRAINER_BIN, built: true });
    const py = spawnSync(PY, [HELPER, 'write', '--out', weights, '--archs', 'resnet18', '--seed', '0'], { encoding: 'utf8' });
    if (py.status !== 0) throw new Error(`${HELPER} write failed (python3-torchvision installed?):\n${py.stderr}`);
    // the toy stage-one recipe (BN), two iterations: enough to show the job runs end to end
    fs.writeFileSync(
      recipeFile,
      JSON.stringify({ ...getDetectionRecipe('toy-stage-one'), name: 'tv-init-test', epochs: 1, batchSize: 2, maxIterations: 2, workers: 0 }),
    );
    data = await prepareToyData(deps, work, 'tvinit', { train: 4, val: 2 });
  }, 300_000);

  test.each(['pth', 'safetensors'])('checkBackboneWeights accepts torchvision resnet18 weights (.%s)', async (ext) => {
    const file = path.join(weights, `resnet18.${ext}`);
    const c = makePaperCampaign({ cocoRoot: path.join(work, 'coco') });
    const plan = (await new MockActivityEnvironment().run(createControlActivities(deps).checkBackboneWeights as any, {
      ...c,
      data: { ...c.data, backboneWeights: { resnet18: file } },
    })) as BackboneWeightsPlan;
    expect(plan.formats).toEqual({ resnet18: ext });
    expect(plan.stageOneWeights).toEqual({ resnet18: file });
    // named as another backbone, the same file is refused at start
    const err: any = await new MockActivityEnvironment()
      .run(createControlActivities(deps).checkBackboneWeights as any, {
        ...c,
        data: { ...c.data, backboneWeights: { resnet50: file } },
      })
      .catch((e: any) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err.message).toContain(`data.backboneWeights.resnet50: ${file}: not resnet50 weights`);
  });

  const req = (key: string, arch: string, ext: string): TrainRequest => ({
    campaignId: 'tvinit',
    key,
    arch,
    recipe: recipeFile,
    data: data.detection,
    seed: 0,
    initWeights: path.join(weights, `resnet18.${ext}`),
    initKind: 'torchvision',
    recipeBackbone: PRETRAINED_BACKBONE,
  });

  test('trainDetector trains a resnet18 detector from the torchvision .pth (frozen stem + stage 1, BN eval)', async () => {
    const out = (await new MockActivityEnvironment({ attempt: 1 }).run(
      createGpuActivities(deps).trainDetector,
      req('tv-ok', '64x64/resnet18/fpn(P2-P4,c=32)/rpn/2fc', 'pth'),
    )) as TrainOutcome;
    expect(out.kind).toBe('ok');
    expect(out.mAP).toBeGreaterThanOrEqual(0);
    expect(fs.existsSync(out.weights!)).toBe(true);
    const job = JSON.parse(fs.readFileSync(path.join(out.outDir, 'job-train-attempt1.json'), 'utf8'));
    expect(job).toMatchObject({
      initKind: 'torchvision',
      initWeights: path.join(weights, 'resnet18.pth'),
      recipe: { name: 'tv-init-test', backbone: PRETRAINED_BACKBONE },
    });
  }, 300_000);

  test('the resnet18 file in a resnet34 detector is an InvalidJob naming initWeights', async () => {
    const err: any = await new MockActivityEnvironment({ attempt: 1 })
      .run(createGpuActivities(deps).trainDetector, req('tv-bad', '64x64/resnet34/fpn(P2-P4,c=32)/rpn/2fc', 'safetensors'))
      .catch((e: any) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err.type).toBe('InvalidJob');
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toMatch(/field initWeights/);
    expect(err.message).toMatch(/missing key/);
  }, 120_000);
});
