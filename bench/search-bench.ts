/**
 * Search-library benchmarks (results in BENCHMARKS.md, "Search library"):
 *   npx tsc -p tsconfig.json && node dist/bench/search-bench.js [--quick]
 *
 * 1. Non-dominated sorting of 1e4 / 1e5 / 1e6 random points with ties, against Deb's O(N^2)
 *    fast-non-dominated-sort (the usual simple implementation) at 1e4 in the same run.
 * 2. Cost model throughput: whole-detector cost from the notation string (parse + resolve + cost)
 *    and from a pre-resolved layout, on paper stage-two architectures.
 * 3. Sampling throughput: stage-two uniform sampler vs a naive rejection sampler (random codes
 *    until one is in the space) on the same space.
 * 4. A stage-two search stage's search steps: batches of 12 proposals (with Partial Order
 *    Pruning) up to ~2,460 evaluations, with the ProposeMemo a stage keeps between batches vs
 *    without it (the same proposals, checked).
 */
import { detectorCost, layoutCost } from '../search/cost';
import { type Evaluated, ProposeMemo, flopsPruningCost, proposeCandidates } from '../search/evolution';
import { resolveLayout } from '../search/layout-resolve';
import { formatArch, parseArch } from '../search/notation';
import { nonDominatedSort, type Point } from '../search/pareto';
import { Rng } from '../search/rng';
import { type StageTwoSpace, inSpace, sampleArch, stageTwoSpaceFrom } from '../search/space';

const quick = process.argv.includes('--quick');

function time<T>(f: () => T): { ms: number; value: T } {
  const t0 = process.hrtime.bigint();
  const value = f();
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, value };
}

/** best of `reps` runs (the machine is shared; the minimum is the least disturbed) */
function best<T>(reps: number, f: () => T): { ms: number; value: T } {
  let b = time(f);
  for (let i = 1; i < reps; i++) {
    const t = time(f);
    if (t.ms < b.ms) b = t;
  }
  return b;
}

function randomPoints(n: number, rng: Rng): Point[] {
  // integer costs and 3-decimal scores: plenty of ties and duplicates
  return Array.from({ length: n }, () => ({ cost: rng.int(Math.max(10, n / 10)), score: Math.round(rng.next() * 1000) / 1000 }));
}

/** Deb et al.'s fast non-dominated sort, O(N^2): the simple reference. */
function debSort(p: Point[]): Int32Array {
  const n = p.length;
  const count = new Int32Array(n);
  const dominatedBy: number[][] = Array.from({ length: n }, () => []);
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) {
      const a = p[i];
      const b = p[j];
      if (a.cost <= b.cost && a.score >= b.score && (a.cost < b.cost || a.score > b.score)) {
        dominatedBy[i].push(j);
        count[j]++;
      } else if (b.cost <= a.cost && b.score >= a.score && (b.cost < a.cost || b.score > a.score)) {
        dominatedBy[j].push(i);
        count[i]++;
      }
    }
  const rank = new Int32Array(n);
  let front = [];
  for (let i = 0; i < n; i++) if (count[i] === 0) front.push(i);
  for (let r = 0; front.length; r++) {
    const next: number[] = [];
    for (const i of front) {
      rank[i] = r;
      for (const j of dominatedBy[i]) if (--count[j] === 0) next.push(j);
    }
    front = next;
  }
  return rank;
}

/** naive sampler: random code lengths and characters until the code is in the space */
function naiveSample(space: StageTwoSpace, rng: Rng): { arch: ReturnType<typeof sampleArch>; tries: number } {
  const t = space.template;
  for (let tries = 1; ; tries++) {
    const stages = [0, 1, 2, 3].map(() => {
      const len = 1 + rng.int(Math.ceil(space.maxBlocks / 2));
      let s = '';
      for (let i = 0; i < len; i++) s += rng.int(8) === 0 ? '2' : '1';
      return s;
    });
    const neck = t.neck.kind === 'fpn' ? { ...t.neck, channels: rng.pick(space.fpnChannels) } : t.neck;
    const arch = { ...t, backbone: { kind: 'encoded' as const, block: space.block, base: rng.pick(space.bases), stages }, neck };
    if (inSpace(space, arch)) return { arch, tries };
  }
}

const rows: string[][] = [];
const log = (...r: string[]) => {
  rows.push(r);
  process.stderr.write(r.join('  ') + '\n');
};

