/**
 * The view of one campaign that the dashboard, the static report and the figures draw: every
 * evaluation of the results log as a point (stage, candidate, cost, mAP, Pareto membership,
 * the structural parts the paper's Fig. 5 correlates), per-stage counts and GPU hours, the final
 * table. Pure: a store snapshot (and, when Temporal answers, the campaign's progress / fronts /
 * candidates) in, plain JSON out. Fronts come from the search library (search/pareto.ts).
 */
import type { ResultLine } from '../activities/types';
import { nonDominatedSort } from '../search/pareto';
import { backboneBlock, parseArch, resolveBackboneBlocks, type Arch } from '../search/notation';
import { STAGES, TRANSFER_METRIC_TITLES, type TransferMetric } from '../protocol/campaign';
import type { Candidates, Fronts, Progress } from '../workflows/api';
import { evaluationWorkflowId } from '../workflows/ids';
import type { CampaignSnapshot } from './store-reader';

export const EVAL_STAGES = ['structural', 'modular', 'final', 'transfer'] as const;
export type EvalStage = (typeof EVAL_STAGES)[number];

/** What Temporal said about the campaign (or why it said nothing). */
export interface TemporalInfo {
  /** ok: queries answered; closed: the workflow finished (status from describe); the others explain a missing answer */
  state: 'ok' | 'closed' | 'unreachable' | 'not-found' | 'no-answer' | 'off';
  /** workflow status name (RUNNING, COMPLETED, FAILED, ...) when known */
  status: string | null;
  /** one line for people, shown on the page */
  note: string | null;
  progress: Progress | null;
  fronts: Fronts | null;
  candidates: Candidates | null;
}

export interface ViewOptions {
  /** Temporal Web UI base (http://localhost:8233) */
  webUi: string;
  namespace: string;
}

export interface ChartPoint {
  key: string;
  stage: EvalStage;
  /** legend entry: 'stage one', 'C0'.., 'stage two (candidate unknown)', 'final', 'transfer voc' */
  group: string;
  /** C0.. for stage-two points (null elsewhere or when unknown) */
  candidate: string | null;
  candidateArch: string | null;
  arch: string;
  kind: 'ok' | 'diverged';
  mAP: number | null;
  /** mAP in % (null when diverged), what the charts plot */
  mapPct: number | null;
  latencyMs: number | null;
  /** the latency protocol: false when every measurement was too noisy (absent for older figures) */
  latencyReliable?: boolean;
  /** the device model latency was measured on (absent for older figures) */
  latencyDevice?: string;
  gflops: number | null;
  mparams: number | null;
  /** the stage's cost: latency (ms) in stage one, GFLOPs in stage two, null elsewhere */
  cost: number | null;
  /** on the Pareto front of its group (stage one, or its candidate's stage two) */
  front: boolean;
  reused: boolean;
  gpuSeconds: number;
  attempts: number;
  finishedAt: string;
  /** Fig. 5 factors */
  input: string;
  inputPixels: number;
  backbone: string;
  neck: string;
  head: string;
  rpn: string;
  workflowId: string;
  workflowUrl: string;
  /** paths relative to the artifact root */
  recordPath: string;
  runPath: string;
}

export interface StageRow {
  stage: string;
  status: string;
  /** evaluations in the results log (search/final/transfer stages); candidates / backbones for selection / pretrain */
  done: number;
  /** what `done` counts */
  unit: 'evaluations' | 'candidates' | 'backbones';
  planned: number | null;
  running: number;
  failed: number;
  reused: number;
  /** device hours of the trainings this campaign ran (reused results excluded) */
  gpuHours: number;
}

export interface FrontVertex {
  group: string;
  stage: EvalStage;
  cost: number;
  mapPct: number;
  arch: string;
  /** position along the staircase (sorted by cost) */
  order: number;
}

