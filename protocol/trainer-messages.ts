/**
 * The trainer's stdout protocol: one JSON object per line, nothing else on stdout (human logs go
 * to stderr). Owned here; the C++ trainer emits exactly these shapes (native/README.md documents
 * them with examples), activities and `bin/smnas train` parse them with `parseTrainerLine`.
 */
import { z } from 'zod';

export const COCO_STAT_NAMES = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl'] as const;
export const CocoStatsSchema = z.object(
  Object.fromEntries(COCO_STAT_NAMES.map((k) => [k, z.number()])) as Record<(typeof COCO_STAT_NAMES)[number], z.ZodNumber>,
);
export type CocoStats = z.infer<typeof CocoStatsSchema>;

/** Exit codes of smnas-trainer. */
export const TrainerExit = {
  ok: 0,
  internal: 1,
  invalidJob: 2,
  badData: 3,
  diverged: 4,
  interrupted: 5,
  /** data-parallel: another process of the training died or a collective timed out (retryable) */
  peerLost: 6,
} as const;

export const StartedMessageSchema = z.object({
  type: z.literal('started'),
  command: z.string(),
  arch: z.string(),
  device: z.string(),
  torchVersion: z.string(),
  threads: z.number().int(),
  /** learnable parameters of the model the command built (every parameter, frozen ones included; search/cost.ts counts the same) */
  params: z.number().int().nonnegative().optional(),
  /** set when the run continues from a checkpoint */
  resumedFrom: z.object({ path: z.string(), epoch: z.number().int(), iteration: z.number().int() }).nullable().optional(),
  /** checkpoints found but not used on resume (checksum mismatch, truncated, another seed), newest first */
  skippedCheckpoints: z.array(z.object({ path: z.string(), reason: z.string() })).optional(),
});

export const ProgressMessageSchema = z.object({
  type: z.literal('progress'),
  epoch: z.number().int(),
  /** global iteration, 1-based after the step */
  iteration: z.number().int(),
  totalIterations: z.number().int(),
  lr: z.number(),
  /** the weighted total loss of the last iteration */
  loss: z.number(),
  /** each loss term, e.g. rpn_cls, rpn_bbox, cls, bbox (cascade: s0_cls ...), focal, l1 */
  losses: z.record(z.string(), z.number()),
  imagesPerSec: z.number(),
});

export const CheckpointMessageSchema = z.object({
  type: z.literal('checkpoint'),
  path: z.string(),
  epoch: z.number().int(),
  iteration: z.number().int(),
});

export const MetricsMessageSchema = z.object({
  type: z.literal('metrics'),
  split: z.string(),
  /** COCO box statistics (detection) */
  stats: CocoStatsSchema.optional(),
  /** classification */
  top1: z.number().optional(),
  top5: z.number().optional(),
});

/** Where a measurement ran, as the trainer reports it (`bench`, `smnas-trainer env`). */
export const RuntimeEnvironmentSchema = z.object({
  deviceKind: z.enum(['cpu', 'cuda']),
  /** the CUDA device's name (e.g. 'Tesla V100-SXM2-16GB') or the CPU's model name from /proc/cpuinfo */
  deviceModel: z.string(),
  /** e.g. 'libtorch 1.13.1' or 'libtorch 2.4.0, CUDA runtime 12.1, driver 12.4' */
  runtime: z.string(),
  libtorch: z.string(),
  cuda: z.object({ runtime: z.string(), driver: z.string() }).optional(),
  /** the trainer build: 'sha256:<hex>' of the binary */
  trainerVersion: z.string(),
  /** intra-op threads the measurement used */
  threads: z.number().int(),
});
export type RuntimeEnvironment = z.infer<typeof RuntimeEnvironmentSchema>;

export const ModuleCostSchema = z.object({ params: z.number(), flops: z.number() });
export const BenchFiguresSchema = z.object({
  device: z.string(),
  warmup: z.number().int(),
  iterations: z.number().int(),
  medianMs: z.number(),
  meanMs: z.number(),
  p10Ms: z.number(),
  p90Ms: z.number(),
  stdMs: z.number(),
  /** CPU: peak RSS of the process; CUDA: the caching allocator's peak allocated bytes of the timed forwards */
  peakMemoryMB: z.number(),
  /** what was timed: 'noise' (a fixed random image) or the path of the dataset image */
  input: z.string().optional(),
  /** where it ran (trainers since the latency protocol) */
  environment: RuntimeEnvironmentSchema.optional(),
  // The latency protocol (activities/latency.ts; absent in figures of the older noise-image
  // benchmark). There medianMs, meanMs, p10Ms, p90Ms and stdMs are over the rounds' latencies
  // (a round's latency: the mean of its forwards over the image sample).
  /** what timed it: 'native' (smnas-trainer) */
  backend: z.string().optional(),
  /** the weights timed (the evaluation's trained weights); null: an untrained model */
  weights: z.string().nullable().optional(),
  weightsSha256: z.string().nullable().optional(),
  /** images in the validation sample, timed rounds */
  images: z.number().int().optional(),
  rounds: z.number().int().optional(),
  inputWidth: z.number().int().optional(),
  inputHeight: z.number().int().optional(),
  /** each round's latency (ms) of the measurement kept */
  roundMs: z.array(z.number()).optional(),
  /** median and p90 over every timed forward (image to image variation included) */
  imageP50Ms: z.number().optional(),
  imageP90Ms: z.number().optional(),
  /** mean detections per image after post-processing (what NMS and the second stage had to do) */
  detectionsPerImage: z.number().optional(),
  /** (p90Ms - p10Ms) / medianMs, and the threshold it was held to */
  spread: z.number().optional(),
  maxSpread: z.number().optional(),
  /** measurements taken (repeated while the spread was above maxSpread) */
  measurements: z.number().int().optional(),
  /** false: every measurement's spread stayed above maxSpread (reason says so); the figure is the steadiest one */
  reliable: z.boolean().optional(),
  reason: z.string().nullable().optional(),
  /** the latency cache key (activities/latency.ts latencyCacheKey) and whether the figure came from the cache */
  cacheKey: z.string().optional(),
  cached: z.boolean().optional(),
});
export type BenchFigures = z.infer<typeof BenchFiguresSchema>;