// 1. sorting
{
  const rng = new Rng(1);
  const p4 = randomPoints(1e4, rng);
  const ref = best(quick ? 1 : 3, () => debSort(p4));
  const ours4 = best(5, () => nonDominatedSort(p4));
  if (Array.from(ours4.value.ranks).some((r, i) => r !== ref.value[i])) throw new Error('sort mismatch with the reference');
  log('sort 1e4 points', `${ours4.ms.toFixed(1)} ms`, `Deb O(N^2) reference ${ref.ms.toFixed(1)} ms`, `${(ref.ms / ours4.ms).toFixed(0)}x faster`);
  for (const n of quick ? [1e5] : [1e5, 1e6]) {
    const pts = randomPoints(n, rng);
    const t = best(3, () => nonDominatedSort(pts));
    // the reference's cost grows as N^2: extrapolated from its 1e4 time
    const refEst = ref.ms * (n / 1e4) ** 2;
    log(
      `sort ${n.toExponential(0)} points`,
      `${t.ms.toFixed(0)} ms (${t.value.fronts.length} fronts)`,
      `reference extrapolated ${(refEst / 1000).toFixed(0)} s`,
      `${(refEst / t.ms).toFixed(0)}x`,
    );
  }
}

// 2. cost model
{
  const space = stageTwoSpaceFrom(parseArch('800x600/resnet50/fpn(P1-P5,c=256)/rpn/cascade(n=3)'), { profile: 'paper' });
  const rng = new Rng(2);
  const archs = Array.from({ length: quick ? 2000 : 10000 }, () => formatArch(sampleArch(space, rng)));
  const opts = { numClasses: 80, fcWidth: 1024, rois: 1000 };
  const full = best(3, () => archs.reduce((s, a) => s + detectorCost(a, opts).flops, 0));
  const layouts = archs.map((a) => resolveLayout(a, opts));
  const fromLayout = best(3, () => layouts.reduce((s, l) => s + layoutCost(l, 1000).flops, 0));
  const resolveOnly = best(3, () => archs.reduce((s, a) => s + resolveLayout(a, opts).backbone.stemChannels, 0));
  const rate = (ms: number) => ((archs.length / ms) * 1000).toFixed(0);
  log(
    'cost from notation (parse+resolve+cost)',
    `${rate(full.ms)} archs/s`,
    `parse+resolve alone ${rate(resolveOnly.ms)} archs/s`,
    `cost from layout ${rate(fromLayout.ms)} archs/s`,
  );
}

// 3. sampling
{
  const space = stageTwoSpaceFrom(parseArch('800x600/resnet50/fpn(P1-P5,c=256)/rpn/cascade(n=3)'), { profile: 'paper' });
  const n = quick ? 2000 : 20000;
  const rng = new Rng(3);
  const ours = best(3, () => {
    let k = 0;
    for (let i = 0; i < n; i++) k += formatArch(sampleArch(space, rng)).length;
    return k;
  });
  const nRef = Math.max(200, n / 20);
  let tries = 0;
  const ref = best(1, () => {
    for (let i = 0; i < nRef; i++) tries += naiveSample(space, rng).tries;
  });
  const rateOurs = (n / ours.ms) * 1000;
  const rateRef = (nRef / ref.ms) * 1000;
  log(
    'stage-two sampling',
    `${rateOurs.toFixed(0)} samples/s`,
    `naive rejection sampler ${rateRef.toFixed(0)} samples/s (${(tries / nRef).toFixed(0)} tries/sample)`,
    `${(rateOurs / rateRef).toFixed(1)}x`,
  );
}

// 4. search steps of a long stage-two stage
{
  const space = stageTwoSpaceFrom(parseArch('1080x720/resnext101_32x4d/none/ga-rpn/cascade(n=4)'), { profile: 'paper' });
  const pruningCost = flopsPruningCost({ numClasses: 80, fcWidth: 1024 });
  const batches = quick ? 60 : 205;
  const score = (id: string) => ([...id].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7) % 1000) / 2000; // any fixed function of the string
  const stage = (memo?: ProposeMemo) => {
    const rng = new Rng(4);
    const evaluated: Evaluated[] = [];
    const ids: string[] = [];
    for (let b = 0; b < batches; b++) {
      const r = proposeCandidates({ space, evaluated, rng, count: 12, initialPopulation: 50, pruningCost, memo });
      for (const p of r.proposals) {
        ids.push(p.arch);
        evaluated.push({ arch: p.arch, cost: pruningCost(parseArch(p.arch)) / 1e9, score: score(p.arch) });
      }
    }
    return ids;
  };
  const withMemo = best(1, () => stage(new ProposeMemo()));
  const without = best(1, () => stage());
  if (withMemo.value.join() !== without.value.join()) throw new Error('ProposeMemo changed the proposals');
  log(
    `stage-two search steps (${batches} batches of 12, up to ${withMemo.value.length} evaluated)`,
    `${withMemo.ms.toFixed(0)} ms with ProposeMemo`,
    `${without.ms.toFixed(0)} ms without`,
    `${(without.ms / withMemo.ms).toFixed(1)}x`,
  );
}

process.stdout.write('| benchmark | result | reference (same run) | ratio |\n|---|---|---|---|\n' + rows.map((r) => `| ${r.join(' | ')} |`).join('\n') + '\n');
