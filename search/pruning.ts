/**
 * Partial Order Pruning (Li et al., CVPR 2019; SM-NAS 3.4 and SPEC 5).
 *
 * Containment: A is contained in B (A <= B) when they are the same kind of detector (same
 * input, neck kind and FPN levels, RPN, head and backbone block kind), B's FPN is at least as wide,
 * and B's backbone is at least as deep in every stage and at least as wide (block output and inner
 * width) at every position A has. The prior: accuracy is monotone in this order, mAP(A) <= mAP(B).
 *
 * Pruning rule: A's optimistic score is the lowest score of the evaluated architectures that
 * contain it. A is skipped when the point (cost(A), that bound) is dominated by an evaluated
 * point: then A itself is dominated whatever its real score, so it cannot be on the front.
 *
 * Pure: no Node APIs.
 */
import { resolveBackbone } from './layout-resolve';
import { type Arch, UNUSED_STAGE, canonicalArch } from './notation';
import { dominates, type Point } from './pareto';

export interface Shape {
  /** everything that must be equal, as one string */
  kindKey: string;
  fpnChannels: number;
  /** per stage, per block: [outChannels, midChannels] */
  widths: [number, number][][];
}

export function containmentShape(arch: Arch): Shape {
  const a = canonicalArch(arch);
  const bb = resolveBackbone(a.backbone);
  const neckKey = a.neck.kind === 'fpn' ? `fpn:${a.neck.from}-${a.neck.to}` : 'none';
  return {
    kindKey: JSON.stringify([a.input, neckKey, a.rpn, a.head, bb.block, bb.stemChannels]),
    fpnChannels: a.neck.kind === 'fpn' ? a.neck.channels : 0,
    // a stage written 'x' is not built: nothing of it to compare (equal necks give equal 'x' stages)
    widths: bb.stages.map((s, i) =>
      a.backbone.kind === 'encoded' && a.backbone.stages[i] === UNUSED_STAGE ? [] : s.blocks.map((b) => [b.outChannels, b.midChannels] as [number, number]),
    ),
  };
}

/** A <= B in the partial order (reflexive). */
export function isContainedIn(a: Arch | Shape, b: Arch | Shape): boolean {
  const sa = 'kindKey' in a ? a : containmentShape(a);
  const sb = 'kindKey' in b ? b : containmentShape(b);
  if (sa.kindKey !== sb.kindKey || sa.fpnChannels > sb.fpnChannels) return false;
  for (let s = 0; s < 4; s++) {
    const wa = sa.widths[s];
    const wb = sb.widths[s];
    if (wb.length < wa.length) return false;
    for (let j = 0; j < wa.length; j++) if (wb[j][0] < wa[j][0] || wb[j][1] < wa[j][1]) return false;
  }
  return true;
}

export interface EvaluatedPoint extends Point {
  arch: Arch;
  /** canonical string, for reports */
  id: string;
}

export interface PruneVerdict {
  pruned: boolean;
  /** the optimistic score bound and the evaluated architecture giving it (undefined when nothing contains A) */
  bound?: { score: number; containedIn: string };
  /** the evaluated point that dominates (cost(A), bound) */
  dominatedBy?: string;
}

/** Apply the pruning rule to candidate `a` of cost `cost` against the evaluated set. */
export function popVerdict(a: Arch, cost: number, evaluated: readonly EvaluatedPoint[], shapes?: Shape[], shapeOfA?: Shape): PruneVerdict {
  const sa = shapeOfA ?? containmentShape(a);
  let bound: PruneVerdict['bound'];
  evaluated.forEach((e, i) => {
    if ((!bound || e.score < bound.score) && isContainedIn(sa, shapes ? shapes[i] : e.arch)) bound = { score: e.score, containedIn: e.id };
  });
  if (!bound) return { pruned: false };
  const optimistic = { cost, score: bound.score };
  const dom = evaluated.find((e) => dominates(e, optimistic));
  return dom ? { pruned: true, bound, dominatedBy: dom.id } : { pruned: false, bound };
}
