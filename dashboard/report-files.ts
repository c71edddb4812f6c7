/**
 * The campaign report as files: report.html (the dashboard's views in one self-contained file),
 * the figures in the paper's style as SVG and PNG, and report.md (counts and tables). Written by
 * the campaign's writeReport activity at the end and by `bin/smnas search report <id>`.
 * Every file is written atomically.
 */
import * as path from 'node:path';
import { writeFileAtomic } from '../activities/artifact-store';
import { campaignCharts, CHART_TITLES, withData, type ChartName } from './charts';
import { buildCampaignView, EVAL_STAGES, type CampaignView, type TemporalInfo, type ViewOptions } from './model';
import { staticReport } from './page';
import { renderSvg, svgToPng } from './render';
import { payloadVersion } from './source';
import type { CampaignSnapshot } from './store-reader';

/** figure file stem per chart (pareto-structural / pareto-modular keep the names of the earlier report) */
export const FIGURE_FILES: Record<ChartName, string> = {
  'stage-one': 'pareto-structural',
  'stage-two': 'pareto-modular',
  correlation: 'correlation',
  'gpu-hours': 'gpu-hours',
};

const fmt = (v: number | null | undefined, digits = 3) => (v === null || v === undefined ? '-' : v.toFixed(digits));
const pct = (v: number | null | undefined, digits = 2) => (v === null || v === undefined ? '-' : (v * 100).toFixed(digits));

export function reportMarkdown(v: CampaignView): string {
  const front = (stage: string, group?: string) =>
    v.points.filter((p) => p.stage === stage && p.front && (!group || p.group === group)).sort((a, b) => (a.cost ?? 0) - (b.cost ?? 0));
  // latency figures of the latency protocol say where they ran and whether they were steady
  const lat = (p: { latencyMs: number | null; latencyReliable?: boolean } | undefined, ms: number | null) =>
    `${fmt(ms, 2)}${p?.latencyReliable === false ? ' (unreliable: noisy host)' : ''}`;
  const latencyDevices = [...new Set(v.points.flatMap((p) => (p.latencyDevice ? [p.latencyDevice] : [])))];
  const unreliable = v.points.filter((p) => p.latencyReliable === false).length;
  const latencyNote = latencyDevices.length
    ? [
        `Latency: batch 1, trained weights, a seeded sample of validation images, measured on ${latencyDevices.join(', ')}` +
          (unreliable ? `; ${unreliable} figure(s) unreliable (every measurement too noisy), marked.` : '.'),
        '',
      ]
    : [];
  const finalPoint = (arch: string) => v.points.find((p) => p.stage === 'final' && p.arch === arch);
  const lines = [
    `# SM-NAS campaign ${v.campaignId}`,
    '',
    v.countsSentence,
    '',
    '| stage | evaluations | reused | device hours |',
    '|---|---|---|---|',
    ...EVAL_STAGES.map((s) => {
      const r = v.stages.find((x) => x.stage === s)!;
      return `| ${s} | ${r.done} | ${r.reused} | ${r.gpuHours.toFixed(3)} |`;
    }),
    '',
    'Views: report.html (opens offline). Figures: ' +
      Object.values(FIGURE_FILES)
        .map((f) => `${f}.svg/.png`)
        .join(', ') +
      '.',
    '',
    '## Stage one front (latency vs mAP)',
    '',
    ...latencyNote,
    '| architecture | mAP % | latency ms |',
    '|---|---|---|',
    ...front('structural').map((p) => `| ${p.arch} | ${fmt(p.mapPct, 2)} | ${lat(p, p.latencyMs)} |`),
    '',
    '## Selected candidates',
    '',
    ...v.candidates.map((c) => `- ${c.label}: ${c.arch}`),
    '',
    '## Stage two fronts (GFLOPs vs mAP)',
    '',
    ...v.candidates.flatMap((c) => [
      `### ${c.label}: around ${c.arch}`,
      '',
      '| architecture | mAP % | GFLOPs |',
      '|---|---|---|',
      ...front('modular', c.label).map((p) => `| ${p.arch} | ${fmt(p.mapPct, 2)} | ${fmt(p.gflops, 3)} |`),
      '',
    ]),
    '## Final models',
    '',
    `| model | architecture | pretrain top-1 % | final mAP % | GFLOPs | latency ms |${v.transferColumns.map((c) => ` ${c.title} % |`).join('')}`,
    `|---|---|---|---|---|---|${v.transferColumns.map(() => '---|').join('')}`,
    ...(v.finalTable ?? []).map(
      (row, i) =>
        `| E${i} | ${row.arch} | ${pct(row.pretrainTop1, 1)} | ${pct(row.finalMap)} | ${fmt(row.gflops)} | ${lat(finalPoint(row.arch), row.latencyMs)} |${v.transferColumns.map((c) => ` ${pct(row[c.field]?.[c.dataset] ?? null)} |`).join('')}`,
    ),
    '',
    // campaigns that export their final models (patch campaign-export-onnx) list the ONNX files
    ...((v.finalTable ?? []).some((r) => r.onnx !== undefined)
      ? [
          '## Deployable models (ONNX, docs/deploy.md)',
          '',
          ...(v.finalTable ?? []).map((row, i) => `- E${i}: ${row.onnx ? row.onnx : `not exported${row.onnxError ? `: ${row.onnxError}` : ''}`}`),
          '',
        ]
      : []),
  ];
  return lines.join('\n');
}

export interface WrittenReport {
  view: CampaignView;
  files: string[];
}

/** Writes report.html, report.md and the figures into `outDir`; returns the file names. */
export async function writeCampaignReport(snapshot: CampaignSnapshot, info: TemporalInfo, o: ViewOptions, outDir: string): Promise<WrittenReport> {
  const view = buildCampaignView(snapshot, info, o);
  const specs = campaignCharts(view);
  const files: string[] = [];
  const put = (name: string, data: string | Buffer) => {
    writeFileAtomic(path.join(outDir, name), data);
    files.push(name);
  };
  for (const [name, stem] of Object.entries(FIGURE_FILES) as [ChartName, string][]) {
    const svg = await renderSvg({ ...withData(specs[name], view), title: `${view.campaignId}: ${CHART_TITLES[name]}` });
    put(`${stem}.svg`, svg);
    put(`${stem}.png`, svgToPng(svg));
  }
  put('report.html', staticReport({ version: payloadVersion(view), view, specs }));
  put('report.md', reportMarkdown(view));
  return { view, files };
}
