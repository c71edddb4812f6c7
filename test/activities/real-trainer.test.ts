/**
 * The GPU activities with the REAL native trainer (native/build/smnas-trainer) on generated toy
 * data: train + evaluate (through bin/smnas eval) gives COCO metrics, a cancelled training stops
 * the trainer and a retried attempt resumes from the checkpoint named in the heartbeat, and the
 * latency benchmark reports figures. Skipped when the trainer is not built.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { CancelledFailure } from '@temporalio/common';
import { createGpuActivities } from '../../activities';
import type { DataSummary, TrainOutcome, TrainRequest } from '../../activities/types';
import type { BenchFigures } from '../../protocol/trainer-messages';
import { TRAINER_BIN } from '../../common/paths';
import { tmpDir } from './mock-trainer';
import { prepareToyData, realTrainerDeps } from './real-trainer-fixture';
import { describeIf } from '../support/gate';

const maybe = describeIf(fs.existsSync(TRAINER_BIN), `GPU activities with the real trainer: ${TRAINER_BIN} is not built (scripts/setup.sh builds it)`);
const ARCH = '64x64/basicblock_16_11-21-21-21/fpn(P1-P4,c=32)/rpn/2fc';

maybe('GPU activities with the real trainer (toy data, CPU)', () => {
  const work = tmpDir('smnas-real-');
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
  const deps = realTrainerDeps(work, { checkpoint: { everyIterations: 2, everySeconds: 0 } });
  let data: DataSummary;
  beforeAll(async () => {
    data = await prepareToyData(deps, work, 'real', { train: 8, val: 4 });
  }, 60_000);
  const req = (key: string): TrainRequest => ({ campaignId: 'real', key, arch: ARCH, recipe: 'toy-stage-one', data: data.detection, seed: 0 });

  test('train + evaluate gives COCO metrics and weights', async () => {
    const env = new MockActivityEnvironment({ attempt: 1 });
    const beats: any[] = [];
    env.on('heartbeat', (b) => beats.push(b));
    const out = (await env.run(createGpuActivities(deps).trainDetector, req('full'))) as TrainOutcome;
    expect(out.kind).toBe('ok');
    expect(out.mAP).toBeGreaterThanOrEqual(0);
    expect(out.stats).not.toBeNull();
    expect(fs.existsSync(out.weights!)).toBe(true);
    expect(beats.some((b) => b.iteration > 0 && typeof b.loss === 'number')).toBe(true);
  }, 300_000);

  test('cancel mid-training stops the trainer; the retry resumes from the heartbeat checkpoint', async () => {
    const env = new MockActivityEnvironment({ attempt: 1 });
    let last: any = null;
    env.on('heartbeat', (b) => {
      last = b;
      if (b.checkpoint && b.phase === 'training') env.cancel();
    });
    const err = await env.run(createGpuActivities(deps).trainDetector, req('resume')).catch((e) => e);
    expect(err).toBeInstanceOf(CancelledFailure);
    expect(last.checkpoint.path).toMatch(/checkpoint/);
    const env2 = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: last });
    const out = (await env2.run(createGpuActivities(deps).trainDetector, req('resume'))) as TrainOutcome;
    expect(out.kind).toBe('ok');
    expect(out.attempt).toBe(2);
    expect(out.resumedFrom).not.toBeNull();
  }, 300_000);

  test('checkpoint checksums: a corrupt newest checkpoint falls back to the previous one, none usable restarts from scratch, reasons in the outcome', async () => {
    const acts = createGpuActivities(deps);
    const first = (await new MockActivityEnvironment({ attempt: 1 }).run(acts.trainDetector, req('ck'))) as TrainOutcome;
    expect(first.incidents).toEqual([]);
    const dir = path.join(first.outDir, 'checkpoints');
    const ckpts = () =>
      fs
        .readdirSync(dir)
        .filter((f) => f.endsWith('.pt'))
        .sort((a, b) => parseInt(b.slice(5), 10) - parseInt(a.slice(5), 10));
    const [newest, previous] = ckpts();
    // each checkpoint has a sha256sum-format sidecar that node's sha256 agrees with
    for (const f of [newest, previous]) {
      const digest = createHash('sha256')
        .update(fs.readFileSync(path.join(dir, f)))
        .digest('hex');
      expect(fs.readFileSync(path.join(dir, `${f}.sha256`), 'utf8')).toBe(`${digest}  ${f}\n`);
    }
    // a flipped byte in the newest (as a disk error would leave it); the campaign is restarted (attempt 1, no details)
    const fd = fs.openSync(path.join(dir, newest), 'r+');
    const at = Math.floor(fs.statSync(path.join(dir, newest)).size / 2);
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0] ^= 0x5a;
    fs.writeSync(fd, b, 0, 1, at);
    fs.closeSync(fd);
    const second = (await new MockActivityEnvironment({ attempt: 1 }).run(acts.trainDetector, req('ck'))) as TrainOutcome;
    expect(second.resumedFrom).toBe(path.join(dir, previous));
    expect(second.incidents).toEqual([expect.stringMatching(new RegExp(`^attempt 1: checkpoint .*${newest} not used: checksum mismatch`))]);
    expect(second.mAP).toBe(first.mAP);
    // every checkpoint truncated: the training starts again from iteration 0 and says so
    for (const f of ckpts()) fs.truncateSync(path.join(dir, f), 100);
    const third = (await new MockActivityEnvironment({ attempt: 1 }).run(acts.trainDetector, req('ck'))) as TrainOutcome;
    expect(third.resumedFrom).toBeNull();
    expect(third.incidents).toHaveLength(3);
    expect(third.incidents![2]).toBe('attempt 1: no usable checkpoint: training restarted from the beginning');
    expect(third.mAP).toBe(first.mAP);
  }, 300_000);

  test('latency benchmark on the CPU', async () => {
    const figs = (await new MockActivityEnvironment().run(createGpuActivities(deps).benchmarkLatency, {
      key: 'bench',
      arch: ARCH,
      recipe: 'toy-stage-one',
      numClasses: 2,
      device: 'cpu',
      warmup: 1,
      iterations: 3,
    })) as BenchFigures;
    expect(figs.iterations).toBe(3);
    expect(figs.medianMs).toBeGreaterThan(0);
  }, 120_000);
});
