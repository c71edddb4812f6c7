/**
 * Cost model (SPEC 4), computed FROM the DetectorLayout so the native trainer's `describe`, which
 * builds its modules from the same layout, can be compared module by module.
 *
 * - flops: multiply-accumulates of every convolution and fully connected layer (torchvision's
 *   convention: norms, activations, pooling, upsampling and additions are not counted).
 * - params: learnable parameters: conv/FC weights, biases where the layer has one (none on a
 *   conv followed by a norm; yes on neck, RPN and head convs and on FCs), norm affine weight and
 *   bias (2 per channel; BN running statistics are buffers, not counted).
 * - mac (memory access cost, ShuffleNetV2): per conv/FC layer, input elements + output elements
 *   + weight elements (biases and norms not counted), summed.
 * Shared layers applied to several FPN levels (RPN, retina head) count their params once and
 * their flops/mac once per level; RoI heads count flops/mac for `rois` RoIs and params once.
 *
 * Pure: no Node APIs.
 */
import type { BackboneLayout, BlockLayout, DetectorLayout } from './layout';
import { MBBLOCK_STEM, builtStages, resolveBackbone, resolveLayout } from './layout-resolve';
import { type Arch, type Backbone, parseBackbone } from './notation';

export interface Cost {
  flops: number;
  params: number;
  mac: number;
}

export interface DetectorCost extends Cost {
  arch: string;
  /** the input size costed: the notation's, padded up to multiples of 32 */
  input: { width: number; height: number };
  rois: number;
  modules: { backbone: Cost; neck: Cost; rpn: Cost; head: Cost };
}

/** Proposals per image the RoI head is costed for by default (mmdetection's test-time max_per_img). */
export const DEFAULT_ROIS = 1000;
/** torchvision MobileNetV2's last 1x1 conv width (part of its classifier in this model). */
export const MOBILENET_LAST_CHANNELS = 1280;

interface Size {
  h: number;
  w: number;
}

const zero = (): Cost => ({ flops: 0, params: 0, mac: 0 });

/** Accumulates layer costs; `countParams` false for a shared layer's second and later uses. */
class Acc {
  readonly c: Cost = zero();
  countParams = true;

  conv(cin: number, cout: number, k: number, stride: number, at: Size, o: { groups?: number; bias?: boolean; norm?: boolean } = {}): Size {
    const g = o.groups ?? 1;
    const pad = Math.floor(k / 2);
    const out = { h: Math.floor((at.h + 2 * pad - k) / stride) + 1, w: Math.floor((at.w + 2 * pad - k) / stride) + 1 };
    const weights = k * k * (cin / g) * cout;
    this.c.flops += weights * out.h * out.w;
    if (this.countParams) this.c.params += weights + (o.bias ? cout : 0) + (o.norm ? 2 * cout : 0);
    this.c.mac += cin * at.h * at.w + cout * out.h * out.w + weights;
    return out;
  }

  fc(inF: number, outF: number, batch: number): void {
    this.c.flops += inF * outF * batch;
    if (this.countParams) this.c.params += inF * outF + outF;
    this.c.mac += batch * (inF + outF) + inF * outF;
  }
}

const poolOut = (s: Size): Size => ({ h: Math.floor((s.h + 2 - 3) / 2) + 1, w: Math.floor((s.w + 2 - 3) / 2) + 1 });

function block(acc: Acc, kind: BackboneLayout['block'], b: BlockLayout, at: Size): Size {
  const norm = { norm: true };
  let out: Size;
  if (kind === 'basicblock') {
    const m = acc.conv(b.inChannels, b.midChannels, 3, b.stride, at, norm);
    out = acc.conv(b.midChannels, b.outChannels, 3, 1, m, norm);
  } else if (kind === 'mbblock') {
    const e = acc.conv(b.inChannels, b.midChannels, 1, 1, at, norm);
    const d = acc.conv(b.midChannels, b.midChannels, 3, b.stride, e, { groups: b.groups, norm: true });
    out = acc.conv(b.midChannels, b.outChannels, 1, 1, d, norm);
  } else {
    // bottleneck / Xbottleneck, stride on the 3x3 (torchvision's ResNet v1.5)
    const r = acc.conv(b.inChannels, b.midChannels, 1, 1, at, norm);
    const m = acc.conv(b.midChannels, b.midChannels, 3, b.stride, r, { groups: b.groups, norm: true });
    out = acc.conv(b.midChannels, b.outChannels, 1, 1, m, norm);
  }
  if (b.projection) acc.conv(b.inChannels, b.outChannels, 1, b.stride, at, norm);
  return out;
}

