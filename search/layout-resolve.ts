/**
 * resolveLayout: notation -> DetectorLayout (search/layout.ts), the fully expanded structure that
 * both the cost model and the native trainer build from. The semantics fixed here:
 *
 * - Residual backbones (basicblock / bottleneck / Xbottleneck): ResNet stem 7x7/2 conv 3->base,
 *   norm, ReLU, 3x3/2 max-pool; `planes` starts at `base` and doubles at every '2'; out channels =
 *   planes (basicblock) or planes*4 (bottlenecks); mid = planes (basic/bottleneck) or
 *   floor(planes*4/64)*32 with 32 groups (Xbottleneck, torchvision's ResNeXt 32x4d formula);
 *   the first block of stages 2..4 has stride 2; projection shortcut when stride != 1 or in != out.
 * - mbblock (encoded): MobileNetV2 stem (3x3/2 conv 3->32, norm, ReLU6, then one expansion-1
 *   inverted residual 32->16 made of a depthwise 3x3 and a 1x1 projection); stemChannels = 32.
 *   Each block: expansion 6 of its input (mid = in*6), depthwise 3x3 (groups = mid), 1x1 linear
 *   projection; the first block of every stage (stage 1 included, the stem has stride 2) has
 *   stride 2. mbblock never has a projection shortcut: the residual exists only when stride 1
 *   and in == out, so `projection` is false for every mbblock.
 * - mobilenet_v2 (named): torchvision's model; its seven bottleneck groups are split at the
 *   stride changes into the four stages (24x2 | 32x3 | 64x4, 96x3 | 160x3, 320x1). torchvision's
 *   final 1x1 conv 320->1280 belongs to the classifier (see cost.ts), not to the detector backbone.
 * - Input: `layout.input` is the tensor size the detector runs on: the notation's W x H padded up
 *   to multiples of 32 (the paper's 1333x800, 800x600, 1080x720 -> 1344x800, 800x608, 1088x736);
 *   `layout.arch` keeps the notation.
 * - Built stages: neck `none` uses the stride-16 output of stage 3 and stage 4 is not built;
 *   an FPN up to level b builds stages 1..min(b, 4) (P5/P6 come from P4). See `builtStages`.
 * - An encoded stage written 'x' (not built, see notation.ts `markUnusedStages`) resolves to one
 *   block that keeps the width ('1'), so the layout keeps its four stages: the detector never
 *   builds it, and ImageNet-style pretraining (whose classifier pools after stage 4) trains that
 *   one block and throws it away with the classifier.
 *
 * Pure: no Node APIs.
 */
import { type BackboneLayout, type BlockLayout, type DetectorLayout, DetectorLayoutSchema, type HeadLayout, type NeckLayout, type RpnLayout } from './layout';
import { type Arch, type EncodedBackbone, type Neck, UNUSED_STAGE, backboneEncoding, formatArch, toArch, usedBackboneStages } from './notation';

/** The code a stage resolves to ('x', not built: one width-keeping block; see the header). */
const resolvedCode = (code: string): string => (code === UNUSED_STAGE ? '1' : code);

export interface ResolveOptions {
  /** object classes without background */
  numClasses: number;
  /** width of the RoI heads' fully connected layers (the paper: 1024) */
  fcWidth: number;
}

/** MobileNetV2 (torchvision, width 1.0) inverted-residual settings after the stem's t=1 block: t, c, n, s, stage. */
const MOBILENET_V2_GROUPS: { t: number; c: number; n: number; s: 1 | 2; stage: number }[] = [
  { t: 6, c: 24, n: 2, s: 2, stage: 0 },
  { t: 6, c: 32, n: 3, s: 2, stage: 1 },
  { t: 6, c: 64, n: 4, s: 2, stage: 2 },
  { t: 6, c: 96, n: 3, s: 1, stage: 2 },
  { t: 6, c: 160, n: 3, s: 2, stage: 3 },
  { t: 6, c: 320, n: 1, s: 1, stage: 3 },
];
/** Deformable groups of GA-RPN's feature adaption (mmdetection's GARPNHead default). */
export const GA_RPN_DEFORM_GROUPS = 4;
/** MobileNetV2 stem: 3x3/2 conv to 32, then an expansion-1 inverted residual to 16. */
export const MBBLOCK_STEM = { conv: 32, out: 16 } as const;

function residualBackbone(e: EncodedBackbone): BackboneLayout {
  const expansion = e.block === 'basicblock' ? 1 : 4;
  let planes = e.base;
  let inChannels = e.base; // the stem's output
  const stages = e.stages.map((code, s) => {
    const blocks: BlockLayout[] = [...resolvedCode(code)].map((ch, j) => {
      if (ch === '2') planes *= 2;
      const stride: 1 | 2 = j === 0 && s > 0 ? 2 : 1;
      const outChannels = planes * expansion;
      const midChannels = e.block === 'Xbottleneck' ? Math.floor((planes * 4) / 64) * 32 : planes;
      const block: BlockLayout = {
        inChannels,
        outChannels,
        midChannels,
        stride,
        groups: e.block === 'Xbottleneck' ? 32 : 1,
        projection: stride !== 1 || inChannels !== outChannels,
      };
      inChannels = outChannels;
      return block;
    });
    return { blocks };
  });
  return { block: e.block, stemChannels: e.base, stages, stageChannels: stages.map((st) => st.blocks[st.blocks.length - 1].outChannels) };
}

