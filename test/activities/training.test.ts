/**
 * GPU activities against a MOCKED trainer (test/activities/mock-trainer.ts), in
 * MockActivityEnvironment: heartbeats carry progress and the checkpoint, a retried attempt resumes
 * from the heartbeat details, cancellation kills the trainer's whole process group, and each
 * failure kind maps to retryable / non-retryable.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { createGpuActivities, type ActivityDeps } from '../../activities';
import type { TrainOutcome, TrainRequest } from '../../activities/types';
import type { BenchFigures } from '../../protocol/trainer-messages';
import { getDetectionRecipe } from '../../protocol/recipes';
import { processGone, tmpDir, writeMockTrainer, type MockBehaviour } from './mock-trainer';

const ARCH = '64x64/basicblock_16_11-21-21-21/fpn(P1-P4,c=32)/rpn/2fc';
const work = tmpDir('smnas-act-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function deps(behaviour: MockBehaviour, root = path.join(work, behaviour)): ActivityDeps {
  return {
    artifactRoot: root,
    trainerBin: writeMockTrainer(work, behaviour),
    devices: ['cpu'],
    logger: pino({ level: 'silent' }),
    evaluator: ['mock-evaluator'],
    heartbeatEverySeconds: 0.2,
    killGraceMs: 500,
  };
}

const request = (key = 'k1'): TrainRequest => ({
  campaignId: 'c1',
  key,
  arch: ARCH,
  recipe: 'toy-stage-one',
  seed: 0,
  data: { name: 'detection', root: '/data/coco', trainSplit: 'train', valSplit: 'val', numClasses: 3, trainImages: 10, valImages: 4, fingerprint: 'f' },
});

async function failureOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the activity to fail');
}

describe('trainDetector (mock trainer)', () => {
  test('heartbeats carry progress and the last checkpoint; the result carries mAP', async () => {
    const env = new MockActivityEnvironment({ attempt: 1 });
    const beats: any[] = [];
    env.on('heartbeat', (d) => beats.push(d));
    const acts = createGpuActivities(deps('ok'));
    const out = (await env.run(acts.trainDetector, request())) as TrainOutcome;
    expect(out.kind).toBe('ok');
    expect(out.mAP).toBeCloseTo(0.42);
    expect(out.weights).toMatch(/final\.pt$/);
    expect(out.resumedFrom).toBeNull();
    const withProgress = beats.filter((b) => b.iteration !== null);
    expect(withProgress.map((b) => b.iteration)).toEqual(expect.arrayContaining([1, 2, 3, 4]));
    expect(withProgress[withProgress.length - 1]).toMatchObject({ phase: 'training', epoch: 2, iteration: 4, totalIterations: 4, loss: 0.5 });
    const last = beats[beats.length - 1];
    expect(last.checkpoint).toEqual({ path: expect.stringMatching(/ckpt-000002\.pt$/), epoch: 1, iteration: 2 });
    // the job file the trainer got is zod-valid and not a resume
    const job = JSON.parse(fs.readFileSync(path.join(work, 'ok', 'runs', 'k1', 'job-train-attempt1.json'), 'utf8'));
    expect(job).toMatchObject({ command: 'train', arch: ARCH, resume: false, device: 'cpu', evaluator: ['mock-evaluator'] });
  });

  test('a retried attempt resumes from the checkpoint in the heartbeat details', async () => {
    const d = deps('ok', path.join(work, 'resume'));
    // attempt 1 leaves a checkpoint behind
    await new MockActivityEnvironment({ attempt: 1 }).run(createGpuActivities(d).trainDetector, request('k2'));
    const ckpt = path.join(work, 'resume', 'runs', 'k2', 'checkpoints', 'ckpt-000002.pt');
    const env = new MockActivityEnvironment({
      attempt: 2,
      heartbeatDetails: { phase: 'training', epoch: 1, iteration: 2, totalIterations: 4, loss: 1, checkpoint: { path: ckpt, epoch: 1, iteration: 2 }, device: 'cpu', attempt: 1 },
    });
    const beats: any[] = [];
    env.on('heartbeat', (b) => beats.push(b));
    const out = (await env.run(createGpuActivities(d).trainDetector, request('k2'))) as TrainOutcome;
    expect(out.attempt).toBe(2);
    expect(out.resumedFrom).toBe(ckpt);
    const job = JSON.parse(fs.readFileSync(path.join(work, 'resume', 'runs', 'k2', 'job-train-attempt2.json'), 'utf8'));
    expect(job.resume).toBe(true);
    // the first heartbeat of the new attempt still names the old checkpoint (not lost if it dies at once)
    expect(beats[0].checkpoint.path).toBe(ckpt);
    // the mock skips iterations 1-2 when resuming
    expect(beats.filter((b) => b.phase === 'training' && b.iteration !== null).map((b) => b.iteration)).not.toContain(1);
  });

  test('cancellation kills the whole process group (trainer and its subprocess)', async () => {
    const d = deps('hang');
    const env = new MockActivityEnvironment({ attempt: 1 });
    const p = failureOf(env.run(createGpuActivities(d).trainDetector, request('k3')));
    const pidsFile = path.join(work, 'hang', 'runs', 'k3', 'pids.json');
    for (let i = 0; i < 100 && !fs.existsSync(pidsFile); i++) await new Promise((r) => setTimeout(r, 50));
    const pids = JSON.parse(fs.readFileSync(pidsFile, 'utf8')) as number[];
    expect(pids.every((pid) => !processGone(pid))).toBe(true);
    env.cancel();
    const err = await p;
    expect(err).toBeInstanceOf(CancelledFailure);
    for (let i = 0; i < 40 && !pids.every(processGone); i++) await new Promise((r) => setTimeout(r, 50));
    expect(pids.map(processGone)).toEqual([true, true]);
  });

  test('a trainer orphaned by a killed worker is stopped before the next attempt trains in its folder', async () => {
    const d = deps('ok', path.join(work, 'orphan'));
    const outDir = path.join(work, 'orphan', 'runs', 'k4');
    fs.mkdirSync(outDir, { recursive: true });
    // the leftover: a detached trainer (MOCK, hanging with a subprocess) whose worker died
    const jobFile = path.join(outDir, 'job-train-attempt1.json');
    fs.writeFileSync(jobFile, JSON.stringify({ outDir, arch: ARCH, device: 'cpu', resume: false }));
    const hangBin = writeMockTrainer(work, 'hang');
    const orphan = spawn(hangBin, ['train', '--job', jobFile], { detached: true, stdio: 'ignore' });
    orphan.unref();
    fs.writeFileSync(path.join(outDir, 'trainer.pid'), JSON.stringify({ pid: orphan.pid, host: os.hostname(), bin: hangBin }));
    const pidsFile = path.join(outDir, 'pids.json');
    for (let i = 0; i < 100 && !fs.existsSync(pidsFile); i++) await new Promise((r) => setTimeout(r, 50));
    const pids = JSON.parse(fs.readFileSync(pidsFile, 'utf8')) as number[];
    expect(pids.some((p) => !processGone(p))).toBe(true);
    const out = (await new MockActivityEnvironment({ attempt: 2 }).run(createGpuActivities(d).trainDetector, request('k4'))) as TrainOutcome;
    expect(out.kind).toBe('ok');
    expect(pids.map(processGone)).toEqual([true, true]);
    expect(fs.existsSync(path.join(outDir, 'trainer.pid'))).toBe(false);
  });

  test.each([
    ['invalid-job', 'InvalidJob', true, /recipe\.epochs must be positive \(field recipe\.epochs\)/],
    ['bad-data', 'BadData', true, /negative width/],
    ['crash', 'TrainerCrash', false, /exit code 1: mock: simulated crash/],
  ] as const)('%s -> %s (nonRetryable=%s)', async (behaviour, type, nonRetryable, message) => {
    const err = await failureOf(new MockActivityEnvironment({ attempt: 1 }).run(createGpuActivities(deps(behaviour)).trainDetector, request()));
    expect(err).toBeInstanceOf(ApplicationFailure);
    const f = err as ApplicationFailure;
    expect(f.type).toBe(type);
    expect(f.nonRetryable).toBe(nonRetryable);
    expect(f.message).toMatch(message);
  });

  test('divergence is a recorded outcome with no score, not an error', async () => {
    const out = await new MockActivityEnvironment({ attempt: 1 }).run(createGpuActivities(deps('diverged')).trainDetector, request());
    expect(out).toMatchObject({ kind: 'diverged', mAP: null, stats: null, message: 'loss is NaN at iteration 3' });
  });

  test('a job the builder rejects (unknown recipe) is non-retryable', async () => {
    const err = await failureOf(new MockActivityEnvironment().run(createGpuActivities(deps('ok')).trainDetector, { ...request(), recipe: 'no-such-recipe' }));
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect(err.message).toMatch(/unknown detection recipe 'no-such-recipe'/);
  });

  test('a recipe asking for 2 devices leases 2 GPUs of the worker and starts 2 processes of one training', async () => {
    const root = path.join(work, 'dp');
    fs.mkdirSync(root, { recursive: true });
    const recipeFile = path.join(root, 'recipe-2dev.json');
    fs.writeFileSync(recipeFile, JSON.stringify({ ...getDetectionRecipe('toy-stage-one'), devices: 2 }));
    const d: ActivityDeps = { ...deps('ok', root), devices: ['cuda:0', 'cuda:1', 'cuda:2'] };
    const out = (await new MockActivityEnvironment({ attempt: 1 }).run(createGpuActivities(d).trainDetector, { ...request('k-dp'), recipe: recipeFile })) as TrainOutcome;
    expect(out.kind).toBe('ok');
    expect(out.device).toBe('cuda:0,cuda:1');
    expect(out.gpuSeconds).toBeCloseTo(2 * out.wallSeconds);
    const runDir = path.join(root, 'runs', 'k-dp');
    const job = JSON.parse(fs.readFileSync(path.join(runDir, 'job-train-attempt1.json'), 'utf8'));
    expect(job).toMatchObject({ device: 'cuda:0', distributed: { worldSize: 2 }, recipe: { batchSize: 4, devices: 2 } });
    const ranks = fs.readFileSync(path.join(runDir, 'ranks.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    ranks.sort((a, b) => Number(a.RANK) - Number(b.RANK));
    expect(ranks).toEqual([
      expect.objectContaining({ RANK: '0', WORLD_SIZE: '2', LOCAL_RANK: '0', CUDA_VISIBLE_DEVICES: '0', MASTER_ADDR: '127.0.0.1' }),
      expect.objectContaining({ RANK: '1', WORLD_SIZE: '2', LOCAL_RANK: '0', CUDA_VISIBLE_DEVICES: '1' }),
    ]);
    expect(ranks[0].MASTER_PORT).toBe(ranks[1].MASTER_PORT);
  });
});

describe('benchmarkLatency (mock trainer)', () => {
  test('returns the bench figures and caches them in the store', async () => {
    const d = deps('bench');
    const req = { key: 'kb', arch: ARCH, recipe: 'toy-stage-one', numClasses: 3, device: 'cpu', warmup: 1, iterations: 3 };
    const figs = (await new MockActivityEnvironment().run(createGpuActivities(d).benchmarkLatency, req)) as BenchFigures;
    expect(figs.medianMs).toBe(12.5);
    // second call: from the store, even with a trainer that would fail
    const again = await new MockActivityEnvironment().run(createGpuActivities({ ...d, trainerBin: '/nonexistent' }).benchmarkLatency, req);
    expect(again).toEqual(figs);
  });
});
