/**
 * The campaign: the one input of the `smnasSearch` workflow (SPEC 7). Validated with zod before any
 * work starts; every error names the field at fault (describeZodError). Pure: zod only, so the
 * workflow sandbox can import it.
 *
 * Two profiles ship:
 *  - `paper`: the paper's recipes, COCO-scale data, trainings on the GPU queue;
 *  - `toy`:   generated data, CPU, the whole six-stage pipeline in minutes.
 * `makeToyCampaign` / `makePaperCampaign` fill in every default; a campaign JSON written by hand
 * only needs `id`, `profile` and `data` (the rest defaults from the profile, see `campaignDefaults`).
 */
import { z } from 'zod';
import { NAMED_BACKBONES } from '../search/notation';

/** Task queue of workflows and light activities (data checks, cost model, store look-ups, reports). */
export const CONTROL_QUEUE = 'smnas-control';
/** Task queue of trainer activities (train, evaluate, benchmark, pretrain); one slot per GPU. */
export const GPU_QUEUE = 'smnas-gpu';

export const CAMPAIGN_SCHEMA_VERSION = 1;

export const ProfileSchema = z.enum(['toy', 'paper']);
export type Profile = z.infer<typeof ProfileSchema>;

/** Campaign ids become workflow ids and folder names: keep them to a safe alphabet. */
export const CampaignIdSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must start with a letter or digit and use only letters, digits, ".", "_" and "-"');

/** One side (training or test) of a transfer data set: a split name and, for VOC, the years it takes. */
export const TransferSplitSchema = z.object({
  split: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a split name such as trainval, test, train or val'),
  /** VOC only: the VOC<year> folders to take it from (default: every year found) */
  years: z
    .array(z.string().regex(/^\d{4}$/, 'a year such as 2007'))
    .min(1)
    .optional(),
});
export type TransferSplit = z.infer<typeof TransferSplitSchema>;

/**
 * How a transfer result is scored:
 *  - `voc-map50`: Pascal VOC mAP at IoU 0.5, all-points interpolation (SPEC 8; the paper's Table 5);
 *  - `voc07-map50`: the same with VOC2007's 11-point interpolation;
 *  - `bdd-ap`: BDD100K's detection metric: COCO-style AP over IoU 0.5:0.95 on its 10 classes, with
 *    the boxes of 'other person' / 'other vehicle' / 'trailer' and crowd boxes as ignore regions
 *    (the converter writes them as iscrowd = 1, as the BDD100K toolkit's det config maps them);
 *  - `coco-ap`: COCO AP.
 * COCO-style AP is always recorded as well.
 */
export const TRANSFER_METRICS = ['voc-map50', 'voc07-map50', 'bdd-ap', 'coco-ap'] as const;
export type TransferMetric = (typeof TRANSFER_METRICS)[number];
/** How tables title each metric. */
export const TRANSFER_METRIC_TITLES: Record<TransferMetric, string> = {
  'voc-map50': 'VOC mAP@0.5',
  'voc07-map50': 'VOC07 mAP@0.5 (11-point)',
  'bdd-ap': 'BDD AP',
  'coco-ap': 'mAP',
};

export const TransferDatasetSchema = z
  .object({
    /** a short name used in ids, reports and folder names (e.g. "voc", "bdd") */
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'lower-case letters, digits, "_" and "-"'),
    /** the dataset as it is on disk: VOCdevkit, BDD100K labels JSON, or a COCO dir */
    format: z.enum(['voc', 'bdd', 'coco']),
    /** dataset root (VOC: the VOCdevkit dir; BDD: the dir with images/ and labels/; COCO: canonical dir) */
    root: z.string().min(1),
    /** the split trained on (default: the paper's protocol for the format, see transferProtocol) */
    train: TransferSplitSchema.optional(),
    /** the split evaluated on (default: the paper's protocol for the format) */
    test: TransferSplitSchema.optional(),
    /** how results are scored (default: voc-map50 / bdd-ap / coco-ap by format) */
    metric: z.enum(TRANSFER_METRICS).optional(),
  })
  .superRefine((t, ctx) => {
    for (const side of ['train', 'test'] as const)
      if (t[side]?.years && t.format !== 'voc')
        ctx.addIssue({ code: 'custom', path: [side, 'years'], message: `years apply to VOC data sets only (this one is ${t.format})` });
  });
