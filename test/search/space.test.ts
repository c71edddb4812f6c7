import fc from 'fast-check';
import { formatArch, isLegalArch, parseArch } from '../../search/notation';
import { Rng } from '../../search/rng';
import {
  type StageTwoSpace,
  enumerateArchs,
  getSearchSpaces,
  outsideSpace,
  sampleArch,
  sampleArchs,
  spaceSize,
  stageTwoCodeCount,
  stageTwoSpaceFrom,
} from '../../search/space';

/** all codes over 4 non-empty stages with L in [lo, hi] blocks and exactly d '2's, by brute force */
function bruteCodes(lo: number, hi: number, d: number): string[] {
  const out: string[] = [];
  for (let L = lo; L <= hi; L++) {
    for (let mask = 0; mask < 1 << L; mask++) {
      let bits = 0;
      for (let i = 0; i < L; i++) if (mask & (1 << i)) bits++;
      if (bits !== d) continue;
      const chars = Array.from({ length: L }, (_, i) => (mask & (1 << i) ? '2' : '1')).join('');
      for (let a = 1; a < L; a++)
        for (let b = a + 1; b < L; b++)
          for (let c = b + 1; c < L; c++) out.push([chars.slice(0, a), chars.slice(a, b), chars.slice(b, c), chars.slice(c)].join('-'));
    }
  }
  return out;
}

describe('search spaces', () => {
  test('stage one sizes: 7 backbones x 19 necks x 9 rpn/head pairs x 4 inputs (paper); toy without mbblock/ga-rpn', () => {
    expect(spaceSize(getSearchSpaces('paper').stageOne)).toBe(7 * 19 * 9 * 4);
    // revision 2 (current): FPN from P1 (to P1..P6) or P2 (to P2..P6) only; revision 1: all 19 necks
    expect(spaceSize(getSearchSpaces('toy').stageOne)).toBe(6 * 11 * 5 * 4);
    expect(spaceSize(getSearchSpaces('toy', { toyRevision: 1 }).stageOne)).toBe(6 * 19 * 5 * 4);
    for (const n of getSearchSpaces('toy').stageOne.necks) expect(n.kind === 'fpn' && n.from <= 2).toBe(true);
  });

  test('stage-two code count equals brute-force enumeration', () => {
    for (const [lo, hi, d] of [
      [4, 9, 3],
      [5, 7, 2],
      [4, 4, 0],
      [6, 10, 3],
    ]) {
      const codes = bruteCodes(lo, hi, d);
      expect(new Set(codes).size).toBe(codes.length);
      expect(stageTwoCodeCount({ minBlocks: lo, maxBlocks: hi, doublings: d })).toBe(codes.length);
    }
  });

  test('stage two from a paper candidate: block kind kept, size = bases x fpn channels x codes', () => {
    const s = stageTwoSpaceFrom(parseArch('800x600/resnet50/fpn(P1-P5,c=256)/rpn/cascade(n=3)'), { profile: 'paper' });
    expect(s.block).toBe('bottleneck');
    expect([s.minBlocks, s.maxBlocks]).toEqual([8, 24]);
    expect(spaceSize(s)).toBe(4 * 3 * stageTwoCodeCount(s));
    const none = stageTwoSpaceFrom(parseArch('512x512/mobilenet_v2/none/rpn/2fc'), { profile: 'paper' });
    expect(none.block).toBe('mbblock');
    expect(none.fpnChannels).toEqual([]);
    expect(spaceSize(none)).toBe(3 * stageTwoCodeCount(none));
  });

  test('every sample is legal and inside its space (both stages, both profiles)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e9 }), fc.constantFrom('paper' as const, 'toy' as const), (seed, profile) => {
        const rng = new Rng(seed);
        const one = getSearchSpaces(profile).stageOne;
        const a = sampleArch(one, rng);
        expect(isLegalArch(a)).toBe(true);
        expect(outsideSpace(one, a)).toBeUndefined();
        const two = stageTwoSpaceFrom(a, { profile });
        for (let i = 0; i < 5; i++) {
          const b = sampleArch(two, rng);
          expect(isLegalArch(b)).toBe(true);
          expect(outsideSpace(two, b)).toBeUndefined();
          expect(parseArch(formatArch(b))).toEqual(b);
        }
      }),
      { numRuns: 150 },
    );
  });

  test('sampling is reproducible from the seed and uniform over a small space (chi-square)', () => {
    const s1 = getSearchSpaces('toy').stageOne;
    const x = sampleArchs(s1, new Rng(5), 20).map(formatArch);
    expect(sampleArchs(s1, new Rng(5), 20).map(formatArch)).toEqual(x);
    expect(new Set(x).size).toBe(20);

    const small: StageTwoSpace = {
      ...stageTwoSpaceFrom(parseArch('64x64/basicblock_16_11-21-21-21/fpn(P2-P4,c=32)/rpn/2fc'), { profile: 'toy' }),
      minBlocks: 4,
      maxBlocks: 6,
      bases: [8],
    };
    small.fpnChannels = [32];
    const n = spaceSize(small);
    const counts = new Map<string, number>();
    const rng = new Rng(11);
    const draws = n * 200;
    for (let i = 0; i < draws; i++) {
      const k = formatArch(sampleArch(small, rng));
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    expect(counts.size).toBe(n);
    const chi2 = [...counts.values()].reduce((s, o) => s + (o - 200) ** 2 / 200, 0);
    // df = n - 1; mean df, sd sqrt(2 df): allow 5 sd
    expect(chi2).toBeLessThan(n - 1 + 5 * Math.sqrt(2 * (n - 1)));
  });

  test('enumerateArchs lists every member exactly once (size = count)', () => {
    for (const space of [
      getSearchSpaces('toy').stageOne,
      { ...stageTwoSpaceFrom(parseArch('64x64/basicblock_16_11-21-21-21/fpn(P2-P4,c=32)/rpn/2fc'), { profile: 'toy' }), minBlocks: 4, maxBlocks: 7 },
      { ...stageTwoSpaceFrom(parseArch('64x64/bottleneck_16_11-21-21-21/none/rpn/2fc'), { profile: 'toy' }), minBlocks: 5, maxBlocks: 6 },
    ]) {
      const all = [...enumerateArchs(space)].map(formatArch);
      expect(all.length).toBe(spaceSize(space));
      expect(new Set(all).size).toBe(all.length);
      for (const s of all.slice(0, 500)) expect(outsideSpace(space, parseArch(s))).toBeUndefined();
    }
  });

  test('outsideSpace explains why', () => {
    const s = stageTwoSpaceFrom(parseArch('512x512/resnet18/fpn(P2-P5,c=256)/rpn/2fc'), { profile: 'paper' });
    expect(outsideSpace(s, parseArch('512x512/basicblock_48_11-21-21-21/fpn(P2-P5,c=100)/rpn/2fc'))).toMatch(/FPN channels 100/);
    expect(outsideSpace(s, parseArch('512x512/basicblock_40_11-21-21-21/fpn(P2-P5,c=128)/rpn/2fc'))).toMatch(/base 40/);
    expect(outsideSpace(s, parseArch('512x512/basicblock_48_11-22-21-21/fpn(P2-P5,c=128)/rpn/2fc'))).toMatch(/4 doublings/);
    expect(outsideSpace(s, parseArch('512x512/bottleneck_48_11-21-21-21/fpn(P2-P5,c=128)/rpn/2fc'))).toMatch(/block must be basicblock/);
    expect(outsideSpace(s, parseArch('512x512/resnet18/fpn(P2-P5,c=128)/rpn/2fc'))).toBeUndefined();
  });
});
