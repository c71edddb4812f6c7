/**
 * Search spaces (SPEC 3): stage one (structural) and stage two (modular), each with an exact
 * size and seeded uniform sampling of legal architectures. Spaces are plain data (zod schemas),
 * so a Temporal workflow can carry them in its state.
 *
 * Profiles:
 * - `paper`: the paper's spaces (7 named backbones, FPN c=256 in stage one; bases 48/56/64/72
 *   and FPN c in 128/256/512 in stage two; inputs 512x512, 800x600, 1080x720, 1333x800).
 * - `toy`: trains on a CPU in well under a minute per candidate: inputs 64..128 px, the named
 *   residual backbones replaced by their encodings at base 16, FPN c=32 in stage one and
 *   16/32/64 in stage two, bases 8/12/16 (Xbottleneck 16/24: its grouped width needs
 *   base >= 16), at most 24 blocks. mobilenet_v2 / mbblock and ga-rpn are left out of the toy space because the
 *   native trainer does not build them yet.
 *
 * Pure: no Node APIs.
 */
import { z } from 'zod';
import type { Rng } from './rng';
import {
  type Arch,
  ArchShapeSchema,
  BackboneSchema,
  BLOCK_KINDS,
  type BlockKind,
  NAMED_BACKBONES,
  NAMED_ENCODINGS,
  type NamedBackbone,
  NeckSchema,
  HeadSchema,
  RPN_KINDS,
  backboneBlock,
  backboneEncoding,
  UNUSED_STAGE,
  canonicalArch,
  isLegalArch,
  markUnusedStages,
  resolveBackboneBlocks,
  stageBlockCount,
  usedBackboneStages,
} from './notation';

export const PROFILES = ['paper', 'toy'] as const;
export type Profile = (typeof PROFILES)[number];

const InputSchema = z.object({ width: z.number().int().positive(), height: z.number().int().positive() });

export const StageOneSpaceSchema = z.object({
  stage: z.literal('one'),
  profile: z.enum(PROFILES),
  inputs: z.array(InputSchema).min(1),
  backbones: z.array(BackboneSchema).min(1),
  necks: z.array(NeckSchema).min(1),
  /** legal (rpn, head) pairs */
  rpnHeads: z.array(z.object({ rpn: z.enum(RPN_KINDS), head: HeadSchema })).min(1),
  /** members are used-layers forms (notation.ts markUnusedStages); absent in spaces of campaigns started before */
  usedLayers: z.literal(true).optional(),
});
export type StageOneSpace = z.infer<typeof StageOneSpaceSchema>;

export const StageTwoSpaceSchema = z.object({
  stage: z.literal('two'),
  profile: z.enum(PROFILES),
  /** the stage-one candidate: input, neck levels, rpn and head stay fixed */
  template: ArchShapeSchema,
  block: z.enum(BLOCK_KINDS),
  bases: z.array(z.number().int().positive()).min(1),
  /** total block count range (inclusive) of the searched stages, at least one block per searched stage */
  minBlocks: z.number().int().min(1),
  maxBlocks: z.number().int().min(1),
  /** exact number of '2' characters in the code */
  doublings: z.number().int().nonnegative(),
  /** FPN channel choices; empty when the candidate has no FPN */
  fpnChannels: z.array(z.number().int().positive()),
  /**
   * Only the stages the template's neck builds are searched; the others are written 'x'
   * (notation.ts markUnusedStages), so no two members differ in layers the detector never uses.
   * Absent in spaces of campaigns started before: all four stages are searched.
   */
  usedLayers: z.literal(true).optional(),
});
export type StageTwoSpace = z.infer<typeof StageTwoSpaceSchema>;

export const SearchSpaceSchema = z.discriminatedUnion('stage', [StageOneSpaceSchema, StageTwoSpaceSchema]);
export type SearchSpace = z.infer<typeof SearchSpaceSchema>;

