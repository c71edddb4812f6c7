/**
 * measureLatency (activities/latency.ts) against a MOCKED trainer: a node script that answers
 * `env` with a fixed device model and trainer version (one script per "build" / "device") and
 * `bench` with the per-round timings a control file dictates, recording every bench job it gets.
 * Checks the job (trained weights, validation sample, rounds), the statistics, re-measuring, the
 * unreliable marking, the cache and what invalidates it, and the device requirement.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { createGpuActivities, type ActivityDeps } from '../../activities';
import { LATENCY_PROTOCOL } from '../../activities/latency';
import type { LatencyRequest } from '../../activities/types';
import { ArtifactStore } from '../../activities/artifact-store';
import type { BenchFigures } from '../../protocol/trainer-messages';
import { tmpDir } from './mock-trainer';

const ARCH = '64x64/basicblock_16_11-21-21-21/fpn(P1-P4,c=32)/rpn/2fc';
const work = tmpDir('smnas-lat-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** A MOCK trainer build: `env` reports this device and version; `bench` replays control.json's measurements in turn. */
function mockTrainer(name: string, o: { deviceKind?: 'cpu' | 'cuda'; deviceModel: string; trainerVersion: string }): string {
  const file = path.join(work, `mock-latency-trainer-${name}.js`);
  const env = {
    deviceKind: o.deviceKind ?? 'cpu',
    deviceModel: o.deviceModel,
    runtime: 'libtorch mock',
    libtorch: 'mock',
    trainerVersion: o.trainerVersion,
    threads: 1,
  };
  fs.writeFileSync(
    file,
    `#!${process.execPath}
// MOCK trainer for test/activities/latency.test.ts
const fs = require('fs'), path = require('path');
const out = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
const env = ${JSON.stringify(env)};
if (process.argv[2] === 'env') { out({ type: 'result', kind: 'ok', command: 'env', wallSeconds: 0, environment: env }); process.exit(0); }
const job = JSON.parse(fs.readFileSync(process.argv[process.argv.indexOf('--job') + 1], 'utf8'));
const ctl = JSON.parse(fs.readFileSync(${JSON.stringify(path.join(work, 'control.json'))}, 'utf8'));
const calls = ${JSON.stringify(path.join(work, 'calls.jsonl'))};
fs.appendFileSync(calls, JSON.stringify({ trainer: ${JSON.stringify(name)}, device: job.device, seed: job.seed, bench: job.bench, initWeights: job.initWeights, initKind: job.initKind, data: job.data }) + '\\n');
const n = fs.readFileSync(calls, 'utf8').trim().split('\\n').length - ctl.before;
const rounds = ctl.measurements[Math.min(n - 1, ctl.measurements.length - 1)];
out({ type: 'started', command: 'bench', arch: job.arch, device: job.device, torchVersion: 'mock', threads: 1 });
out({ type: 'result', kind: 'ok', command: 'bench', wallSeconds: 0.1, timings: {
  device: job.device, warmup: job.bench.warmup, iterations: job.bench.iterations, rounds,
  images: rounds[0].map((_, i) => 'img' + i + '.png'), detections: rounds[0].map((_, i) => job.initWeights ? 10 + i : 0),
  inputWidth: job.layout.input.width, inputHeight: job.layout.input.height, weights: job.initWeights ?? null, peakMemoryMB: 42, environment: env } });
`,
    { mode: 0o755 },
  );
  return file;
}

const callsFile = path.join(work, 'calls.jsonl');
const calls = (): any[] =>
  fs.existsSync(callsFile)
    ? fs
        .readFileSync(callsFile, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];
/** the next bench runs answer with these measurements (per round, per forward ms), the last repeated */
function plan(measurements: number[][][]): void {
  fs.writeFileSync(path.join(work, 'control.json'), JSON.stringify({ before: calls().length, measurements }));
}

const STEADY = [
  [10, 12],
  [11, 11],
  [10, 10],
  [12, 12],
  [11, 13],
]; // round latencies 11 11 10 12 12: spread (12 - 10.4) / 11 = 0.145
const NOISY = [
  [10, 10],
  [30, 30],
  [10, 10],
  [20, 20],
  [10, 10],
]; // round latencies 10 30 10 20 10: spread (26 - 10) / 10 = 1.6
const NOISIER = [
  [10, 10],
  [50, 50],
  [10, 10],
  [10, 10],
  [10, 10],
]; // spread (34 - 10) / 10 = 2.4