/** Runs stem + the first `stages` stages; returns the output size of each stage run. */
function backboneInto(acc: Acc, bb: BackboneLayout, input: Size, stages: number): Size[] {
  let at: Size;
  if (bb.block === 'mbblock') {
    at = acc.conv(3, bb.stemChannels, 3, 2, input, { norm: true });
    at = acc.conv(MBBLOCK_STEM.conv, MBBLOCK_STEM.conv, 3, 1, at, { groups: MBBLOCK_STEM.conv, norm: true });
    at = acc.conv(MBBLOCK_STEM.conv, MBBLOCK_STEM.out, 1, 1, at, { norm: true });
  } else {
    at = poolOut(acc.conv(3, bb.stemChannels, 7, 2, input, { norm: true }));
  }
  const sizes: Size[] = [];
  for (const st of bb.stages.slice(0, stages)) {
    for (const b of st.blocks) at = block(acc, bb.block, b, at);
    sizes.push(at);
  }
  return sizes;
}

export interface BackboneCostOptions {
  /** add global average pooling + an N-way FC classifier (mbblock: first the 1x1 conv to 1280 + norm, as torchvision) */
  classifier?: number;
}

/** Cost of a backbone alone (all four stages) at an input size, optionally with a pooled classifier. */
export function backboneCost(backbone: Backbone | string, input: { width: number; height: number }, opts: BackboneCostOptions = {}): Cost {
  const bb = resolveBackbone(typeof backbone === 'string' ? parseBackbone(backbone) : backbone);
  return backboneLayoutCost(bb, input, opts);
}

export function backboneLayoutCost(bb: BackboneLayout, input: { width: number; height: number }, opts: BackboneCostOptions = {}): Cost {
  const acc = new Acc();
  const sizes = backboneInto(acc, bb, { h: input.height, w: input.width }, 4);
  if (opts.classifier !== undefined) {
    let c = bb.stageChannels[3];
    if (bb.block === 'mbblock') {
      acc.conv(c, MOBILENET_LAST_CHANNELS, 1, 1, sizes[3], { norm: true });
      c = MOBILENET_LAST_CHANNELS;
    }
    acc.fc(c, opts.classifier, 1);
  }
  return acc.c;
}

/** Size of each output level of the neck (the maps the RPN / retina head run on). */
function neckInto(acc: Acc, l: DetectorLayout, stageSizes: Size[]): Size[] {
  const n = l.neck;
  if (n.kind === 'none') return [stageSizes[2]];
  const levels: Size[] = [];
  for (let lv = n.from; lv <= Math.min(n.to, 4); lv++) {
    const at = stageSizes[lv - 1];
    acc.conv(l.backbone.stageChannels[lv - 1], n.channels, 1, 1, at, { bias: true }); // lateral
    levels.push(acc.conv(n.channels, n.channels, 3, 1, at, { bias: true })); // output conv
  }
  let prev = stageSizes[3]; // P4's output map has P4's size
  for (let lv = 5; lv <= n.to; lv++) {
    prev = acc.conv(n.channels, n.channels, 3, 2, prev, { bias: true });
    levels.push(prev);
  }
  return levels;
}

/** Apply a shared per-level sub-network to every level: params once, flops/mac per level. */
function shared(acc: Acc, levels: Size[], run: (at: Size) => void): void {
  levels.forEach((at, i) => {
    acc.countParams = i === 0;
    run(at);
  });
  acc.countParams = true;
}

