/**
 * Evolution (SPEC 5), designed so a Temporal workflow can drive it one step at a time with
 * plain-data state: the workflow keeps the evaluated results and the Rng state, calls
 * `proposeCandidates` for the next batch, evaluates it, appends the results, and repeats.
 *
 * - Initial population: uniform random samples of the space.
 * - Parents: from the current Pareto front (rank 0), by binary tournament on crowding distance
 *   (the less crowded wins; a tie is broken by the Rng).
 * - Mutations: stage one changes one module choice (input size, backbone, neck, or the
 *   rpn/head pair, which must change together to stay legal); stage two inserts / removes /
 *   swaps blocks within a stage, moves a block to another stage, moves a doubling, changes the
 *   base channels or the FPN channels.
 * - Children that are illegal, outside the space, already evaluated, in flight or already
 *   proposed (by canonical string) are rejected; Partial Order Pruning (pruning.ts) skips
 *   children that cannot reach the front.
 * - `selectCandidates` picks K models spread over the stage-one front's cost range.
 *
 * Pure: no Node APIs. Deterministic given the inputs and the Rng state.
 */
import { detectorCost } from './cost';
import { type Arch, type EncodedBackbone, archProblems, backboneEncoding, canonicalString, formatArch, markUnusedStages, parseArch } from './notation';
import { crowdingDistance, nonDominatedSort } from './pareto';
import { type EvaluatedPoint, type Shape, containmentShape, popVerdict } from './pruning';
import type { Rng } from './rng';
import {
  type SearchSpace,
  type StageOneSpace,
  type StageTwoSpace,
  enumerateArchs,
  outsideSpace,
  outsideSpaceOfLegal,
  sampleArch,
  searchedStages,
  spaceCanonical,
  spaceSize,
} from './space';

/** spaces up to this size are listed exhaustively when random sampling stops finding new members */
const ENUMERATE_LIMIT = 50000;

/** One finished evaluation (plain data). */
export interface Evaluated {
  /** canonical notation */
  arch: string;
  /** stage one: latency; stage two: FLOPs (whatever the caller minimises) */
  cost: number;
  /** mAP (maximised) */
  score: number;
}

export type MutationKind =
  'input' | 'backbone' | 'neck' | 'rpn-head' | 'insert-block' | 'remove-block' | 'swap-blocks' | 'shift-block' | 'move-doubling' | 'base' | 'fpn-channels';

export const STAGE_ONE_MUTATIONS: MutationKind[] = ['input', 'backbone', 'neck', 'rpn-head'];
export const STAGE_TWO_MUTATIONS: MutationKind[] = ['insert-block', 'remove-block', 'swap-blocks', 'shift-block', 'move-doubling', 'base', 'fpn-channels'];

export interface Proposal {
  arch: string;
  origin: 'random' | 'mutation';
  parent?: string;
  mutation?: MutationKind;
}

export interface PrunedProposal {
  arch: string;
  parent?: string;
  mutation?: MutationKind;
  /** optimistic score bound from the evaluated architecture that contains this one */
  bound: { score: number; containedIn: string };
  cost: number;
  dominatedBy: string;
}

export interface ProposeInput {
  space: SearchSpace;
  evaluated: readonly Evaluated[];
  rng: Rng;
  count: number;
  /** architectures being evaluated right now: never proposed again */
  pending?: readonly string[];
  /** until this many are evaluated (or pending), propose random samples instead of mutations (default: count) */
  initialPopulation?: number;
  /** the cost of an unevaluated architecture for Partial Order Pruning (undefined: unknown, do not prune); omit to disable pruning */
  pruningCost?: (a: Arch) => number | undefined;
  /** tries per proposal before giving up on mutation and sampling at random (default 50) */
  maxAttempts?: number;
  /**
   * Caches kept by the caller between calls on the same space and pruning cost (a stage
   * proposes hundreds of batches over a growing evaluated list). Pure speed-up: the proposals
   * are the same with or without it.
   */
  memo?: ProposeMemo;
}

