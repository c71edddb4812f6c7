/**
 * Training recipes: everything about *how* a candidate is trained that is not architecture
 * (SPEC 2, 6). Owned here (zod); the native trainer consumes the JSON inside its job file.
 * Named recipes (paper stage one/two, pretrain, final, transfer; toy variants) live in
 * protocol/recipes.ts.
 */
import { z } from 'zod';

export const NormSchema = z.enum(['bn', 'gn', 'gn+ws']);
export type Norm = z.infer<typeof NormSchema>;

/**
 * Warm-up length as a fraction of the run's iterations: the linear warm-up lasts
 * max(warmupIterations, round(warmupFraction * total iterations)). Absent = 0 (fixed length).
 * Why: a fixed 12-iteration warm-up suits the toy campaign's 36-72-iteration trainings, but a
 * 600-iteration `smnas train --recipe toy` run (GN+WS from scratch, lr 0.02) ended collapsed with
 * it (AP 0.001, 2026-11-26), and with 60 iterations too (AP 0, twice); with 100 it reached AP 0.54
 * / AP50 0.94, and the 1,000-iteration quality run needs 100 as well. The toy recipes use 0.17:
 * about 100 iterations for 600, and still 12 for the campaign's 72.
 */
const WarmupFractionSchema = z.number().min(0).max(1).optional();

export const ScheduleSchema = z.discriminatedUnion('kind', [
  /** lr = min + 1/2 (base - min)(1 + cos(pi t / T)), per iteration, after an optional linear warm-up */
  z.object({
    kind: z.literal('cosine'),
    minLr: z.number().nonnegative(),
    warmupIterations: z.number().int().nonnegative().default(0),
    warmupRatio: z.number().positive().max(1).default(0.001),
    warmupFraction: WarmupFractionSchema,
  }),
  /** linear warm-up over warmupIterations from base*warmupRatio, then x gamma at each milestone epoch */
  z.object({
    kind: z.literal('step'),
    warmupIterations: z.number().int().nonnegative(),
    warmupRatio: z.number().positive().max(1),
    warmupFraction: WarmupFractionSchema,
    milestones: z.array(z.number().int().positive()),
    gamma: z.number().positive().max(1),
  }),
]);
export type Schedule = z.infer<typeof ScheduleSchema>;

export const OptimizerSchema = z.object({
  lr: z.number().positive(),
  momentum: z.number().min(0).max(1),
  weightDecay: z.number().nonnegative(),
  /** no weight decay on norm affine parameters and biases (mmdet paramwise_cfg norm_decay_mult=0) */
  noDecayOnNormAndBias: z.boolean().default(true),
  /** clip the global gradient norm (0 = off) */
  clipGradNorm: z.number().nonnegative().default(0),
  /**
   * linear scaling rule: `lr` is the rate for a global batch of this many images and the trainer
   * scales it by (batchSize x processes) / lrReferenceBatch. Absent: `lr` whatever the batch.
   */
  lrReferenceBatch: z.number().int().positive().optional(),
});

/**
 * Autocast of the training forward pass (absent = 'off'): 'bf16' (CPU or CUDA) or 'fp16' (CUDA
 * only, with dynamic loss scaling). Losses, box coding, RoIAlign and NMS stay in fp32.
 */
export const MixedPrecisionSchema = z.enum(['off', 'bf16', 'fp16']);
export type MixedPrecision = z.infer<typeof MixedPrecisionSchema>;

export const BackboneTrainingSchema = z.object({
  frozenStages: z.number().int().min(-1).max(4).default(-1),
  normEval: z.boolean().default(false),
});
export type BackboneTraining = z.infer<typeof BackboneTrainingSchema>;
/** what a recipe for an ImageNet-pretrained backbone uses (mmdetection's ResNet defaults) */
export const PRETRAINED_BACKBONE: BackboneTraining = { frozenStages: 1, normEval: true };

