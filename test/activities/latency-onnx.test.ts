/**
 * @jest-environment ./test/support/onnx-environment.js
 */
/**
 * The `onnxruntime` latency backend (activities/latency-onnx.ts) with the REAL trainer and
 * onnxruntime-node on this CPU: a detector trained briefly on generated data is exported and timed
 * with the latency protocol; the figure names the runtime, the CPU and the exporter's build, has
 * its own cache key (not the native backend's), comes from the cache the second time, and the
 * backend refuses what it cannot measure (no weights; a CUDA device).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { onnxSample } from '../../activities/latency-onnx';
import type { LatencyRequest } from '../../activities/types';
import { TRAINER_BIN } from '../../common/paths';
import { writeSynthDetection } from '../../datasets/synth/detection';
import type { BenchFigures } from '../../protocol/trainer-messages';
import { tmpDir } from './mock-trainer';
import { latencyFixture, LATENCY_ARCH } from './latency-fixture';
import { describeIf } from '../support/gate';

const maybe = describeIf(fs.existsSync(TRAINER_BIN), `onnxruntime latency with the real trainer: ${TRAINER_BIN} is not built (scripts/setup.sh builds it)`);
const ARCH = LATENCY_ARCH;

test('the onnxruntime sample is seeded: the same seed draws the same images, another seed others', () => {
  const root = tmpDir('smnas-latonnx-sample-');
  try {
    writeSynthDetection({ train: 2, val: 12, size: 32, classes: 2, seed: 1, out: root, format: 'coco' });
    const a = onnxSample(root, 'val', 5, 7);
    expect(a).toHaveLength(5);
    expect(new Set(a).size).toBe(5);
    expect(onnxSample(root, 'val', 5, 7)).toEqual(a);
    expect(onnxSample(root, 'val', 5, 8)).not.toEqual(a);
    expect(onnxSample(root, 'val', 50, 7)).toHaveLength(12);
    expect(() => onnxSample(root, 'nope', 5, 7)).toThrow(/instances_nope\.json: cannot read/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

maybe('measureLatency, backend onnxruntime (real trainer, onnxruntime-node, CPU)', () => {
  const fx = latencyFixture('smnas-latonnx-');
  const { deps, root } = fx;

  test('the exported trained model timed on the validation sample; where it ran; cached; refusals', async () => {
    const data = fx.data();
    const { acts, trained } = await fx.train('latonnx-train');
    expect(trained.kind).toBe('ok');
    const req = (backend: 'native' | 'onnxruntime', weights: string | null, device = 'cpu'): LatencyRequest => ({
      key: 'latonnx-train',
      arch: ARCH,
      recipe: 'toy-stage-one',
      data,
      weights,
      // a generous maxSpread: the plumbing is tested here, not the shared host's steadiness
      settings: { backend, images: 3, rounds: 3, warmup: 1, maxSpread: 100, maxMeasurements: 1, seed: 5 },
      device,
    });
    const ort = (await new MockActivityEnvironment().run(acts.measureLatency, req('onnxruntime', trained.weights))) as BenchFigures;
    expect(ort).toMatchObject({ backend: 'onnxruntime', images: 3, rounds: 3, iterations: 3, inputWidth: 64, inputHeight: 64, reliable: true, cached: false });
    expect(ort.medianMs).toBeGreaterThan(0);
    expect(ort.roundMs).toHaveLength(3);
    expect(ort.environment).toMatchObject({ deviceKind: 'cpu', threads: 1 });
    expect(ort.environment!.runtime).toMatch(/^onnxruntime-node 1\.23\.2 \(CPU execution provider\)$/);
    expect(ort.environment!.trainerVersion).toMatch(/^sha256:[0-9a-f]{64}$/);
    // the model it timed: exported beside the cache entry, with its sidecar naming the weights
    const runDir = path.join(deps.artifactRoot, 'latency', ort.cacheKey!.slice(0, 2), `${ort.cacheKey}-run`);
    const sidecar = JSON.parse(fs.readFileSync(path.join(runDir, 'model.onnx.json'), 'utf8'));
    expect(sidecar).toMatchObject({ arch: ARCH, input: '64x64', weights: trained.weights });
    const entry = JSON.parse(fs.readFileSync(path.join(deps.artifactRoot, 'latency', ort.cacheKey!.slice(0, 2), `${ort.cacheKey}.json`), 'utf8'));
    expect(entry.measurements[0].images).toEqual(onnxSample(root, 'val', 3, 5));
    // the native backend on the same weights is another figure (another key), not this one
    const native = (await new MockActivityEnvironment().run(acts.measureLatency, req('native', trained.weights))) as BenchFigures;
    expect(native.backend).toBe('native');
    expect(native.cacheKey).not.toBe(ort.cacheKey);
    // the second call: the cache
    const again = (await new MockActivityEnvironment().run(acts.measureLatency, req('onnxruntime', trained.weights))) as BenchFigures;
    expect(again).toEqual({ ...ort, cached: true });
    // refusals: non-retryable, naming why
    for (const [r, why] of [
      [req('onnxruntime', null), /there are no weights/],
      [req('onnxruntime', trained.weights, 'cuda:0'), /CPU execution provider only/],
    ] as const) {
      const err = (await new MockActivityEnvironment().run(acts.measureLatency, r).catch((e: unknown) => e)) as { nonRetryable: boolean; message: string };
      expect(err.nonRetryable).toBe(true);
      expect(err.message).toMatch(why);
    }
  }, 300_000);
});