export type TransferDataset = z.infer<typeof TransferDatasetSchema>;

/** The transfer protocol of a data set: what it trains on, what it is evaluated on, and how it is scored. */
export interface TransferProtocol {
  train: TransferSplit;
  test: TransferSplit;
  metric: TransferMetric;
}

/**
 * The paper's protocol (section 4.2) by format, with the data set's own overrides:
 *  - VOC: train on VOC2007 trainval + VOC2012 trainval, evaluate on VOC2007 test, VOC mAP@0.5;
 *  - BDD100K: train on train (70K images), evaluate on val (10K), BDD's detection AP;
 *  - COCO form: train / val, COCO AP.
 */
export function transferProtocol(t: TransferDataset): TransferProtocol {
  const defaults: Record<TransferDataset['format'], TransferProtocol> = {
    voc: { train: { split: 'trainval' }, test: { split: 'test', years: ['2007'] }, metric: 'voc-map50' },
    bdd: { train: { split: 'train' }, test: { split: 'val' }, metric: 'bdd-ap' },
    coco: { train: { split: 'train' }, test: { split: 'val' }, metric: 'coco-ap' },
  };
  const d = defaults[t.format];
  return { train: t.train ?? d.train, test: t.test ?? d.test, metric: t.metric ?? d.metric };
}

/** `data.backboneWeights`: named backbone -> torchvision checkpoint path (any subset of the names). */
export const BackboneWeightsSchema = z.partialRecord(
  z.enum(NAMED_BACKBONES),
  z
    .string()
    .min(1)
    .regex(/\.(pth|pt|safetensors)$/, 'a torchvision checkpoint path ending in .pth, .pt or .safetensors'),
);
export type BackboneWeights = z.infer<typeof BackboneWeightsSchema>;

/** `data.missingBackboneWeights`: named backbones without weights train from scratch or leave the space. */
export const MissingBackboneWeightsSchema = z.enum(['scratch', 'exclude']);
export type MissingBackboneWeights = z.infer<typeof MissingBackboneWeightsSchema>;
export const DEFAULT_MISSING_BACKBONE_WEIGHTS: MissingBackboneWeights = 'scratch';

export const DataSchema = z.object({
  /** the search dataset in canonical COCO dir form: annotations/instances_<split>.json + <split>/ images */
  detection: z.object({
    root: z.string().min(1),
    trainSplit: z.string().min(1).default('train'),
    valSplit: z.string().min(1).default('val'),
  }),
  /** datasets for the last stage; converted to canonical COCO form under the artifact store */
  transfer: z.array(TransferDatasetSchema).default([]),
  /** ImageNet-style class folders for backbone pretraining; absent -> the pretrain stage is skipped */
  classification: z.object({ root: z.string().min(1) }).optional(),
  /**
   * toy profile: generate all the data sets above (detection in COCO, VOC and BDD form,
   * classification folders) under this dir before the search, unless they already exist.
   */
  synthesize: z
    .object({
      root: z.string().min(1),
      seed: z.number().int().nonnegative().default(7),
      trainImages: z.number().int().positive().default(48),
      valImages: z.number().int().positive().default(16),
      imageSize: z.number().int().positive().default(128),
      classes: z.number().int().positive().default(3),
    })
    .optional(),
  /**
   * ImageNet weights per named backbone (search/notation.ts NAMED_BACKBONES), in torchvision's
   * naming: a `.pth` (torch.save of the state_dict) or `.safetensors` file. Checked at start (the
   * file exists, is readable, has the format's magic and the backbone's torchvision keys); stage
   * one's evaluations of these backbones (BN recipes) and finalists that are exactly one of them
   * start from the weights with mmdetection's pretrained-backbone settings
   * (protocol/recipe.ts PRETRAINED_BACKBONE). Absent: every backbone trains from scratch.
   */
  backboneWeights: BackboneWeightsSchema.optional(),
  /**
   * What happens to a named backbone of the stage-one space that has no entry in
   * `backboneWeights`: 'scratch' (default) trains it from scratch as before; 'exclude' leaves it
   * out of the stage-one space. The campaign says which at start (logs and progress).
   */
  missingBackboneWeights: MissingBackboneWeightsSchema.optional(),
});
export type CampaignData = z.infer<typeof DataSchema>;

