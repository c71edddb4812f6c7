/**
 * The search decisions a stage workflow needs, taken from the search library (search/index.ts)
 * and nothing else: seeded sampling, evolution with Partial Order Pruning, Pareto fronts,
 * candidate selection. This file only adapts shapes (plain data in, plain data out) so the
 * workflows stay readable; it makes no decision of its own. Pure: runs in the workflow sandbox.
 */
import * as search from '../search';
import type { RngState } from '../search';
import type { EvalPoint } from './api';

export function initialRngState(seed: number): RngState {
  return new search.Rng(seed).state();
}

export type SpaceRef = { stage: 'structural' } | { stage: 'modular'; candidate: string };

/**
 * `toyRevision`: which revision of the toy stage-one space (see search.ToySpaceRevision);
 * `usedLayers`: members in used-layers forms (search.markUnusedStages). The stage picks both with patched().
 */
export function spaceOf(
  profile: 'toy' | 'paper',
  ref: SpaceRef,
  toyRevision?: search.ToySpaceRevision,
  namedBackbones?: readonly search.NamedBackbone[],
  usedLayers = false,
): search.SearchSpace {
  if (ref.stage === 'structural') {
    const one = search.getSearchSpaces(profile, { toyRevision, namedBackbones }).stageOne;
    return usedLayers ? { ...one, usedLayers: true } : one;
  }
  return search.stageTwoSpaceFrom(search.parseArch(ref.candidate), { profile, usedLayers });
}

export const canonical = (arch: string) => search.formatArch(search.parseArch(arch));

/** The architecture a modular stage evaluates first: its candidate, in the form the stage's space uses. */
export function seedArch(candidate: string, usedLayers: boolean): string {
  return usedLayers ? search.usedLayersString(candidate) : canonical(candidate);
}

/** The named backbone of an architecture (its canonical form: an encoding of resnet50 is resnet50), or null. */
export function namedBackboneOf(arch: string): search.NamedBackbone | null {
  const b = search.canonicalArch(search.parseArch(arch)).backbone;
  return b.kind === 'named' ? b.name : null;
}

/** The named backbones of a profile's stage-one space (the toy space has none: its backbones are encodings at base 16). */
export function stageOneNamedBackbones(profile: 'toy' | 'paper'): search.NamedBackbone[] {
  return search.getSearchSpaces(profile).stageOne.backbones.flatMap((b) => (b.kind === 'named' ? [b.name] : []));
}

export interface Proposal {
  archs: string[];
  /** architectures skipped by Partial Order Pruning, with the reason */
  pruned: { arch: string; reason: string }[];
  /** the space has nothing left that was not evaluated or taken */
  exhausted: boolean;
  rng: RngState;
}

/**
 * Up to `count` new architectures from the search library's `proposeCandidates`: uniform samples
 * until the initial population is complete, then mutations of front members (crowding tournament),
 * with Partial Order Pruning in stage two (whose cost, FLOPs, is known before training; stage
 * one's latency is not, so it is not pruned). `pending` are running or failed architectures,
 * never proposed again.
 */
export function propose(o: {
  space: search.SearchSpace;
  evaluated: EvalPoint[];
  pending: string[];
  rng: RngState;
  count: number;
  population: number;
  /** stage two: object classes of the dataset, for the FLOPs the pruning compares */
  numClasses: number;
  /** caches kept between the calls of one stage run (see search.ProposeMemo); pure speed-up */
  memo?: search.ProposeMemo;
}): Proposal {
  const rng = new search.Rng(o.rng);
  const evaluated = o.evaluated.filter((p) => p.mAP !== null).map((p) => ({ arch: p.arch, cost: p.cost, score: p.mAP as number }));
  // diverged (unscored) architectures are taken too: never propose them again
  const pending = [...o.pending, ...o.evaluated.filter((p) => p.mAP === null).map((p) => p.arch)];
  const pruningCost =
    o.space.stage === 'two'
      ? (() => {
          const flops = search.flopsPruningCost({ numClasses: o.numClasses, fcWidth: search.getSearchSpaces(o.space.profile).fcWidth });
          return (a: search.Arch) => flops(a) / 1e9; // the stage's cost unit is GFLOPs
        })()
      : undefined;
  const r = search.proposeCandidates({ space: o.space, evaluated, rng, count: o.count, pending, initialPopulation: o.population, pruningCost, memo: o.memo });
  return {
    archs: r.proposals.map((p) => p.arch),
    pruned: r.pruned.map((p) => ({
      arch: p.arch,
      reason: `contained in ${p.bound.containedIn} (mAP <= ${p.bound.score.toFixed(4)}), dominated by ${p.dominatedBy} at ${p.cost.toFixed(3)}`,
    })),
    exhausted: r.exhausted,
    rng: rng.state(),
  };
}

/** Rank-0 front of scored points (minimise cost, maximise mAP); failed / diverged points never count. */
export function paretoFront(points: EvalPoint[]): EvalPoint[] {
  const scored = points.filter((p) => p.mAP !== null);
  if (scored.length === 0) return [];
  const { fronts } = search.nonDominatedSort(scored.map((p) => ({ cost: p.cost, score: p.mAP as number })));
  return (fronts[0] ?? []).map((i) => scored[i]);
}

/** K points of a front spread across its cost range (the paper's C0..C{K-1}), by the search library. */
export function selectFromFront(points: EvalPoint[], k: number): EvalPoint[] {
  const scored = points.filter((p) => p.mAP !== null);
  const chosen = search.selectCandidates(
    scored.map((p) => ({ arch: p.arch, cost: p.cost, score: p.mAP as number })),
    k,
  );
  return chosen.map((c) => scored.find((p) => p.arch === c.arch)!);
}