const CPU_A = mockTrainer('cpu-a', { deviceModel: 'Intel(R) Xeon(R) Gold 6230', trainerVersion: 'sha256:aaaa' });
const CPU_B = mockTrainer('cpu-b', { deviceModel: 'AMD EPYC 7B13', trainerVersion: 'sha256:aaaa' });
const CPU_A_NEW_BUILD = mockTrainer('cpu-a-new', { deviceModel: 'Intel(R) Xeon(R) Gold 6230', trainerVersion: 'sha256:bbbb' });

const root = path.join(work, 'store');
function deps(trainerBin: string): ActivityDeps {
  return { artifactRoot: root, trainerBin, devices: ['cpu'], logger: pino({ level: 'silent' }), heartbeatEverySeconds: 0.2, killGraceMs: 500, threads: 1 };
}

const weights = path.join(work, 'weights');
fs.writeFileSync(weights, 'trained weights v1');
const request = (o: Partial<LatencyRequest['settings']> = {}, w: string | null = weights): LatencyRequest => ({
  key: 'evalkey',
  arch: ARCH,
  recipe: 'toy-stage-one',
  data: { name: 'detection', root: '/data/coco', trainSplit: 'train', valSplit: 'val', numClasses: 3, trainImages: 10, valImages: 4, fingerprint: 'fp1' },
  weights: w,
  settings: { backend: 'native', images: 2, rounds: 5, warmup: 1, maxSpread: 0.25, maxMeasurements: 3, seed: 7, ...o },
  device: 'cpu',
});

const measure = (bin: string, req: LatencyRequest) =>
  new MockActivityEnvironment().run(createGpuActivities(deps(bin)).measureLatency, req) as Promise<BenchFigures>;

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the activity to fail');
}

