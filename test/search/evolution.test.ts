import fc from 'fast-check';
import { detectorCost } from '../../search/cost';
import {
  type Evaluated,
  ProposeMemo,
  STAGE_ONE_MUTATIONS,
  STAGE_TWO_MUTATIONS,
  flopsPruningCost,
  mutate,
  proposeCandidates,
  selectCandidates,
  selectParent,
} from '../../search/evolution';
import { type Arch, formatArch, isLegalArch, parseArch } from '../../search/notation';
import { nonDominatedSort } from '../../search/pareto';
import { Rng } from '../../search/rng';
import { type StageTwoSpace, enumerateArchs, getSearchSpaces, outsideSpace, sampleArch, sampleArchs, stageTwoSpaceFrom } from '../../search/space';

const profileArb = fc.constantFrom('paper' as const, 'toy' as const);

describe('mutation', () => {
  test('stage-one and stage-two children are legal, inside the space and differ from the parent', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e9 }), profileArb, (seed, profile) => {
        const rng = new Rng(seed);
        const one = getSearchSpaces(profile).stageOne;
        const p1 = sampleArch(one, rng);
        for (const kind of STAGE_ONE_MUTATIONS) {
          const m = mutate(one, p1, rng, kind)!;
          expect(m.mutation).toBe(kind);
          expect(isLegalArch(m.child)).toBe(true);
          expect(outsideSpace(one, m.child)).toBeUndefined();
          expect(formatArch(m.child)).not.toBe(formatArch(p1));
        }
        const two = stageTwoSpaceFrom(p1, { profile });
        const p2 = sampleArch(two, rng);
        for (const kind of STAGE_TWO_MUTATIONS) {
          const m = mutate(two, p2, rng, kind);
          if (!m) continue; // e.g. fpn-channels without an FPN, remove-block at the minimum depth
          expect(isLegalArch(m.child)).toBe(true);
          expect(outsideSpace(two, m.child)).toBeUndefined();
          expect(formatArch(m.child)).not.toBe(formatArch(p2));
        }
      }),
      { numRuns: 150 },
    );
  });

  test('stage-two operators do what they say', () => {
    const two = stageTwoSpaceFrom(parseArch('512x512/resnet18/fpn(P2-P5,c=256)/rpn/2fc'), { profile: 'paper' });
    const p = parseArch('512x512/basicblock_48_11-21-21-21/fpn(P2-P5,c=256)/rpn/2fc');
    const rng = new Rng(3);
    const code = (a: Arch) => (a.backbone.kind === 'encoded' ? a.backbone.stages.join('-') : '');
    const len = (a: Arch) => code(a).replace(/-/g, '').length;
    expect(len(mutate(two, p, rng, 'insert-block')!.child)).toBe(9);
    expect(len(mutate(two, p, rng, 'remove-block')!.child)).toBe(7);
    expect(len(mutate(two, p, rng, 'shift-block')!.child)).toBe(8);
    const sw = mutate(two, p, rng, 'swap-blocks')!.child;
    expect(
      code(sw)
        .split('-')
        .map((s) => [...s].sort().join('')),
    ).toEqual(['11', '12', '12', '12']);
    const b = mutate(two, p, rng, 'base')!.child;
    expect(b.backbone.kind === 'encoded' || b.backbone.kind === 'named').toBe(true);
    expect(formatArch(b)).not.toBe(formatArch(p));
    const f = mutate(two, p, rng, 'fpn-channels')!.child;
    expect(f.neck.kind === 'fpn' && [128, 512].includes(f.neck.channels)).toBe(true);
  });
});

/** a mock evaluator for unit tests: deterministic score from the architecture (NOT a trained model) */
function mockScore(a: Arch): number {
  const c = detectorCost(a, { numClasses: 3, fcWidth: 64, rois: 10 });
  return Math.log(1 + c.params);
}

