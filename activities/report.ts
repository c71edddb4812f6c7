/**
 * Report writing (control queue): the campaign's fronts, selected candidates, final table and
 * Pareto plots (mAP vs latency for stage one, vs GFLOPs for stage two, front highlighted) as files
 * in the campaign's artifact folder. All points come from the campaign's results log.
 */
import * as path from 'node:path';
import type { ActivityDeps } from './index';
import { ArtifactStore, writeFileAtomic } from './artifact-store';
import { ReportInputSchema, type FinalRow, type ReportInput, type ReportOutput } from './types';
import type { TransferMetric } from '../protocol/campaign';

export interface PlotPoint {
  x: number;
  y: number;
  label: string;
  front: boolean;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A dependency-free SVG scatter plot; front points filled and joined by a step line. Pure. */
export function paretoSvg(title: string, xLabel: string, points: PlotPoint[]): string {
  const W = 640, H = 420, L = 60, R = 20, T = 40, B = 50;
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  const [x0, x1] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
  const [y0, y1] = ys.length ? [Math.min(...ys), Math.max(...ys)] : [0, 1];
  const sx = (x: number) => L + ((x - x0) / (x1 - x0 || 1)) * (W - L - R);
  const sy = (y: number) => H - B - ((y - y0) / (y1 - y0 || 1)) * (H - T - B);
  const front = points.filter((p) => p.front).sort((a, b) => a.x - b.x);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
    `<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text x="16" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(T + H - B) / 2})">mAP (COCO AP)</text>`,
  ];
  for (const [v, anchor] of [[x0, 'start'], [x1, 'end']] as const) parts.push(`<text x="${sx(v)}" y="${H - B + 14}" text-anchor="${anchor}">${v.toPrecision(3)}</text>`);
  for (const v of [y0, y1]) parts.push(`<text x="${L - 4}" y="${sy(v) + 4}" text-anchor="end">${v.toFixed(3)}</text>`);
  if (front.length > 1) parts.push(`<polyline fill="none" stroke="#d62728" stroke-width="1.5" points="${front.map((p) => `${sx(p.x)},${sy(p.y)}`).join(' ')}"/>`);
  for (const p of points) {
    parts.push(
      `<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="${p.front ? 5 : 3.5}" fill="${p.front ? '#d62728' : 'none'}" stroke="${p.front ? '#d62728' : '#1f77b4'}"><title>${esc(p.label)} mAP=${p.y.toFixed(4)} cost=${p.x.toPrecision(4)}</title></circle>`,
    );
  }
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

interface LogLine {
  key: string;
  stage: string;
  arch: string;
  mAP: number | null;
  latencyMs: number | null;
  gflops: number | null;
}

const fmt = (v: number | null | undefined, digits = 3) => (v === null || v === undefined ? '-' : v.toFixed(digits));

/** Column titles of the transfer metrics (protocol/campaign.ts TRANSFER_METRICS). */
const TRANSFER_METRIC_TITLES: Record<TransferMetric, string> = {
  'voc-map50': 'VOC mAP@0.5',
  'voc07-map50': 'VOC07 mAP@0.5 (11-point)',
  'bdd-ap': 'BDD AP',
  'coco-ap': 'mAP',
};

export function makeReportActivities(deps: ActivityDeps, store: (root?: string) => ArtifactStore) {
  async function writeReport(input: ReportInput & { artifactRoot?: string }): Promise<ReportOutput> {
    const r = ReportInputSchema.parse(input);
    const dir = r.campaignDir;
    const files: string[] = [];
    const put = (name: string, text: string) => {
      writeFileAtomic(path.join(dir, name), text);
      files.push(name);
    };
    put('fronts.json', JSON.stringify({ structural: r.structuralFront, modular: r.modularFronts }, null, 1) + '\n');
    put('candidates.json', JSON.stringify({ selected: r.selected }, null, 1) + '\n');
    put('final.json', JSON.stringify(r.finalTable, null, 1) + '\n');

    const results = store(input.artifactRoot).readResultsLog<LogLine>(r.campaignId);
    const frontKeys = new Set([...r.structuralFront.map((p) => p.key), ...Object.values(r.modularFronts).flat().map((p) => p.key)]);
    const s1 = results.filter((l) => l.stage === 'structural' && l.mAP !== null && l.latencyMs !== null);
    const s2 = results.filter((l) => l.stage === 'modular' && l.mAP !== null && l.gflops !== null);
    put('pareto-structural.svg', paretoSvg('Stage one: mAP vs latency', 'latency (ms, median)', s1.map((l) => ({ x: l.latencyMs!, y: l.mAP!, label: l.arch, front: frontKeys.has(l.key) }))));
    put('pareto-modular.svg', paretoSvg('Stage two: mAP vs FLOPs', 'GFLOPs', s2.map((l) => ({ x: l.gflops!, y: l.mAP!, label: l.arch, front: frontKeys.has(l.key) }))));

    const transferNames = [...new Set(r.finalTable.flatMap((row) => Object.keys(row.transfer)))].sort();
    // each transfer set's own metric, then COCO-style AP on the same split where it differs
    const transferColumns = transferNames.flatMap((n) => {
      const metric = r.transferMetrics?.[n] ?? 'coco-ap';
      const own = { title: `${n} ${TRANSFER_METRIC_TITLES[metric]}`, value: (row: FinalRow) => row.transfer[n] };
      const hasCoco = metric !== 'coco-ap' && r.finalTable.some((row) => row.transferCocoAP?.[n] !== undefined);
      return hasCoco ? [own, { title: `${n} COCO AP`, value: (row: FinalRow) => row.transferCocoAP?.[n] ?? null }] : [own];
    });
    const md = [
      `# SM-NAS campaign ${r.campaignId}`,
      '',
      `Evaluations logged: ${results.length} (results.jsonl). Plots: pareto-structural.svg, pareto-modular.svg.`,
      '',
      '## Stage one front (latency vs mAP)',
      '',
      '| architecture | mAP | latency ms |',
      '|---|---|---|',
      ...r.structuralFront.map((p) => `| ${p.arch} | ${fmt(p.mAP, 4)} | ${fmt(p.cost, 2)} |`),
      '',
      '## Selected candidates',
      '',
      ...r.selected.map((a, i) => `- C${i}: ${a}`),
      '',
      '## Stage two fronts (GFLOPs vs mAP)',
      '',
      ...Object.entries(r.modularFronts).flatMap(([cand, pts]) => [
        `### around ${cand}`,
        '',
        '| architecture | mAP | GFLOPs |',
        '|---|---|---|',
        ...pts.map((p) => `| ${p.arch} | ${fmt(p.mAP, 4)} | ${fmt(p.cost, 3)} |`),
        '',
      ]),
      '## Final models',
      '',
      `| model | architecture | pretrain top-1 | final mAP | GFLOPs | latency ms | ${transferColumns.map((c) => c.title).join(' | ')} |`,
      `|---|---|---|---|---|---|${transferColumns.map(() => '---|').join('')}`,
      ...r.finalTable.map(
        (row, i) =>
          `| E${i} | ${row.arch} | ${fmt(row.pretrainTop1)} | ${fmt(row.finalMap, 4)} | ${fmt(row.gflops)} | ${fmt(row.latencyMs, 2)} | ${transferColumns.map((c) => fmt(c.value(row), 4)).join(' | ')} |`,
      ),
      '',
    ].join('\n');
    put('report.md', md);
    deps.logger.info({ dir, files: files.length }, 'campaign report written');
    return { dir, files };
  }
  return { writeReport };
}
