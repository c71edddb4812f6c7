/**
 * The trainer job file: the one input of every `smnas-trainer <command> --job <file>` run.
 * Defined here (zod) and exported as JSON Schema to native/schema/job.schema.json by
 * `bin/smnas protocol export-schema` (run by the build); the C++ trainer validates the same
 * fields and names the offending field path in its `invalid_job` error.
 *
 * The job carries the canonical architecture string *and* its resolved DetectorLayout, so the
 * trainer never re-implements the notation (the search library owns it).
 */
import { z } from 'zod';
import { DetectorLayoutSchema } from '../search/layout';
import { ClassificationRecipeSchema, DetectionRecipeSchema } from './recipe';

export const JOB_SCHEMA_VERSION = 1;

export const CheckpointPolicySchema = z.object({
  /** write a checkpoint every N iterations (0 = off) */
  everyIterations: z.number().int().nonnegative().default(0),
  /** ... and/or every M seconds of wall time (0 = off) */
  everySeconds: z.number().nonnegative().default(300),
  /** how many checkpoints to keep (the newest ones) */
  keep: z.number().int().positive().default(2),
});

/**
 * Data-parallel training (train, eval, classify-train, classify-eval): worldSize processes of one
 * job, each with its rank, meeting at a TCP store on masterAddr:masterPort (rank 0 hosts it).
 * torchrun's environment variables RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT override
 * these fields (the same job file serves every process). recipe.batchSize is per process; the
 * global batch is batchSize x worldSize. Absent: one process.
 */
export const DistributedSchema = z.object({
  worldSize: z.number().int().positive().max(4096).default(1),
  rank: z.number().int().nonnegative().default(0),
  masterAddr: z.string().min(1).default('127.0.0.1'),
  masterPort: z.number().int().min(1).max(65535).default(29500),
  /** a collective (or the rendezvous) not done within this many seconds fails the process (exit 6) */
  timeoutSeconds: z.number().positive().max(86400).default(120),
  /** gradient all-reduce bucket size (DDP's default 25 MiB) */
  bucketMB: z.number().positive().max(4096).default(25),
  /** auto: NCCL for CUDA devices where the build has it, else Gloo */
  backend: z.enum(['auto', 'gloo', 'nccl']).default('auto'),
});
export type Distributed = z.infer<typeof DistributedSchema>;

const common = {
  schemaVersion: z.literal(JOB_SCHEMA_VERSION),
  /** where weights, checkpoints, detections and metrics go; created if missing */
  outDir: z.string().min(1),
  seed: z.number().int().nonnegative(),
  /** 'cpu' or 'cuda:<index>' */
  device: z.string().regex(/^(cpu|cuda:\d+)$/, "must be 'cpu' or 'cuda:<index>'"),
  /** intra-op threads (0 = the library default) */
  threads: z.number().int().nonnegative().default(0),
  /** continue from the newest valid checkpoint in outDir/checkpoints */
  resume: z.boolean().default(false),
  checkpoint: CheckpointPolicySchema.default({ everyIterations: 0, everySeconds: 300, keep: 2 }),
  distributed: DistributedSchema.optional(),
};

/** A COCO-form dataset directory: annotations/instances_<split>.json and <split>/ images. */
export const DetectionDataSchema = z.object({
  root: z.string().min(1),
  trainSplit: z.string().default('train'),
  valSplit: z.string().default('val'),
});

/**
 * How the trainer computes metrics: it writes detections in COCO results format and runs this
 * argv with `--gt <instances.json> --dets <detections.json> --json` appended (the project's one
 * evaluator, `bin/smnas eval`). Absent: detections only, no metrics.
 */
export const EvaluatorSchema = z.array(z.string().min(1)).min(1);

export const InitKindSchema = z.enum(['backbone', 'detector', 'torchvision']);
export type InitKind = z.infer<typeof InitKindSchema>;

/**
 * `export`: the detector (built from the layout like train/eval, weights from initWeights) as an
 * ONNX model with its post-processing. inputSize: a fixed [height, width] (multiples of 32, the
 * padding evaluation applies) or 'dynamic'. With data and parityImages > 0 the first validation
 * images, prepared as evaluation prepares them, and their libtorch detections are written under
 * outDir/parity/ (the parity test's reference).
 */