/** Per-profile settings that go with the spaces. */
export interface ProfileSettings {
  profile: Profile;
  stageOne: StageOneSpace;
  /** stage-two choices by block kind */
  stageTwoBases: Record<BlockKind, number[]>;
  stageTwoFpnChannels: number[];
  /** stage-two block range = [floor(L * low), ceil(L * high)] around the candidate's L blocks, clipped to [4, maxBlocks] */
  blockRange: { low: number; high: number; maxBlocks: number };
  /** RoI head FC width to resolve layouts with (the paper: 1024) */
  fcWidth: number;
}

const PAPER_INPUT_SIZES = [
  { width: 512, height: 512 },
  { width: 800, height: 600 },
  { width: 1080, height: 720 },
  { width: 1333, height: 800 },
];
const TOY_INPUT_SIZES = [
  { width: 64, height: 64 },
  { width: 96, height: 96 },
  { width: 128, height: 96 },
  { width: 128, height: 128 },
];

function allNecks(channels: number): Arch['neck'][] {
  const out: Arch['neck'][] = [{ kind: 'none' }];
  for (let from = 1; from <= 4; from++) for (let to = from; to <= 6; to++) out.push({ kind: 'fpn', from, to, channels });
  return out;
}

function rpnHeads(rpns: ('rpn' | 'ga-rpn')[]): StageOneSpace['rpnHeads'] {
  const out: StageOneSpace['rpnHeads'] = [{ rpn: 'none', head: { kind: 'retina' } }];
  for (const rpn of rpns) {
    out.push({ rpn, head: { kind: '2fc' } });
    for (let n = 2; n <= 4; n++) out.push({ rpn, head: { kind: 'cascade', stages: n } });
  }
  return out;
}

/**
 * Revisions of the toy stage-one space. A running campaign keeps the revision it started with
 * (the workflow picks it with `patched()`), so its search decisions replay after an upgrade.
 * - 1: every neck of SPEC 3 (none, FPN from P1..P4 to P1..P6).
 * - 2 (current): FPN starting at P1 or P2 only. The toy images are 64-128 px with objects of
 *   10-75 % of the side; from P3 (stride 8) the finest map is 8-16 cells and the RPN's smallest
 *   anchors (32 px) miss the small objects. Measured on the toy campaign's data: candidates starting at P3/P4
 *   or without FPN scored AP 0.000-0.048, fpn(P2-P4) AP 0.135 and fpn(P1-P3) AP 0.118, so a
 *   15-evaluation toy search mostly ranked noise (campaigns toy-me and toy-me3, 2026-11-25).
 */
export type ToySpaceRevision = 1 | 2;
export const CURRENT_TOY_SPACE_REVISION: ToySpaceRevision = 2;

function toyNecks(revision: ToySpaceRevision): Arch['neck'][] {
  const all = allNecks(32);
  return revision === 1 ? all : all.filter((n) => n.kind === 'fpn' && n.from <= 2);
}

export interface SpaceOptions {
  toyRevision?: ToySpaceRevision;
  /**
   * The named backbones stage one may use (default: all of NAMED_BACKBONES), e.g. only those a
   * campaign has ImageNet weights for. Filters the named backbones of the stage-one space, in
   * NAMED_BACKBONES order whatever the order given (the space stays deterministic); other
   * backbones (the toy space's encodings) are kept. Throws when no backbone is left.
   */
  namedBackbones?: readonly NamedBackbone[];
}

/** Keep the stage-one backbones allowed by `namedBackbones` (see SpaceOptions). */
function allowedBackbones(backbones: StageOneSpace['backbones'], namedBackbones: readonly NamedBackbone[] | undefined): StageOneSpace['backbones'] {
  if (namedBackbones === undefined) return backbones;
  const allowed = new Set<string>(namedBackbones);
  const kept = backbones.filter((b) => b.kind !== 'named' || allowed.has(b.name));
  if (kept.length === 0) throw new RangeError(`the stage-one space has no backbone left (named backbones allowed: ${namedBackbones.join(', ') || 'none'})`);
  return kept;
}

