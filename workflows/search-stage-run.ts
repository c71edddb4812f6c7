/**
 * One run of a search stage workflow (workflows/search-stage.ts), its state and handlers in one
 * class: the start order and outcomes, the batch schedule that makes proposals reproducible, the
 * running evaluations, budgets, throttled progress reports to the campaign, and the compact carry
 * across continue-as-new. searchStage only wires it and loops. Pure workflow code.
 */
import { executeChild, getExternalWorkflowHandle, isCancellation, log, patched, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import { PRETRAINED_BACKBONE } from '../protocol/recipe';
import { ProposeMemo, type RngState, type ToySpaceRevision } from '../search';
import { SmnasArch, SmnasCampaign, SmnasStage, stageProgressQuery, stageReportSignal, type EvalPoint, type StageProgress, type StageReport } from './api';
import { evaluateArchitecture, type EvaluationInput, type EvaluationSummary } from './evaluation';
import { evaluationWorkflowId } from './ids';
import { initialRngState, namedBackboneOf, paretoFront, propose, seedArch, spaceOf } from './search-ops';
import type { SearchStageInput, SearchStageResult } from './search-stage';
import { installStageControl, type StageControl } from './stage-control';

/** patch id: the toy stage-one space's revision 2 (search/space.ts, ToySpaceRevision) */
export const TOY_SPACE_REVISION_2 = 'toy-stage-one-space-revision-2';

/** patch id: a stage also continues as new when its run's history reaches STAGE_HISTORY_EVENTS */
export const STAGE_HISTORY_CAP = 'stage-history-cap';
/**
 * Events after which a stage run drains and continues as new (~280 evaluations at ~5 events
 * each). A worker that lost the stage from its cache replays the whole run in one workflow task;
 * at 2,700 events (500 evaluations) that took 8-24 s on a loaded 2-core worker, past the 10 s
 * task timeout, and each retry replayed again (BENCHMARKS.md "Orchestration").
 */
export const STAGE_HISTORY_EVENTS = 1500;

/**
 * patch id: the stage searches used-layers forms (search/notation.ts markUnusedStages): two
 * architectures that differ only in backbone stages the detector never builds are one member, so
 * the search never trains a copy. Stages started before keep plain canonical forms (their
 * evaluation workflow ids are made from them).
 */
export const SEARCH_USED_LAYERS = 'search-used-layers';

/**
 * patch id: a modular stage evaluates its stage-one candidate first, with the stage-two recipe,
 * so the candidate is a member of the stage's front and the stage can be judged against its
 * starting point (the paper's Fig. 4). It counts against the stage's evaluation budget.
 */
export const STAGE_TWO_SEED = 'stage-two-seed';

/** patch id: stage reports wait for 0.5 % of the planned evaluations (see maybeReport) */
export const STAGE_REPORT_STEPS = 'stage-report-steps';

/** how often (workflow ms) a stage reports progress to the campaign at most */
const REPORT_EVERY_MS = 5000;

/**
 * What a stage carries across continue-as-new, compact (a continue-as-new input is one payload,
 * 2 MB by default: about 100 bytes per evaluation, so ~20k evaluations per stage): the start order,
 * one [mAP, cost, reused] tuple per started architecture (null = failed), and the store keys of the
 * current front only (a point that is dominated once stays dominated, so no other key is needed).
 */
export interface SearchStageCarry {
  rng: RngState;
  started: string[];
  /** proposed, not yet started (the rest of the current batch) */
  queue: string[];
  /** start index of the latest batch: the next batch sees everything started before it */
  batchStart: number;
  outcomes: ([number | null, number, 0 | 1] | null)[];
  frontKeys: Record<string, string>;
  gpuSeconds: number;
  paused: boolean;
  stopRequested: boolean;
  runs: number;
  /** the toy stage-one space revision this stage started with (absent in carries of older versions: 1) */
  toyRevision?: ToySpaceRevision;
  /** the stage searches used-layers forms (SEARCH_USED_LAYERS; absent in carries of older versions: no) */
  usedLayers?: boolean;
}

/** in-run state */
interface SearchStageState {
  rng: RngState;
  /** every started architecture, in start order (the schedule the proposals are made from) */
  started: string[];
  queue: string[];
  batchStart: number;
  evaluated: EvalPoint[];
  failed: string[];
  gpuSeconds: number;
  reused: number;
  runs: number;
}

function unpack(c: SearchStageCarry, costKind: EvalPoint['costKind']): SearchStageState {
  const evaluated: EvalPoint[] = [];
  const failed: string[] = [];
  let reused = 0;
  c.started.forEach((arch, i) => {
    const o = c.outcomes[i];
    if (o === null || o === undefined) failed.push(arch);
    else {
      evaluated.push({ arch, mAP: o[0], cost: o[1], costKind, key: c.frontKeys[arch] ?? '', reused: o[2] === 1 });
      reused += o[2];
    }
  });
  return { rng: c.rng, started: c.started, queue: c.queue, batchStart: c.batchStart, evaluated, failed, gpuSeconds: c.gpuSeconds, reused, runs: c.runs };
}

function pack(st: SearchStageState, ctl: { paused: boolean; stopRequested: boolean }, toyRevision: ToySpaceRevision, usedLayers: boolean): SearchStageCarry {
  const byArch = new Map(st.evaluated.map((e) => [e.arch, e]));
  return {
    rng: st.rng,
    started: st.started,
    queue: st.queue,
    batchStart: st.batchStart,
    outcomes: st.started.map((a) => {
      const e = byArch.get(a);
      return e ? [e.mAP, e.cost, e.reused ? 1 : 0] : null;
    }),
    frontKeys: Object.fromEntries(paretoFront(st.evaluated).map((p) => [p.arch, p.key])),
    gpuSeconds: st.gpuSeconds,
    paused: ctl.paused,
    stopRequested: ctl.stopRequested,
    runs: st.runs + 1,
    toyRevision,
    ...(usedLayers ? { usedLayers } : {}),
  };
}

export class SearchStageRun {
  readonly running = new Set<string>();
  private readonly costKind: EvalPoint['costKind'];
  private readonly scope: string | undefined;
  private readonly toyRevision: ToySpaceRevision;
  private readonly usedLayers: boolean;
  private readonly space: ReturnType<typeof spaceOf>;
  private readonly st: SearchStageState;
  private readonly ctl: StageControl;
  private startedThisRun = 0;
  // parsed forms, shapes and pruning costs of the architectures this run has seen: the search
  // step then costs O(batch x evaluated) comparisons instead of re-parsing every architecture
  private readonly memo = new ProposeMemo();
  /** finished (scored, diverged or failed) architectures */
  private readonly finished: Map<string, EvalPoint | null>;
  /** index of the first started evaluation that has not finished */
  private doneUpTo: number;
  private spaceExhausted = false;
  // progress reports to the campaign: throttled in time and (patch STAGE_REPORT_STEPS) in steps
  private readonly reportInSteps: boolean;
  private readonly reportStep: number;
  private lastReport = 0;
  private reportScheduled = false;
  private finishedAtLastReport: number;
  /** the front goes to the campaign only when it changed (see StageReportSchema) */
  private lastFrontSent = '';
  private readonly capHistory: boolean;

  constructor(private readonly input: SearchStageInput) {
    this.costKind = input.stage === 'structural' ? 'latencyMs' : 'gflops';
    this.scope = input.stage === 'modular' ? input.candidate : undefined;
    // toy stage one: FPN from P1/P2 only since revision 2; stages started before keep revision 1 so
    // they replay, and a stage keeps its revision across continue-as-new (older carries: 1)
    this.toyRevision = input.carried
      ? (input.carried.toyRevision ?? 1)
      : input.stage === 'structural' && input.space === 'toy' && !patched(TOY_SPACE_REVISION_2)
        ? 1
        : 2;
    this.usedLayers = input.carried ? (input.carried.usedLayers ?? false) : patched(SEARCH_USED_LAYERS);
    this.space = spaceOf(
      input.space,
      input.stage === 'structural' ? { stage: 'structural' } : { stage: 'modular', candidate: input.candidate! },
      this.toyRevision,
      input.stage === 'structural' ? input.namedBackbones : undefined,
      this.usedLayers,
    );
    this.st = input.carried
      ? unpack(input.carried, this.costKind)
      : { rng: initialRngState(input.seed), started: [], queue: [], batchStart: 0, evaluated: [], failed: [], gpuSeconds: 0, reused: 0, runs: 1 };
    // stage two starts from its candidate: queued before the first proposal, so the first batch
    // already counts it as pending (never proposed again) and later batches see its score
    if (!input.carried && input.stage === 'modular' && input.maxEvaluations > 0 && patched(STAGE_TWO_SEED))
      this.st.queue = [seedArch(input.candidate!, this.usedLayers)];
    this.ctl = installStageControl(input.stage, { paused: input.carried?.paused, stopRequested: input.carried?.stopRequested });
    this.finished = new Map<string, EvalPoint | null>([
      ...this.st.evaluated.map((e) => [e.arch, e] as const),
      ...this.st.failed.map((a) => [a, null] as const),
    ]);
    this.doneUpTo = this.st.started.length;
    setHandler(stageProgressQuery, () => this.report());
    // Every report is ~5 events in the campaign's history, which never continues as new: with
    // GPU-paced evaluations the time throttle merges nothing, so a 10k-evaluation stage would
    // add ~50k events. Hence reports also wait for 0.5 % of the stage's planned evaluations to
    // finish (at most ~200 per stage; every evaluation in small stages); the stage's own
    // `stageProgress` query stays live.
    this.reportInSteps = patched(STAGE_REPORT_STEPS);
    this.reportStep = Math.max(1, Math.ceil(input.maxEvaluations / 200));
    this.finishedAtLastReport = this.finishedCount();
    this.capHistory = patched(STAGE_HISTORY_CAP);
  }

  // ---- the loop's questions

  /** an evaluation can start now, or the stage must drain / finish / continue as new */
  mayProceed(): boolean {
    const stopOrRoll = this.budgetReason() !== null || this.needContinueAsNew();
    return (this.running.size === 0 && stopOrRoll) || (!this.ctl.paused && !stopOrRoll && this.running.size < this.input.concurrency && this.canStartNext());
  }

  /** drained and due to continue as new (with budget left) */
  mustContinueAsNew(): boolean {
    return this.running.size === 0 && this.needContinueAsNew() && this.budgetReason() === null;
  }

  budgetReason(): SearchStageResult['stopReason'] | null {
    const { input, st } = this;
    if (this.ctl.stopRequested) return 'stopped';
    if (st.started.length >= input.maxEvaluations) return 'budget';
    if (input.deadline !== null && Date.now() >= input.deadline) return 'deadline';
    if (input.gpuSecondsBudget !== null && st.gpuSeconds >= input.gpuSecondsBudget) return 'gpu-budget';
    if (this.spaceExhausted) return 'space-exhausted';
    return null;
  }

  // ---- the loop's actions

  /** Start the next queued architecture; false when none is queued. */
  startQueued(): boolean {
    const next = this.st.queue.shift();
    if (next === undefined) return false;
    this.startEvaluation(next);
    return true;
  }

  /** Propose the next batch from everything started before the previous batch (see search-stage.ts's header). */
  proposeBatch(): void {
    const { input, st } = this;
    const visible = st.started.slice(0, st.batchStart);
    const visibleSet = new Set(visible);
    const p = propose({
      space: this.space,
      evaluated: visible.map((a) => this.finished.get(a)).filter((e): e is EvalPoint => e != null),
      pending: [...st.started.filter((a) => !visibleSet.has(a)), ...visible.filter((a) => this.finished.get(a) === null)],
      rng: st.rng,
      count: Math.min(input.concurrency, input.maxEvaluations - st.started.length),
      population: input.population,
      numClasses: input.data.numClasses,
      memo: this.memo,
    });
    st.rng = p.rng;
    st.batchStart = st.started.length;
    for (const pr of p.pruned) log.info('pruned by partial order', pr);
    // nothing left to propose: finish with what was evaluated once the running ones are done
    if (p.archs.length === 0) this.spaceExhausted = true;
    else st.queue = p.archs;
  }

  result(reason: SearchStageResult['stopReason']): SearchStageResult {
    const { input, st } = this;
    return {
      stage: input.stage,
      candidate: input.candidate ?? null,
      evaluatedCount: st.evaluated.length,
      failedCount: st.failed.length,
      reusedCount: st.reused,
      runs: st.runs,
      front: paretoFront(st.evaluated),
      gpuSeconds: st.gpuSeconds,
      stopped: reason !== 'budget' && reason !== 'space-exhausted',
      stopReason: reason,
    };
  }

  carry(): SearchStageCarry {
    return pack(this.st, this.ctl, this.toyRevision, this.usedLayers);
  }

  async sendReport(): Promise<void> {
    if (!this.input.parentWorkflowId) return;
    this.lastReport = Date.now();
    this.finishedAtLastReport = this.finishedCount();
    try {
      await getExternalWorkflowHandle(this.input.parentWorkflowId).signal(stageReportSignal, this.reportForCampaign());
    } catch (e) {
      log.warn('progress report to the campaign failed', { error: String(e) });
    }
  }

  // ---- internals

  private needContinueAsNew(): boolean {
    return (
      this.startedThisRun >= this.input.continueAsNewEvery ||
      workflowInfo().continueAsNewSuggested ||
      (this.capHistory && workflowInfo().historyLength >= (this.input.maxHistoryEvents ?? STAGE_HISTORY_EVENTS))
    );
  }

  /** one is queued, or the next batch may be proposed (everything before the previous batch finished) */
  private canStartNext(): boolean {
    return this.st.queue.length > 0 || this.doneUpTo >= this.st.batchStart;
  }

  private advance(): void {
    while (this.doneUpTo < this.st.started.length && this.finished.has(this.st.started[this.doneUpTo])) this.doneUpTo++;
  }

  private finishedCount(): number {
    return this.st.evaluated.length + this.st.failed.length;
  }

  private progress(): StageProgress {
    const { input, st } = this;
    return {
      status: 'running',
      evaluated: st.evaluated.length,
      planned: input.maxEvaluations,
      running: this.running.size,
      failed: st.failed.length,
      reused: st.reused,
      gpuSeconds: st.gpuSeconds,
      runningArchs: [...this.running].slice(0, 50),
    };
  }

  private report(): StageReport {
    return { stage: this.input.stage, candidate: this.input.candidate, progress: this.progress(), front: paretoFront(this.st.evaluated) };
  }

  private reportForCampaign(): StageReport {
    const r = this.report();
    const sig = (r.front ?? []).map((p) => `${p.arch}|${p.mAP}|${p.cost}`).join('\n');
    if (sig === this.lastFrontSent) return { ...r, front: null };
    this.lastFrontSent = sig;
    return r;
  }

  /** throttled progress reports to the campaign workflow (small signals, a few per minute at most) */
  private maybeReport(): void {
    if (!this.input.parentWorkflowId || this.reportScheduled) return;
    if (this.reportInSteps && this.finishedCount() - this.finishedAtLastReport < this.reportStep) return;
    const wait = this.lastReport + REPORT_EVERY_MS - Date.now();
    if (wait <= 0) void this.sendReport();
    else {
      this.reportScheduled = true;
      // a cancelled stage rejects this timer: ignore it (an unhandled rejection would fail the workflow task)
      sleep(wait).then(
        async () => {
          this.reportScheduled = false;
          await this.sendReport();
        },
        () => undefined,
      );
    }
  }

  /** initial weights of an evaluation: ImageNet weights for a stage-one named backbone that has them, else none */
  private initOf(arch: string): Pick<EvaluationInput, 'initWeights' | 'initKind' | 'recipeBackbone'> {
    const input = this.input;
    if (input.stage !== 'structural' || !input.backboneInit) return {};
    const name = namedBackboneOf(arch);
    const file = name ? input.backboneInit[name] : undefined;
    return file ? { initWeights: file, initKind: 'torchvision', recipeBackbone: { ...PRETRAINED_BACKBONE } } : {};
  }

  private startEvaluation(arch: string): void {
    const { input, st, costKind } = this;
    this.running.add(arch);
    st.started.push(arch);
    this.startedThisRun++;
    const args: EvaluationInput = {
      campaignId: input.campaignId,
      stage: input.stage,
      arch,
      recipe: input.recipe,
      data: input.data,
      seed: input.seed,
      cost: input.stage === 'structural' ? 'latency' : 'flops',
      ...this.initOf(arch),
      ...input.template,
      ...(input.stage === 'modular' && input.candidate ? { candidate: input.candidate } : {}),
    };
    executeChild(evaluateArchitecture, {
      workflowId: evaluationWorkflowId(input.campaignId, input.stage, arch, this.scope),
      taskQueue: input.template.queues.control,
      args: [args],
      staticSummary: `${input.stage} evaluation of ${arch}`,
      typedSearchAttributes: [
        { key: SmnasCampaign, value: input.campaignId },
        { key: SmnasStage, value: input.stage },
        { key: SmnasArch, value: arch },
      ],
    })
      .then((s: EvaluationSummary) => {
        const cost = input.stage === 'structural' ? s.latencyMs : s.gflops;
        if (s.kind === 'ok' && cost === null) throw new Error(`evaluation of ${arch} returned no ${costKind}`);
        const point: EvalPoint = { arch, mAP: s.mAP, cost: cost ?? 0, costKind, key: s.key, reused: s.reused };
        st.evaluated.push(point);
        this.finished.set(arch, point);
        st.gpuSeconds += s.gpuSeconds;
        if (s.reused) st.reused++;
      })
      .catch((e: unknown) => {
        if (isCancellation(e)) return; // the stage itself is being cancelled
        log.warn('evaluation failed', { arch, error: String(e) });
        st.failed.push(arch);
        this.finished.set(arch, null);
      })
      .finally(() => {
        this.running.delete(arch);
        this.advance();
        this.maybeReport();
      });
  }
}
