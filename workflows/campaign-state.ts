/**
 * The campaign workflow's state and its handlers, in one small class (the pattern of
 * temporalio/samples-typescript message-passing/safe-message-handlers' ClusterManager): stage
 * progress, fronts, candidates, pause state and the stage children running now; the progress /
 * fronts / candidates queries, pause / resume / stop-stage signals and updates, the stages' progress
 * reports; and what the Web UI shows (search attributes, current details). smnasSearch
 * (workflows/campaign.ts) only wires it to the stages and loops through them. Pure workflow code.
 */
import { getExternalWorkflowHandle, log, setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { BackboneWeightsPlan } from '../activities/types';
import { STAGES, type Campaign, type StageName } from '../protocol/campaign';
import {
  SmnasBestMap,
  SmnasCampaign,
  SmnasEvaluated,
  SmnasStage,
  candidatesQuery,
  frontsQuery,
  pauseSignal,
  pauseUpdate,
  progressQuery,
  resumeSignal,
  resumeUpdate,
  stageReportSignal,
  stopStageSignal,
  stopStageUpdate,
  type Candidates,
  type CostBand,
  type EvalPoint,
  type Fronts,
  type Progress,
  type StageProgress,
  type StageReport,
} from './api';

const emptyProgress = (planned = 0): StageProgress => ({
  status: 'pending',
  evaluated: 0,
  planned,
  running: 0,
  failed: 0,
  reused: 0,
  gpuSeconds: 0,
  runningArchs: [],
});

/** Best mAP in three equal cost bands of a front (the "per cost band" view of progress). */
export function costBands(stage: 'structural' | 'modular', points: EvalPoint[]): CostBand[] {
  const scored = points.filter((p) => p.mAP !== null);
  if (scored.length === 0) return [];
  const lo = Math.min(...scored.map((p) => p.cost));
  const hi = Math.max(...scored.map((p) => p.cost));
  const width = (hi - lo) / 3;
  return (['low', 'mid', 'high'] as const).map((band, i) => {
    const from = lo + i * width;
    const to = i === 2 ? hi : lo + (i + 1) * width;
    const inBand = scored.filter((p) => p.cost >= from && (i === 2 ? p.cost <= to : p.cost < to));
    const best = inBand.reduce<EvalPoint | null>((b, p) => (b === null || (p.mAP as number) > (b.mAP as number) ? p : b), null);
    return { stage, band, costFrom: from, costTo: to, bestMap: best?.mAP ?? null, arch: best?.arch ?? null };
  });
}

/** the stages whose results the results log holds (patch campaign-count-evaluations-only) */
const EVALUATION_STAGES: readonly StageName[] = ['structural', 'modular', 'final', 'transfer'];

export class CampaignState {
  readonly stages: Record<StageName, StageProgress> = Object.fromEntries(STAGES.map((s) => [s, emptyProgress()])) as Record<StageName, StageProgress>;
  readonly fronts: Fronts = { structural: [], modular: {} };
  readonly candidates: Candidates = { selected: [], finalists: [] };
  readonly workflowId = workflowInfo().workflowId;
  readonly startedAt = Date.now();
  /** ms since epoch (workflow time) after which no evaluation starts; null: no wall-clock budget */
  readonly deadline: number | null;
  phase = 'data';
  paused = false;
  error: string | null = null;
  artifactDir: string | null = null;
  /** what the campaign does with data.backboneWeights (null: the campaign names none) */
  weightsPlan: BackboneWeightsPlan | null = null;
  gpuSecondsUsed = 0;
  /** stage children running now (their ids), so pause / resume / stop reach them */
  private readonly activeChildren = new Set<string>();
  private readonly modularProgress: Record<string, StageProgress> = {};
  private shownEvaluated = -1;
  private shownPhase = '';

  constructor(
    readonly c: Campaign,
    /** patch campaign-count-evaluations-only: count evaluations only (not selections, pretrainings) */
    private readonly countEvaluationsOnly: boolean,
  ) {
    this.stages.structural.planned = c.stages.structural.maxEvaluations;
    this.deadline = c.budgets.wallClockHours !== undefined ? this.startedAt + c.budgets.wallClockHours * 3600_000 : null;
  }

  bestMap(): number | null {
    const all = [...this.fronts.structural, ...Object.values(this.fronts.modular).flat()].map((p) => p.mAP).filter((m): m is number => m !== null);
    return all.length ? Math.max(...all) : null;
  }

  evaluatedTotal(): number {
    return (this.countEvaluationsOnly ? EVALUATION_STAGES : STAGES).reduce((n, s) => n + this.stages[s].evaluated, 0);
  }

  progress(): Progress {
    return {
      campaignId: this.c.id,
      profile: this.c.profile,
      phase: this.phase,
      paused: this.paused,
      stages: this.stages,
      bestMapByCostBand: [...costBands('structural', this.fronts.structural), ...costBands('modular', Object.values(this.fronts.modular).flat())],
      bestMap: this.bestMap(),
      evaluated: this.evaluatedTotal(),
      startedAt: this.startedAt,
      updatedAt: Date.now(),
      artifactDir: this.artifactDir,
      error: this.error,
      ...(this.weightsPlan ? { backboneWeights: this.weightsPlan.messages } : {}),
    };
  }

  /** Web UI: search attributes and current details, refreshed when the phase or the count changed. */
  show(): void {
    const ev = this.evaluatedTotal();
    if (ev === this.shownEvaluated && this.phase === this.shownPhase) return;
    this.shownEvaluated = ev;
    this.shownPhase = this.phase;
    const best = this.bestMap();
    upsertSearchAttributes([
      { key: SmnasStage, value: this.phase },
      { key: SmnasEvaluated, value: ev },
      ...(best !== null ? [{ key: SmnasBestMap, value: best }] : []),
    ]);
    const { c, stages, fronts, weightsPlan, artifactDir } = this;
    const rows = STAGES.map((s) => `| ${s} | ${stages[s].status} | ${stages[s].evaluated}/${stages[s].planned} | ${stages[s].running} | ${stages[s].failed} |`);
    const front = fronts.structural.slice(0, 8).map((p) => `| ${p.arch} | ${p.mAP?.toFixed(4) ?? '-'} | ${p.cost.toFixed(2)} ms |`);
    setCurrentDetails(
      [
        `## SM-NAS campaign \`${c.id}\` (${c.profile})`,
        `**Stage:** ${this.phase}${this.paused ? ' (paused)' : ''} · **evaluated:** ${ev} · **best mAP:** ${best?.toFixed(4) ?? '-'}`,
        '',
        '| stage | status | evaluated/planned | running | failed |',
        '|---|---|---|---|---|',
        ...rows,
        '',
        ...(front.length ? ['**Stage-one front**', '', '| architecture | mAP | latency |', '|---|---|---|', ...front] : []),
        ...(weightsPlan ? ['', '**Backbone weights**', '', ...weightsPlan.messages.map((m) => `- ${m}`)] : []),
        ...(artifactDir ? ['', `Artifacts: \`${artifactDir}\``] : []),
      ].join('\n'),
    );
  }

  begin(s: StageName): void {
    this.phase = s;
    this.stages[s] = { ...this.stages[s], status: 'running' };
    this.show();
  }

  finish(s: StageName, status: StageProgress['status'] = 'done'): void {
    this.stages[s] = { ...this.stages[s], status, running: 0, runningArchs: [] };
    this.show();
  }

  /** training seconds the campaign may still use; null: no GPU-hours budget */
  gpuBudgetLeft(): number | null {
    return this.c.budgets.gpuHours !== undefined ? Math.max(0, this.c.budgets.gpuHours * 3600 - this.gpuSecondsUsed) : null;
  }

  /** A stage's progress report (signal from a search stage child). */
  onStageReport(r: StageReport): void {
    if (r.stage === 'modular' && r.candidate) {
      this.modularProgress[r.candidate] = r.progress;
      if (r.front) this.fronts.modular[r.candidate] = r.front; // null: unchanged
      const all = Object.values(this.modularProgress);
      this.stages.modular = {
        ...this.stages.modular,
        evaluated: all.reduce((n, p) => n + p.evaluated, 0),
        running: all.reduce((n, p) => n + p.running, 0),
        failed: all.reduce((n, p) => n + p.failed, 0),
        reused: all.reduce((n, p) => n + p.reused, 0),
        gpuSeconds: all.reduce((n, p) => n + p.gpuSeconds, 0),
        runningArchs: all.flatMap((p) => p.runningArchs).slice(0, 50),
      };
    } else if (r.stage === 'structural') {
      this.stages.structural = { ...r.progress, status: 'running' };
      if (r.front) this.fronts.structural = r.front;
    }
    this.show();
  }

  async pause(): Promise<void> {
    this.paused = true;
    this.show();
    await this.forward((id) => getExternalWorkflowHandle(id).signal(pauseSignal));
  }

  async resume(): Promise<void> {
    this.paused = false;
    this.show();
    await this.forward((id) => getExternalWorkflowHandle(id).signal(resumeSignal));
  }

  /** stop-stage: `stage` absent or the running one */
  async stop(stage?: string): Promise<void> {
    if (stage && stage !== this.phase) return;
    await this.forward((id) => getExternalWorkflowHandle(id).signal(stopStageSignal));
  }

  registerHandlers(): void {
    setHandler(pauseSignal, () => this.pause());
    setHandler(resumeSignal, () => this.resume());
    setHandler(stopStageSignal, (stage?: string) => this.stop(stage));
    setHandler(pauseUpdate, async () => (await this.pause(), this.progress()));
    setHandler(resumeUpdate, async () => (await this.resume(), this.progress()));
    setHandler(stopStageUpdate, async (stage?: string) => (await this.stop(stage), this.progress()));
    setHandler(progressQuery, () => this.progress());
    setHandler(frontsQuery, () => this.fronts);
    setHandler(candidatesQuery, () => this.candidates);
    setHandler(stageReportSignal, (r) => this.onStageReport(r));
  }

  /** Options of a stage child workflow. */
  childOptions(id: string, summary: string) {
    return {
      workflowId: id,
      taskQueue: this.c.queues.control,
      staticSummary: summary,
      typedSearchAttributes: [{ key: SmnasCampaign, value: this.c.id }],
      // a stage's task can be a replay of its whole run (a worker restarted or evicted it): give it
      // more than the default 10 s, so a loaded worker finishes it instead of retrying it
      workflowTaskTimeout: '60 seconds' as const,
    };
  }

  /** Run a stage child, reachable by pause / resume / stop while it runs; one started while the campaign is paused starts paused. */
  async runStage<T>(id: string, run: () => Promise<T>): Promise<T> {
    this.activeChildren.add(id);
    try {
      const p = run();
      if (this.paused)
        await getExternalWorkflowHandle(id)
          .signal(pauseSignal)
          .catch(() => undefined);
      return await p;
    } finally {
      this.activeChildren.delete(id);
    }
  }

  private async forward(fn: (id: string) => Promise<void>): Promise<void> {
    for (const id of [...this.activeChildren]) {
      try {
        await fn(id);
      } catch (e) {
        log.warn('could not reach a stage workflow', { id, error: String(e) });
      }
    }
  }
}
