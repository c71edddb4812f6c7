/**
 * The stage-one space restricted to the named backbones a campaign keeps (SpaceOptions
 * namedBackbones: data.missingBackboneWeights 'exclude'): deterministic, never samples or mutates
 * into an excluded backbone, leaves the toy space (encodings only) alone.
 */
import fc from 'fast-check';
import { NAMED_BACKBONES, Rng, canonicalArch, getSearchSpaces, inSpace, proposeCandidates, sampleArch, spaceSize, type NamedBackbone } from '../../search';

const subsetArb = fc.subarray([...NAMED_BACKBONES], { minLength: 1 });

describe('stage-one space with an allowed list of named backbones', () => {
  test('keeps exactly the allowed named backbones, in NAMED_BACKBONES order whatever the order given', () => {
    fc.assert(
      fc.property(subsetArb, fc.boolean(), (allowed, reverse) => {
        const given = reverse ? [...allowed].reverse() : allowed;
        const s = getSearchSpaces('paper', { namedBackbones: given }).stageOne;
        const names = s.backbones.map((b) => (b.kind === 'named' ? b.name : '?'));
        expect(names).toEqual(NAMED_BACKBONES.filter((n) => allowed.includes(n)));
        expect(spaceSize(s)).toBe((spaceSize(getSearchSpaces('paper').stageOne) / NAMED_BACKBONES.length) * allowed.length);
      }),
      { numRuns: 50 },
    );
  });

  test('samples and evolution never reach an excluded backbone; same seed, same samples', () => {
    fc.assert(
      fc.property(subsetArb, fc.integer({ min: 0, max: 1e9 }), (allowed, seed) => {
        const space = getSearchSpaces('paper', { namedBackbones: allowed }).stageOne;
        const full = getSearchSpaces('paper').stageOne;
        const rng = new Rng(seed);
        const draws: string[] = [];
        for (let i = 0; i < 20; i++) {
          const a = sampleArch(space, rng);
          const b = canonicalArch(a).backbone;
          expect(b.kind === 'named' && allowed.includes(b.name)).toBe(true);
          expect(inSpace(space, a)).toBe(true);
          draws.push(JSON.stringify(a));
        }
        const again = new Rng(seed);
        expect(Array.from({ length: 20 }, () => JSON.stringify(sampleArch(space, again)))).toEqual(draws);
        // an architecture with an excluded backbone is outside the restricted space (but inside the full one)
        const excluded = NAMED_BACKBONES.find((n) => !allowed.includes(n));
        if (excluded) {
          const a = { ...sampleArch(space, new Rng(seed)), backbone: { kind: 'named' as const, name: excluded } };
          expect(inSpace(space, a)).toBe(false);
          expect(inSpace(full, a)).toBe(true);
        }
      }),
      { numRuns: 30 },
    );
  });

  test('mutations of evolution stay among the allowed backbones', () => {
    const allowed: NamedBackbone[] = ['resnet50', 'resnext101_32x4d'];
    const space = getSearchSpaces('paper', { namedBackbones: allowed }).stageOne;
    const rng = new Rng(7);
    const evaluated: { arch: string; cost: number; score: number }[] = [];
    for (let round = 0; round < 8; round++) {
      const r = proposeCandidates({ space, evaluated, rng, count: 6, pending: [], initialPopulation: 6 });
      for (const p of r.proposals) {
        expect(p.arch).toMatch(/\/(resnet50|resnext101_32x4d)\//);
        evaluated.push({ arch: p.arch, cost: (p.arch.length * 7) % 13, score: (p.arch.length * 11) % 17 });
      }
    }
    expect(evaluated.length).toBeGreaterThan(20);
  });

  test('no backbone left is an error; the toy space (encodings only) is unaffected', () => {
    expect(() => getSearchSpaces('paper', { namedBackbones: [] })).toThrow(/no backbone left/);
    expect(getSearchSpaces('toy', { namedBackbones: [] }).stageOne).toEqual(getSearchSpaces('toy').stageOne);
    expect(getSearchSpaces('paper', { namedBackbones: [...NAMED_BACKBONES] }).stageOne).toEqual(getSearchSpaces('paper').stageOne);
  });
});