const RecipeNameSchema = z.string().min(1);

export const StructuralStageSchema = z.object({
  /** budget: at most this many architectures evaluated in stage one */
  maxEvaluations: z.number().int().positive(),
  /** random initial population before evolution starts */
  population: z.number().int().positive(),
  /** named detection recipe (protocol/recipes.ts) */
  recipe: RecipeNameSchema,
});

export const ModularStageSchema = z.object({
  /** budget: at most this many evaluations per selected candidate */
  maxEvaluationsPerCandidate: z.number().int().positive(),
  population: z.number().int().positive(),
  recipe: RecipeNameSchema,
  /** how many stage-two front models go on to pretrain / final / transfer (lowest cost .. highest mAP spread) */
  finalists: z.number().int().positive(),
});

export const CampaignSchema = z.object({
  schemaVersion: z.literal(CAMPAIGN_SCHEMA_VERSION).default(CAMPAIGN_SCHEMA_VERSION),
  id: CampaignIdSchema,
  profile: ProfileSchema,
  /** every search decision derives from this seed (Rng of the search library) */
  seed: z.number().int().nonnegative().default(0),
  /** which search-space profile of the search library (defaults to the campaign profile) */
  space: ProfileSchema,
  data: DataSchema,
  /** artifact store root; absent -> the worker's default ($SMNAS_STATE/artifacts) */
  artifactRoot: z.string().min(1).optional(),
  /** device the stage-one latency is measured on ('cpu' or 'cuda:<i>'); the target device of the search */
  latencyDevice: z.string().regex(/^(cpu|cuda:\d+)$/, "must be 'cpu' or 'cuda:<index>'"),
  /** forward passes of the latency benchmark */
  bench: z.object({
    warmup: z.number().int().nonnegative(),
    iterations: z.number().int().positive(),
  }),
  /** K: candidates selected from the stage-one front for modular search (paper: 6, C0..C5) */
  candidates: z.number().int().positive(),
  stages: z.object({
    structural: StructuralStageSchema,
    modular: ModularStageSchema,
    pretrain: z.object({ recipe: RecipeNameSchema }),
    final: z.object({ recipe: RecipeNameSchema }),
    transfer: z.object({ recipe: RecipeNameSchema }),
  }),
  budgets: z.object({
    /** trainings running at once across the campaign (GPU workers cap physical slots on their own) */
    maxConcurrentTrainings: z.number().int().positive(),
    /** stop starting evaluations after this many hours since the campaign started */
    wallClockHours: z.number().positive().optional(),
    /** stop starting evaluations when the summed training time reaches this many GPU hours */
    gpuHours: z.number().positive().optional(),
    /** a search stage continues as new after this many evaluations (or earlier when Temporal suggests it) */
    continueAsNewEvery: z.number().int().positive().default(500),
  }),
  queues: z
    .object({ control: z.string().min(1).default(CONTROL_QUEUE), gpu: z.string().min(1).default(GPU_QUEUE) })
    .default({ control: CONTROL_QUEUE, gpu: GPU_QUEUE }),
  /** per-attempt limit of one training activity, and how long a silent trainer may go before it is declared lost */
  timeouts: z
    .object({
      trainingHours: z.number().positive().default(48),
      heartbeatSeconds: z.number().int().positive().default(120),
      /** retries of a crashed training (invalid jobs, bad data and divergence are never retried) */
      maxAttempts: z.number().int().positive().default(3),
    })
    .default({ trainingHours: 48, heartbeatSeconds: 120, maxAttempts: 3 }),
  /** how often trainings checkpoint (a retried or resumed training continues from the newest one) */
  checkpoints: z
    .object({
      everySeconds: z.number().nonnegative().default(300),
      everyIterations: z.number().int().nonnegative().default(0),
    })
    .default({ everySeconds: 300, everyIterations: 0 }),
});
export type Campaign = z.infer<typeof CampaignSchema>;
/** What a user may write: everything with a profile default may be left out. */
export type CampaignInput = z.input<typeof CampaignSchema>;

