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
import type { PretrainOutcome, TrainOutcome, TrainRequest } from '../../activities/types';
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
    // the last iteration done: the trainer evaluates next (the liveness watch's evaluation allowance applies)
    expect(withProgress[withProgress.length - 1]).toMatchObject({ phase: 'evaluating', epoch: 2, iteration: 4, totalIterations: 4, loss: 0.5 });
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
      heartbeatDetails: {
        phase: 'training',
        epoch: 1,
        iteration: 2,
        totalIterations: 4,
        loss: 1,
        checkpoint: { path: ckpt, epoch: 1, iteration: 2 },
        device: 'cpu',
        attempt: 1,
      },
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

  test('a quiet but live trainer is heartbeaten at least three times per heartbeat timeout', async () => {
    const d: ActivityDeps = { ...deps('hang', path.join(work, 'hb-period')), heartbeatEverySeconds: 10 };
    const env = new MockActivityEnvironment({ attempt: 1, heartbeatTimeoutMs: 300 });
    const beats: number[] = [];
    env.on('heartbeat', () => beats.push(Date.now()));
    const p = failureOf(env.run(createGpuActivities(d).trainDetector, request('k7')));
    const pidsFile = path.join(work, 'hb-period', 'runs', 'k7', 'pids.json');
    for (let i = 0; i < 100 && !fs.existsSync(pidsFile); i++) await new Promise((r) => setTimeout(r, 50));
    const quietFrom = Date.now();
    await new Promise((r) => setTimeout(r, 1000));
    expect(beats.filter((t) => t >= quietFrom).length).toBeGreaterThanOrEqual(5); // every 100 ms, not every 10 s
    env.cancel();
    expect(await p).toBeInstanceOf(CancelledFailure);
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

  test('a SIGSTOPped trainer (MOCK) is killed for lack of progress, fails retryably with the reason, and the retry resumes and records it', async () => {
    const root = path.join(work, 'stall');
    const d: ActivityDeps = { ...deps('progress-forever', root), liveness: { startupSeconds: 5, floorSeconds: 1, factor: 5 } };
    const env = new MockActivityEnvironment({ attempt: 1 });
    const beats: any[] = [];
    env.on('heartbeat', (b) => beats.push(b));
    const t0 = Date.now();
    const p = failureOf(env.run(createGpuActivities(d).trainDetector, request('k5')));
    const pidsFile = path.join(root, 'runs', 'k5', 'pids.json');
    for (let i = 0; i < 100 && !fs.existsSync(pidsFile); i++) await new Promise((r) => setTimeout(r, 50));
    const [pid] = JSON.parse(fs.readFileSync(pidsFile, 'utf8')) as number[];
    await new Promise((r) => setTimeout(r, 500)); // progress keeps it alive meanwhile
    const beatsBeforeStop = beats.length;
    process.kill(pid, 'SIGSTOP');
    const err = await p;
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(beats.length).toBeGreaterThan(beatsBeforeStop);
    expect(err).toBeInstanceOf(ApplicationFailure);
    const f = err as ApplicationFailure;
    expect(f.type).toBe('TrainerStalled');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toMatch(
      /no progress from the trainer for \d+ s while training \(limit 1 s: max\(1 s, 5 x longest progress gap 0\.\d s\)\); trainer process group \d+ killed/,
    );
    for (let i = 0; i < 40 && !processGone(pid); i++) await new Promise((r) => setTimeout(r, 50));
    expect(processGone(pid)).toBe(true);
    // the reason is in the last heartbeat's details (the Web UI's pending activity) ...
    const last = beats[beats.length - 1];
    expect(last.incidents).toEqual([expect.stringMatching(/^attempt 1: no progress from the trainer .* trainer killed$/)]);
    expect(last.checkpoint.path).toMatch(/ckpt-000002\.pt$/);
    // ... and the retry resumes from the checkpoint and carries it into its outcome (the results)
    const retry = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: last });
    const out = (await retry.run(createGpuActivities({ ...d, trainerBin: writeMockTrainer(work, 'ok') }).trainDetector, request('k5'))) as TrainOutcome;
    expect(out.kind).toBe('ok');
    expect(out.resumedFrom).toBe(last.checkpoint.path);
    expect(out.incidents).toEqual(last.incidents);
  });

  test('a trainer whose worker was SIGKILLed keeps running, and the next attempt finds it by its pid file and stops it', async () => {
    // the "worker": a node process running runTrainerProcess (compiled dist/, built by scripts/setup.sh) with the MOCK 'hang' trainer
    const dist = path.join(__dirname, '..', '..', 'dist', 'activities', 'trainer-process.js');
    expect(fs.existsSync(dist)).toBe(true);
    const root = path.join(work, 'sigkill');
    const outDir = path.join(root, 'runs', 'k6');
    fs.mkdirSync(outDir, { recursive: true });
    const jobFile = path.join(outDir, 'job-train-attempt1.json');
    fs.writeFileSync(jobFile, JSON.stringify({ outDir, arch: ARCH, device: 'cpu', resume: false }));
    const hangBin = writeMockTrainer(work, 'hang');
    const script = `require(${JSON.stringify(dist)}).runTrainerProcess({ bin: ${JSON.stringify(hangBin)}, command: 'train', jobFile: ${JSON.stringify(jobFile)}, onMessage: () => {}, pidFile: ${JSON.stringify(path.join(outDir, 'trainer.pid'))} });`;
    const worker = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
    const pidsFile = path.join(outDir, 'pids.json');
    for (let i = 0; i < 100 && !fs.existsSync(pidsFile); i++) await new Promise((r) => setTimeout(r, 50));
    const pids = JSON.parse(fs.readFileSync(pidsFile, 'utf8')) as number[];
    expect(JSON.parse(fs.readFileSync(path.join(outDir, 'trainer.pid'), 'utf8')).pid).toBe(pids[0]);
    worker.kill('SIGKILL');
    await new Promise((r) => worker.once('exit', r));
    await new Promise((r) => setTimeout(r, 200));
    expect(pids.map(processGone)).toEqual([false, false]); // orphaned, still writing into outDir
    const out = (await new MockActivityEnvironment({ attempt: 2 }).run(createGpuActivities(deps('ok', root)).trainDetector, request('k6'))) as TrainOutcome;
    expect(out.kind).toBe('ok');
    expect(pids.map(processGone)).toEqual([true, true]);
    expect(out.incidents).toEqual([`attempt 2: a trainer left running by an earlier attempt (pid ${pids[0]}) was stopped before this one started`]);
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
    const out = (await new MockActivityEnvironment({ attempt: 1 }).run(createGpuActivities(d).trainDetector, {
      ...request('k-dp'),
      recipe: recipeFile,
    })) as TrainOutcome;
    expect(out.kind).toBe('ok');
    expect(out.device).toBe('cuda:0,cuda:1');
    expect(out.gpuSeconds).toBeCloseTo(2 * out.wallSeconds);
    const runDir = path.join(root, 'runs', 'k-dp');
    const job = JSON.parse(fs.readFileSync(path.join(runDir, 'job-train-attempt1.json'), 'utf8'));
    expect(job).toMatchObject({ device: 'cuda:0', distributed: { worldSize: 2 }, recipe: { batchSize: 4, devices: 2 } });
    const ranks = fs
      .readFileSync(path.join(runDir, 'ranks.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    ranks.sort((a, b) => Number(a.RANK) - Number(b.RANK));
    expect(ranks).toEqual([
      expect.objectContaining({ RANK: '0', WORLD_SIZE: '2', LOCAL_RANK: '0', CUDA_VISIBLE_DEVICES: '0', MASTER_ADDR: '127.0.0.1' }),
      expect.objectContaining({ RANK: '1', WORLD_SIZE: '2', LOCAL_RANK: '0', CUDA_VISIBLE_DEVICES: '1' }),
    ]);
    expect(ranks[0].MASTER_PORT).toBe(ranks[1].MASTER_PORT);
  });
});

describe('pretrainBackbone (mock trainer)', () => {
  test('a restarted campaign resumes pretraining from the checkpoints its run folder holds', async () => {
    const root = path.join(work, 'pretrain');
    const req = { campaignId: 'c1', arch: ARCH, recipe: 'toy-pretrain', dataRoot: '/data/cls', fingerprint: 'f', seed: 0 };
    // the first campaign's pretraining crashed after a checkpoint
    const err = await failureOf(new MockActivityEnvironment({ attempt: 1 }).run(createGpuActivities(deps('crash', root)).pretrainBackbone, req));
    expect((err as ApplicationFailure).type).toBe('TrainerCrash');
    // a new campaign (attempt 1, no heartbeat details) continues from it
    const out = (await new MockActivityEnvironment({ attempt: 1 }).run(createGpuActivities(deps('ok', root)).pretrainBackbone, req)) as PretrainOutcome;
    expect(out.resumedFrom).toMatch(/ckpt-000002\.pt$/);
    const dir = path.dirname(path.dirname(out.resumedFrom!));
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'job-pretrain-attempt1.json'), 'utf8')).resume).toBe(true);
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
