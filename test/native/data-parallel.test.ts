/**
 * Data-parallel training (native/src/dist.hpp, activities/trainer-group.ts) on CPU with Gloo:
 * 2 processes with batch B against 1 process with batch 2B on the same data order, a rank killed
 * (the other fails fast with peer_lost) and the training resumed with 1 process from the
 * 2-process checkpoint, and sharded evaluation against a single-process one.
 *
 * Tolerance: the weights after 4 steps agree to 1e-5 (measured: 1.2e-7; the per-rank losses are
 * summed in another order than one batch's mean). This tiny GN classifier (64 px crops, 2x2 maps
 * in stage 4) is ill-conditioned: after 8 steps at lr 0.02 the thread count alone (1 vs 2 threads,
 * one process) moves its weights by 1.2e-4, so the comparisons stop after a few steps.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePort, runTrainerGroup, type TrainerGroupExit } from '../../activities/trainer-group';
import { TRAINER_BIN } from '../../common/paths';
import { buildClassificationJob, buildDetectionJob } from '../../protocol/job-builder';
import { getClassificationRecipe, getDetectionRecipe } from '../../protocol/recipes';
import type { TrainerMessage } from '../../protocol/trainer-messages';
import { torchFloatStorages } from './helpers/torch-zip';
import { classFolders, evaluatorArgv, requireTrainer, shapesDataset, tmpDir } from './helpers/trainer';

const ARCH = '64x64/basicblock_8_1-21-21-21/fpn(P1-P4,c=16)/rpn/2fc';

interface GroupRun {
  exit: TrainerGroupExit;
  messages: TrainerMessage[];
  peer: { rank: number; m: TrainerMessage }[];
}

interface Hosts {
  nnodes: number;
  nodeRank: number;
  masterPort: number;
}

async function runGroup(
  job: { command: string; outDir: string },
  nproc: number,
  onMessage?: (m: TrainerMessage) => void,
  hosts?: Hosts,
  straggleMs = 30_000,
): Promise<GroupRun> {
  fs.mkdirSync(job.outDir, { recursive: true });
  const jobFile = path.join(job.outDir, `job-${nproc}-${hosts?.nodeRank ?? 0}-${Date.now()}.json`);
  fs.writeFileSync(jobFile, JSON.stringify(job));
  const messages: TrainerMessage[] = [];
  const peer: { rank: number; m: TrainerMessage }[] = [];
  const exit = await runTrainerGroup({
    bin: TRAINER_BIN, command: job.command, jobFile, nproc, pidFile: path.join(job.outDir, `trainer${hosts ? `-host${hosts.nodeRank}` : ''}.pid`), straggleMs, killGraceMs: 1000,
    ...hosts,
    onMessage: (m) => {
      messages.push(m);
      onMessage?.(m);
    },
    onPeerMessage: (rank, m) => peer.push({ rank, m }),
  });
  return { exit, messages, peer };
}

function maxAbsDiff(a: string, b: string): number {
  const ta = torchFloatStorages(a), tb = torchFloatStorages(b);
  expect([...tb.keys()].sort()).toEqual([...ta.keys()].sort());
  expect(ta.size).toBeGreaterThan(10);
  let m = 0;
  for (const [k, x] of ta) {
    const y = tb.get(k)!;
    expect(y.length).toBe(x.length);
    for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  }
  return m;
}

const losses = (r: GroupRun) => r.messages.flatMap((m) => (m.type === 'progress' ? [m.loss] : []));
const result = (r: GroupRun) => {
  const m = r.messages.find((x) => x.type === 'result');
  if (!m || m.type !== 'result') throw new Error(`no result (exit ${r.exit.code}, rank ${r.exit.failedRank}):\n${r.exit.stderrTail}`);
  return m;
};

function clsJob(outDir: string, batchSize: number, maxIterations: number, extra: { resume?: boolean } = {}, norm: 'gn' | 'bn' = 'gn', syncBn?: boolean) {
  const base = getClassificationRecipe('toy-pretrain');
  return buildClassificationJob({
    command: 'classify-train', arch: ARCH, outDir, seed: 3, threads: 1, dataRoot: classFolders(32, 8, 64, 4, 1),
    recipe: { ...base, norm, syncBn, batchSize, cropSize: 64, maxIterations, workers: 0, optimizer: { ...base.optimizer, lr: 0.02 } },
    checkpoint: { everyIterations: 2, everySeconds: 0, keep: 3 },
    distributed: { timeoutSeconds: 20 },
    ...extra,
  });
}

describe('data-parallel training (2 processes, Gloo, CPU)', () => {
  // the reference: one process, batch 16, 4 iterations
  let one: ReturnType<typeof clsJob>;
  let r1: GroupRun;
  beforeAll(async () => {
    requireTrainer();
    one = clsJob(tmpDir('dp-one'), 16, 4);
    r1 = await runGroup(one, 1);
  }, 60_000);

  it('2 processes with batch 8 reach the weights, losses and accuracy of 1 process with batch 16', async () => {
    const two = clsJob(tmpDir('dp-two'), 8, 4);
    const r2 = await runGroup(two, 2);
    expect(r1.exit.code).toBe(0);
    expect(r2.exit.ranks.map((e) => e.code)).toEqual([0, 0]);
    expect(r2.peer).toEqual([]); // rank 1 reports nothing but errors
    const l1 = losses(r1), l2 = losses(r2);
    expect(l2.length).toBe(4);
    expect(l2.length).toBe(l1.length);
    l1.forEach((l, i) => expect(Math.abs(l2[i] - l) / l).toBeLessThan(1e-5));
    expect(maxAbsDiff(path.join(one.outDir, 'weights'), path.join(two.outDir, 'weights'))).toBeLessThan(1e-5);
    expect(result(r2).metrics).toEqual(result(r1).metrics); // sharded evaluation: hit counts summed over the ranks
    // (each checkpoint has its SHA-256 sidecar, docs/trainer.md "Checkpoints")
    expect(fs.readdirSync(path.join(two.outDir, 'checkpoints')).filter((f) => f.endsWith('.pt')).sort()).toEqual(['ckpt-2.pt', 'ckpt-4.pt']);
  }, 120_000);

  it('SyncBN: 2 BN processes with batch 8 match 1 with batch 16 (weights and running statistics); without it they do not', async () => {
    const ref = clsJob(tmpDir('dp-bn1'), 16, 4, {}, 'bn');
    const sync = clsJob(tmpDir('dp-bn2s'), 8, 4, {}, 'bn', true);
    const local = clsJob(tmpDir('dp-bn2'), 8, 4, {}, 'bn');
    const [a, b, c] = [await runGroup(ref, 1), await runGroup(sync, 2), await runGroup(local, 2)];
    expect([a.exit.code, b.exit.code, c.exit.code]).toEqual([0, 0, 0]);
    losses(a).forEach((l, i) => expect(Math.abs(losses(b)[i] - l) / l).toBeLessThan(1e-5));
    expect(maxAbsDiff(path.join(ref.outDir, 'weights'), path.join(sync.outDir, 'weights'))).toBeLessThan(1e-5);
    expect(maxAbsDiff(path.join(ref.outDir, 'weights'), path.join(local.outDir, 'weights'))).toBeGreaterThan(1e-3);
  }, 90_000);

  it('a killed rank makes the other fail fast (peer_lost, exit 6); 1 process resumes from the 2-process checkpoint', async () => {
    const outDir = tmpDir('dp-kill');
    const two = clsJob(outDir, 8, 4);
    let killedAt = 0;
    const r2 = await runGroup(two, 2, (m) => {
      if (m.type === 'checkpoint' && m.iteration === 2 && !killedAt) {
        const pid = (JSON.parse(fs.readFileSync(path.join(outDir, 'trainer.pid.rank1'), 'utf8')) as { pid: number }).pid;
        process.kill(pid, 'SIGKILL');
        killedAt = Date.now();
      }
    });
    const failedAfterMs = Date.now() - killedAt;
    expect(killedAt).toBeGreaterThan(0);
    expect(r2.exit.ranks[1].signal).toBe('SIGKILL');
    expect(r2.exit.failedRank).toBe(1); // the group reports the killed rank (a retryable crash)
    // rank 0 noticed within the collective timeout (20 s), named the cause and exited 6
    expect(r2.exit.ranks[0].code).toBe(6);
    expect(r2.messages.find((m) => m.type === 'error')).toMatchObject({ kind: 'peer_lost' });
    expect(failedAfterMs).toBeLessThan(20_000);
    const ckpts = fs.readdirSync(path.join(outDir, 'checkpoints'));
    expect(ckpts).toContain('ckpt-2.pt');
    expect(ckpts).not.toContain('ckpt-4.pt'); // rank 0 could not go on alone

    // the retry: one process, batch 16 (the same global batch), from the newest checkpoint
    const resumed = await runGroup(clsJob(outDir, 16, 4, { resume: true }), 1);
    expect(resumed.exit.code).toBe(0);
    expect(resumed.messages.find((m) => m.type === 'started')).toMatchObject({ resumedFrom: { iteration: 2 } });
    expect(losses(resumed).length).toBe(2);
    expect(maxAbsDiff(path.join(one.outDir, 'weights'), path.join(outDir, 'weights'))).toBeLessThan(1e-5);

    // another global batch cannot resume it: invalid job naming recipe.batchSize
    const other = await runGroup(clsJob(outDir, 8, 4, { resume: true }), 1);
    expect(other.exit.code).toBe(2);
    expect(other.messages.find((m) => m.type === 'error')).toMatchObject({ kind: 'invalid_job', field: 'recipe.batchSize' });
  }, 180_000);

  it('a rank that stops answering (SIGSTOP) makes the other fail within the collective timeout; the launcher ends the group', async () => {
    const outDir = tmpDir('dp-stop');
    const job = { ...clsJob(outDir, 8, 4), distributed: { ...clsJob(outDir, 8, 4).distributed!, timeoutSeconds: 3 } };
    let stoppedAt = 0;
    const r = await runGroup(job, 2, (m) => {
      if (m.type === 'checkpoint' && m.iteration === 2 && !stoppedAt) {
        const pid = (JSON.parse(fs.readFileSync(path.join(outDir, 'trainer.pid.rank1'), 'utf8')) as { pid: number }).pid;
        process.kill(pid, 'SIGSTOP');
        stoppedAt = Date.now();
      }
    }, undefined, 1000);
    const rank0FailedAfter = Date.now() - stoppedAt;
    expect(stoppedAt).toBeGreaterThan(0);
    expect(r.exit.ranks[0].code).toBe(6);
    expect(r.messages.find((m) => m.type === 'error')).toMatchObject({ kind: 'peer_lost', message: expect.stringMatching(/did not answer within 3 s/) });
    // the launcher ended the stopped rank: SIGTERM with SIGCONT (trainer-process.ts), SIGKILL after the grace
    const r1 = r.exit.ranks[1];
    expect(r1.signal !== null || (r1.code !== null && r1.code !== 0)).toBe(true);
    expect(rank0FailedAfter).toBeLessThan(15_000);
  }, 60_000);

  it('two "hosts" (one process each, loopback rendezvous): the same training as one process', async () => {
    // what two GPU workers on two machines do: one launcher per host, the same masterAddr:masterPort
    const two = clsJob(tmpDir('dp-hosts'), 8, 4);
    const masterPort = await freePort();
    const [h0, h1] = await Promise.all([0, 1].map((nodeRank) => runGroup(two, 1, undefined, { nnodes: 2, nodeRank, masterPort })));
    expect([h0.exit.code, h1.exit.code]).toEqual([0, 0]);
    expect(h1.messages).toEqual([]); // rank 1's host reports errors only
    expect(maxAbsDiff(path.join(one.outDir, 'weights'), path.join(two.outDir, 'weights'))).toBeLessThan(1e-5);
    expect(result(h0).metrics).toEqual(result(r1).metrics);
  }, 60_000);

  it('detection: 2-process training, and sharded evaluation equal to one process on the same weights', async () => {
    // BN without SyncBN: each process updates its own running statistics, so the sharded evaluation
    // after training equals the saved weights' only because rank 0's are broadcast (train_loop.cpp)
    const recipe = { ...getDetectionRecipe('toy-train'), norm: 'bn' as const, batchSize: 2, maxIterations: 2, workers: 0 };
    const data = shapesDataset(8, 10, 64, 1);
    const train = buildDetectionJob({
      command: 'train', arch: ARCH, recipe, numClasses: 4, dataRoot: data, outDir: tmpDir('dp-det'), seed: 1, threads: 1,
      evaluator: evaluatorArgv(), distributed: { timeoutSeconds: 60 },
    });
    const t = await runGroup(train, 2);
    expect(t.exit.ranks.map((e) => e.code)).toEqual([0, 0]);
    const weights = result(t).weights!;
    const ev = (outDir: string) =>
      buildDetectionJob({
        command: 'eval', arch: ARCH, recipe: { ...recipe, batchSize: 3 }, numClasses: 4, dataRoot: data, outDir, seed: 1, threads: 1,
        initWeights: weights, initKind: 'detector', evaluator: evaluatorArgv(),
      });
    const e1 = ev(tmpDir('dp-ev1')), e2 = ev(tmpDir('dp-ev2'));
    const [r1, r2] = [await runGroup(e1, 1), await runGroup(e2, 2)];
    expect(r1.exit.code).toBe(0);
    expect(r2.exit.ranks.map((e) => e.code)).toEqual([0, 0]);
    const d1 = JSON.parse(fs.readFileSync(path.join(e1.outDir, 'detections_val.json'), 'utf8')) as unknown[];
    const d2 = JSON.parse(fs.readFileSync(path.join(e2.outDir, 'detections_val.json'), 'utf8')) as unknown[];
    expect(d1.length).toBeGreaterThan(0);
    expect(d2).toEqual(d1);
    expect(result(r2).metrics).toEqual(result(r1).metrics);
    // the training's own (sharded) evaluation of the same weights
    expect(result(t).metrics).toEqual(result(r1).metrics);
  }, 180_000);
});
