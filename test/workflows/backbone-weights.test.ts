/**
 * Campaigns with ImageNet backbone weights (data.backboneWeights) on a REAL Temporal dev server,
 * with the real workflows and control activities (checkBackboneWeights included) and MOCKED GPU
 * activities (test/workflows/mock-gpu.ts: they record what each training was asked to start from).
 * The campaigns search the paper's stage-one space (7 named backbones) on tiny generated data;
 * the weight files are hand-made stand-ins with torchvision's key names (test/support/checkpoint-files.ts).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { WorkflowFailedError } from '@temporalio/client';
import { closeTestClients, uniqueId, withTestWorker } from '../support/temporal-server';
import { R50, resnetKeys, writePth, writeSafetensors } from '../support/checkpoint-files';
import { createControlActivities } from '../../activities';
import { writeSynthDetection } from '../../datasets/synth/detection';
import { makeToyCampaign, type Campaign } from '../../protocol/campaign';
import { PRETRAINED_BACKBONE } from '../../protocol/recipe';
import { progressQuery } from '../../workflows/api';
import { namedBackboneOf } from '../../workflows/search-ops';
import { MockGpu } from './mock-gpu';
import { readResultsText } from '../../activities/artifact-store';

jest.setTimeout(300_000);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-wfbw-'));
const dataRoot = path.join(work, 'data');
const r50 = path.join(work, 'resnet50.pth');
const x101 = path.join(work, 'resnext101_32x4d.safetensors');
afterAll(async () => {
  await closeTestClients();
  fs.rmSync(work, { recursive: true, force: true });
});
beforeAll(() => {
  writeSynthDetection({ train: 4, val: 2, size: 64, classes: 2, seed: 3, out: path.join(dataRoot, 'coco'), format: 'coco' });
  writePth(r50, R50);
  writeSafetensors(x101, resnetKeys([3, 4, 23, 3], true), [128, 4, 3, 3]);
});

function campaign(taskQueue: string, data: Partial<Campaign['data']>, id = uniqueId('bw')): Campaign {
  const base = makeToyCampaign({ id, dataRoot, artifactRoot: path.join(work, `store-${id}`) }); // no reuse between tests
  return {
    ...base,
    space: 'paper', // the paper's stage-one space: named backbones
    seed: 1,
    data: { detection: { root: path.join(dataRoot, 'coco'), trainSplit: 'train', valSplit: 'val' }, transfer: [], ...data },
    queues: { control: taskQueue, gpu: taskQueue },
    candidates: 1,
    stages: {
      ...base.stages,
      structural: { maxEvaluations: 14, population: 14, recipe: 'toy-stage-one' }, // BN
      modular: { maxEvaluationsPerCandidate: 2, population: 2, recipe: 'toy-stage-two', finalists: 1 }, // GN+WS
    },
    budgets: { maxConcurrentTrainings: 4, continueAsNewEvery: 200 },
  };
}

const workerOpts = (gpu: MockGpu, taskQueue: string) => ({
  taskQueue,
  activities: {
    ...createControlActivities({ artifactRoot: path.join(work, 'store'), trainerBin: '/nonexistent', devices: ['cpu'], logger: pino({ level: 'silent' }) }),
    ...gpu.activities(),
  },
});

describe('campaigns with ImageNet backbone weights (mocked GPU activities)', () => {
  test('stage-one evaluations of weighted named backbones start from them with PRETRAINED_BACKBONE; the others from scratch', async () => {
    const gpu = new MockGpu(10);
    const tq = uniqueId('tq');
    await withTestWorker(workerOpts(gpu, tq), async ({ client }) => {
      const c = campaign(tq, { backboneWeights: { resnet50: r50, resnext101_32x4d: x101 } });
      const h = await client.workflow.start('smnasSearch', { taskQueue: tq, workflowId: `smnas-${c.id}`, args: [c] });
      const result: any = await h.result();
      const s1 = gpu.calls.filter((x) => x.activity === 'trainDetector' && x.recipe === 'toy-stage-one');
      expect(s1).toHaveLength(14);
      const weighted = s1.filter((x) => ['resnet50', 'resnext101_32x4d'].includes(namedBackboneOf(x.arch)!));
      const scratch = s1.filter((x) => !weighted.includes(x));
      expect(weighted.length).toBeGreaterThan(0);
      expect(scratch.length).toBeGreaterThan(0);
      for (const x of weighted) {
        expect(x).toMatchObject({
          initKind: 'torchvision',
          initWeights: namedBackboneOf(x.arch) === 'resnet50' ? r50 : x101,
          recipeBackbone: PRETRAINED_BACKBONE,
        });
      }
      for (const x of scratch) expect(x).toMatchObject({ initKind: undefined, initWeights: undefined, recipeBackbone: undefined });
      // stage two (GN+WS from scratch) is unchanged
      for (const x of gpu.calls.filter((y) => y.activity === 'trainDetector' && y.recipe === 'toy-stage-two')) expect(x.initKind).toBeUndefined();
      // the store keys and recipe hashes of pretrained evaluations differ from the from-scratch ones
      const lines = readResultsText(result.artifactDir)
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      const hashes = (archs: string[]) => new Set(lines.filter((l) => l.stage === 'structural' && archs.includes(l.arch)).map((l) => l.recipeHash));
      const hw = hashes(weighted.map((x) => x.arch));
      const hs = hashes(scratch.map((x) => x.arch));
      expect(hw.size).toBe(1);
      expect(hs.size).toBe(1);
      expect([...hw][0]).not.toBe([...hs][0]);
      const p = await h.query(progressQuery);
      expect(p.backboneWeights).toEqual(
        expect.arrayContaining([
          'stage one: resnet50, resnext101_32x4d from ImageNet weights (BN in eval mode, stem and stage 1 frozen)',
          'resnet18, resnet34, resnet101, resnext50_32x4d, mobilenet_v2 have no weights: trained from scratch',
        ]),
      );
    });
  });

  test("'exclude': stage one never samples a backbone without weights", async () => {
    const gpu = new MockGpu(10);
    const tq = uniqueId('tq');
    await withTestWorker(workerOpts(gpu, tq), async ({ client }) => {
      const c = campaign(tq, { backboneWeights: { resnet50: r50, resnext101_32x4d: x101 }, missingBackboneWeights: 'exclude' });
      const h = await client.workflow.start('smnasSearch', { taskQueue: tq, workflowId: `smnas-${c.id}`, args: [c] });
      await h.result();
      const s1 = gpu.calls.filter((x) => x.activity === 'trainDetector' && x.recipe === 'toy-stage-one');
      expect(s1).toHaveLength(14);
      const backbones = new Set(s1.map((x) => namedBackboneOf(x.arch)));
      expect([...backbones].sort()).toEqual(['resnet50', 'resnext101_32x4d']);
      for (const x of s1) expect(x.initKind).toBe('torchvision');
      const p = await h.query(progressQuery);
      expect(p.backboneWeights).toContain('resnet18, resnet34, resnet101, resnext50_32x4d, mobilenet_v2 have no weights: left out of the space');
    });
  });

  test('a bad weights file fails the campaign at start, naming the field and the path, before any training', async () => {
    const gpu = new MockGpu(10);
    const tq = uniqueId('tq');
    await withTestWorker(workerOpts(gpu, tq), async ({ client }) => {
      const c = campaign(tq, { backboneWeights: { resnet50: x101 } });
      const err = await client.workflow.execute('smnasSearch', { taskQueue: tq, workflowId: `smnas-${c.id}`, args: [c] }).catch((e) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const msg = String(err.cause?.cause?.message ?? err.cause?.message);
      expect(msg).toContain(`campaign: data.backboneWeights.resnet50: ${x101}: not resnet50 weights in torchvision naming`);
      expect(gpu.calls).toHaveLength(0);
    });
  });
});