export function getSearchSpaces(profile: Profile, opts: SpaceOptions = {}): ProfileSettings {
  if (profile === 'paper') {
    return {
      profile,
      stageOne: {
        stage: 'one',
        profile,
        inputs: PAPER_INPUT_SIZES,
        backbones: allowedBackbones(
          NAMED_BACKBONES.map((name) => ({ kind: 'named' as const, name })),
          opts.namedBackbones,
        ),
        necks: allNecks(256),
        rpnHeads: rpnHeads(['rpn', 'ga-rpn']),
      },
      stageTwoBases: { basicblock: [48, 56, 64, 72], bottleneck: [48, 56, 64, 72], Xbottleneck: [48, 56, 64, 72], mbblock: [16, 24, 32] },
      stageTwoFpnChannels: [128, 256, 512],
      blockRange: { low: 0.5, high: 1.5, maxBlocks: 64 },
      fcWidth: 1024,
    };
  }
  const toyBackbones = (Object.keys(NAMED_ENCODINGS) as (keyof typeof NAMED_ENCODINGS)[]).map((name) => {
    const e = NAMED_ENCODINGS[name];
    return { kind: 'encoded' as const, block: e.block, base: 16, stages: [...e.stages] };
  });
  return {
    profile,
    stageOne: {
      stage: 'one',
      profile,
      inputs: TOY_INPUT_SIZES,
      backbones: allowedBackbones(toyBackbones, opts.namedBackbones),
      necks: toyNecks(opts.toyRevision ?? CURRENT_TOY_SPACE_REVISION),
      rpnHeads: rpnHeads(['rpn']),
    },
    // base 24 and long codes made the tail of the toy stage-two cost too heavy for a CPU
    // (p99 6 GFLOPs at 128x128); these keep p50 ~0.35, p99 ~3.4 GFLOPs (docs/search.md)
    stageTwoBases: { basicblock: [8, 12, 16], bottleneck: [8, 12, 16], Xbottleneck: [16, 24], mbblock: [8, 16, 24] },
    stageTwoFpnChannels: [16, 32, 64],
    blockRange: { low: 0.5, high: 1.5, maxBlocks: 24 },
    fcWidth: 128,
  };
}

export interface StageTwoOptions {
  profile: Profile;
  /** override the profile's bases for the candidate's block */
  bases?: number[];
  /** search only the stages the candidate's neck builds (see StageTwoSpace.usedLayers) */
  usedLayers?: boolean;
  fpnChannels?: number[];
  minBlocks?: number;
  maxBlocks?: number;
}

/** The stage-two space around a stage-one candidate: its block kind, everything else fixed. */
export function stageTwoSpaceFrom(candidate: Arch, opts: StageTwoOptions): StageTwoSpace {
  const settings = getSearchSpaces(opts.profile);
  const a = opts.usedLayers ? markUnusedStages(candidate) : canonicalArch(candidate);
  const block = backboneBlock(a.backbone);
  // searched stages S: all four, or (usedLayers) those the candidate's neck builds; the block
  // range is taken around the candidate's blocks in those stages, and the code has one doubling
  // per stage transition (S - 1; the paper's 3 for four stages)
  const S = opts.usedLayers ? usedBackboneStages(a.neck) : 4;
  const L = resolveBackboneBlocks(a.backbone)
    .slice(0, S)
    .reduce((n, k) => n + k, 0);
  const r = settings.blockRange;
  const minBlocks = opts.minBlocks ?? Math.max(S, Math.floor(L * r.low));
  const maxBlocks = opts.maxBlocks ?? Math.max(minBlocks, Math.min(r.maxBlocks, Math.ceil(L * r.high)));
  if (minBlocks < S || maxBlocks < minBlocks)
    throw new RangeError(`stage-two block range ${minBlocks}..${maxBlocks} is empty or below ${S} (one block per searched stage)`);
  const space: StageTwoSpace = {
    stage: 'two',
    profile: opts.profile,
    template: a,
    block,
    bases: opts.bases ?? settings.stageTwoBases[block],
    minBlocks,
    maxBlocks,
    doublings: S - 1,
    fpnChannels: a.neck.kind === 'fpn' ? (opts.fpnChannels ?? settings.stageTwoFpnChannels) : [],
    ...(opts.usedLayers ? { usedLayers: true as const } : {}),
  };
  return StageTwoSpaceSchema.parse(space);
}

