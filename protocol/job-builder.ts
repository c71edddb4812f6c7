/**
 * Builders of trainer job files (protocol/job.ts). Used by `bin/smnas train|bench` and by the
 * campaign's activities, so that every job the trainer sees is built one way and zod-valid.
 *
 * The layout comes from the search library's `resolveLayout(arch, {numClasses, fcWidth})`
 * (the trainer builds its model from the layout, never from the notation); a caller may pass a
 * layout it already resolved.
 */
import { z } from 'zod';
import { UserError, describeZodError } from '../common/errors';
import type { DetectorLayout } from '../search/layout';
import { resolveLayout } from '../search/layout-resolve';
import {
  ClassificationJobSchema,
  CheckpointPolicySchema,
  DetectionJobSchema,
  DistributedSchema,
  JOB_SCHEMA_VERSION,
  ClassifyJobSchema,
  ExportSettingsSchema,
  type ClassificationJob,
  type ClassifyJob,
  type DetectionJob,
  type InitKind,
} from './job';
import type { ClassificationRecipe, DetectionRecipe } from './recipe';

/** resolveLayout with its notation errors turned into UserErrors naming the architecture. */
function resolve(arch: string, opts: { numClasses: number; fcWidth: number }): DetectorLayout {
  try {
    return resolveLayout(arch, opts);
  } catch (e) {
    throw new UserError(`architecture '${arch}': ${(e as Error).message}`);
  }
}

export interface CommonJobOptions {
  outDir: string;
  seed?: number;
  device?: string;
  threads?: number;
  resume?: boolean;
  checkpoint?: Partial<z.input<typeof CheckpointPolicySchema>>;
  /** data-parallel settings (the launcher's RANK, WORLD_SIZE, ... environment overrides them) */
  distributed?: z.input<typeof DistributedSchema>;
}

export interface DetectionJobOptions extends CommonJobOptions {
  command: DetectionJob['command'];
  arch: string;
  /** already resolved layout; default: resolveLayout(arch, {numClasses, fcWidth: recipe.fcWidth}) */
  layout?: DetectorLayout;
  recipe: DetectionRecipe;
  numClasses: number;
  /** dataset directory in canonical COCO form (required for train and eval) */
  dataRoot?: string;
  trainSplit?: string;
  valSplit?: string;
  initWeights?: string;
  initKind?: InitKind;
  /** evaluator argv (e.g. [...SMNAS_CLI, 'eval']); the trainer appends --gt/--dets/--json */
  evaluator?: string[];
  bench?: { warmup?: number; iterations?: number; images?: number; rounds?: number };
  /** `export`: the ONNX model's path, input size, opset, parity images */
  export?: z.input<typeof ExportSettingsSchema>;
}

function validated<T>(schema: z.ZodType<T>, raw: unknown, what: string): T {
  const r = schema.safeParse(raw);
  if (!r.success) throw new UserError(describeZodError(what, r.error));
  return r.data;
}

function commonFields(o: CommonJobOptions) {
  return {
    schemaVersion: JOB_SCHEMA_VERSION,
    outDir: o.outDir,
    seed: o.seed ?? 0,
    device: o.device ?? 'cpu',
    threads: o.threads ?? 0,
    resume: o.resume ?? false,
    checkpoint: { everyIterations: 0, everySeconds: 300, keep: 2, ...(o.checkpoint ?? {}) },
    ...(o.distributed ? { distributed: o.distributed } : {}),
  };
}

/** A zod-valid detection job; throws UserError naming the field when the options are not. */
export function buildDetectionJob(o: DetectionJobOptions): DetectionJob {
  if ((o.command === 'train' || o.command === 'eval') && !o.dataRoot) {
    throw new UserError(`a '${o.command}' job needs a dataset directory (dataRoot)`);
  }
  if (o.command === 'export' && !o.export) throw new UserError(`an 'export' job needs its export settings (out, inputSize)`);
  const layout = o.layout ?? resolve(o.arch, { numClasses: o.numClasses, fcWidth: o.recipe.fcWidth });
  return validated(
    DetectionJobSchema,
    {
      ...commonFields(o),
      command: o.command,
      arch: o.arch,
      layout,
      recipe: o.recipe,
      data: o.dataRoot ? { root: o.dataRoot, trainSplit: o.trainSplit ?? 'train', valSplit: o.valSplit ?? 'val' } : undefined,
      numClasses: o.numClasses,
      initWeights: o.initWeights,
      initKind: o.initKind ?? 'backbone',
      evaluator: o.evaluator,
      bench: {
        warmup: o.bench?.warmup ?? 10,
        iterations: o.bench?.iterations ?? 50,
        ...(o.bench?.images !== undefined ? { images: o.bench.images } : {}),
        ...(o.bench?.rounds !== undefined ? { rounds: o.bench.rounds } : {}),
      },
      ...(o.export ? { export: o.export } : {}),
    },
    'detection job',
  );
}

export interface ClassificationJobOptions extends CommonJobOptions {
  command: ClassificationJob['command'];
  arch: string;
  layout?: DetectorLayout;
  recipe: ClassificationRecipe;
  dataRoot: string;
  trainSplit?: string;
  valSplit?: string;
  initWeights?: string;
}

/**
 * A zod-valid classification (backbone pretraining) job. Only the backbone of the layout is used;
 * the head's class count is irrelevant to it (the trainer counts the class folders).
 */
export function buildClassificationJob(o: ClassificationJobOptions): ClassificationJob {
  const layout = o.layout ?? resolve(o.arch, { numClasses: 1, fcWidth: 1 });
  return validated(
    ClassificationJobSchema,
    {
      ...commonFields(o),
      command: o.command,
      arch: o.arch,
      layout,
      recipe: o.recipe,
      data: { root: o.dataRoot, trainSplit: o.trainSplit ?? 'train', valSplit: o.valSplit ?? 'val' },
      initWeights: o.initWeights,
    },
    'classification job',
  );
}

export interface ClassifyJobOptions extends CommonJobOptions {
  /** a backbone notation: resnet50, mobilenet_v2, resnext50_32x4d, basicblock_64_1-21-21-21, ... */
  backbone: string;
  /** torchvision checkpoint (.pth or .safetensors) */
  weights: string;
  images: string;
  numClasses?: number;
  topK?: number;
}

/**
 * A zod-valid `classify` job (torchvision-style inference). The layout is the backbone's inside a
 * 224x224 detector notation; the trainer uses only its backbone part.
 */
export function buildClassifyJob(o: ClassifyJobOptions): ClassifyJob {
  const layout = resolve(`224x224/${o.backbone}/fpn(P2-P5,c=256)/rpn/2fc`, { numClasses: 1, fcWidth: 1 });
  return validated(
    ClassifyJobSchema,
    {
      ...commonFields(o),
      command: 'classify',
      arch: o.backbone,
      layout,
      initWeights: o.weights,
      images: o.images,
      numClasses: o.numClasses ?? 1000,
      topK: o.topK ?? 5,
    },
    'classify job',
  );
}