describe('measureLatency (MOCK trainer)', () => {
  test('times the trained weights on the seeded validation sample and computes the statistics', async () => {
    plan([STEADY]);
    const n0 = calls().length;
    const f = await measure(CPU_A, request());
    const job = calls()[n0];
    expect(calls()).toHaveLength(n0 + 1);
    expect(job).toMatchObject({ initWeights: weights, initKind: 'detector', seed: 7, bench: { warmup: 1, iterations: 2, images: 2, rounds: 5 } });
    expect(job.data).toMatchObject({ root: '/data/coco', valSplit: 'val' });
    expect(f.medianMs).toBe(11);
    expect(f.roundMs).toEqual([11, 11, 10, 12, 12]);
    expect(f.spread).toBeCloseTo(1.6 / 11, 12);
    expect(f).toMatchObject({
      reliable: true,
      reason: null,
      measurements: 1,
      backend: 'native',
      images: 2,
      rounds: 5,
      cached: false,
      inputWidth: 64,
      inputHeight: 64,
    });
    expect(f.weightsSha256).toBe(createHash('sha256').update('trained weights v1').digest('hex'));
    expect(f.detectionsPerImage).toBe(10.5);
    expect(f.environment).toMatchObject({ deviceModel: 'Intel(R) Xeon(R) Gold 6230', trainerVersion: 'sha256:aaaa' });
  });

  test('the same weights, device and build: from the cache, no trainer run', async () => {
    plan([STEADY]);
    const first = await measure(CPU_A, request({ seed: 11 }));
    const n = calls().length;
    const again = await measure(CPU_A, request({ seed: 11 }));
    expect(calls()).toHaveLength(n);
    expect(again).toEqual({ ...first, cached: true });
  });

  test('a different device model, trainer build or weights measures again (another cache key)', async () => {
    plan([STEADY]);
    const a = await measure(CPU_A, request({ seed: 12 }));
    const n = calls().length;
    const b = await measure(CPU_B, request({ seed: 12 }));
    expect(calls()).toHaveLength(n + 1);
    expect(b.cached).toBe(false);
    expect(b.cacheKey).not.toBe(a.cacheKey);
    expect(b.environment?.deviceModel).toBe('AMD EPYC 7B13');
    const c = await measure(CPU_A_NEW_BUILD, request({ seed: 12 }));
    expect(calls()).toHaveLength(n + 2);
    expect(c.cacheKey).not.toBe(a.cacheKey);
    expect(c.environment?.trainerVersion).toBe('sha256:bbbb');
    // retrained weights (same path, new content)
    const w2 = path.join(work, 'weights-2');
    fs.writeFileSync(w2, 'trained weights v1');
    const same = await measure(CPU_A, request({ seed: 12 }, w2));
    expect(same.cached).toBe(true); // the content identifies the weights, not the path
    fs.writeFileSync(w2, 'trained weights v2');
    const d = await measure(CPU_A, request({ seed: 12 }, w2));
    expect(d.cached).toBe(false);
    expect(d.cacheKey).not.toBe(a.cacheKey);
    // and an untrained model is a figure of its own
    const u = await measure(CPU_A, request({ seed: 12 }, null));
    expect(u).toMatchObject({ cached: false, weights: null, weightsSha256: null, detectionsPerImage: 0 });
  });

  test('a cache entry of another protocol version is not taken for a figure of this one', async () => {
    plan([STEADY]);
    const a = await measure(CPU_A, request({ seed: 13 }));
    const file = new ArtifactStore(root).latencyFile(a.cacheKey!);
    const entry = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(entry.protocol).toBe(LATENCY_PROTOCOL);
    fs.writeFileSync(file, JSON.stringify({ ...entry, protocol: 'untrained-noise-v0', figures: { ...entry.figures, medianMs: 1 } }));
    const n = calls().length;
    const b = await measure(CPU_A, request({ seed: 13 }));
    expect(calls()).toHaveLength(n + 1);
    expect(b.medianMs).toBe(11);
  });

  test('a noisy measurement is repeated; the first steady one is kept', async () => {
    plan([NOISY, STEADY]);
    const n = calls().length;
    const f = await measure(CPU_A, request({ seed: 14 }));
    expect(calls()).toHaveLength(n + 2);
    expect(f).toMatchObject({ reliable: true, measurements: 2, medianMs: 11 });
  });

  test('noisy every time: the steadiest is recorded as unreliable with the reason, and not reused', async () => {
    plan([NOISIER, NOISY, NOISIER]);
    const n = calls().length;
    const f = await measure(CPU_A, request({ seed: 15 }));
    expect(calls()).toHaveLength(n + 3);
    expect(f.reliable).toBe(false);
    expect(f.measurements).toBe(3);
    expect(f.spread).toBeCloseTo(1.6, 12); // NOISY, the steadiest of the three
    expect(f.medianMs).toBe(10);
    expect(f.reason).toMatch(/noisy host: .* above 0.25 in all 3 measurements \(2.400, 1.600, 2.400\)/);
    const file = new ArtifactStore(root).latencyFile(f.cacheKey!);
    expect(fs.existsSync(file)).toBe(false);
    expect(fs.existsSync(file.replace(/\.json$/, '.unreliable.json'))).toBe(true);
    // the next evaluation with the same key measures again (here: steadily)
    plan([STEADY]);
    const g = await measure(CPU_A, request({ seed: 15 }));
    expect(calls()).toHaveLength(n + 4);
    expect(g).toMatchObject({ reliable: true, cached: false });
  });

  test('a required device the worker does not have: no measurement, a retryable WrongLatencyDevice', async () => {
    plan([STEADY]);
    const n = calls().length;
    const e = await failure(measure(CPU_A, request({ seed: 16, device: { kind: 'cuda', model: 'V100' } })));
    expect(e).toBeInstanceOf(ApplicationFailure);
    expect((e as ApplicationFailure).type).toBe('WrongLatencyDevice');
    expect((e as ApplicationFailure).nonRetryable).toBe(false);
    const m = await failure(measure(CPU_A, request({ seed: 16, device: { kind: 'cpu', model: 'EPYC' } })));
    expect(m.message).toMatch(/Xeon\(R\) Gold 6230 is not a EPYC/);
    expect(calls()).toHaveLength(n);
    // the right model: measured
    const ok = await measure(CPU_B, request({ seed: 16, device: { kind: 'cpu', model: 'epyc' } }));
    expect(ok.environment?.deviceModel).toBe('AMD EPYC 7B13');
  });

  test('missing trained weights fail non-retryably', async () => {
    const e = await failure(measure(CPU_A, request({ seed: 17 }, path.join(work, 'no-such-weights'))));
    expect((e as ApplicationFailure).type).toBe('MissingWeights');
    expect((e as ApplicationFailure).nonRetryable).toBe(true);
  });
});