type Defaults = Omit<Campaign, 'id' | 'data' | 'artifactRoot' | 'schemaVersion'>;

/** Profile defaults (SPEC 6: the paper's budgets and recipes; toy: scaled down to minutes on a CPU). */
export function campaignDefaults(profile: Profile): Defaults {
  if (profile === 'paper') {
    return {
      profile,
      seed: 0,
      space: 'paper',
      latencyDevice: 'cuda:0',
      bench: { warmup: 10, iterations: 50 },
      candidates: 6,
      stages: {
        structural: { maxEvaluations: 500, population: 50, recipe: 'paper-stage-one' },
        modular: { maxEvaluationsPerCandidate: 200, population: 20, recipe: 'paper-stage-two', finalists: 6 },
        pretrain: { recipe: 'paper-pretrain' },
        final: { recipe: 'paper-final' },
        transfer: { recipe: 'paper-transfer' },
      },
      budgets: { maxConcurrentTrainings: 8, continueAsNewEvery: 500 },
      queues: { control: CONTROL_QUEUE, gpu: GPU_QUEUE },
      timeouts: { trainingHours: 48, heartbeatSeconds: 180, maxAttempts: 3 },
      checkpoints: { everySeconds: 600, everyIterations: 0 },
    };
  }
  return {
    profile,
    seed: 0,
    space: 'toy',
    latencyDevice: 'cpu',
    bench: { warmup: 1, iterations: 3 },
    candidates: 2,
    stages: {
      structural: { maxEvaluations: 6, population: 4, recipe: 'toy-stage-one' },
      modular: { maxEvaluationsPerCandidate: 4, population: 2, recipe: 'toy-stage-two', finalists: 1 }, // the first is the candidate itself (stage-two-seed)
      pretrain: { recipe: 'toy-pretrain' },
      final: { recipe: 'toy-final' },
      transfer: { recipe: 'toy-transfer' },
    },
    budgets: { maxConcurrentTrainings: 2, continueAsNewEvery: 200 },
    queues: { control: CONTROL_QUEUE, gpu: GPU_QUEUE },
    timeouts: { trainingHours: 2, heartbeatSeconds: 60, maxAttempts: 3 },
    checkpoints: { everySeconds: 10, everyIterations: 0 },
  };
}

/**
 * Parse a campaign as a user wrote it: fields left out take the profile's default (shallow per
 * section), then the whole is validated. Returns zod's result so callers choose how to report.
 */
export function parseCampaign(input: unknown) {
  return CampaignSchema.safeParse(withProfileDefaults(input));
}

