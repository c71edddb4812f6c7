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
});
export type BenchFigures = z.infer<typeof BenchFiguresSchema>;

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