export interface CampaignView {
  campaignId: string;
  dir: string;
  artifactRoot: string;
  phase: string;
  temporal: TemporalInfo;
  counts: {
    /** lines in results.jsonl */
    logLines: number;
    /** distinct evaluations in it (one per key) */
    evaluations: number;
    byStage: Record<EvalStage, number>;
    diverged: number;
    reused: number;
  };
  stages: StageRow[];
  points: ChartPoint[];
  fronts: FrontVertex[];
  candidates: { label: string; arch: string }[];
  finalTable: CampaignSnapshot['finalTable'];
  transferNames: string[];
  /** the final table's transfer columns: each set's own metric, then COCO AP beside it where that differs */
  transferColumns: TransferColumn[];
  bestMap: number | null;
  gpuHoursTotal: number;
  /** the counts as one sentence (countsSentence) */
  countsSentence: string;
}

export interface TransferColumn {
  title: string;
  dataset: string;
  /** the final-table field the value is read from */
  field: 'transfer' | 'transferCocoAP';
}

/**
 * The transfer columns of a final table: per data set its own metric (`metrics`, from the
 * campaign's data.json; absent: COCO AP), then COCO-style AP on the same test split where the
 * table has it and the metric is not already COCO AP.
 */
export function transferColumns(
  finalTable: readonly { transfer: Record<string, unknown>; transferCocoAP?: Record<string, unknown> }[],
  metrics: Record<string, TransferMetric | undefined>,
): TransferColumn[] {
  const names = [...new Set(finalTable.flatMap((r) => Object.keys(r.transfer)))].sort();
  return names.flatMap((dataset) => {
    const metric = metrics[dataset] ?? 'coco-ap';
    const own: TransferColumn = { title: `${dataset} ${TRANSFER_METRIC_TITLES[metric]}`, dataset, field: 'transfer' };
    const coco = metric !== 'coco-ap' && finalTable.some((r) => r.transferCocoAP?.[dataset] !== undefined);
    return coco ? [own, { title: `${dataset} COCO AP`, dataset, field: 'transferCocoAP' as const }] : [own];
  });
}

interface Factors {
  input: string;
  inputPixels: number;
  backbone: string;
  neck: string;
  head: string;
  rpn: string;
}

function factorsOf(a: Arch | null, arch: string): Factors {
  if (!a) return { input: '?', inputPixels: 0, backbone: arch.split('/')[1] ?? '?', neck: '?', head: '?', rpn: '?' };
  const blocks = resolveBackboneBlocks(a.backbone).reduce((n, k) => n + k, 0);
  const backbone = a.backbone.kind === 'named' ? a.backbone.name : `${backboneBlock(a.backbone)}-${a.backbone.base} L${blocks}`;
  const neck = a.neck.kind === 'fpn' ? `fpn P${a.neck.from}-P${a.neck.to}` : 'none';
  const head = a.head.kind === 'cascade' ? `cascade (${a.head.stages})` : a.head.kind;
  return { input: `${a.input.width}x${a.input.height}`, inputPixels: a.input.width * a.input.height, backbone, neck, head, rpn: a.rpn };
}

/** What stage two keeps from its candidate: everything but the backbone code and the FPN width. */
function templateOf(a: Arch): string {
  const neck = a.neck.kind === 'fpn' ? `fpn${a.neck.from}-${a.neck.to}` : 'none';
  return [a.input.width, a.input.height, backboneBlock(a.backbone), neck, a.rpn, JSON.stringify(a.head)].join('|');
}

function tryParse(arch: string): Arch | null {
  try {
    return parseArch(arch);
  } catch {
    return null;
  }
}

/** Indices of the Pareto front (minimise cost, maximise mAP) of the given points, by the search library. */
export function frontIndices(points: readonly { cost: number; score: number }[]): number[] {
  if (points.length === 0) return [];
  return nonDominatedSort(points).fronts[0] ?? [];
}

export function webUiWorkflowUrl(o: ViewOptions, workflowId: string): string {
  return `${o.webUi.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(o.namespace)}/workflows?query=${encodeURIComponent(`WorkflowId="${workflowId}"`)}`;
}