/**
 * What `proposeCandidates` derives from an architecture string again on every call: its
 * canonical form, parsed form, containment shape and pruning cost. Keep one per search stage
 * run (one space, one pruning cost function); never share one between spaces.
 */
export class ProposeMemo {
  readonly canonical = new Map<string, string>();
  readonly parsed = new Map<string, Arch>();
  readonly shapes = new Map<string, Shape>();
  readonly pruningCosts = new Map<string, number | undefined>();

  static cached<K, V>(m: Map<K, V>, k: K, f: () => V): V {
    if (m.has(k)) return m.get(k) as V;
    const v = f();
    m.set(k, v);
    return v;
  }
}

export interface ProposeResult {
  proposals: Proposal[];
  pruned: PrunedProposal[];
  /** children thrown away, by reason */
  rejected: { illegal: number; outsideSpace: number; duplicate: number };
  /** true when the space has no unevaluated architecture left to propose (count could not be met) */
  exhausted: boolean;
}

/** A pruning cost function for stage two: whole-detector FLOPs (multiply-accumulates). */
export function flopsPruningCost(opts: { numClasses: number; fcWidth: number; rois?: number }): (a: Arch) => number {
  return (a) => detectorCost(a, opts).flops;
}

// ---------------------------------------------------------------------------------------------
// mutation operators (each returns undefined when it does not apply to this parent)

function otherThan<T>(rng: Rng, xs: readonly T[], current: T): T | undefined {
  const key = JSON.stringify(current);
  const rest = xs.filter((x) => JSON.stringify(x) !== key);
  return rest.length ? rng.pick(rest) : undefined;
}

/**
 * A used-layers stage-one member with its 'x' stages filled in: the first backbone of the space
 * whose used-layers form it is (so a neck mutation that builds more stages has them). Plain
 * canonical forms are returned as they are.
 */
function concreteStageOne(space: StageOneSpace, p: Arch): Arch {
  if (!space.usedLayers) return p;
  const key = JSON.stringify(markUnusedStages(p).backbone);
  const b = space.backbones.find((x) => JSON.stringify(markUnusedStages({ ...p, backbone: x }).backbone) === key);
  return b ? { ...p, backbone: b } : p;
}

function mutateStageOne(space: StageOneSpace, parent: Arch, kind: MutationKind, rng: Rng): Arch | undefined {
  const p = concreteStageOne(space, parent);
  const canon = spaceCanonical(space);
  switch (kind) {
    case 'input': {
      const input = otherThan(rng, space.inputs, p.input);
      return input && { ...p, input };
    }
    case 'backbone': {
      const cur = canon({ ...p }).backbone;
      const options = space.backbones.filter((b) => JSON.stringify(canon({ ...p, backbone: b }).backbone) !== JSON.stringify(cur));
      return options.length ? { ...p, backbone: rng.pick(options) } : undefined;
    }
    case 'neck': {
      const neck = otherThan(rng, space.necks, p.neck);
      return neck && { ...p, neck };
    }
    case 'rpn-head': {
      const rh = otherThan(rng, space.rpnHeads, { rpn: p.rpn, head: p.head });
      return rh && { ...p, rpn: rh.rpn, head: rh.head };
    }
    default:
      return undefined;
  }
}

/** positions (stage, index) of every block whose character is `ch` */
function positions(stages: string[], ch?: '1' | '2'): [number, number][] {
  const out: [number, number][] = [];
  stages.forEach((s, i) => [...s].forEach((c, j) => (ch === undefined || c === ch) && out.push([i, j])));
  return out;
}

const setChar = (s: string, j: number, c: string) => s.slice(0, j) + c + s.slice(j + 1);

