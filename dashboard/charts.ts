/**
 * Vega-Lite specs of a campaign's charts (pure: a CampaignView in, JSON specs out). The specs
 * read named datasets (`points`, `fronts`, `stages`) that `withData` fills in, so the live page,
 * the static report and the figure renderer share one spec and the data travels once.
 *
 *   stage-one     every stage-one evaluation, mAP vs latency, its Pareto front as a staircase (paper Fig. 4 left)
 *   stage-two     every stage-two evaluation coloured by candidate, mAP vs GFLOPs, one staircase per
 *                 candidate, the final models on the same axes (paper Fig. 4 right)
 *   correlation   stage-one mAP and latency against input size, backbone, neck and head (paper Fig. 5)
 *   gpu-hours     device hours per stage
 */
import type { CampaignView } from './model';

export type Spec = Record<string, unknown>;
export const CHART_NAMES = ['stage-one', 'stage-two', 'correlation', 'gpu-hours'] as const;
export type ChartName = (typeof CHART_NAMES)[number];

export const CHART_TITLES: Record<ChartName, string> = {
  'stage-one': 'Stage one (structural search): mAP vs latency',
  'stage-two': 'Stage two (modular search): mAP vs GFLOPs',
  correlation: 'Stage one: mAP and latency against input size, backbone, neck and head',
  'gpu-hours': 'Device hours per stage',
};

/** Paper-style look: serif type, light grid, framed plots, legend inside the figure's right edge. */
export const PAPER_CONFIG = {
  font: 'DejaVu Serif',
  background: 'white',
  view: { stroke: '#333', strokeWidth: 0.8 },
  axis: {
    grid: true,
    gridColor: '#e6e6e6',
    domainColor: '#333',
    tickColor: '#333',
    labelFontSize: 11,
    titleFontSize: 12,
    titleFontWeight: 'normal',
    labelLimit: 160,
  },
  legend: { labelFontSize: 11, titleFontSize: 11, labelLimit: 220, symbolSize: 70 },
  title: { fontSize: 13, fontWeight: 'normal', anchor: 'start' },
  point: { size: 55 },
};

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** Legend order and colours: stage one, C0.., unknown candidate, final, transfer sets. */
export function groupScale(v: CampaignView): { domain: string[]; range: string[] } {
  const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];
  const present = new Set(v.points.map((p) => p.group));
  const domain = ['stage one', ...v.candidates.map((c) => c.label)];
  for (const g of ['stage two (candidate unknown)', 'final']) if (present.has(g)) domain.push(g);
  for (const g of [...present].filter((x) => x.startsWith('transfer')).sort()) domain.push(g);
  for (const g of present) if (!domain.includes(g)) domain.push(g);
  const range = domain.map((g, i) => (g === 'final' ? '#d62728' : g === 'stage two (candidate unknown)' ? '#7f7f7f' : palette[i % palette.length]));
  return { domain, range };
}

const tooltip = (cost: { field: string; title: string; format: string }) => [
  { field: 'arch', title: 'architecture' },
  { field: 'group', title: 'stage / candidate' },
  { field: 'mapPct', title: 'mAP %', format: '.2f' },
  { field: cost.field, title: cost.title, format: cost.format },
  { field: 'front', title: 'on the front' },
];

/** The scale restricted to the groups of the given stages (colours stay those of groupScale). */
function scaleFor(v: CampaignView, stages: string[]): { domain: string[]; range: string[] } {
  const all = groupScale(v);
  const groups = new Set(v.points.filter((p) => stages.includes(p.stage)).map((p) => p.group));
  if (stages.includes('modular')) for (const c of v.candidates) groups.add(c.label);
  const keep = all.domain.map((g, i) => [g, all.range[i]] as const).filter(([g]) => groups.has(g));
  return keep.length ? { domain: keep.map(([g]) => g), range: keep.map(([, r]) => r) } : all;
}

function scatter(
  v: CampaignView,
  o: { name: string; stages: string[]; costField: 'latencyMs' | 'gflops'; costTitle: string; withFinal: boolean; width: number; height: number },
): Spec {
  const color = { field: 'group', type: 'nominal', title: 'stage / candidate', scale: scaleFor(v, o.withFinal ? [...o.stages, 'final'] : o.stages) };
  const x = { field: o.costField, type: 'quantitative', title: o.costTitle, scale: { zero: false, nice: true } };
  const y = { field: 'mapPct', type: 'quantitative', title: 'mAP (%)', scale: { zero: false, nice: true } };
  const stageTest = o.stages.map((s) => `datum.stage === '${s}'`).join(' || ');
  const layers: Spec[] = [
    {
      name: `${o.name}_front`,
      data: { name: 'fronts' },
      transform: [{ filter: stageTest }],
      mark: { type: 'line', interpolate: 'step-after', strokeWidth: 1.6, clip: true },
      encoding: { x: { ...x, field: 'cost' }, y, color, order: { field: 'order', type: 'quantitative' }, detail: { field: 'group' } },
    },
    {
      name: `${o.name}_points`,
      data: { name: 'points' },
      transform: [{ filter: `(${stageTest}) && datum.mapPct !== null && datum.${o.costField} !== null` }],
      mark: { type: 'point', filled: true, size: 55, strokeWidth: 1.2, cursor: 'pointer' },
      encoding: {
        x,
        y,
        color,
        stroke: color,
        // front members filled, the others as rings
        fillOpacity: { condition: { test: 'datum.front', value: 1 }, value: 0.12 },
        tooltip: tooltip({ field: o.costField, title: o.costTitle, format: '.3f' }),
      },
    },
  ];
  if (o.withFinal) {
    layers.push({
      name: `${o.name}_final`,
      data: { name: 'points' },
      transform: [{ filter: `datum.stage === 'final' && datum.mapPct !== null && datum.${o.costField} !== null` }],
      mark: { type: 'point', shape: 'diamond', filled: true, size: 120, cursor: 'pointer' },
      encoding: { x, y, color, tooltip: tooltip({ field: o.costField, title: o.costTitle, format: '.3f' }) },
    });
  }
  return { $schema: SCHEMA, width: o.width, height: o.height, config: PAPER_CONFIG, layer: layers };
}

