import fc from 'fast-check';
import { crowdingDistance, dominates, naiveNonDominatedSort, nonDominatedSort, type Point } from '../../search/pareto';

// small integer grids make ties in cost, in score and exact duplicates common
const pointsArb = fc.array(fc.record({ cost: fc.integer({ min: 0, max: 8 }), score: fc.integer({ min: 0, max: 8 }) }), { maxLength: 120 });
const floatPointsArb = fc.array(
  fc.record({ cost: fc.double({ noNaN: true, noDefaultInfinity: true }), score: fc.double({ noNaN: true, noDefaultInfinity: true }) }),
  { maxLength: 60 },
);

describe('non-dominated sorting', () => {
  test('equals the O(N^2) reference on random point sets with ties (ranks and fronts)', () => {
    fc.assert(
      fc.property(pointsArb, (pts) => {
        const fast = nonDominatedSort(pts);
        const ref = naiveNonDominatedSort(pts);
        expect(Array.from(fast.ranks)).toEqual(Array.from(ref.ranks));
        expect(fast.fronts).toEqual(ref.fronts);
      }),
      { numRuns: 400 },
    );
    fc.assert(
      fc.property(floatPointsArb, (pts) => {
        expect(Array.from(nonDominatedSort(pts).ranks)).toEqual(Array.from(naiveNonDominatedSort(pts).ranks));
      }),
      { numRuns: 200 },
    );
  });

  test('fronts are internally non-dominated and every point of rank k>0 is dominated by one of rank k-1', () => {
    fc.assert(
      fc.property(pointsArb, (pts) => {
        const { fronts } = nonDominatedSort(pts);
        fronts.forEach((f, k) => {
          for (const i of f) for (const j of f) expect(dominates(pts[i], pts[j])).toBe(false);
          if (k > 0) for (const i of f) expect(fronts[k - 1].some((j) => dominates(pts[j], pts[i]))).toBe(true);
        });
      }),
      { numRuns: 200 },
    );
  });

  test('hand example: duplicates share a rank, equal cost with a higher score dominates', () => {
    const pts: Point[] = [
      { cost: 1, score: 0.3 }, // 0: front
      { cost: 1, score: 0.3 }, // 1: duplicate of 0, same rank
      { cost: 1, score: 0.2 }, // 2: same cost, lower score: rank 1
      { cost: 2, score: 0.5 }, // 3: front
      { cost: 3, score: 0.5 }, // 4: same score, higher cost: rank 1
      { cost: 4, score: 0.1 }, // 5: dominated by 2 (rank 1) -> rank 2
    ];
    const { ranks, fronts } = nonDominatedSort(pts);
    expect(Array.from(ranks)).toEqual([0, 0, 1, 0, 1, 2]);
    expect(fronts).toEqual([[0, 1, 3], [2, 4], [5]]);
  });

  test('NaN is rejected naming the point', () => {
    expect(() =>
      nonDominatedSort([
        { cost: 1, score: 1 },
        { cost: NaN, score: 1 },
      ]),
    ).toThrow(/point 1: cost and score must be finite/);
  });
});

describe('crowding distance', () => {
  test('extremes are infinite, interior is the normalised neighbour gap summed over objectives', () => {
    const pts: Point[] = [
      { cost: 0, score: 0 },
      { cost: 1, score: 0.5 },
      { cost: 3, score: 0.6 },
      { cost: 4, score: 1 },
    ];
    const d = crowdingDistance(pts, [0, 1, 2, 3]);
    expect(d[0]).toBe(Infinity);
    expect(d[3]).toBe(Infinity);
    expect(d[1]).toBeCloseTo(3 / 4 + 0.6 / 1);
    expect(d[2]).toBeCloseTo(3 / 4 + 0.5 / 1);
  });

  test('small fronts are all infinite; duplicates get equal distances', () => {
    expect(
      crowdingDistance(
        [
          { cost: 1, score: 1 },
          { cost: 2, score: 2 },
        ],
        [0, 1],
      ),
    ).toEqual([Infinity, Infinity]);
    const pts: Point[] = [
      { cost: 0, score: 0 },
      { cost: 2, score: 2 },
      { cost: 2, score: 2 },
      { cost: 4, score: 4 },
    ];
    const d = crowdingDistance(pts, [0, 1, 2, 3]);
    expect(d[1]).toBe(d[2]);
    expect(d[1]).toBeCloseTo(2);
  });
});
