/**
 * A small seedable PRNG (xoshiro128**) whose whole state is four uint32 numbers, a plain
 * JSON value: a Temporal workflow can carry it across continue-as-new and resume the exact same
 * random stream. Never use Math.random in the search library: every run must be reproducible
 * from the campaign seed.
 *
 * Pure: no Node APIs.
 */
import { z } from 'zod';

export const RngStateSchema = z.object({
  algorithm: z.literal('xoshiro128**'),
  s: z.array(z.number().int().min(0).max(0xffffffff)).length(4),
});
export type RngState = z.infer<typeof RngStateSchema>;

/** splitmix32: spreads a seed's bits so nearby seeds give unrelated streams. */
function splitmix32(x: number): [number, number] {
  x = (x + 0x9e3779b9) >>> 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return [x, (z ^ (z >>> 16)) >>> 0];
}

export class Rng {
  private s: [number, number, number, number];

  /** seed: any finite number (integers up to 2^53 use all their bits), or a saved state. */
  constructor(seed: number | RngState) {
    if (typeof seed === 'number') {
      if (!Number.isFinite(seed)) throw new RangeError(`Rng seed must be a finite number, got ${seed}`);
      const lo = Math.trunc(seed) >>> 0;
      const hi = Math.floor(Math.trunc(seed) / 2 ** 32) >>> 0;
      let x = (lo ^ Math.imul(hi, 0x27d4eb2d)) >>> 0;
      const s: number[] = [];
      for (let i = 0; i < 4; i++) {
        const [nx, out] = splitmix32(x);
        x = nx;
        s.push(out);
      }
      if (!s.some((v) => v !== 0)) s[0] = 1; // the all-zero state is a fixed point
      this.s = s as [number, number, number, number];
    } else {
      const st = RngStateSchema.parse(seed);
      if (st.s.every((v) => v === 0)) throw new RangeError('Rng state must not be all zeros');
      this.s = [st.s[0], st.s[1], st.s[2], st.s[3]];
    }
  }

  /** next uint32 */
  nextUint32(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] = (s[2] ^ s[0]) >>> 0;
    s[3] = (s[3] ^ s[1]) >>> 0;
    s[1] = (s[1] ^ s[2]) >>> 0;
    s[0] = (s[0] ^ s[3]) >>> 0;
    s[2] = (s[2] ^ t) >>> 0;
    s[3] = rotl(s[3], 11);
    return r;
  }

  /** uniform in [0, 1) with 53 random bits */
  next(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** uniform integer in [0, n) without modulo bias; n a positive integer up to 2^53 */
  int(n: number): number {
    if (!(Number.isInteger(n) && n > 0 && n <= 2 ** 53)) throw new RangeError(`Rng.int: n must be a positive integer up to 2^53, got ${n}`);
    if (n <= 0x100000000) {
      // rejection sampling on 32 bits
      const limit = 0x100000000 - (0x100000000 % n);
      for (;;) {
        const x = this.nextUint32();
        if (x < limit) return x % n;
      }
    }
    // large n: rejection on 53-bit draws
    const limit = 2 ** 53 - (2 ** 53 % n);
    for (;;) {
      const x = Math.floor(this.next() * 2 ** 53);
      if (x < limit) return x % n;
    }
  }

  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new RangeError('Rng.pick: empty list');
    return xs[this.int(xs.length)];
  }

  /** Fisher-Yates, in place; returns the same array */
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  }

  /** k distinct indices of [0, n) in increasing order, uniform over all subsets */
  subset(n: number, k: number): number[] {
    if (k > n || k < 0) throw new RangeError(`Rng.subset: cannot pick ${k} of ${n}`);
    // Floyd's algorithm: O(k) draws
    const chosen = new Set<number>();
    for (let j = n - k; j < n; j++) {
      const t = this.int(j + 1);
      chosen.add(chosen.has(t) ? j : t);
    }
    return [...chosen].sort((a, b) => a - b);
  }

  /** a copy of the whole state, plain JSON */
  state(): RngState {
    return { algorithm: 'xoshiro128**', s: [...this.s] };
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
