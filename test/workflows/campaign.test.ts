/**
 * Workflow tests on a REAL Temporal dev server (test/support/temporal-server.ts) with the real
 * workflows and control activities, and MOCKED GPU activities (test/workflows/mock-gpu.ts):
 * validation, stage order, budgets, pause/resume, stop-stage, continue-as-new, reuse of finished
 * evaluations.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { WorkflowFailedError } from '@temporalio/client';
import { closeTestClients, uniqueId, withTestWorker, type TestWorkerOptions } from '../support/temporal-server';
import { createControlActivities } from '../../activities';
import { writeSynthDetection } from '../../datasets/synth/detection';
import { writeSynthClassification } from '../../datasets/synth/classification';
import { makeToyCampaign, type Campaign, type CampaignInput } from '../../protocol/campaign';
import { describeCocoDir } from '../../activities/data';
import { candidatesQuery, frontsQuery, pauseSignal, progressQuery, resumeSignal, stopStageSignal, stageProgressQuery } from '../../workflows/api';
import type { SearchStageInput } from '../../workflows/search-stage';
import { MockGpu } from './mock-gpu';
import { readResultsText } from '../../activities/artifact-store';

jest.setTimeout(360_000);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-wf-'));
const dataRoot = path.join(work, 'data');
afterAll(async () => {
  await closeTestClients();
  fs.rmSync(work, { recursive: true, force: true });
});

beforeAll(() => {
  // tiny real data sets (the control activities check and fingerprint them)
  const o = { train: 4, val: 2, size: 64, classes: 2, seed: 3 };
  writeSynthDetection({ ...o, out: path.join(dataRoot, 'coco'), format: 'coco' });
  writeSynthDetection({ ...o, out: path.join(dataRoot, 'coco2'), format: 'coco', seed: 4 });
  writeSynthClassification({ out: path.join(dataRoot, 'cls'), train: 2, val: 1, size: 32, classes: 2, seed: 5 });
});

function campaign(taskQueue: string, overrides: Partial<CampaignInput> = {}, id = uniqueId('camp')): Campaign {
  const base = makeToyCampaign({ id, dataRoot, artifactRoot: path.join(work, 'store') });
  return {
    ...base,
    data: {
      detection: { root: path.join(dataRoot, 'coco'), trainSplit: 'train', valSplit: 'val' },
      transfer: [{ name: 'second', format: 'coco', root: path.join(dataRoot, 'coco2') }],
      classification: { root: path.join(dataRoot, 'cls') },
    },
    queues: { control: taskQueue, gpu: taskQueue },
    candidates: 2,
    stages: {
      ...base.stages,
      structural: { maxEvaluations: 8, population: 4, recipe: 'toy-stage-one' },
      modular: { maxEvaluationsPerCandidate: 4, population: 2, recipe: 'toy-stage-two', finalists: 2 },
    },
    budgets: { maxConcurrentTrainings: 2, continueAsNewEvery: 200 },
    ...(overrides as object),
  } as Campaign;
}

function workerOpts(gpu: MockGpu, taskQueue: string): TestWorkerOptions {
  const control = createControlActivities({
    artifactRoot: path.join(work, 'store'),
    trainerBin: '/nonexistent',
    devices: ['cpu'],
    logger: pino({ level: 'silent' }),
  });
  return { taskQueue, activities: { ...control, ...gpu.activities() } };
}

describe('smnasSearch on a real dev server (mocked GPU activities)', () => {
  test('runs the six stages in order within the budgets and writes the report', async () => {
    const gpu = new MockGpu();
    const tq = uniqueId('tq');
    await withTestWorker(workerOpts(gpu, tq), async ({ client }) => {
      const c = campaign(tq);
      const h = await client.workflow.start('smnasSearch', { taskQueue: tq, workflowId: `smnas-${c.id}`, args: [c] });
      const result: any = await h.result();
      // stage order by recipe of each GPU call
      const order = gpu.calls.filter((x) => x.activity !== 'benchmarkLatency' && x.activity !== 'measureLatency').map((x) => x.recipe);
      const firstIdx = (r: string) => order.indexOf(r);
      const lastIdx = (r: string) => order.lastIndexOf(r);
      for (const [a, b] of [
        ['toy-stage-one', 'toy-stage-two'],
        ['toy-stage-two', 'toy-pretrain'],
        ['toy-pretrain', 'toy-final'],
        ['toy-final', 'toy-transfer'],
      ]) {
        expect(firstIdx(a)).toBeGreaterThanOrEqual(0);
        expect(lastIdx(a)).toBeLessThan(firstIdx(b));
      }
      // budgets: exactly the evaluations asked for, never more than 2 trainings at once
      expect(order.filter((r) => r === 'toy-stage-one')).toHaveLength(8);
      expect(order.filter((r) => r === 'toy-stage-two').length).toBeLessThanOrEqual(2 * 4);
      expect(gpu.maxRunning).toBeLessThanOrEqual(2);
      // no architecture trained twice in a stage
      const s1 = gpu.calls.filter((x) => x.recipe === 'toy-stage-one' && x.activity === 'trainDetector').map((x) => x.arch);
      expect(new Set(s1).size).toBe(s1.length);

      expect(result.finalTable.length).toBeGreaterThan(0);
      for (const row of result.finalTable) {
        expect(row.finalMap).not.toBeNull();
        expect(row.gflops).toBeGreaterThan(0);
        expect(row.transfer.second).not.toBeNull();
      }
      const files = fs.readdirSync(result.artifactDir);
      expect(files).toEqual(
        expect.arrayContaining([
          'results.jsonl',
          'fronts.json',
          'report.md',
          'report.html',
          'pareto-structural.svg',
          'pareto-modular.png',
          'correlation.svg',
          'final.json',
        ]),
      );
      // the report's counts are the results log's
      const logged = readResultsText(result.artifactDir).trim().split('\n').length;
      expect(fs.readFileSync(path.join(result.artifactDir, 'report.md'), 'utf8')).toContain(`Evaluations: ${logged} in results.jsonl`);
      // the final models are exported to ONNX (patch campaign-export-onnx); the mocked weights do not
      // exist, so each row says why it was not, and the report lists them
      for (const row of result.finalTable) {
        expect(row.onnx).toBeNull();
        expect(row.onnxError).toMatch(/\/mock\/weights\/.*no such folder/);
      }
      expect(fs.readFileSync(path.join(result.artifactDir, 'report.md'), 'utf8')).toMatch(
        /## Deployable models \(ONNX[^\n]*\n\n- E0: not exported: \/mock\/weights\//,
      );
      const lines = readResultsText(result.artifactDir)
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines.filter((l) => l.stage === 'structural')).toHaveLength(8);
      expect(lines[0]).toMatchObject({ arch: expect.any(String), recipe: 'toy-stage-one', attempts: 1, latencyMs: expect.any(Number) });

      const progress = await h.query(progressQuery);
      expect(progress.phase).toBe('done');
      expect(progress.stages.structural).toMatchObject({ status: 'done', evaluated: 8, planned: 8 });
      expect(progress.bestMap).toBeGreaterThan(0);
      const fronts = await h.query(frontsQuery);
      expect(fronts.structural.length).toBeGreaterThan(0);
      const cands = await h.query(candidatesQuery);
      expect(cands.selected.length).toBeGreaterThan(0);
      const desc = await h.describe();
      expect(desc.typedSearchAttributes.get({ name: 'SmnasStage', type: 'KEYWORD' } as any)).toBe('done');
      // the campaign counts evaluations as its results log does (not the selected candidates and pretrained backbones)
      expect(progress.evaluated).toBe(lines.length);
      expect(progress.stages.selection.evaluated + progress.stages.pretrain.evaluated).toBeGreaterThan(0);
      expect(desc.typedSearchAttributes.get({ name: 'SmnasEvaluated', type: 'INT' } as any)).toBe(lines.length);
    });
  });

  test('a campaign started again reuses every finished evaluation instead of training', async () => {
    const gpu = new MockGpu();
    const tq = uniqueId('tq');
    await withTestWorker(workerOpts(gpu, tq), async ({ client }) => {
      const c1 = campaign(tq, { artifactRoot: path.join(work, 'store-reuse') }, uniqueId('reuse-a'));
      await client.workflow.execute('smnasSearch', { taskQueue: tq, workflowId: `smnas-${c1.id}`, args: [c1] });
      const trained = gpu.calls.filter((x) => x.activity === 'trainDetector').length;
      expect(trained).toBeGreaterThan(8);
      // a new campaign (new id) on the same data with the same seed makes the same decisions: all reused
      const c2 = { ...c1, id: uniqueId('reuse-b') };
      const h2 = await client.workflow.start('smnasSearch', { taskQueue: tq, workflowId: `smnas-${c2.id}`, args: [c2] });
      await h2.result();
      expect(gpu.calls.filter((x) => x.activity === 'trainDetector').length).toBe(trained);
      const p = await h2.query(progressQuery);
      expect(p.stages.structural.reused).toBe(8);
    });
  });

  test('cancelling a campaign cancels its stage and evaluation children and their running trainings', async () => {
    const gpu = new MockGpu(60_000); // trainings that would run a minute
    const tq = uniqueId('tq');
    await withTestWorker(workerOpts(gpu, tq), async ({ client }) => {
      const c = { ...campaign(tq, { artifactRoot: path.join(work, 'store-cancel') }), timeouts: { trainingHours: 1, heartbeatSeconds: 2, maxAttempts: 3 } };
      const h = await client.workflow.start('smnasSearch', { taskQueue: tq, workflowId: `smnas-${c.id}`, args: [c] });
      await until(async () => gpu.running === 2);
      await h.cancel();
      const err = await h.result().catch((e) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect(err.cause?.name).toBe('CancelledFailure');
      await until(async () => gpu.cancelled.length === 2 && gpu.running === 0);
      const stage = await client.workflow.getHandle(`smnas-${c.id}/structural`).describe();
      expect(stage.status.name).toBe('CANCELLED');
      let evals: string[] = [];
      await until(async () => {
        evals = [];
        for await (const w of client.workflow.list({ query: `WorkflowType = 'evaluateArchitecture' AND SmnasCampaign = '${c.id}'` })) evals.push(w.status.name);
        return evals.length === 2 && evals.every((s) => s !== 'RUNNING'); // visibility lags a moment
      }, 60_000);
      expect(evals).toEqual(['CANCELLED', 'CANCELLED']);
    });
  });

  test('an invalid campaign fails at once, non-retryably, naming the field', async () => {
    const tq = uniqueId('tq');
    await withTestWorker(workerOpts(new MockGpu(), tq), async ({ client }) => {
      const bad = { ...campaign(tq), budgets: { maxConcurrentTrainings: 0 } };
      const err = await client.workflow.execute('smnasSearch', { taskQueue: tq, workflowId: uniqueId('bad'), args: [bad] }).catch((e) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect((err as WorkflowFailedError).cause?.message).toMatch(/^campaign: budgets\.maxConcurrentTrainings: /);
    });
  });
});

function stageInput(taskQueue: string, o: Partial<SearchStageInput>): SearchStageInput {
  const c = campaign(taskQueue);
  return {
    campaignId: uniqueId('stage'),
    stage: 'structural',
    space: 'toy',
    recipe: 'toy-stage-one',
    data: describeCocoDir('detection', path.join(dataRoot, 'coco'), 'train', 'val'),
    seed: 1,
    maxEvaluations: 8,
    population: 4,
    concurrency: 2,
    deadline: null,
    gpuSecondsBudget: null,
    continueAsNewEvery: 1000,
    parentWorkflowId: null,
    template: { latencyDevice: 'cpu', bench: c.bench, queues: c.queues, timeouts: c.timeouts, artifactRoot: path.join(work, `store-${Math.random()}`) },
    ...o,
  };
}

const until = async (f: () => Promise<boolean>, ms = 120_000) => {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 100));
  }
};

describe('searchStage controls', () => {
  test('pause finishes running evaluations and starts none; resume continues', async () => {
    const gpu = new MockGpu(400);
    const tq = uniqueId('tq');
    await withTestWorker(workerOpts(gpu, tq), async ({ client }) => {
      const h = await client.workflow.start('searchStage', { taskQueue: tq, workflowId: uniqueId('pause'), args: [stageInput(tq, {})] });
      await until(async () => (await h.query(stageProgressQuery)).progress.running > 0);
      await h.signal(pauseSignal);
      await until(async () => (await h.query(stageProgressQuery)).progress.running === 0);
      const frozen = gpu.calls.length;
      await new Promise((r) => setTimeout(r, 1500));
      expect(gpu.calls.length).toBe(frozen); // nothing started while paused
      const mid = await h.query(stageProgressQuery);
      expect(mid.progress.evaluated).toBeLessThan(8);
      await h.signal(resumeSignal);
      const r: any = await h.result();
      expect(r.evaluatedCount).toBe(8);
      expect(r.stopped).toBe(false);
    });
  });

  test('stop-stage keeps what finished and returns early', async () => {
    const gpu = new MockGpu(300);
    const tq = uniqueId('tq');
    await withTestWorker(workerOpts(gpu, tq), async ({ client }) => {
      const h = await client.workflow.start('searchStage', {
        taskQueue: tq,
        workflowId: uniqueId('stop'),
        args: [stageInput(tq, { maxEvaluations: 12, population: 4 })],
      });
      await until(async () => (await h.query(stageProgressQuery)).progress.evaluated >= 2);
      await h.signal(stopStageSignal);
      const r: any = await h.result();
      expect(r.stopped).toBe(true);
      expect(r.stopReason).toBe('stopped');
      expect(r.evaluatedCount).toBeGreaterThanOrEqual(2);
      expect(r.evaluatedCount).toBeLessThan(12);
      expect(r.front.length).toBeGreaterThan(0);
    });
  });

  test('a modular stage evaluates its candidate first and searches used-layers forms only', async () => {
    const gpu = new MockGpu(10);
    const tq = uniqueId('tq');
    await withTestWorker(workerOpts(gpu, tq), async ({ client }) => {
      const candidate = '64x64/basicblock_16_11-21-21-21/fpn(P1-P3,c=32)/rpn/2fc';
      const input = stageInput(tq, { stage: 'modular', candidate, recipe: 'toy-stage-two', maxEvaluations: 6, population: 3, concurrency: 1 }); // one at a time: the GPU calls come in start order
      const r: any = await client.workflow.execute('searchStage', { taskQueue: tq, workflowId: uniqueId('seed'), args: [input] });
      const trained = gpu.calls.filter((x) => x.activity === 'trainDetector').map((x) => x.arch);
      // the candidate, in the stage's form (stage 4 is not built under fpn(P1-P3)), with the stage-two recipe, first
      const seed = '64x64/basicblock_16_11-21-21-x/fpn(P1-P3,c=32)/rpn/2fc';
      expect(trained[0]).toBe(seed);
      expect(gpu.calls.find((x) => x.arch === seed)?.recipe).toBe('toy-stage-two');
      expect(r.evaluatedCount).toBe(6);
      // every member is a used-layers form and no two are one network
      expect(trained.every((a) => /_[12]+-[12]+-[12]+-x\//.test(a))).toBe(true);
      expect(new Set(trained).size).toBe(trained.length);
      // the candidate's place in its front: on it, or dominated by a member of it
      const log = readResultsText(path.join(input.template.artifactRoot!, 'campaigns', input.campaignId))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      const s = log.find((l) => l.arch === seed);
      expect(s).toBeDefined();
      const onFront = r.front.some((p: any) => p.arch === seed);
      const dominated = r.front.some((p: any) => p.cost <= s.gflops && p.mAP >= s.mAP && (p.cost < s.gflops || p.mAP > s.mAP));
      expect(onFront !== dominated).toBe(true);
    });
  });

  test('continues as new every N evaluations, carrying its state and the Rng', async () => {
    const gpu = new MockGpu(10);
    const tq = uniqueId('tq');
    await withTestWorker(workerOpts(gpu, tq), async ({ client }) => {
      const input = stageInput(tq, { maxEvaluations: 7, population: 3, continueAsNewEvery: 3, seed: 5 });
      const h = await client.workflow.start('searchStage', { taskQueue: tq, workflowId: uniqueId('can'), args: [input] });
      const r: any = await h.result();
      expect(r.evaluatedCount).toBe(7);
      expect(r.runs).toBe(3);
      const archsOf = (campaignId: string) =>
        readResultsText(path.join(input.template.artifactRoot!, 'campaigns', campaignId))
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l).arch as string);
      const archs = archsOf(input.campaignId);
      expect(new Set(archs).size).toBe(7);
      // three runs: 3 + 3 + 1 evaluations
      let runs: string[] = [];
      await until(async () => {
        runs = [];
        for await (const w of client.workflow.list({ query: `WorkflowId = '${h.workflowId}'` })) runs.push(w.runId);
        return runs.length >= 3; // visibility catches up a moment after the last run closes
      }, 60_000);
      expect(runs.length).toBe(3);
      // the same seed without continue-as-new samples the same architectures (the Rng state was carried)
      const input2 = { ...input, campaignId: uniqueId('nocan'), continueAsNewEvery: 1000 };
      const r2: any = await client.workflow.execute('searchStage', { taskQueue: tq, workflowId: uniqueId('nocan'), args: [input2] });
      expect(r2.runs).toBe(1);
      expect(archsOf(input2.campaignId).sort()).toEqual([...archs].sort()); // the same architectures (the log is in finishing order)
      expect(r2.front.map((p: any) => p.arch)).toEqual(r.front.map((p: any) => p.arch));
      expect(r.front.every((p: any) => p.key.length === 64)).toBe(true); // front keys survive continue-as-new
    });
  });

  test('continues as new when its run history reaches maxHistoryEvents, whatever continueAsNewEvery says', async () => {
    const gpu = new MockGpu(5);
    const tq = uniqueId('tq');
    await withTestWorker(workerOpts(gpu, tq), async ({ client }) => {
      const input = stageInput(tq, { maxEvaluations: 10, population: 3, continueAsNewEvery: 1000, maxHistoryEvents: 40, seed: 9 });
      const h = await client.workflow.start('searchStage', { taskQueue: tq, workflowId: uniqueId('cap'), args: [input] });
      const r: any = await h.result();
      expect(r.evaluatedCount).toBe(10);
      expect(r.runs).toBeGreaterThan(1);
      // each run stopped starting evaluations at the cap and drained: no run grew far past it
      const lengths: number[] = [];
      await until(async () => {
        lengths.length = 0;
        for await (const w of client.workflow.list({ query: `WorkflowId = '${h.workflowId}'` })) lengths.push(w.historyLength);
        return lengths.length >= r.runs;
      }, 60_000);
      expect(lengths.length).toBe(r.runs);
      for (const n of lengths) expect(n).toBeLessThan(40 + 20 * input.concurrency);
    });
  });

  test('GPU-hour and wall-clock budgets stop the stage from starting more evaluations', async () => {
    const gpu = new MockGpu(50); // each mocked training reports 1 GPU second
    const tq = uniqueId('tq');
    await withTestWorker(workerOpts(gpu, tq), async ({ client }) => {
      const r: any = await client.workflow.execute('searchStage', {
        taskQueue: tq,
        workflowId: uniqueId('gpub'),
        args: [stageInput(tq, { maxEvaluations: 20, gpuSecondsBudget: 3 })],
      });
      expect(r.stopReason).toBe('gpu-budget');
      // 3 seconds used after 3 evaluations; at most `concurrency - 1` more were already running
      expect(r.evaluatedCount).toBeGreaterThanOrEqual(3);
      expect(r.evaluatedCount).toBeLessThanOrEqual(4);
      const d: any = await client.workflow.execute('searchStage', {
        taskQueue: tq,
        workflowId: uniqueId('wall'),
        args: [stageInput(tq, { maxEvaluations: 20, deadline: Date.now() - 1 })],
      });
      expect(d.stopReason).toBe('deadline');
      expect(d.evaluatedCount).toBe(0);
    });
  });
});