describe('proposeCandidates', () => {
  const space = getSearchSpaces('toy').stageOne;

  test('random initial population, then mutations of the front; reproducible; never repeats', () => {
    const run = (seed: number) => {
      const rng = new Rng(seed);
      const evaluated: Evaluated[] = [];
      const log: string[] = [];
      for (let round = 0; round < 4; round++) {
        const r = proposeCandidates({ space, evaluated, rng, count: 8, initialPopulation: 8 });
        expect(r.proposals.length).toBe(8);
        if (round === 0) expect(r.proposals.every((p) => p.origin === 'random')).toBe(true);
        else expect(r.proposals.some((p) => p.origin === 'mutation')).toBe(true);
        for (const p of r.proposals) {
          expect(evaluated.some((e) => e.arch === p.arch)).toBe(false);
          const a = parseArch(p.arch);
          const c = detectorCost(a, { numClasses: 3, fcWidth: 64, rois: 10 });
          evaluated.push({ arch: p.arch, cost: c.flops, score: mockScore(a) });
          log.push(`${p.origin}:${p.mutation ?? ''}:${p.arch}`);
        }
      }
      expect(new Set(evaluated.map((e) => e.arch)).size).toBe(evaluated.length);
      return log;
    };
    expect(run(9)).toEqual(run(9));
    expect(run(9)).not.toEqual(run(10));
  });

  test('pending architectures are not proposed; a tiny space is exhausted, not looped on', () => {
    const tiny: StageTwoSpace = {
      ...stageTwoSpaceFrom(parseArch('64x64/basicblock_16_11-21-21-21/none/rpn/2fc'), { profile: 'toy' }),
      minBlocks: 4,
      maxBlocks: 4,
      bases: [8],
    };
    // 4 codes x 1 base x no FPN = 4 architectures
    const all = sampleArchs(tiny, new Rng(1), 10).map(formatArch);
    expect(all.length).toBe(4);
    // a pending entry in a non-canonical spelling (the encoding of a named model) still counts
    const spaced = all[1].replace('/resnet18/', '/basicblock_64_11-21-21-21/');
    const r = proposeCandidates({ space: tiny, evaluated: [{ arch: all[0], cost: 1, score: 1 }], pending: [spaced], rng: new Rng(2), count: 5 });
    expect(r.proposals.map((p) => p.arch).sort()).toEqual([all[2], all[3]].sort());
    expect(r.exhausted).toBe(true);
  });

  test('the last unevaluated members of a space are found (listed, not left to chance)', () => {
    // 1960 architectures (8 blocks, 3 doublings, base 64) with resnet18 among them
    const space: StageTwoSpace = {
      ...stageTwoSpaceFrom(parseArch('512x512/resnet18/none/rpn/2fc'), { profile: 'paper' }),
      minBlocks: 8,
      maxBlocks: 8,
      bases: [64],
    };
    const all = [...enumerateArchs(space)].map(formatArch);
    expect(all.length).toBe(1960);
    expect(all).toContain('512x512/resnet18/none/rpn/2fc');
    const left = new Set([all[7], all[1000], all[1959]].filter((a) => !a.includes('/resnet18/')));
    const evaluated = all.filter((a) => !left.has(a) && !a.includes('/resnet18/')).map((arch) => ({ arch, cost: 1, score: 0 }));
    const r = proposeCandidates({
      space,
      evaluated,
      pending: ['512x512/basicblock_64_11-21-21-21/none/rpn/2fc'], // resnet18, spelled as its encoding
      rng: new Rng(8),
      count: 10,
      initialPopulation: 1e9,
    });
    expect(new Set(r.proposals.map((p) => p.arch))).toEqual(left);
    expect(r.exhausted).toBe(true);
  });

  test('parent selection draws only from the front', () => {
    const evaluated: Evaluated[] = [
      { arch: 'a', cost: 1, score: 1 },
      { arch: 'b', cost: 2, score: 3 },
      { arch: 'c', cost: 3, score: 2 }, // dominated by b
      { arch: 'd', cost: 4, score: 4 },
    ];
    const rng = new Rng(4);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(selectParent(evaluated, rng).arch);
    expect([...seen].sort()).toEqual(['a', 'b', 'd']);
  });
});

describe('selectCandidates', () => {
  test('K front members spread over the cost range, extremes included', () => {
    const evaluated: Evaluated[] = Array.from({ length: 30 }, (_, i) => ({ arch: `f${i}`, cost: i * i, score: i }));
    evaluated.push({ arch: 'dominated', cost: 50, score: 0 });
    const k = selectCandidates(evaluated, 6);
    expect(k.map((e) => e.arch)).toEqual(['f0', 'f13', 'f18', 'f22', 'f26', 'f29']);
    expect(selectCandidates(evaluated.slice(0, 3), 6).length).toBe(3);
  });

  test('K = 1 is the most accurate front member, not the cheapest', () => {
    const evaluated: Evaluated[] = [
      { arch: 'cheap-untrained', cost: 1, score: 0 },
      { arch: 'mid', cost: 5, score: 0.3 },
      { arch: 'best', cost: 9, score: 0.5 },
      { arch: 'dominated', cost: 10, score: 0.4 },
    ];
    expect(selectCandidates(evaluated, 1).map((e) => e.arch)).toEqual(['best']);
  });
});

