/**
 * DetectorLayout: the fully expanded structure of one architecture, derived from its canonical
 * notation by `resolveLayout` (search/layout-resolve.ts). It is the single definition of "what
 * modules with which channel counts" that both the cost model (TypeScript) and the native trainer
 * (C++, which reads it from the job file) consume, so their per-module parameter counts can be
 * compared one to one. The trainer never parses the notation itself.
 *
 * Pure: zod only, no Node APIs (workflow code imports the search library).
 */
import { z } from 'zod';

/** One residual / inverted-residual block. */
export const BlockLayoutSchema = z.object({
  /** input channels */
  inChannels: z.number().int().positive(),
  /** output channels (bottleneck: planes * 4; basicblock: planes; mbblock: planes) */
  outChannels: z.number().int().positive(),
  /** inner width: basicblock conv width; bottleneck 1x1/3x3 width; Xbottleneck grouped width; mbblock hidden (expanded) width */
  midChannels: z.number().int().positive(),
  /** 1 or 2; the first block of every stage but the first has stride 2 (mbblock: also stage 1) */
  stride: z.union([z.literal(1), z.literal(2)]),
  /** groups of the 3x3 conv (Xbottleneck: 32; mbblock: midChannels, depthwise; else 1) */
  groups: z.number().int().positive(),
  /** true when a 1x1 projection (conv + norm) is needed on the shortcut (stride != 1 or in != out); mbblock: residual only when stride 1 and in == out */
  projection: z.boolean(),
});
export type BlockLayout = z.infer<typeof BlockLayoutSchema>;

export const BackboneLayoutSchema = z.object({
  block: z.enum(['basicblock', 'bottleneck', 'Xbottleneck', 'mbblock']),
  /** ResNet stem: 7x7/2 conv 3->stemChannels, norm, ReLU, 3x3/2 max-pool. */
  stemChannels: z.number().int().positive(),
  /** exactly four residual stages, output strides 4, 8, 16, 32 */
  stages: z.array(z.object({ blocks: z.array(BlockLayoutSchema).min(1) })).length(4),
  /** output channels of each stage (C1..C4 = the paper's P1..P4 inputs) */
  stageChannels: z.array(z.number().int().positive()).length(4),
});
export type BackboneLayout = z.infer<typeof BackboneLayoutSchema>;

export const NeckLayoutSchema = z.discriminatedUnion('kind', [
  /** single stride-16 map: output of stage 3 (P3); stage 4 is not built */
  z.object({ kind: z.literal('none'), channels: z.number().int().positive(), stride: z.literal(16) }),
  z.object({
    kind: z.literal('fpn'),
    /** first and last level (1..6); levels 1..4 have lateral 1x1 convs from stages 1..4,
     *  levels 5..6 are extra 3x3 stride-2 convs (P5 on P4's output, P6 on ReLU(P5)). */
    from: z.number().int().min(1).max(4),
    to: z.number().int().min(1).max(6),
    channels: z.number().int().positive(),
    /** stride of each output level, from..to (4 * 2^(level-1)) */
    strides: z.array(z.number().int().positive()).min(1),
  }),
]);
export type NeckLayout = z.infer<typeof NeckLayoutSchema>;

export const RpnLayoutSchema = z.object({
  kind: z.enum(['none', 'rpn', 'ga-rpn']),
  /** anchors per location (rpn: 3 ratios x 1 scale) */
  anchorsPerLocation: z.number().int().nonnegative(),
  /** width of the shared 3x3 conv (= neck channels) */
  convChannels: z.number().int().nonnegative(),
  /** ga-rpn: deformable groups of the feature adaption's 3x3 deformable conv (mmdetection: 4); 0 otherwise */
  deformGroups: z.number().int().nonnegative(),
});
export type RpnLayout = z.infer<typeof RpnLayoutSchema>;

export const HeadLayoutSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('2fc'),
    roiSize: z.literal(7),
    fcWidth: z.number().int().positive(),
    numClasses: z.number().int().positive(),
  }),
  z.object({
    kind: z.literal('cascade'),
    stages: z.number().int().min(2).max(4),
    /** IoU threshold of each stage, spread from 0.5 to 0.7 */
    iouThresholds: z.array(z.number()),
    roiSize: z.literal(7),
    fcWidth: z.number().int().positive(),
    numClasses: z.number().int().positive(),
  }),
  z.object({
    kind: z.literal('retina'),
    /** 4 stacked 3x3 convs per branch of this width */
    convChannels: z.number().int().positive(),
    stackedConvs: z.number().int().positive(),
    anchorsPerLocation: z.literal(9),
    numClasses: z.number().int().positive(),
  }),
]);
export type HeadLayout = z.infer<typeof HeadLayoutSchema>;

export const DetectorLayoutSchema = z.object({
  /** canonical notation this layout was resolved from */
  arch: z.string(),
  input: z.object({ width: z.number().int().positive(), height: z.number().int().positive() }),
  backbone: BackboneLayoutSchema,
  neck: NeckLayoutSchema,
  rpn: RpnLayoutSchema,
  head: HeadLayoutSchema,
});
export type DetectorLayout = z.infer<typeof DetectorLayoutSchema>;