/**
 * `bench` with a latency sample (job bench.images > 0): every timed forward, per round; the
 * statistics are computed in one place (activities/latency-stats.ts) for every backend.
 */
export const BenchTimingsSchema = z.object({
  device: z.string(),
  warmup: z.number().int(),
  /** forwards per round */
  iterations: z.number().int(),
  /** milliseconds of each forward (post-processing included, results on the host), per round */
  rounds: z.array(z.array(z.number())),
  /** the sample's image files (relative to the split's image folder), in the order timed */
  images: z.array(z.string()),
  /** detections after post-processing of each forward of the first round */
  detections: z.array(z.number().int()),
  inputWidth: z.number().int(),
  inputHeight: z.number().int(),
  weights: z.string().nullable(),
  peakMemoryMB: z.number(),
  environment: RuntimeEnvironmentSchema,
});
export type BenchTimings = z.infer<typeof BenchTimingsSchema>;

export const ResultMessageSchema = z.object({
  type: z.literal('result'),
  kind: z.enum(['ok', 'diverged']),
  command: z.string(),
  wallSeconds: z.number(),
  /** final weights (train, classify-train) */
  weights: z.string().optional(),
  /** COCO results file (train, eval) */
  detections: z.string().optional(),
  metrics: z.object({ stats: CocoStatsSchema.optional(), top1: z.number().optional(), top5: z.number().optional() }).optional(),
  bench: BenchFiguresSchema.optional(),
  /** bench with a latency sample: the raw timings */
  timings: BenchTimingsSchema.optional(),
  /** env: where the trainer runs */
  environment: RuntimeEnvironmentSchema.optional(),
  /** describe: params and flops per module (backbone, neck, rpn, head) */
  modules: z.record(z.string(), ModuleCostSchema).optional(),
  /** training throughput over the whole run */
  imagesPerSec: z.number().optional(),
  peakMemoryMB: z.number().optional(),
  /** diverged: where and why */
  message: z.string().optional(),
  /** export: the ONNX model written (docs/deploy.md) */
  export: z
    .object({
      model: z.string(),
      /** 'HxW' fixed input or 'dynamic' */
      input: z.string(),
      opset: z.number().int(),
      nodes: z.number().int(),
      bytes: z.number().int(),
      /** with export.parityImages: parity.json of the prepared validation inputs and their libtorch detections */
      parity: z.string().optional(),
    })
    .optional(),
  /** classify: per image (sorted by file name), the top-k class indices and their logits */
  predictions: z.array(z.object({ file: z.string(), classes: z.array(z.number().int()), logits: z.array(z.number()) })).optional(),
});
export type ResultMessage = z.infer<typeof ResultMessageSchema>;

export const ErrorMessageSchema = z.object({
  type: z.literal('error'),
  kind: z.enum(['invalid_job', 'bad_data', 'interrupted', 'internal', 'peer_lost']),
  message: z.string(),
  /** the job field (dotted path) or data record at fault, when known */
  field: z.string().optional(),
});

export const TrainerMessageSchema = z.discriminatedUnion('type', [
  StartedMessageSchema,
  ProgressMessageSchema,
  CheckpointMessageSchema,
  MetricsMessageSchema,
  ResultMessageSchema,
  ErrorMessageSchema,
]);
export type TrainerMessage = z.infer<typeof TrainerMessageSchema>;

/** Parse one stdout line of the trainer; a line that is not a valid message is reported, not thrown. */
export function parseTrainerLine(line: string): { ok: true; message: TrainerMessage } | { ok: false; error: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (e) {
    return { ok: false, error: `not JSON: ${(e as Error).message}` };
  }
  const r = TrainerMessageSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    return { ok: false, error: `invalid trainer message at ${i.path.join('.') || '<root>'}: ${i.message}` };
  }
  return { ok: true, message: r.data };
}
