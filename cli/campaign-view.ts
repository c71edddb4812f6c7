/**
 * Text views of a running campaign for `smnas search status|watch|pareto` (pure: data in, lines
 * out; the command decides where and how often to print them).
 */
import type { EvalPoint, Fronts, Progress, StageProgress } from '../workflows/api';
import { STAGES } from '../protocol/campaign';
import { fmtSeconds } from '../common/progress';

const BAR_WIDTH = 24;

export function bar(done: number, total: number, width = BAR_WIDTH): string {
  const frac = total > 0 ? Math.max(0, Math.min(1, done / total)) : 0;
  const filled = Math.round(frac * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

export function fmtMap(m: number | null | undefined): string {
  return m === null || m === undefined ? '   -  ' : (m * 100).toFixed(2).padStart(6);
}

function stageLine(name: string, p: StageProgress | undefined): string {
  if (!p) return `  ${name.padEnd(11)} ${bar(0, 1)}  pending`;
  const counts = `${p.evaluated}/${p.planned}`.padStart(7);
  const extras = [
    p.running ? `${p.running} running` : '',
    p.failed ? `${p.failed} failed` : '',
    p.reused ? `${p.reused} reused` : '',
    p.gpuSeconds ? `${fmtSeconds(p.gpuSeconds)} train` : '',
  ].filter(Boolean);
  return `  ${name.padEnd(11)} ${bar(p.evaluated, p.planned)} ${counts}  ${p.status.padEnd(8)} ${extras.join(', ')}`.trimEnd();
}

/**
 * What `progress.evaluated` adds up, split the way the results log and the report count it:
 * evaluations (structural, modular, final, transfer) and the other stages' items.
 */
export function evaluationCounts(p: Progress): { evaluations: number; selected: number; pretrained: number } {
  const n = (s: string) => p.stages[s]?.evaluated ?? 0;
  return { evaluations: n('structural') + n('modular') + n('final') + n('transfer'), selected: n('selection'), pretrained: n('pretrain') };
}

/** The block `watch` redraws: a header, one bar per stage, then the trainings in flight. */
export function renderProgress(p: Progress, nowMs = p.updatedAt): string[] {
  const elapsed = Math.max(0, (nowMs - p.startedAt) / 1000);
  const c = evaluationCounts(p);
  const others = [c.selected ? `${c.selected} selected` : '', c.pretrained ? `${c.pretrained} pretrained` : ''].filter(Boolean).join(', ');
  const head =
    `campaign ${p.campaignId} (${p.profile})  phase: ${p.phase}${p.paused ? ' [PAUSED]' : ''}  ` +
    `evaluations: ${c.evaluations}${others ? ` (+ ${others})` : ''}  best mAP%: ${fmtMap(p.bestMap).trim()}  elapsed: ${p.startedAt > 0 ? fmtSeconds(elapsed) : '-'}`;
  const lines = [head];
  for (const s of STAGES) lines.push(stageLine(s, p.stages[s]));
  const running = STAGES.flatMap((s) => (p.stages[s]?.runningArchs ?? []).map((a) => `    ${s}: ${a}`));
  if (running.length) lines.push('  running trainings:', ...running.slice(0, 12), ...(running.length > 12 ? [`    ... and ${running.length - 12} more`] : []));
  const bands = p.bestMapByCostBand.filter((b) => b.bestMap !== null);
  if (bands.length) {
    lines.push('  best mAP per cost band:');
    for (const b of bands)
      lines.push(
        `    ${b.stage.padEnd(10)} ${b.band.padEnd(4)} cost ${b.costFrom.toFixed(2)}..${b.costTo.toFixed(2)}  mAP% ${fmtMap(b.bestMap).trim()}  ${b.arch ?? ''}`,
      );
  }
  if (p.error) lines.push(`  error: ${p.error}`);
  return lines;
}

function frontRows(label: string, pts: EvalPoint[]): string[] {
  const sorted = [...pts].sort((a, b) => a.cost - b.cost);
  return sorted.map((pt) => {
    const cost = pt.costKind === 'latencyMs' ? `${pt.cost.toFixed(2)} ms` : `${pt.cost.toFixed(3)} GFLOPs`;
    return `  ${label.padEnd(10)} ${cost.padStart(15)}  ${fmtMap(pt.mAP)}  ${pt.reused ? 'reused ' : '       '}${pt.arch}`;
  });
}

/** `pareto` as a table: the stage-one front, then each candidate's stage-two front. */
export function renderFronts(f: Fronts): string[] {
  const lines = [`  ${'front'.padEnd(10)} ${'cost'.padStart(15)}  ${'mAP%'.padStart(6)}         architecture`];
  lines.push(...frontRows('structural', f.structural));
  const cands = Object.keys(f.modular);
  cands.forEach((c, i) => {
    lines.push(`  modular front of C${i}: ${c}`);
    lines.push(...frontRows(`C${i}`, f.modular[c]));
  });
  if (f.structural.length === 0 && cands.length === 0) lines.push('  (no evaluations finished yet)');
  return lines;
}

/** One row of the final table, as the workflow result carries it (activities/types FinalRow). */
export interface FinalRowView {
  arch: string;
  pretrainTop1: number | null;
  finalMap: number | null;
  gflops: number | null;
  latencyMs: number | null;
  transfer: Record<string, number | null>;
  /** COCO-style AP on each transfer set's test split, where its own metric is another one */
  transferCocoAP?: Record<string, number | null>;
}

export function renderFinalTable(rows: FinalRowView[]): string[] {
  const transferNames = [...new Set(rows.flatMap((r) => Object.keys(r.transfer)))].sort();
  // each set's own metric (VOC mAP@0.5, BDD AP, COCO AP), then its COCO AP where the campaign recorded it
  const columns = transferNames.flatMap((n) => [
    { title: `${n} mAP%`, value: (r: FinalRowView) => r.transfer[n] },
    ...(rows.some((r) => r.transferCocoAP?.[n] !== undefined && r.transferCocoAP[n] !== r.transfer[n])
      ? [{ title: `${n} COCO AP%`, value: (r: FinalRowView) => r.transferCocoAP?.[n] ?? null }]
      : []),
  ]);
  const head = ['model', 'top1%', 'mAP%', 'GFLOPs', 'ms', ...columns.map((c) => c.title), 'architecture'];
  const table = rows.map((r, i) => [
    `E${i}`,
    r.pretrainTop1 === null ? '-' : (r.pretrainTop1 * 100).toFixed(1),
    fmtMap(r.finalMap).trim(),
    r.gflops === null ? '-' : r.gflops.toFixed(3),
    r.latencyMs === null ? '-' : r.latencyMs.toFixed(2),
    ...columns.map((c) => fmtMap(c.value(r) ?? null).trim()),
    r.arch,
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...table.map((row) => row[c].length)));
  const fmt = (row: string[]) => '  ' + row.map((v, c) => (c === row.length - 1 ? v : v.padStart(widths[c]))).join('  ');
  return [fmt(head), ...table.map(fmt)];
}