describe('Partial Order Pruning in proposals', () => {
  test('never prunes an architecture of the true front when accuracy is monotone in the order', () => {
    // the whole small space, with a score monotone under containment (sum of weighted widths, concave)
    const base = stageTwoSpaceFrom(parseArch('64x64/basicblock_16_11-21-21-21/fpn(P2-P4,c=32)/rpn/2fc'), { profile: 'toy' });
    const space: StageTwoSpace = { ...base, minBlocks: 4, maxBlocks: 6, bases: [8, 12], fpnChannels: [16, 32] };
    const all = [...enumerateArchs(space)].map(formatArch);
    expect(all.length).toBe(976);
    const cost = flopsPruningCost({ numClasses: 3, fcWidth: 32, rois: 10 });
    const parsed = all.map((id) => parseArch(id));
    const costs = parsed.map(cost);
    let prunedTotal = 0;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e9 }), fc.integer({ min: 5, max: 120 }), (seed, nEval) => {
        const rng = new Rng(seed);
        const w = Array.from({ length: 4 * 8 }, () => 0.5 + rng.next());
        const truth = (a: Arch) => {
          const e = a.backbone.kind === 'encoded' ? a.backbone : undefined;
          let s = a.neck.kind === 'fpn' ? a.neck.channels / 8 : 0;
          let planes = e!.base;
          e!.stages.forEach((st, si) =>
            [...st].forEach((ch, j) => {
              if (ch === '2') planes *= 2;
              s += w[si * 8 + j] * planes;
            }),
          );
          return Math.sqrt(s);
        };
        const points = all.map((id, i) => ({ arch: id, cost: costs[i], score: truth(parsed[i]) }));
        // the true front of the whole space (the sort is checked against brute force in pareto.test.ts)
        const front = new Set(nonDominatedSort(points).fronts[0].map((i) => all[i]));
        const evaluated = rng.shuffle([...points]).slice(0, nEval);
        const r = proposeCandidates({ space, evaluated, rng, count: 40, initialPopulation: 0, pruningCost: cost });
        for (const p of r.pruned) expect(front.has(p.arch)).toBe(false);
        prunedTotal += r.pruned.length;
      }),
      { numRuns: 30 },
    );
    // the property is not vacuous: pruning did happen
    expect(prunedTotal).toBeGreaterThan(0);
  });
});

describe('ProposeMemo (the caches a search stage keeps between batches)', () => {
  test('proposals, pruning and the Rng stream are identical with and without the memo', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e9 }), profileArb, fc.integer({ min: 1, max: 12 }), (seed, profile, batch) => {
        const candidate = sampleArch(getSearchSpaces(profile).stageOne, new Rng(seed));
        const space = stageTwoSpaceFrom(candidate, { profile });
        const cost = flopsPruningCost({ numClasses: 3, fcWidth: getSearchSpaces(profile).fcWidth });
        // score: any deterministic function of the string, so pruning and selection both happen
        const score = (id: string) => ([...id].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7) % 1000) / 1000;
        const run = (memo?: ProposeMemo) => {
          const rng = new Rng(seed);
          const evaluated: Evaluated[] = [];
          const out: unknown[] = [];
          for (let b = 0; b < 8; b++) {
            const r = proposeCandidates({ space, evaluated, rng, count: batch, initialPopulation: 6, pruningCost: cost, memo });
            out.push(r, rng.state());
            for (const p of r.proposals) evaluated.push({ arch: p.arch, cost: cost(parseArch(p.arch)), score: score(p.arch) });
          }
          return out;
        };
        const memo = new ProposeMemo();
        expect(run(memo)).toEqual(run());
        expect(memo.parsed.size).toBeGreaterThan(0); // the memo was really used
      }),
      { numRuns: 25 },
    );
  });
});