function mbBackbone(e: EncodedBackbone): BackboneLayout {
  let planes = e.base;
  let inChannels: number = MBBLOCK_STEM.out;
  const stages = e.stages.map((code) => {
    const blocks: BlockLayout[] = [...resolvedCode(code)].map((ch, j) => {
      if (ch === '2') planes *= 2;
      const mid = inChannels * 6;
      const block: BlockLayout = { inChannels, outChannels: planes, midChannels: mid, stride: j === 0 ? 2 : 1, groups: mid, projection: false };
      inChannels = planes;
      return block;
    });
    return { blocks };
  });
  return { block: 'mbblock', stemChannels: MBBLOCK_STEM.conv, stages, stageChannels: stages.map((st) => st.blocks[st.blocks.length - 1].outChannels) };
}

function mobilenetV2Backbone(): BackboneLayout {
  const stages: { blocks: BlockLayout[] }[] = [{ blocks: [] }, { blocks: [] }, { blocks: [] }, { blocks: [] }];
  let inChannels: number = MBBLOCK_STEM.out;
  for (const g of MOBILENET_V2_GROUPS) {
    for (let i = 0; i < g.n; i++) {
      const mid = inChannels * g.t;
      stages[g.stage].blocks.push({ inChannels, outChannels: g.c, midChannels: mid, stride: i === 0 ? g.s : 1, groups: mid, projection: false });
      inChannels = g.c;
    }
  }
  return { block: 'mbblock', stemChannels: MBBLOCK_STEM.conv, stages, stageChannels: stages.map((st) => st.blocks[st.blocks.length - 1].outChannels) };
}

export function resolveBackbone(b: Arch['backbone']): BackboneLayout {
  const e = backboneEncoding(b);
  if (!e) return mobilenetV2Backbone();
  return e.block === 'mbblock' ? mbBackbone(e) : residualBackbone(e);
}

/** How many backbone stages a detector builds: 3 without a neck, min(last FPN level, 4) with one. */
export function builtStages(neck: Neck | NeckLayout): number {
  return usedBackboneStages(neck);
}

/** Cascade IoU thresholds spread evenly from 0.5 to 0.7 (rounded to 1e-6 so they print cleanly). */
export function cascadeIouThresholds(stages: number): number[] {
  return Array.from({ length: stages }, (_, i) => Math.round((0.5 + (0.2 * i) / (stages - 1)) * 1e6) / 1e6);
}

export function resolveLayout(arch: Arch | string, opts: ResolveOptions): DetectorLayout {
  const a = toArch(arch);
  if (!(Number.isInteger(opts.numClasses) && opts.numClasses > 0)) throw new RangeError(`numClasses must be a positive integer, got ${opts.numClasses}`);
  if (!(Number.isInteger(opts.fcWidth) && opts.fcWidth > 0)) throw new RangeError(`fcWidth must be a positive integer, got ${opts.fcWidth}`);
  const backbone = resolveBackbone(a.backbone);
  const n = a.neck;
  const neck: NeckLayout =
    n.kind === 'none'
      ? { kind: 'none', channels: backbone.stageChannels[2], stride: 16 }
      : { kind: 'fpn', from: n.from, to: n.to, channels: n.channels, strides: Array.from({ length: n.to - n.from + 1 }, (_, i) => 4 * 2 ** (n.from + i - 1)) };
  const rpn: RpnLayout =
    a.rpn === 'none'
      ? { kind: 'none', anchorsPerLocation: 0, convChannels: 0, deformGroups: 0 }
      : { kind: a.rpn, anchorsPerLocation: a.rpn === 'rpn' ? 3 : 1, convChannels: neck.channels, deformGroups: a.rpn === 'ga-rpn' ? GA_RPN_DEFORM_GROUPS : 0 };
  const h = a.head;
  const head: HeadLayout =
    h.kind === '2fc'
      ? { kind: '2fc', roiSize: 7, fcWidth: opts.fcWidth, numClasses: opts.numClasses }
      : h.kind === 'cascade'
        ? { kind: 'cascade', stages: h.stages, iouThresholds: cascadeIouThresholds(h.stages), roiSize: 7, fcWidth: opts.fcWidth, numClasses: opts.numClasses }
        : { kind: 'retina', convChannels: neck.channels, stackedConvs: 4, anchorsPerLocation: 9, numClasses: opts.numClasses };
  // validate our own output against the shared schema: a mismatch is a bug here, not user input
  // the network input is the notation's size padded up to multiples of 32 (mmdetection's
  // size_divisor=32), so every stride divides it: 1333x800 -> 1344x800, 800x600 -> 800x608
  const input = { width: Math.ceil(a.input.width / 32) * 32, height: Math.ceil(a.input.height / 32) * 32 };
  return DetectorLayoutSchema.parse({ arch: formatArch(a), input, backbone, neck, rpn, head });
}