/** Fill in the profile defaults of a raw campaign object (sections merged one level deep). */
export function withProfileDefaults(input: unknown): unknown {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return input;
  const raw = input as Record<string, unknown>;
  const profile = ProfileSchema.safeParse(raw.profile);
  if (!profile.success) return input; // zod names `profile` as the field at fault
  const d = campaignDefaults(profile.data) as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = { ...d };
  for (const [k, v] of Object.entries(raw)) {
    const dv = d[k];
    if (isPlainObject(dv) && isPlainObject(v)) {
      const merged: Record<string, unknown> = { ...dv };
      for (const [k2, v2] of Object.entries(v)) {
        const dv2 = dv[k2];
        merged[k2] = isPlainObject(dv2) && isPlainObject(v2) ? { ...dv2, ...v2 } : v2;
      }
      out[k] = merged;
    } else {
      out[k] = v;
    }
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function joinPath(root: string, ...parts: string[]): string {
  return [root.replace(/\/+$/, ''), ...parts].join('/');
}

/**
 * The toy campaign: data generated under `dataRoot` (detection in COCO form for the search, the
 * same generator's VOC and BDD forms as transfer sets, classification folders for pretraining).
 */
export function makeToyCampaign(opts: { id?: string; dataRoot: string; seed?: number; artifactRoot?: string; overrides?: Partial<CampaignInput> }): Campaign {
  const dataRoot = opts.dataRoot;
  const input = {
    id: opts.id ?? 'toy',
    profile: 'toy',
    seed: opts.seed ?? 0,
    ...(opts.artifactRoot ? { artifactRoot: opts.artifactRoot } : {}),
    data: {
      detection: { root: joinPath(dataRoot, 'coco'), trainSplit: 'train', valSplit: 'val' },
      transfer: [
        { name: 'voc', format: 'voc', root: joinPath(dataRoot, 'voc') },
        { name: 'bdd', format: 'bdd', root: joinPath(dataRoot, 'bdd') },
      ],
      classification: { root: joinPath(dataRoot, 'classification') },
      synthesize: { root: dataRoot },
    },
    ...(opts.overrides ?? {}),
  };
  const r = parseCampaign(input);
  if (!r.success) throw new Error(`makeToyCampaign: ${r.error.issues[0].path.join('.')}: ${r.error.issues[0].message}`);
  return r.data;
}

/**
 * The reduced toy campaign of the fault tests and bench/fault-matrix.ts (one definition for both):
 * 2 structural + 1 modular + 1 final training, no transfer, 12 training / 4 validation images of
 * 64x64, one training at a time, a checkpoint every 2 iterations, heartbeat timeout 5 s.
 */
export function makeReducedToyCampaign(opts: {
  id: string;
  dataRoot: string;
  artifactRoot: string;
  queues: { control: string; gpu: string };
  maxAttempts: number;
}): Campaign {
  const base = makeToyCampaign({ id: opts.id, dataRoot: opts.dataRoot, artifactRoot: opts.artifactRoot });
  return {
    ...base,
    data: {
      detection: base.data.detection,
      transfer: [],
      synthesize: { root: opts.dataRoot, trainImages: 12, valImages: 4, imageSize: 64, classes: 2, seed: 2 },
    },
    queues: opts.queues,
    candidates: 1,
    stages: {
      ...base.stages,
      structural: { maxEvaluations: 2, population: 2, recipe: 'toy-stage-one' },
      modular: { maxEvaluationsPerCandidate: 1, population: 1, recipe: 'toy-stage-two', finalists: 1 },
    },
    budgets: { maxConcurrentTrainings: 1, continueAsNewEvery: 100 },
    timeouts: { trainingHours: 1, heartbeatSeconds: 5, maxAttempts: opts.maxAttempts },
    checkpoints: { everySeconds: 0, everyIterations: 2 },
  };
}

/** The paper campaign on COCO-scale data already on disk (transfer sets and ImageNet folders optional). */
export function makePaperCampaign(opts: {
  id?: string;
  cocoRoot: string;
  transfer?: TransferDataset[];
  classificationRoot?: string;
  seed?: number;
  artifactRoot?: string;
  overrides?: Partial<CampaignInput>;
}): Campaign {
  const input = {
    id: opts.id ?? 'paper',
    profile: 'paper',
    seed: opts.seed ?? 0,
    ...(opts.artifactRoot ? { artifactRoot: opts.artifactRoot } : {}),
    data: {
      detection: { root: opts.cocoRoot, trainSplit: 'train2017', valSplit: 'val2017' },
      transfer: opts.transfer ?? [],
      ...(opts.classificationRoot ? { classification: { root: opts.classificationRoot } } : {}),
    },
    ...(opts.overrides ?? {}),
  };
  const r = parseCampaign(input);
  if (!r.success) throw new Error(`makePaperCampaign: ${r.error.issues[0].path.join('.')}: ${r.error.issues[0].message}`);
  return r.data;
}

/** Stage names, in order; the SmnasStage search attribute takes these values (plus 'data', 'report', 'done'). */
export const STAGES = ['structural', 'selection', 'modular', 'pretrain', 'final', 'transfer'] as const;
export type StageName = (typeof STAGES)[number];
export type CampaignPhase = 'validate' | 'data' | StageName | 'report' | 'done';