export const DetectionRecipeSchema = z.object({
  name: z.string().min(1),
  norm: NormSchema,
  epochs: z.number().int().positive(),
  /** images per iteration on one device (one process of a data-parallel training) */
  batchSize: z.number().int().positive(),
  /** devices (processes) of one data-parallel training; the GPU worker leases them together. Absent: 1 */
  devices: z.number().int().positive().optional(),
  optimizer: OptimizerSchema,
  schedule: ScheduleSchema,
  augment: z.object({
    flip: z.boolean(),
    /** the shorter side is scaled by a factor drawn uniformly from [min, max] before padding */
    scaleJitter: z.tuple([z.number().positive(), z.number().positive()]),
  }),
  /** width of the two shared FC layers of 2fc / cascade heads (paper: 1024) */
  fcWidth: z.number().int().positive(),
  rpn: z.object({
    samplesPerImage: z.number().int().positive(),
    positiveFraction: z.number().gt(0).max(1),
    trainPreNms: z.number().int().positive(),
    trainPostNms: z.number().int().positive(),
    testPreNms: z.number().int().positive(),
    testPostNms: z.number().int().positive(),
    nmsIou: z.number().gt(0).max(1),
    /**
     * an anchor that is a ground-truth box's best (its IoU equal to that box's highest) is positive
     * only if that IoU is at least this (mmdetection's min_pos_iou; absent: 0.3). 0 is torchvision's
     * Matcher with allow_low_quality_matches: every box with any overlapping anchor gets its best
     * anchors, which matters for objects smaller than the smallest anchor. The plain RPN only.
     */
    minPosIou: z.number().min(0).max(1).optional(),
  }),
  roi: z.object({
    samplesPerImage: z.number().int().positive(),
    positiveFraction: z.number().gt(0).max(1),
  }),
  test: z.object({
    scoreThreshold: z.number().min(0).max(1),
    nmsIou: z.number().gt(0).max(1),
    maxPerImage: z.number().int().positive(),
  }),
  /** data-loading threads */
  workers: z.number().int().nonnegative().default(2),
  /** optional hard cap on iterations (short test runs); the schedule is computed for this length */
  maxIterations: z.number().int().positive().optional(),
  mixedPrecision: MixedPrecisionSchema.optional(),
  /** data-parallel: BN layers in train mode normalise with the statistics of every process (SyncBN) */
  syncBn: z.boolean().optional(),
  /**
   * mmdetection's settings for a pretrained backbone (absent: nothing frozen, BN in train mode).
   * frozenStages: -1 none, 0 the stem, k the stem and stages 1..k (parameters get no gradient,
   * are left out of the optimiser and their norms stay in eval mode); normEval: every BatchNorm of
   * the backbone in eval mode while training (running statistics frozen). mmdet's ResNet config for
   * ImageNet-pretrained backbones: { frozenStages: 1, normEval: true }.
   */
  backbone: BackboneTrainingSchema.optional(),
  /**
   * initialisation of the FPN and the 2fc / cascade box heads (absent: 'mmdet'): mmdetection's
   * (Xavier-uniform FPN convs and FC layers, classifier N(0, 0.01), box regressor N(0, 0.001)) or
   * torchvision's (kaiming_uniform(a=1) FPN convs as its FeaturePyramidNetwork, PyTorch's default
   * Linear init in TwoMLPHead and FastRCNNPredictor). Backbone and RPN head are initialised alike.
   */
  initScheme: z.enum(['mmdet', 'torchvision']).optional(),
});
export type DetectionRecipe = z.infer<typeof DetectionRecipeSchema>;

export const ClassificationRecipeSchema = z.object({
  name: z.string().min(1),
  norm: NormSchema,
  epochs: z.number().int().positive(),
  batchSize: z.number().int().positive(),
  /** devices (processes) of one data-parallel training. Absent: 1 */
  devices: z.number().int().positive().optional(),
  /** square crop side of RandomResizedCrop in training, centre crop in evaluation */
  cropSize: z.number().int().positive(),
  optimizer: OptimizerSchema,
  schedule: ScheduleSchema,
  workers: z.number().int().nonnegative().default(2),
  maxIterations: z.number().int().positive().optional(),
  mixedPrecision: MixedPrecisionSchema.optional(),
  /** data-parallel: BN layers in train mode normalise with the statistics of every process (SyncBN) */
  syncBn: z.boolean().optional(),
});
export type ClassificationRecipe = z.infer<typeof ClassificationRecipeSchema>;

/**
 * A detection recipe with `backbone` set (a campaign's pretrained-backbone evaluations: the named
 * recipe plus PRETRAINED_BACKBONE). Absent `backbone`: the recipe unchanged (same object, same hash).
 */
export function withBackboneTraining(recipe: DetectionRecipe, backbone: BackboneTraining | undefined): DetectionRecipe {
  return backbone === undefined ? recipe : { ...recipe, backbone: { ...backbone } };
}
