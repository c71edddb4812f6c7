/**
 * The `onnxruntime` latency backend: the latency protocol (activities/latency.ts) run through
 * onnxruntime-node instead of the native trainer, for users whose deployment runtime is ONNX
 * Runtime. The evaluated model is exported by the trainer (`smnas-trainer export`, fixed input size:
 * the layout's, rounded up to 32) with its post-processing inside the graph; a seeded sample of the
 * validation split is prepared as evaluation prepares it (untimed), then `warmup` untimed runs and
 * `rounds` rounds of one timed `session.run` per sample image, batch 1. It produces the same
 * BenchTimings as the native `bench`, so the statistics, re-measuring, unreliable marking and the
 * cache are the protocol's own. CPU execution provider only: the onnxruntime-node package has no
 * CUDA provider on Linux here.
 *
 * The sample: the split's images sorted by id, shuffled by a seeded mulberry32 Fisher-Yates, the
 * first `images`. It is not the native backend's sample (that one is drawn by the trainer with
 * std::mt19937_64), so figures of the two backends are on different images of the same split.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { imagesDir, instancesPath } from '../datasets/coco-schema';
import { UserError } from '../common/errors';
import type { BenchTimings, RuntimeEnvironment } from '../protocol/trainer-messages';
import { decodeImage, exportModel, OnnxDetector, prepareInput, type PreparedInput } from './onnx';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const ORT_VERSION: string = (require('onnxruntime-node/package.json') as { version: string }).version;

/** The environment of an onnxruntime measurement: the host's CPU (as the trainer reports it) and the runtime's version. */
export function onnxEnvironment(cpu: RuntimeEnvironment, threads: number): RuntimeEnvironment {
  return {
    deviceKind: 'cpu',
    deviceModel: cpu.deviceModel,
    runtime: `onnxruntime-node ${ORT_VERSION} (CPU execution provider)`,
    libtorch: cpu.libtorch,
    // the exporter's build: a different trainer can write a different graph
    trainerVersion: cpu.trainerVersion,
    threads,
  };
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seeded sample of a split's images (file names, sorted by image id, shuffled, the first n). */
export function onnxSample(dataRoot: string, split: string, n: number, seed: number): string[] {
  const file = instancesPath(dataRoot, split);
  let inst: { images?: { id: number; file_name: string }[] };
  try {
    inst = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`${file}: cannot read the validation annotations (${(e as Error).message})`);
  }
  const images = [...(inst.images ?? [])].sort((a, b) => a.id - b.id).map((i) => i.file_name);
  if (images.length === 0) throw new UserError(`${file}: no images to time`);
  const rand = mulberry32(seed);
  const k = Math.min(n, images.length);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rand() * (images.length - i));
    [images[i], images[j]] = [images[j], images[i]];
  }
  return images.slice(0, k);
}

export interface OnnxLatencyRun {
  /** folder of the trained weights (a campaign run folder or a `smnas train` output) */
  weights: string;
  /** where the exported model is kept (reused when it is there) */
  model: string;
  dataRoot: string;
  valSplit: string;
  images: number;
  rounds: number;
  warmup: number;
  seed: number;
  threads: number;
  environment: RuntimeEnvironment;
  trainerBin: string;
  signal?: AbortSignal;
  /** called between runs (heartbeats) */
  onProgress?: () => void;
}

/** One measurement with onnxruntime-node, as BenchTimings. */
export async function onnxTimings(o: OnnxLatencyRun): Promise<BenchTimings> {
  if (!fs.existsSync(o.model)) {
    fs.mkdirSync(path.dirname(o.model), { recursive: true });
    await exportModel({ weightsDir: o.weights, out: o.model, trainerBin: o.trainerBin, signal: o.signal });
  }
  const det = await OnnxDetector.open(o.model, { threads: o.threads || undefined });
  try {
    const files = onnxSample(o.dataRoot, o.valSplit, o.images, o.seed);
    const dir = imagesDir(o.dataRoot, o.valSplit);
    const prepared: PreparedInput[] = files.map((f) => {
      const img = decodeImage(path.join(dir, f));
      if (typeof img === 'string') throw new UserError(`${path.join(dir, f)}: ${img}`);
      return prepareInput(det, img);
    });
    const run = (p: PreparedInput) => det.run(p.input, p.dims, p.width, p.height);
    for (let i = 0; i < o.warmup; i++) await run(prepared[i % prepared.length]);
    const rounds: number[][] = [];
    const detections: number[] = [];
    for (let r = 0; r < o.rounds; r++) {
      if (o.signal?.aborted) throw new Error('cancelled');
      const times: number[] = [];
      for (const p of prepared) {
        const t0 = process.hrtime.bigint();
        const out = await run(p);
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (r === 0) detections.push(Array.from(out.scores).filter((s) => s >= det.info.scoreThreshold).length);
      }
      rounds.push(times);
      o.onProgress?.();
    }
    const [, , h, w] = prepared[0].dims;
    return {
      device: 'cpu',
      warmup: o.warmup,
      iterations: prepared.length,
      rounds,
      images: files,
      detections,
      inputWidth: w,
      inputHeight: h,
      weights: det.info.weights,
      peakMemoryMB: process.memoryUsage().rss / 1e6,
      environment: o.environment,
    };
  } finally {
    await det.close();
  }
}
