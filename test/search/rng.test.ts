import fc from 'fast-check';
import { Rng } from '../../search/rng';

describe('Rng', () => {
  test('same seed, same stream; different seeds differ', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xs = Array.from({ length: 50 }, () => a.nextUint32());
    expect(Array.from({ length: 50 }, () => b.nextUint32())).toEqual(xs);
    expect(Array.from({ length: 50 }, () => c.nextUint32())).not.toEqual(xs);
  });

  test('state survives a JSON round trip mid-stream (continue-as-new)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 53 - 1 }), fc.integer({ min: 0, max: 100 }), (seed, skip) => {
        const a = new Rng(seed);
        for (let i = 0; i < skip; i++) a.next();
        const b = new Rng(JSON.parse(JSON.stringify(a.state())));
        for (let i = 0; i < 20; i++) expect(b.int(1000)).toBe(a.int(1000));
      }),
      { numRuns: 100 },
    );
  });

  test('next() in [0,1) and int(n) roughly uniform (chi-square, 10 bins)', () => {
    const r = new Rng(7);
    const bins = new Array(10).fill(0);
    const n = 100000;
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < n; i++) {
      const x = r.next();
      lo = Math.min(lo, x);
      hi = Math.max(hi, x);
      bins[r.int(10)]++;
    }
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThan(1);
    const chi2 = bins.reduce((s, o) => s + (o - n / 10) ** 2 / (n / 10), 0);
    expect(chi2).toBeLessThan(27.9); // p = 0.001 at 9 degrees of freedom
  });

  test('subset gives k distinct sorted indices; shuffle is a permutation', () => {
    const r = new Rng(1);
    const s = r.subset(20, 7);
    expect(s.length).toBe(7);
    expect(new Set(s).size).toBe(7);
    expect([...s].sort((a, b) => a - b)).toEqual(s);
    expect(r.shuffle([1, 2, 3, 4, 5]).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(r.int(2 ** 40)).toBeLessThan(2 ** 40);
    expect(() => r.int(0)).toThrow(/positive integer/);
    expect(() => new Rng({ algorithm: 'xoshiro128**', s: [0, 0, 0, 0] })).toThrow(/all zeros/);
  });
});