function correlation(v: CampaignView, width: number): Spec {
  const factors: { field: string; title: string; sort: unknown }[] = [
    { field: 'input', title: 'input size', sort: { field: 'inputPixels', op: 'max', order: 'ascending' } },
    { field: 'backbone', title: 'backbone', sort: 'ascending' },
    { field: 'neck', title: 'neck', sort: 'ascending' },
    { field: 'head', title: 'head', sort: 'ascending' },
  ];
  const metrics = [
    { field: 'mapPct', title: 'mAP (%)' },
    { field: 'latencyMs', title: 'latency (ms)' },
  ];
  const color = { field: 'group', type: 'nominal', title: 'stage / candidate', scale: scaleFor(v, ['structural']), legend: null };
  const cell = (m: (typeof metrics)[number], f: (typeof factors)[number], row: number): Spec => ({
    name: `corr_${m.field}_${f.field}`,
    width,
    height: 150,
    data: { name: 'points' },
    transform: [{ filter: `datum.stage === 'structural' && datum.mapPct !== null && datum.latencyMs !== null` }],
    layer: [
      {
        name: `corr_${m.field}_${f.field}_points`,
        mark: { type: 'point', filled: true, opacity: 0.75, cursor: 'pointer' },
        encoding: {
          x: { field: f.field, type: 'nominal', sort: f.sort, title: row === metrics.length - 1 ? f.title : null, axis: { labelAngle: -30, labelLimit: 240 } },
          y: { field: m.field, type: 'quantitative', title: m.title, scale: { zero: false } },
          color,
          tooltip: [
            { field: 'arch', title: 'architecture' },
            { field: 'mapPct', title: 'mAP %', format: '.2f' },
            { field: 'latencyMs', title: 'latency ms', format: '.2f' },
          ],
        },
      },
      {
        mark: { type: 'tick', color: '#d62728', thickness: 2, size: 18 },
        encoding: { x: { field: f.field, type: 'nominal', sort: f.sort }, y: { field: m.field, type: 'quantitative', aggregate: 'mean' } },
      },
    ],
  });
  return {
    $schema: SCHEMA,
    config: PAPER_CONFIG,
    vconcat: metrics.map((m, row) => ({ hconcat: factors.map((f) => cell(m, f, row)) })),
  };
}

function gpuHours(): Spec {
  return {
    $schema: SCHEMA,
    config: PAPER_CONFIG,
    width: 420,
    height: 160,
    data: { name: 'stages' },
    transform: [{ filter: "datum.unit === 'evaluations'" }],
    mark: { type: 'bar', color: '#1f77b4' },
    encoding: {
      y: { field: 'stage', type: 'nominal', sort: null, title: null },
      x: { field: 'gpuHours', type: 'quantitative', title: 'device hours (trainings this campaign ran)' },
      tooltip: [{ field: 'stage' }, { field: 'gpuHours', title: 'hours', format: '.3f' }, { field: 'done', title: 'evaluations' }],
    },
  };
}

export function campaignCharts(v: CampaignView, o: { width?: number; height?: number } = {}): Record<ChartName, Spec> {
  const width = o.width ?? 460;
  const height = o.height ?? 320;
  return {
    'stage-one': scatter(v, {
      name: 'stage_one',
      stages: ['structural'],
      costField: 'latencyMs',
      costTitle: 'latency (ms, median)',
      withFinal: false,
      width,
      height,
    }),
    'stage-two': scatter(v, { name: 'stage_two', stages: ['modular'], costField: 'gflops', costTitle: 'GFLOPs', withFinal: true, width, height }),
    correlation: correlation(v, 150),
    'gpu-hours': gpuHours(),
  };
}

/** The spec with its named datasets filled from the view (what vega-embed / vega.View get). */
export function withData(spec: Spec, v: Pick<CampaignView, 'points' | 'fronts' | 'stages'>): Spec {
  return { ...spec, datasets: { points: v.points, fronts: v.fronts, stages: v.stages } };
}