function mutateCode(e: EncodedBackbone, kind: MutationKind, space: StageTwoSpace, rng: Rng): string[] | undefined {
  // only the searched stages change ('x' stages are not built; positions() never lists them)
  const S = searchedStages(space);
  const searched = [0, 1, 2, 3].slice(0, S);
  const st = [...e.stages];
  const total = st.slice(0, S).reduce((n, s) => n + s.length, 0);
  switch (kind) {
    case 'insert-block': {
      if (total >= space.maxBlocks) return undefined;
      const s = rng.int(S);
      const j = rng.int(st[s].length + 1);
      st[s] = st[s].slice(0, j) + '1' + st[s].slice(j);
      return st;
    }
    case 'remove-block': {
      if (total <= space.minBlocks) return undefined;
      // only plain blocks: removing a doubling would change the doubling count; keep every stage non-empty
      const cands = positions(st, '1').filter(([s]) => st[s].length > 1);
      if (!cands.length) return undefined;
      const [s, j] = rng.pick(cands);
      st[s] = st[s].slice(0, j) + st[s].slice(j + 1);
      return st;
    }
    case 'swap-blocks': {
      // exchange two different blocks of one stage (moves a doubling inside the stage)
      const stagesWithBoth = searched.filter((s) => st[s].includes('1') && st[s].includes('2'));
      if (!stagesWithBoth.length) return undefined;
      const s = rng.pick(stagesWithBoth);
      const ones = [...st[s]].flatMap((c, j) => (c === '1' ? [j] : []));
      const twos = [...st[s]].flatMap((c, j) => (c === '2' ? [j] : []));
      const a = rng.pick(ones);
      const b = rng.pick(twos);
      st[s] = setChar(setChar(st[s], a, '2'), b, '1');
      return st;
    }
    case 'shift-block': {
      // move a plain block from one stage to another (same total depth)
      const from = searched.filter((s) => st[s].length > 1 && st[s].includes('1'));
      if (!from.length || S < 2) return undefined;
      const s = rng.pick(from);
      const t = rng.pick(searched.filter((x) => x !== s));
      const j = st[s].lastIndexOf('1');
      st[s] = st[s].slice(0, j) + st[s].slice(j + 1);
      const k = rng.int(st[t].length + 1);
      st[t] = st[t].slice(0, k) + '1' + st[t].slice(k);
      return st;
    }
    case 'move-doubling': {
      const twos = positions(st, '2');
      const ones = positions(st, '1');
      if (!twos.length || !ones.length) return undefined;
      const [s2, j2] = rng.pick(twos);
      const [s1, j1] = rng.pick(ones);
      st[s2] = setChar(st[s2], j2, '1');
      st[s1] = setChar(st[s1], j1, '2');
      return st;
    }
    default:
      return undefined;
  }
}

function mutateStageTwo(space: StageTwoSpace, p: Arch, kind: MutationKind, rng: Rng): Arch | undefined {
  const e = backboneEncoding(p.backbone);
  if (!e) return undefined;
  if (kind === 'base') {
    const base = otherThan(rng, space.bases, e.base);
    return base === undefined ? undefined : { ...p, backbone: { ...e, base } };
  }
  if (kind === 'fpn-channels') {
    if (p.neck.kind !== 'fpn') return undefined;
    const channels = otherThan(rng, space.fpnChannels, p.neck.channels);
    return channels === undefined ? undefined : { ...p, neck: { ...p.neck, channels } };
  }
  const stages = mutateCode(e, kind, space, rng);
  return stages && { ...p, backbone: { ...e, stages } };
}

