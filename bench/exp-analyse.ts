/**
 * Analysis of an experiment campaign (bench/exp-search.sh) for docs/experiments.md:
 *  (b) each stage-one candidate against its stage-two search (the paper's Fig. 4): the candidate's
 *      own stage-two evaluation (the stage's first, see docs/campaign.md "The candidate in its
 *      stage-two front"), the stage-two members that dominate it (GFLOPs <=, mAP >=, one strictly),
 *      the best stage-two mAP;
 *  (c) the paper's Fig. 5: rank correlation (Spearman) of input size, backbone depth and block
 *      kind, FPN levels and head with mAP and latency, over every stage-one model and over the
 *      stage-one Pareto front; mean mAP / latency per module choice.
 * Reads the campaign folder (results.jsonl, candidates.json, fronts.json); writes <out>.md and
 * <out>.json. Usage: node dist/bench/exp-analyse.js --campaign-dir <dir> --out <prefix> [--latency <file.jsonl>]
 * --latency: stage-one latencies measured again (bench/exp-latency.sh) replace the campaign's own.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  parseArch,
  resolveBackboneBlocks,
  stageTwoSpaceFrom,
  outsideSpace,
  usedBackboneStages,
  usedLayersString,
  nonDominatedSort,
  type Arch,
} from '../search';
import { readResultsText } from '../activities/artifact-store';

interface Line {
  stage: string;
  arch: string;
  kind: string;
  mAP: number | null;
  gflops: number | null;
  latencyMs: number | null;
  wallSeconds: number;
}

function args(): { dir: string; out: string; latency?: string } {
  const a = process.argv.slice(2);
  const get = (k: string) => {
    const i = a.indexOf(k);
    if (i < 0 || !a[i + 1]) {
      process.stderr.write(`usage: exp-analyse --campaign-dir <dir> --out <prefix>  (missing ${k})\n`);
      process.exit(2);
    }
    return a[i + 1];
  };
  const li = a.indexOf('--latency');
  return { dir: get('--campaign-dir'), out: get('--out'), latency: li >= 0 ? get('--latency') : undefined };
}

function readJson<T>(file: string): T {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (e) {
    process.stderr.write(`exp-analyse: ${file}: ${(e as Error).message}\n`);
    process.exit(1);
  }
}

/** average ranks (ties share the mean rank) */
function ranks(xs: number[]): number[] {
  const idx = xs.map((x, i) => [x, i] as const).sort((p, q) => p[0] - q[0]);
  const r = new Array<number>(xs.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1][0] === idx[i][0]) j++;
    for (let k = i; k <= j; k++) r[idx[k][1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

function pearson(x: number[], y: number[]): number | null {
  const n = x.length;
  if (n < 3) return null;
  const mx = x.reduce((s, v) => s + v, 0) / n;
  const my = y.reduce((s, v) => s + v, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  return sxx === 0 || syy === 0 ? null : sxy / Math.sqrt(sxx * syy);
}

export const spearman = (x: number[], y: number[]): number | null => pearson(ranks(x), ranks(y));

/** The numeric factors of Fig. 5 for one stage-one architecture. */
function factors(a: Arch): Record<string, number> {
  const used = usedBackboneStages(a.neck);
  const blocks = resolveBackboneBlocks(a.backbone).slice(0, used);
  return {
    'input (pixels)': a.input.width * a.input.height,
    'backbone depth (built blocks)': blocks.reduce((s, b) => s + b, 0),
    'FPN first level': a.neck.kind === 'fpn' ? a.neck.from : 0,
    'FPN last level': a.neck.kind === 'fpn' ? a.neck.to : 0,
    'FPN levels': a.neck.kind === 'fpn' ? a.neck.to - a.neck.from + 1 : 0,
    'head stages (2fc 1, cascade n)': a.head.kind === 'cascade' ? a.head.stages : 1,
  };
}

const blockOf = (a: Arch) => (a.backbone.kind === 'named' ? a.backbone.name : a.backbone.block);
const headOf = (a: Arch) => (a.head.kind === 'cascade' ? `cascade(n=${a.head.stages})` : a.head.kind);
const f = (v: number | null, d = 3) => (v === null ? '-' : v.toFixed(d));
const dominates = (p: { c: number; m: number }, q: { c: number; m: number }) => p.c <= q.c && p.m >= q.m && (p.c < q.c || p.m > q.m);

function main(): void {
  const { dir, out, latency } = args();
  const remeasured = latency
    ? new Map(
        fs
          .readFileSync(latency, 'utf8')
          .split('\n')
          .filter((l) => l.trim())
          .map((l) => JSON.parse(l) as { arch: string; medianMs: number })
          .map((r) => [r.arch, r.medianMs] as const),
      )
    : undefined;
  const lines = readResultsText(dir)
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Line)
    .map((l) => (remeasured && l.stage === 'structural' && remeasured.has(l.arch) ? { ...l, latencyMs: remeasured.get(l.arch)! } : l));
  const { selected } = readJson<{ selected: string[] }>(path.join(dir, 'candidates.json'));
  const md: string[] = [];
  const json: Record<string, unknown> = { campaignDir: dir };

  // ---- (b) candidates against their stage-two searches
  const modular = lines.filter((l) => l.stage === 'modular' && l.mAP !== null && l.gflops !== null);
  const rowsB = selected.map((cand) => {
    const seedArch = usedLayersString(cand);
    const s1 = lines.find((l) => l.stage === 'structural' && l.arch === cand) ?? null;
    const space = stageTwoSpaceFrom(parseArch(cand), { profile: 'toy', usedLayers: true });
    const members = modular.filter((l) => l.arch === seedArch || outsideSpace(space, parseArch(l.arch)) === undefined);
    const seed = members.find((l) => l.arch === seedArch) ?? null;
    const others = members.filter((l) => l !== seed);
    const dominating = seed ? others.filter((l) => dominates({ c: l.gflops!, m: l.mAP! }, { c: seed.gflops!, m: seed.mAP! })) : [];
    const best = members.reduce<Line | null>((b, l) => (!b || l.mAP! > b.mAP! ? l : b), null);
    return {
      candidate: cand,
      stageOneMap: s1?.mAP ?? null,
      seedMap: seed?.mAP ?? null,
      seedGflops: seed?.gflops ?? null,
      members: members.length,
      dominating: dominating.map((l) => ({ arch: l.arch, mAP: l.mAP, gflops: l.gflops })),
      best: best && { arch: best.arch, mAP: best.mAP, gflops: best.gflops },
    };
  });
  json.b = rowsB;
  md.push('### (b) stage-two searches against their candidates', '');
  md.push(
    '| candidate | stage-one mAP | candidate, stage-two recipe: mAP / GFLOPs | stage-two evaluations | members dominating it | best stage-two mAP (GFLOPs) |',
  );
  md.push('|---|---|---|---|---|---|');
  for (const r of rowsB)
    md.push(
      `| \`${r.candidate}\` | ${f(r.stageOneMap)} | ${f(r.seedMap)} / ${f(r.seedGflops)} | ${r.members} | ${r.dominating.length} | ${r.best ? `${f(r.best.mAP)} (${f(r.best.gflops)})` : '-'} |`,
    );
  md.push('');
  for (const r of rowsB) for (const d of r.dominating) md.push(`- dominates \`${r.candidate}\`: \`${d.arch}\` (mAP ${f(d.mAP)}, ${f(d.gflops)} GFLOPs)`);
  md.push('');

  // ---- (c) Fig. 5 correlations over stage one
  const s1 = lines.filter((l) => l.stage === 'structural' && l.mAP !== null && l.latencyMs !== null);
  const front = new Set((nonDominatedSort(s1.map((l) => ({ cost: l.latencyMs!, score: l.mAP! }))).fronts[0] ?? []).map((i) => s1[i].arch));
  const sets = { all: s1, front: s1.filter((l) => front.has(l.arch)) };
  const names = Object.keys(factors(parseArch(s1[0]?.arch ?? '64x64/resnet18/none/rpn/2fc')));
  const corr: Record<string, Record<string, { mAP: number | null; latency: number | null; n: number }>> = {};
  for (const [setName, set] of Object.entries(sets)) {
    corr[setName] = {};
    const fx = set.map((l) => factors(parseArch(l.arch)));
    for (const n of names) {
      const x = fx.map((v) => v[n]);
      corr[setName][n] = {
        mAP: spearman(
          x,
          set.map((l) => l.mAP!),
        ),
        latency: spearman(
          x,
          set.map((l) => l.latencyMs!),
        ),
        n: set.length,
      };
    }
  }
  json.c = { correlations: corr, n: { all: sets.all.length, front: sets.front.length } };
  md.push(
    `### (c) Fig. 5 at toy scale: Spearman rank correlation with mAP and latency (stage one: ${sets.all.length} models, ${sets.front.length} on the front; latency ${latency ? `re-measured, ${latency}` : 'as the campaign measured it'})`,
    '',
  );
  md.push('| factor | ρ mAP, all | ρ latency, all | ρ mAP, front | ρ latency, front |');
  md.push('|---|---|---|---|---|');
  for (const n of names)
    md.push(`| ${n} | ${f(corr.all[n].mAP, 2)} | ${f(corr.all[n].latency, 2)} | ${f(corr.front[n].mAP, 2)} | ${f(corr.front[n].latency, 2)} |`);
  md.push('');
  for (const [title, key] of [
    ['backbone', blockOf],
    ['head', headOf],
  ] as const) {
    const groups = new Map<string, Line[]>();
    for (const l of s1) {
      const k = key(parseArch(l.arch));
      groups.set(k, [...(groups.get(k) ?? []), l]);
    }
    md.push(`| ${title} | models | mean mAP | mean latency ms | on the front |`, '|---|---|---|---|---|');
    for (const [k, ls] of [...groups].sort()) {
      const mean = (xs: number[]) => xs.reduce((s, v) => s + v, 0) / xs.length;
      md.push(
        `| ${k} | ${ls.length} | ${f(mean(ls.map((l) => l.mAP!)))} | ${f(mean(ls.map((l) => l.latencyMs!)), 1)} | ${ls.filter((l) => front.has(l.arch)).length} |`,
      );
    }
    md.push('');
  }
  json.points = s1.map((l) => ({ arch: l.arch, mAP: l.mAP, latencyMs: l.latencyMs, front: front.has(l.arch), ...factors(parseArch(l.arch)) }));
  fs.writeFileSync(`${out}.md`, md.join('\n') + '\n');
  fs.writeFileSync(`${out}.json`, JSON.stringify(json, null, 1) + '\n');
  process.stdout.write(md.join('\n') + '\n');
}

if (require.main === module) main();