/** The stages a stage-two space searches: 4, or (usedLayers) those its template's neck builds. */
export function searchedStages(space: Pick<StageTwoSpace, 'template' | 'usedLayers'>): number {
  return space.usedLayers ? usedBackboneStages(space.template.neck) : 4;
}

/** The form members of a space are written in: used-layers forms or plain canonical forms. */
export function spaceCanonical(space: SearchSpace): (a: Arch) => Arch {
  return space.usedLayers ? markUnusedStages : canonicalArch;
}

// ---------------------------------------------------------------------------------------------
// counting

/** binomial coefficient as a float (exact below 2^53 for the sizes used here) */
export function binom(n: number, k: number): number {
  if (k < 0 || k > n) return 0;
  k = Math.min(k, n - k);
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return Math.round(r);
}

/** codes with exactly L blocks over `stages` (default 4) non-empty stages and exactly D doublings */
export function codesWithBlocks(L: number, doublings: number, stages = 4): number {
  return binom(L - 1, stages - 1) * binom(L, doublings);
}

export function stageTwoCodeCount(
  space: Pick<StageTwoSpace, 'minBlocks' | 'maxBlocks' | 'doublings'> & Partial<Pick<StageTwoSpace, 'template' | 'usedLayers'>>,
): number {
  const S = space.usedLayers && space.template ? searchedStages({ template: space.template, usedLayers: true }) : 4;
  let n = 0;
  for (let L = space.minBlocks; L <= space.maxBlocks; L++) n += codesWithBlocks(L, space.doublings, S);
  return n;
}

/** The distinct backbones of a stage-one space under one neck (usedLayers: backbones equal in the built stages are one). */
function distinctBackbones(space: StageOneSpace, neck: Arch['neck']): Arch['backbone'][] {
  if (!space.usedLayers) return space.backbones;
  const seen = new Set<string>();
  const out: Arch['backbone'][] = [];
  for (const b of space.backbones) {
    const key = JSON.stringify(
      markUnusedStages({ input: space.inputs[0], backbone: b, neck, rpn: space.rpnHeads[0].rpn, head: space.rpnHeads[0].head }).backbone,
    );
    if (!seen.has(key)) {
      seen.add(key);
      out.push(b);
    }
  }
  return out;
}

/** Exact number of distinct architectures in the space (stage one: legal combinations). */
export function spaceSize(space: SearchSpace): number {
  if (space.stage === 'one') {
    if (!space.usedLayers) return space.inputs.length * space.backbones.length * space.necks.length * space.rpnHeads.length;
    const pairs = space.necks.reduce((n, neck) => n + distinctBackbones(space, neck).length, 0);
    return space.inputs.length * pairs * space.rpnHeads.length;
  }
  return space.bases.length * Math.max(1, space.fpnChannels.length) * stageTwoCodeCount(space);
}

// ---------------------------------------------------------------------------------------------
// sampling

/** One architecture uniformly at random from the space. */
export function sampleArch(space: SearchSpace, rng: Rng): Arch {
  if (space.stage === 'one') {
    // the space is a full product of independent choices, so independent uniform picks are uniform over it
    const input = rng.pick(space.inputs);
    const backbone = rng.pick(space.backbones);
    const neck = rng.pick(space.necks);
    const rh = rng.pick(space.rpnHeads);
    // usedLayers: backbones that collapse under a neck make their form more likely; the search
    // rejects repeats by their form, so every distinct member is still reachable
    return spaceCanonical(space)({ input, backbone, neck, rpn: rh.rpn, head: rh.head });
  }
  const base = rng.pick(space.bases);
  const stages = sampleCode(space, rng);
  const t = space.template;
  const neck: Arch['neck'] = t.neck.kind === 'fpn' ? { ...t.neck, channels: rng.pick(space.fpnChannels) } : t.neck;
  return spaceCanonical(space)({ ...t, backbone: { kind: 'encoded', block: space.block, base, stages }, neck });
}