/** Apply one mutation of the given kind (or a random applicable kind) to a parent. */
export function mutate(space: SearchSpace, parent: Arch, rng: Rng, kind?: MutationKind): { child: Arch; mutation: MutationKind } | undefined {
  const kinds = space.stage === 'one' ? STAGE_ONE_MUTATIONS : STAGE_TWO_MUTATIONS;
  const order = kind ? [kind] : rng.shuffle([...kinds]);
  for (const k of order) {
    const child = space.stage === 'one' ? mutateStageOne(space, parent, k, rng) : mutateStageTwo(space, parent, k, rng);
    if (child) return { child, mutation: k };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// parent selection

/** The current Pareto front (indices into `evaluated`) and the crowding distance of each member. */
export function currentFront(evaluated: readonly Evaluated[]): { front: number[]; crowding: number[] } {
  const { fronts } = nonDominatedSort(evaluated);
  const front = fronts[0] ?? [];
  return { front, crowding: crowdingDistance(evaluated, front) };
}

/** Binary tournament on the front: the member with the larger crowding distance wins; ties by the Rng. */
export function selectParent(evaluated: readonly Evaluated[], rng: Rng, front = currentFront(evaluated)): Evaluated {
  const { front: f, crowding } = front;
  if (!f.length) throw new RangeError('selectParent: nothing evaluated yet');
  const a = rng.int(f.length);
  const b = rng.int(f.length);
  const win = crowding[a] > crowding[b] ? a : crowding[b] > crowding[a] ? b : rng.int(2) === 0 ? a : b;
  return evaluated[f[win]];
}

// ---------------------------------------------------------------------------------------------
// proposing a batch

export function proposeCandidates(input: ProposeInput): ProposeResult {
  const { space, evaluated, rng, count } = input;
  const maxAttempts = input.maxAttempts ?? 50;
  const memo = input.memo ?? new ProposeMemo();
  const cached = ProposeMemo.cached;
  // canonical strings, so e.g. a pending 'basicblock_64_11-21-21-21' also blocks 'resnet18'
  // (usedLayers spaces: used-layers forms, so a copy differing only in unbuilt stages is taken too)
  const form = spaceCanonical(space);
  const canon = (id: string) =>
    cached(memo.canonical, id, () => {
      try {
        return space.usedLayers ? formatArch(form(parseArch(id))) : canonicalString(id);
      } catch {
        return id; // not a notation: it cannot collide with a proposal anyway
      }
    });
  const taken = new Set<string>([...evaluated.map((e) => canon(e.arch)), ...(input.pending ?? []).map(canon)]);
  const result: ProposeResult = { proposals: [], pruned: [], rejected: { illegal: 0, outsideSpace: 0, duplicate: 0 }, exhausted: false };
  const size = spaceSize(space);
  const initial = input.initialPopulation ?? count;

  const front = evaluated.length ? currentFront(evaluated) : undefined;
  const evaluatedPoints: EvaluatedPoint[] | undefined = input.pruningCost
    ? evaluated.map((e) => ({ arch: cached(memo.parsed, e.arch, () => parseArch(e.arch)), id: e.arch, cost: e.cost, score: e.score }))
    : undefined;
  const shapes = evaluatedPoints?.map((e) => cached(memo.shapes, e.id, () => containmentShape(e.arch)));

  /** checks a child; returns its canonical string when it can be proposed */
  const accept = (proposed: Arch, parent?: string, mutation?: MutationKind): string | undefined => {
    const child = space.usedLayers ? form(proposed) : proposed;
    // children are typed objects built by this module: the notation rules suffice (no zod shape check)
    if (archProblems(child).length > 0) {
      result.rejected.illegal++;
      return undefined;
    }
    if (outsideSpaceOfLegal(space, child) !== undefined) {
      result.rejected.outsideSpace++;
      return undefined;
    }
    const id = formatArch(child);
    if (taken.has(id)) {
      result.rejected.duplicate++;
      return undefined;
    }
    if (evaluatedPoints && input.pruningCost) {
      const pruningCost = input.pruningCost;
      const cost = cached(memo.pruningCosts, id, () => pruningCost(child));
      if (cost !== undefined) {
        const v = popVerdict(
          child,
          cost,
          evaluatedPoints,
          shapes,
          cached(memo.shapes, id, () => containmentShape(child)),
        );
        if (v.pruned) {
          taken.add(id); // do not reconsider it in this batch
          result.pruned.push({ arch: id, parent, mutation, bound: v.bound!, cost, dominatedBy: v.dominatedBy! });
          return undefined;
        }
      }
    }
    return id;
  };

  /** every architecture of the space is taken (checked only when it could be: taken may hold other spaces' entries) */
  const spaceFull = () => taken.size >= size && [...taken].filter((id) => outsideSpace(space, parseArch(id)) === undefined).length >= size;
  /** the unevaluated members of a small space, listed once when sampling stops finding them */
  let leftovers: Arch[] | undefined;
  while (result.proposals.length < count) {
    if (spaceFull()) {
      result.exhausted = true;
      break;
    }
    const useRandom = !front || front.front.length === 0 || evaluated.length + (input.pending?.length ?? 0) + result.proposals.length < initial;
    let proposal: Proposal | undefined;
    for (let attempt = 0; attempt < maxAttempts && !proposal; attempt++) {
      if (!useRandom) {
        const parent = selectParent(evaluated, rng, front);
        const m = mutate(space, parseArch(parent.arch), rng);
        if (m) {
          const id = accept(m.child, parent.arch, m.mutation);
          if (id) proposal = { arch: id, origin: 'mutation', parent: parent.arch, mutation: m.mutation };
        }
      } else {
        const id = accept(sampleArch(space, rng));
        if (id) proposal = { arch: id, origin: 'random' };
      }
    }
    // mutations around the front exhausted: fall back to random samples of the space
    for (let attempt = 0; attempt < maxAttempts * 20 && !proposal; attempt++) {
      const id = accept(sampleArch(space, rng));
      if (id) proposal = { arch: id, origin: 'random' };
    }
    // a small space nearly used up: rejection sampling may miss the last members, so list them
    if (!proposal && size <= ENUMERATE_LIMIT) {
      leftovers ??= rng.shuffle([...enumerateArchs(space)].filter((a) => !taken.has(formatArch(a))));
      while (!proposal && leftovers.length) {
        const id = accept(leftovers.pop()!);
        if (id) proposal = { arch: id, origin: 'random' };
      }
    }
    if (!proposal) {
      result.exhausted = true;
      break;
    }
    taken.add(proposal.arch);
    result.proposals.push(proposal);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// candidate selection between the stages

/**
 * K architectures of the Pareto front spread over its cost range (the paper's C0..C5): for
 * K evenly spaced target costs from the cheapest to the most expensive front member, the nearest
 * not-yet-chosen member (ties: the cheaper, then the higher score). Returned by cost ascending.
 * K = 1 has no range to spread over: it is the most accurate front member (the cheapest end of a
 * front is often a model that barely learned, which would make a poor single finalist).
 */
export function selectCandidates(evaluated: readonly Evaluated[], k = 6): Evaluated[] {
  if (!(Number.isInteger(k) && k > 0)) throw new RangeError(`selectCandidates: k must be a positive integer, got ${k}`);
  const { fronts } = nonDominatedSort(evaluated);
  const front = (fronts[0] ?? []).map((i) => evaluated[i]);
  if (front.length <= k) return front;
  if (k === 1) return [front.reduce((best, e) => (e.score > best.score ? e : best))];
  const lo = front[0].cost;
  const hi = front[front.length - 1].cost;
  const chosen = new Set<number>();
  for (let t = 0; t < k; t++) {
    const target = lo + ((hi - lo) * t) / (k - 1);
    let best = -1;
    for (let i = 0; i < front.length; i++) {
      if (chosen.has(i)) continue;
      if (best < 0 || Math.abs(front[i].cost - target) < Math.abs(front[best].cost - target)) best = i;
    }
    chosen.add(best);
  }
  return [...chosen].sort((a, b) => a - b).map((i) => front[i]);
}