export const ExportSettingsSchema = z.object({
  out: z.string().min(1),
  inputSize: z.union([z.literal('dynamic'), z.tuple([z.number().int().min(32).max(8192).multipleOf(32), z.number().int().min(32).max(8192).multipleOf(32)])]),
  opset: z.number().int().min(16).max(18).default(17),
  parityImages: z.number().int().min(0).max(1000).default(0),
});
export type ExportSettings = z.infer<typeof ExportSettingsSchema>;

export const DetectionJobSchema = z.object({
  ...common,
  command: z.enum(['train', 'eval', 'bench', 'describe', 'export']),
  arch: z.string().min(1),
  layout: DetectorLayoutSchema,
  recipe: DetectionRecipeSchema,
  /** required for train and eval; unused by bench and describe */
  data: DetectionDataSchema.optional(),
  /** number of object classes (without background); from the dataset's categories */
  numClasses: z.number().int().positive(),
  /**
   * backbone weights written by classify-train, full detector weights for eval/transfer, or a
   * torchvision checkpoint (.pth as torch.save writes it, or .safetensors; the format is read from
   * the file's content)
   */
  initWeights: z.string().optional(),
  /**
   * what initWeights holds: 'backbone' (classify-train's backbone_weights), 'detector' (a trained
   * detector's weights), 'torchvision' (a torchvision ImageNet state_dict in torchvision's naming:
   * resnet*, resnext*, mobilenet_v2, or classify-train's torchvision.safetensors), loaded into
   * the backbone; BN backbones only. Pair it with recipe.backbone (frozen stages, normEval).
   */
  initKind: InitKindSchema.default('backbone'),
  evaluator: EvaluatorSchema.optional(),
  bench: z
    .object({
      warmup: z.number().int().nonnegative().default(10),
      iterations: z.number().int().positive().default(50),
      /** latency protocol: a seeded sample of this many validation images (job seed), cycled; 0/absent = one image (data) or noise */
      images: z.number().int().positive().max(100000).optional(),
      /** latency protocol: rounds of `iterations` timed forwards, each forward's time reported */
      rounds: z.number().int().positive().max(100000).optional(),
    })
    .default({ warmup: 10, iterations: 50 }),
  /** required for `export`: the ONNX model to write (docs/deploy.md) */
  export: ExportSettingsSchema.optional(),
});
export type DetectionJob = z.infer<typeof DetectionJobSchema>;

export const ClassificationJobSchema = z.object({
  ...common,
  command: z.enum(['classify-train', 'classify-eval']),
  arch: z.string().min(1),
  /** only the backbone part of the layout is used */
  layout: DetectorLayoutSchema,
  recipe: ClassificationRecipeSchema,
  /** ImageNet-style class folders: <root>/<trainSplit>/<class>/*.png|jpg and <root>/<valSplit>/... */
  data: z.object({ root: z.string().min(1), trainSplit: z.string().default('train'), valSplit: z.string().default('val') }),
  initWeights: z.string().optional(),
});
export type ClassificationJob = z.infer<typeof ClassificationJobSchema>;

/**
 * `classify`: a classifier imported from a torchvision checkpoint (initWeights: .pth or
 * .safetensors in torchvision's naming) run on every .png/.jpg/.jpeg/.bmp of `images` with
 * torchvision's ImageNet evaluation transforms (Resize(256, antialias=True) on the uint8 tensor,
 * CenterCrop(224), Normalize); the result lists each image's top-k classes and logits. BN only.
 */
export const ClassifyJobSchema = z.object({
  ...common,
  command: z.literal('classify'),
  arch: z.string().min(1),
  /** only the backbone part of the layout is used */
  layout: DetectorLayoutSchema,
  initWeights: z.string().min(1),
  /** a folder of images */
  images: z.string().min(1),
  /** outputs of the classifier's fc layer (ImageNet: 1000) */
  numClasses: z.number().int().positive().default(1000),
  topK: z.number().int().positive().default(5),
});
export type ClassifyJob = z.infer<typeof ClassifyJobSchema>;

export const JobSchema = z.union([DetectionJobSchema, ClassificationJobSchema, ClassifyJobSchema]);
export type Job = z.infer<typeof JobSchema>;