/** A uniform code: L weighted by its number of codes, then uniform stage cuts and doubling positions. */
function sampleCode(space: StageTwoSpace, rng: Rng): string[] {
  const S = searchedStages(space);
  let r = rng.int(stageTwoCodeCount(space));
  let L = space.minBlocks;
  for (; L < space.maxBlocks; L++) {
    const c = codesWithBlocks(L, space.doublings, S);
    if (r < c) break;
    r -= c;
  }
  const cuts = rng.subset(L - 1, S - 1).map((c) => c + 1); // S - 1 distinct cut points in 1..L-1
  const doubles = new Set(rng.subset(L, space.doublings));
  const chars = Array.from({ length: L }, (_, i) => (doubles.has(i) ? '2' : '1'));
  const bounds = [0, ...cuts, L];
  return [0, 1, 2, 3].map((s) => (s < S ? chars.slice(bounds[s], bounds[s + 1]).join('') : UNUSED_STAGE));
}

/** `count` samples; with `unique`, distinct canonical architectures (at most the space size). */
export function sampleArchs(space: SearchSpace, rng: Rng, count: number, unique = true): Arch[] {
  const size = spaceSize(space);
  const want = unique ? Math.min(count, size) : count;
  const out: Arch[] = [];
  const seen = new Set<string>();
  let attempts = 0;
  while (out.length < want) {
    const a = sampleArch(space, rng);
    if (unique) {
      const key = JSON.stringify(a);
      if (seen.has(key)) {
        if (++attempts > 1000 * want) throw new Error(`sampleArchs: could not draw ${want} distinct architectures`);
        continue;
      }
      seen.add(key);
    }
    out.push(a);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// membership

const sameJson = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y);

/** Why `a` is not in the space (undefined when it is). */
export function outsideSpace(space: SearchSpace, arch: Arch): string | undefined {
  if (!isLegalArch(arch)) return 'not a legal architecture';
  return outsideSpaceOfLegal(space, arch);
}

/**
 * `outsideSpace` for an architecture already known to be legal (the search's hot path: its
 * children are typed objects it checked with `archProblems`, so the zod shape check is skipped).
 */
export function outsideSpaceOfLegal(space: SearchSpace, arch: Arch): string | undefined {
  const canon = spaceCanonical(space);
  const a = canon(arch);
  if (space.stage === 'one') {
    if (!space.inputs.some((i) => i.width === a.input.width && i.height === a.input.height))
      return `input ${a.input.width}x${a.input.height} is not in the space`;
    if (!space.backbones.some((b) => sameJson(canon({ ...a, backbone: b }).backbone, a.backbone))) return 'backbone is not in the space';
    if (!space.necks.some((n) => sameJson(canonicalArch({ ...a, neck: n }).neck, a.neck))) return 'neck is not in the space';
    if (!space.rpnHeads.some((rh) => rh.rpn === a.rpn && sameJson(canonicalArch({ ...a, head: rh.head }).head, a.head))) return 'rpn/head is not in the space';
    return undefined;
  }
  const t = canon(space.template);
  if (!sameJson(a.input, t.input) || a.rpn !== t.rpn || !sameJson(a.head, t.head)) return 'input, rpn and head must equal the stage-two template';
  if (a.neck.kind !== t.neck.kind) return 'neck kind differs from the template';
  if (a.neck.kind === 'fpn' && t.neck.kind === 'fpn') {
    if (a.neck.from !== t.neck.from || a.neck.to !== t.neck.to) return 'FPN levels differ from the template';
    if (!space.fpnChannels.includes(a.neck.channels)) return `FPN channels ${a.neck.channels} not in ${space.fpnChannels.join('/')}`;
  }
  const e = backboneEncoding(a.backbone);
  if (!e || e.block !== space.block) return `backbone block must be ${space.block}`;
  if (!space.bases.includes(e.base)) return `base ${e.base} not in ${space.bases.join('/')}`;
  const S = searchedStages(space);
  const unsearched = e.stages.findIndex((s, i) => i < S === (s === UNUSED_STAGE));
  if (unsearched >= 0)
    return `stage ${unsearched + 1} is ${unsearched < S ? "'x' but searched" : `not searched and must be written '${UNUSED_STAGE}'`} (this space searches stages 1..${S})`;
  const L = e.stages.reduce((n, s) => n + stageBlockCount(s), 0);
  if (L < space.minBlocks || L > space.maxBlocks) return `${L} blocks, outside ${space.minBlocks}..${space.maxBlocks}`;
  const d = e.stages
    .join('')
    .split('')
    .filter((c) => c === '2').length;
  if (d !== space.doublings) return `${d} doublings, the space has exactly ${space.doublings}`;
  return undefined;
}

export function inSpace(space: SearchSpace, a: Arch): boolean {
  return outsideSpace(space, a) === undefined;
}

// ---------------------------------------------------------------------------------------------
// enumeration (small spaces: exhaustive search, tests, and finding the last unevaluated members)

/** All codes with L blocks over S (default 4) non-empty stages and exactly `doublings` '2's; stages past S are 'x'. */
function* codesOf(L: number, doublings: number, S = 4): Generator<string[]> {
  for (const cuts of combinations(L - 1, S - 1))
    for (const pos of combinations(L, doublings)) {
      const set = new Set(pos);
      const chars = Array.from({ length: L }, (_, i) => (set.has(i) ? '2' : '1')).join('');
      const bounds = [0, ...cuts.map((c) => c + 1), L];
      yield [0, 1, 2, 3].map((s) => (s < S ? chars.slice(bounds[s], bounds[s + 1]) : UNUSED_STAGE));
    }
}

function* combinations(n: number, k: number, start = 0, acc: number[] = []): Generator<number[]> {
  if (acc.length === k) {
    yield [...acc];
    return;
  }
  for (let i = start; i <= n - (k - acc.length); i++) {
    acc.push(i);
    yield* combinations(n, k, i + 1, acc);
    acc.pop();
  }
}

/** Every architecture of the space, each once, in a fixed order (canonical JSON forms). */
export function* enumerateArchs(space: SearchSpace): Generator<Arch> {
  const canon = spaceCanonical(space);
  if (space.stage === 'one') {
    if (!space.usedLayers) {
      for (const input of space.inputs)
        for (const backbone of space.backbones)
          for (const neck of space.necks) for (const rh of space.rpnHeads) yield canonicalArch({ input, backbone, neck, rpn: rh.rpn, head: rh.head });
      return;
    }
    // one member per distinct form: a backbone equal to an earlier one in the built stages is skipped under that neck
    const distinct = space.necks.map((neck) => new Set(distinctBackbones(space, neck)));
    for (const input of space.inputs)
      for (const backbone of space.backbones)
        for (let n = 0; n < space.necks.length; n++) {
          if (!distinct[n].has(backbone)) continue;
          for (const rh of space.rpnHeads) yield canon({ input, backbone, neck: space.necks[n], rpn: rh.rpn, head: rh.head });
        }
    return;
  }
  const t = space.template;
  const S = searchedStages(space);
  const channels = t.neck.kind === 'fpn' ? space.fpnChannels : [undefined];
  for (let L = space.minBlocks; L <= space.maxBlocks; L++)
    for (const stages of codesOf(L, space.doublings, S))
      for (const base of space.bases)
        for (const c of channels) {
          const neck: Arch['neck'] = t.neck.kind === 'fpn' ? { ...t.neck, channels: c! } : t.neck;
          yield canon({ ...t, backbone: { kind: 'encoded', block: space.block, base, stages }, neck });
        }
}