export function buildCampaignView(s: CampaignSnapshot, t: TemporalInfo, o: ViewOptions): CampaignView {
  // ---- candidates: the store's candidates.json, else the campaign's query, else its fronts' keys
  const candArchs = s.selected ?? t.candidates?.selected.map((p) => p.arch) ?? Object.keys(s.fronts?.modular ?? t.fronts?.modular ?? {});
  const candidates = candArchs.map((arch, i) => ({ label: `C${i}`, arch }));
  const byKeyCandidate = new Map<string, string>();
  for (const [cand, pts] of Object.entries(s.fronts?.modular ?? t.fronts?.modular ?? {})) for (const p of pts) byKeyCandidate.set(p.key, cand);
  const templates = candidates.map((c) => {
    const a = tryParse(c.arch);
    return a ? templateOf(a) : null;
  });

  // ---- points
  const points: ChartPoint[] = s.results.map((r: ResultLine) => {
    const a = tryParse(r.arch);
    let candidateArch: string | null = null;
    if (r.stage === 'modular') {
      candidateArch = r.candidate ?? byKeyCandidate.get(r.key) ?? null;
      if (candidateArch === null && a) {
        const tpl = templateOf(a);
        const i = templates.indexOf(tpl);
        if (i >= 0) candidateArch = candidates[i].arch;
      }
    }
    const cand = candidateArch === null ? null : (candidates.find((c) => c.arch === candidateArch)?.label ?? null);
    const dataset = r.stage === 'transfer' ? (s.transferDataset[r.key] ?? null) : null;
    const group =
      r.stage === 'structural'
        ? 'stage one'
        : r.stage === 'modular'
          ? (cand ?? 'stage two (candidate unknown)')
          : r.stage === 'final'
            ? 'final'
            : `transfer${dataset ? ` ${dataset}` : ''}`;
    const scope = r.stage === 'modular' ? (candidateArch ?? undefined) : r.stage === 'transfer' ? (dataset ?? undefined) : undefined;
    const workflowId = evaluationWorkflowId(s.campaignId, r.stage, r.arch, scope);
    const cost = r.stage === 'structural' ? r.latencyMs : r.stage === 'modular' ? r.gflops : null;
    return {
      key: r.key,
      stage: r.stage,
      group,
      candidate: cand,
      candidateArch,
      arch: r.arch,
      kind: r.kind,
      mAP: r.mAP,
      mapPct: r.mAP === null ? null : r.mAP * 100,
      latencyMs: r.latencyMs,
      ...(r.latencyReliable !== undefined ? { latencyReliable: r.latencyReliable } : {}),
      ...(r.latencyDevice !== undefined ? { latencyDevice: r.latencyDevice } : {}),
      gflops: r.gflops,
      mparams: r.mparams,
      cost,
      front: false,
      reused: r.reused,
      gpuSeconds: r.gpuSeconds,
      attempts: r.attempts,
      finishedAt: r.finishedAt,
      ...factorsOf(a, r.arch),
      workflowId,
      workflowUrl: webUiWorkflowUrl(o, workflowId),
      recordPath: `evaluations/${r.key.slice(0, 2)}/${r.key}.json`,
      runPath: `runs/${r.key}/`,
    };
  });

  // ---- fronts per group of the search stages (stage one; each candidate's stage two)
  const fronts: FrontVertex[] = [];
  const groups = [...new Set(points.filter((p) => p.stage === 'structural' || p.stage === 'modular').map((p) => p.group))];
  for (const g of groups) {
    const members = points.filter((p) => p.group === g && p.cost !== null && p.mapPct !== null);
    const idx = frontIndices(members.map((p) => ({ cost: p.cost!, score: p.mapPct! })));
    idx.forEach((i, order) => {
      const p = members[i];
      p.front = true;
      fronts.push({ group: g, stage: p.stage, cost: p.cost!, mapPct: p.mapPct!, arch: p.arch, order });
    });
  }

  // ---- counts and stages (counts from the results log; status / planned / running from Temporal)
  const byStage = Object.fromEntries(EVAL_STAGES.map((st) => [st, s.results.filter((r) => r.stage === st).length])) as Record<EvalStage, number>;
  const gpuHoursOf = (st: string) => s.results.filter((r) => r.stage === st && !r.reused).reduce((n, r) => n + r.gpuSeconds, 0) / 3600;
  const prog = t.progress;
  const stages: StageRow[] = STAGES.map((st) => {
    const p = prog?.stages[st];
    const isEval = (EVAL_STAGES as readonly string[]).includes(st);
    const done = isEval
      ? byStage[st as EvalStage]
      : st === 'selection'
        ? (s.selected?.length ?? p?.evaluated ?? candidates.length)
        : (p?.evaluated ?? (s.finalTable ? s.finalTable.filter((r) => r.pretrainTop1 !== null).length : 0));
    // without Temporal the store tells only what finished: a stage with results is 'done' once the report exists
    const status = p?.status ?? (done > 0 ? (s.finalTable ? 'done' : 'started') : s.finalTable ? 'skipped' : 'pending');
    return {
      stage: st,
      status,
      done,
      unit: st === 'selection' ? 'candidates' : st === 'pretrain' ? 'backbones' : 'evaluations',
      planned: p?.planned ?? null,
      running: p?.running ?? 0,
      failed: p?.failed ?? 0,
      reused: isEval ? s.results.filter((r) => r.stage === st && r.reused).length : 0,
      gpuHours: isEval ? gpuHoursOf(st) : 0,
    };
  });
  const scored = points.filter((p) => p.mAP !== null && (p.stage === 'structural' || p.stage === 'modular'));
  const phase = prog?.phase ?? (s.finalTable ? 'done' : s.results.length ? (s.results[s.results.length - 1].stage as string) : 'data');
  const view: CampaignView = {
    campaignId: s.campaignId,
    dir: s.dir,
    artifactRoot: s.artifactRoot,
    phase,
    temporal: t,
    counts: {
      logLines: s.logLines,
      evaluations: s.results.length,
      byStage,
      diverged: s.results.filter((r) => r.kind === 'diverged').length,
      reused: s.results.filter((r) => r.reused).length,
    },
    stages,
    points,
    fronts,
    candidates,
    finalTable: s.finalTable,
    transferNames: [...new Set((s.finalTable ?? []).flatMap((r) => Object.keys(r.transfer)))].sort(),
    transferColumns: transferColumns(s.finalTable ?? [], Object.fromEntries((s.data?.transfer ?? []).map((d) => [d.name, d.metric]))),
    bestMap: scored.length ? Math.max(...scored.map((p) => p.mAP as number)) : null,
    gpuHoursTotal: stages.reduce((n, r) => n + r.gpuHours, 0),
    countsSentence: '',
  };
  view.countsSentence = countsSentence(view);
  return view;
}

/** The counts line of the report: evaluations per stage as the results log has them. */
export function countsSentence(v: Omit<CampaignView, 'countsSentence'>): string {
  const per = EVAL_STAGES.map((st) => `${st} ${v.counts.byStage[st]}`).join(', ');
  const sel = v.stages.find((r) => r.stage === 'selection')?.done ?? 0;
  const pre = v.stages.find((r) => r.stage === 'pretrain')?.done ?? 0;
  const dup =
    v.counts.logLines > v.counts.evaluations
      ? `; ${v.counts.logLines} lines, as a retried record logged ${v.counts.logLines - v.counts.evaluations} again`
      : '';
  return (
    `Evaluations: ${v.counts.evaluations} in results.jsonl (${per})${dup}; ${v.counts.reused} reused, ${v.counts.diverged} diverged. ` +
    `Not evaluations, so not counted: ${sel} selected candidate${sel === 1 ? '' : 's'}, ${pre} backbone pretraining${pre === 1 ? '' : 's'}.`
  );
}
