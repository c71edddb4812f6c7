/**
 * The search decisions a stage workflow needs, taken from the search library (search/index.ts)
 * and nothing else: seeded sampling, evolution with Partial Order Pruning, Pareto fronts,
 * candidate selection. This file only adapts shapes (plain data in, plain data out) so the
 * workflows stay readable; it makes no decision of its own. Pure: runs in the workflow sandbox.
 *
 * The evolution / pareto / selection modules of the search library land after the spaces; until a
 * function exists, the call fails with a message naming it (a workflow task failure that Temporal
 * retries after a worker with the newer code is deployed), never with a made-up substitute.
 */
import * as search from '../search';
import type { RngState } from '../search';
import type { EvalPoint } from './api';

type Lib = Record<string, unknown>;
const lib = search as unknown as Lib;

function need<T>(names: string[]): T {
  for (const n of names) if (typeof lib[n] === 'function') return lib[n] as T;
  throw new Error(`the search library does not export ${names.join(' / ')} yet`);
}

export function initialRngState(seed: number): RngState {
  return new search.Rng(seed).state();
}

export type SpaceRef = { stage: 'structural' } | { stage: 'modular'; candidate: string };

export function spaceOf(profile: 'toy' | 'paper', ref: SpaceRef): search.SearchSpace {
  if (ref.stage === 'structural') return search.getSearchSpaces(profile).stageOne;
  return search.stageTwoSpaceFrom(search.parseArch(ref.candidate), { profile });
}

export const canonical = (arch: string) => search.formatArch(search.parseArch(arch));

export interface Proposal {
  archs: string[];
  /** architectures skipped by Partial Order Pruning, with the reason */
  pruned: { arch: string; reason: string }[];
  rng: RngState;
}

/**
 * Up to `count` new architectures: uniform samples of the space while the initial population is
 * not complete, then evolution from the current front (mutation + Partial Order Pruning).
 * `taken` are canonical strings already evaluated, running or failed (never proposed again).
 */
export function propose(o: {
  space: search.SearchSpace;
  evaluated: EvalPoint[];
  taken: string[];
  rng: RngState;
  count: number;
  population: number;
}): Proposal {
  const rng = new search.Rng(o.rng);
  const taken = new Set(o.taken);
  const archs: string[] = [];
  const pruned: Proposal['pruned'] = [];
  if (taken.size < o.population) {
    const want = Math.min(o.count, o.population - taken.size);
    // bounded attempts: a tiny space may hold fewer architectures than the population
    for (let attempt = 0; archs.length < want && attempt < want * 20; attempt++) {
      const a = search.formatArch(search.sampleArch(o.space, rng));
      if (!taken.has(a)) {
        taken.add(a);
        archs.push(a);
      }
    }
    return { archs, pruned, rng: rng.state() };
  }
  const proposeCandidates = need<(args: unknown) => unknown>(['proposeCandidates']);
  const scored = o.evaluated.filter((p) => p.mAP !== null).map((p) => ({ arch: p.arch, cost: p.cost, score: p.mAP as number }));
  const r = proposeCandidates({ space: o.space, evaluated: scored, exclude: [...taken], rng, count: o.count, pruning: true }) as Record<string, unknown>;
  const list = (r.archs ?? r.candidates ?? r.proposed ?? []) as (string | { arch: string })[];
  for (const x of list) {
    const a = typeof x === 'string' ? x : x.arch;
    if (!taken.has(a)) {
      taken.add(a);
      archs.push(a);
    }
  }
  for (const p of (r.pruned ?? []) as (string | { arch: string; reason?: string })[]) {
    pruned.push(typeof p === 'string' ? { arch: p, reason: 'partial order pruning' } : { arch: p.arch, reason: p.reason ?? 'partial order pruning' });
  }
  return { archs, pruned, rng: rng.state() };
}

/** Rank-0 front of scored points (minimise cost, maximise mAP); failed / diverged points never count. */
export function paretoFront(points: EvalPoint[]): EvalPoint[] {
  const scored = points.filter((p) => p.mAP !== null);
  if (scored.length === 0) return [];
  const { fronts } = search.nonDominatedSort(scored.map((p) => ({ cost: p.cost, score: p.mAP as number })));
  return (fronts[0] ?? []).map((i) => scored[i]);
}

/** K points of a front spread across its cost range (the paper's C0..C{K-1}). */
export function selectFromFront(front: EvalPoint[], k: number): EvalPoint[] {
  if (front.length <= k) return [...front].sort((a, b) => a.cost - b.cost);
  const select = need<(f: { arch: string; id: string; cost: number; score: number }[], k: number) => unknown>(['selectCandidates']);
  const r = select(front.map((p) => ({ arch: p.arch, id: p.arch, cost: p.cost, score: p.mAP as number })), k) as unknown[];
  return r
    .map((x) => (typeof x === 'number' ? front[x] : front.find((p) => p.arch === (typeof x === 'string' ? x : (x as { arch?: string; id?: string }).arch ?? (x as { id: string }).id))!))
    .filter((p): p is EvalPoint => Boolean(p));
}