function rpnInto(acc: Acc, l: DetectorLayout, levels: Size[]): void {
  const r = l.rpn;
  if (r.kind === 'none') return;
  const c = r.convChannels;
  shared(acc, levels, (at) => {
    const m = acc.conv(c, c, 3, 1, at, { bias: true });
    if (r.kind === 'rpn') {
      acc.conv(c, r.anchorsPerLocation, 1, 1, m, { bias: true }); // objectness (sigmoid)
      acc.conv(c, 4 * r.anchorsPerLocation, 1, 1, m, { bias: true }); // deltas
    } else {
      // guided anchoring (mmdetection's GARPNHead): location and shape 1x1 convs, the feature
      // adaption (a 1x1 conv from the shape to the offsets of a 3x3 deformable conv, both without
      // bias as mmcv's; the deformable conv costed as a dense one), objectness and deltas
      acc.conv(c, 1, 1, 1, m, { bias: true }); // location
      acc.conv(c, 2, 1, 1, m, { bias: true }); // shape (dw, dh)
      acc.conv(2, r.deformGroups * 2 * 3 * 3, 1, 1, m); // offsets: (y, x) per tap per deformable group
      const f = acc.conv(c, c, 3, 1, m); // deformable feature adaption
      acc.conv(c, r.anchorsPerLocation, 1, 1, f, { bias: true });
      acc.conv(c, 4 * r.anchorsPerLocation, 1, 1, f, { bias: true });
    }
  });
}

function headInto(acc: Acc, l: DetectorLayout, levels: Size[], rois: number): void {
  const h = l.head;
  const c = l.neck.channels;
  if (h.kind === 'retina') {
    shared(acc, levels, (at) => {
      let x = at;
      for (let i = 0; i < h.stackedConvs; i++) x = acc.conv(i === 0 ? c : h.convChannels, h.convChannels, 3, 1, x, { bias: true });
      acc.conv(h.convChannels, h.anchorsPerLocation * h.numClasses, 3, 1, x, { bias: true });
      let y = at;
      for (let i = 0; i < h.stackedConvs; i++) y = acc.conv(i === 0 ? c : h.convChannels, h.convChannels, 3, 1, y, { bias: true });
      acc.conv(h.convChannels, h.anchorsPerLocation * 4, 3, 1, y, { bias: true });
    });
    return;
  }
  const stages = h.kind === 'cascade' ? h.stages : 1;
  const reg = h.kind === 'cascade' ? 4 : 4 * h.numClasses; // cascade: class-agnostic; 2fc: class-specific
  for (let s = 0; s < stages; s++) {
    acc.fc(c * h.roiSize * h.roiSize, h.fcWidth, rois);
    acc.fc(h.fcWidth, h.fcWidth, rois);
    acc.fc(h.fcWidth, h.numClasses + 1, rois); // + background
    acc.fc(h.fcWidth, reg, rois);
  }
}

/** a side of the detector's input after padding to a multiple of 32 */
export const paddedSide = (n: number): number => Math.ceil(n / 32) * 32;

const sum = (xs: Cost[]): Cost => xs.reduce((a, b) => ({ flops: a.flops + b.flops, params: a.params + b.params, mac: a.mac + b.mac }), zero());

/** Whole-detector cost with the per-module breakdown, `rois` RoIs through the RoI head. */
export function layoutCost(l: DetectorLayout, rois = DEFAULT_ROIS): DetectorCost {
  if (!(Number.isInteger(rois) && rois >= 0)) throw new RangeError(`rois must be a non-negative integer, got ${rois}`);
  // the detector sees its input padded up to a multiple of 32 (mmdetection's size_divisor=32), so
  // the paper's 1333x800, 800x600 and 1080x720 are costed as 1344x800, 800x608 and 1088x736
  const input = { h: paddedSide(l.input.height), w: paddedSide(l.input.width) };
  const bb = new Acc();
  const stageSizes = backboneInto(bb, l.backbone, input, builtStages(l.neck));
  const neck = new Acc();
  const levels = neckInto(neck, l, stageSizes);
  const rpn = new Acc();
  rpnInto(rpn, l, levels);
  const head = new Acc();
  headInto(head, l, levels, rois);
  const modules = { backbone: bb.c, neck: neck.c, rpn: rpn.c, head: head.c };
  return { arch: l.arch, input: { width: input.w, height: input.h }, rois, ...sum(Object.values(modules)), modules };
}

/** Whole-detector cost straight from the notation. */
export function detectorCost(arch: Arch | string, opts: { numClasses: number; fcWidth: number; rois?: number }): DetectorCost {
  return layoutCost(resolveLayout(arch, opts), opts.rois ?? DEFAULT_ROIS);
}
