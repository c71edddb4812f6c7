/**
 * A search stage (stage one: structural; stage two: modular around one candidate) as its own
 * child workflow: evolutionary search driven by the search library, one child workflow per
 * evaluation, at most `concurrency` in flight. Budgets: max evaluations, a wall-clock deadline
 * and a GPU-seconds budget stop it from starting more. Pause finishes running evaluations and
 * starts none; stop-stage keeps what finished and returns.
 *
 * Decisions are reproducible whatever the timing: proposals come in batches of `concurrency`
 * architectures, and a batch is proposed from the results of every evaluation started before the
 * previous batch (all of which must have finished), the others counting as pending. So a campaign
 * started again with the same seed proposes the same architectures in the same order (and then
 * reuses them all from the artifact store), and pauses, worker crashes or continue-as-new never
 * change what is searched. One search-library call per batch (not per evaluation) keeps the
 * workflow's per-task work small in long stages.
 *
 * History stays bounded: after `continueAsNewEvery` evaluations, or when Temporal suggests it, the
 * stage stops starting evaluations, drains the running ones (and pending signals), and continues
 * as new with its compact state (evaluated points, failed archs, the Rng state, budgets used).
 */
import {
  CancellationScope,
  condition,
  continueAsNew,
  executeChild,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  setHandler,
  sleep,
  workflowInfo,
  allHandlersFinished,
} from '@temporalio/workflow';
import type { DatasetRef } from '../activities/types';
import type { Campaign } from '../protocol/campaign';
import { latencySettings } from '../protocol/latency';
import { PRETRAINED_BACKBONE } from '../protocol/recipe';
import { ProposeMemo, type NamedBackbone, type RngState, type ToySpaceRevision } from '../search';
import { SmnasArch, SmnasCampaign, SmnasStage, stageProgressQuery, stageReportSignal, type EvalPoint, type StageProgress, type StageReport } from './api';
import { evaluateArchitecture, type EvaluationInput, type EvaluationSummary } from './evaluation';
import { evaluationWorkflowId } from './ids';
import { initialRngState, namedBackboneOf, paretoFront, propose, seedArch, spaceOf } from './search-ops';
import { installStageControl } from './stage-control';

export interface SearchStageInput {
  campaignId: string;
  stage: 'structural' | 'modular';
  /** modular: the stage-one candidate this stage searches around */
  candidate?: string;
  space: 'toy' | 'paper';
  recipe: string;
  data: DatasetRef;
  seed: number;
  maxEvaluations: number;
  population: number;
  concurrency: number;
  /** ms since epoch (workflow time) after which no evaluation starts; null = none */
  deadline: number | null;
  /** training seconds this stage may use; null = unlimited */
  gpuSecondsBudget: number | null;
  continueAsNewEvery: number;
  /** continue as new when the run's history reaches this many events (default STAGE_HISTORY_EVENTS) */
  maxHistoryEvents?: number;
  /** the campaign workflow to report progress to (null when run alone, e.g. in tests) */
  parentWorkflowId: string | null;
  template: Pick<EvaluationInput, 'latencyDevice' | 'bench' | 'latency' | 'queues' | 'timeouts' | 'checkpoints' | 'artifactRoot'>;
  /**
   * structural: ImageNet weights (torchvision naming) per named backbone, from the campaign's
   * checked `data.backboneWeights` (only when the stage's recipe is BN). An evaluation of an
   * architecture with one of these backbones trains from them (initKind 'torchvision') with
   * recipe.backbone = PRETRAINED_BACKBONE. Absent: every evaluation from scratch.
   */
  backboneInit?: Partial<Record<NamedBackbone, string>>;
  /** structural: the named backbones the stage-one space keeps (data.missingBackboneWeights 'exclude'); absent: all */
  namedBackbones?: NamedBackbone[];
  /** carried across continue-as-new */
  carried?: SearchStageCarry;
}

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

/** What a stage returns to the campaign: counts and the front (never the full list: it can be long). */
export interface SearchStageResult {
  stage: 'structural' | 'modular';
  candidate: string | null;
  evaluatedCount: number;
  failedCount: number;
  reusedCount: number;
  /** runs of this stage workflow (1 + continue-as-new count) */
  runs: number;
  front: EvalPoint[];
  gpuSeconds: number;
  stopped: boolean;
  stopReason: 'budget' | 'stopped' | 'deadline' | 'gpu-budget' | 'space-exhausted';
}

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

export function makeCampaignTemplate(c: Campaign): SearchStageInput['template'] {
  return {
    latencyDevice: c.latencyDevice,
    bench: c.bench,
    latency: latencySettings(c),
    queues: c.queues,
    timeouts: c.timeouts,
    checkpoints: c.checkpoints,
    artifactRoot: c.artifactRoot,
  };
}

export async function searchStage(input: SearchStageInput): Promise<SearchStageResult> {
  const costKind = input.stage === 'structural' ? 'latencyMs' : 'gflops';
  const scope = input.stage === 'modular' ? input.candidate : undefined;
  // toy stage one: FPN from P1/P2 only since revision 2; stages started before keep revision 1 so
  // they replay, and a stage keeps its revision across continue-as-new (older carries: 1)
  const toyRevision: ToySpaceRevision = input.carried
    ? (input.carried.toyRevision ?? 1)
    : input.stage === 'structural' && input.space === 'toy' && !patched(TOY_SPACE_REVISION_2)
      ? 1
      : 2;
  const usedLayers = input.carried ? (input.carried.usedLayers ?? false) : patched(SEARCH_USED_LAYERS);
  const space = spaceOf(
    input.space,
    input.stage === 'structural' ? { stage: 'structural' } : { stage: 'modular', candidate: input.candidate! },
    toyRevision,
    input.stage === 'structural' ? input.namedBackbones : undefined,
    usedLayers,
  );
  /** initial weights of an evaluation: ImageNet weights for a stage-one named backbone that has them, else none */
  const initOf = (arch: string): Pick<EvaluationInput, 'initWeights' | 'initKind' | 'recipeBackbone'> => {
    if (input.stage !== 'structural' || !input.backboneInit) return {};
    const name = namedBackboneOf(arch);
    const file = name ? input.backboneInit[name] : undefined;
    return file ? { initWeights: file, initKind: 'torchvision', recipeBackbone: { ...PRETRAINED_BACKBONE } } : {};
  };
  const st: SearchStageState = input.carried
    ? unpack(input.carried, costKind)
    : { rng: initialRngState(input.seed), started: [], queue: [], batchStart: 0, evaluated: [], failed: [], gpuSeconds: 0, reused: 0, runs: 1 };
  // stage two starts from its candidate: queued before the first proposal, so the first batch
  // already counts it as pending (never proposed again) and later batches see its score
  if (!input.carried && input.stage === 'modular' && input.maxEvaluations > 0 && patched(STAGE_TWO_SEED)) st.queue = [seedArch(input.candidate!, usedLayers)];
  const ctl = installStageControl(input.stage, { paused: input.carried?.paused, stopRequested: input.carried?.stopRequested });
  const running = new Set<string>();
  let startedThisRun = 0;
  // parsed forms, shapes and pruning costs of the architectures this run has seen: the search
  // step then costs O(batch x evaluated) comparisons instead of re-parsing every architecture
  const memo = new ProposeMemo();
  // finished (scored, diverged or failed) architectures, and how far the start order is finished
  const finished = new Map<string, EvalPoint | null>([...st.evaluated.map((e) => [e.arch, e] as const), ...st.failed.map((a) => [a, null] as const)]);
  let doneUpTo = st.started.length; // index of the first started evaluation that has not finished
  const advance = () => {
    while (doneUpTo < st.started.length && finished.has(st.started[doneUpTo])) doneUpTo++;
  };
  /** an evaluation can start: one is queued, or the next batch may be proposed (everything before the previous batch finished) */
  const canStartNext = () => st.queue.length > 0 || doneUpTo >= st.batchStart;
  let spaceExhausted = false;

  const progress = (): StageProgress => ({
    status: 'running',
    evaluated: st.evaluated.length,
    planned: input.maxEvaluations,
    running: running.size,
    failed: st.failed.length,
    reused: st.reused,
    gpuSeconds: st.gpuSeconds,
    runningArchs: [...running].slice(0, 50),
  });
  const report = (): StageReport => ({ stage: input.stage, candidate: input.candidate, progress: progress(), front: paretoFront(st.evaluated) });
  setHandler(stageProgressQuery, report);
  // the front goes to the campaign only when it changed (see StageReportSchema)
  let lastFrontSent = '';
  const reportForCampaign = (): StageReport => {
    const r = report();
    const sig = (r.front ?? []).map((p) => `${p.arch}|${p.mAP}|${p.cost}`).join('\n');
    if (sig === lastFrontSent) return { ...r, front: null };
    lastFrontSent = sig;
    return r;
  };

  // throttled progress reports to the campaign workflow (small signals, a few per minute at most)
  let lastReport = 0;
  let reportScheduled = false;
  // Every report is ~5 events in the campaign's history, which never continues as new: with
  // GPU-paced evaluations the time throttle merges nothing, so a 10k-evaluation stage would
  // add ~50k events. Hence reports also wait for 0.5 % of the stage's planned evaluations to
  // finish (at most ~200 per stage; every evaluation in small stages); the stage's own
  // `stageProgress` query stays live.
  const reportInSteps = patched(STAGE_REPORT_STEPS);
  const reportStep = Math.max(1, Math.ceil(input.maxEvaluations / 200));
  const finishedCount = () => st.evaluated.length + st.failed.length;
  let finishedAtLastReport = finishedCount();
  const sendReport = async () => {
    if (!input.parentWorkflowId) return;
    lastReport = Date.now();
    finishedAtLastReport = finishedCount();
    try {
      await getExternalWorkflowHandle(input.parentWorkflowId).signal(stageReportSignal, reportForCampaign());
    } catch (e) {
      log.warn('progress report to the campaign failed', { error: String(e) });
    }
  };
  const maybeReport = () => {
    if (!input.parentWorkflowId || reportScheduled) return;
    if (reportInSteps && finishedCount() - finishedAtLastReport < reportStep) return;
    const wait = lastReport + REPORT_EVERY_MS - Date.now();
    if (wait <= 0) void sendReport();
    else {
      reportScheduled = true;
      // a cancelled stage rejects this timer: ignore it (an unhandled rejection would fail the workflow task)
      sleep(wait).then(
        async () => {
          reportScheduled = false;
          await sendReport();
        },
        () => undefined,
      );
    }
  };

  const budgetReason = (): SearchStageResult['stopReason'] | null => {
    if (ctl.stopRequested) return 'stopped';
    if (st.started.length >= input.maxEvaluations) return 'budget';
    if (input.deadline !== null && Date.now() >= input.deadline) return 'deadline';
    if (input.gpuSecondsBudget !== null && st.gpuSeconds >= input.gpuSecondsBudget) return 'gpu-budget';
    if (spaceExhausted) return 'space-exhausted';
    return null;
  };
  const capHistory = patched(STAGE_HISTORY_CAP);
  const needContinueAsNew = () =>
    startedThisRun >= input.continueAsNewEvery ||
    workflowInfo().continueAsNewSuggested ||
    (capHistory && workflowInfo().historyLength >= (input.maxHistoryEvents ?? STAGE_HISTORY_EVENTS));

  const startEvaluation = (arch: string) => {
    running.add(arch);
    st.started.push(arch);
    startedThisRun++;
    const args: EvaluationInput = {
      campaignId: input.campaignId,
      stage: input.stage,
      arch,
      recipe: input.recipe,
      data: input.data,
      seed: input.seed,
      cost: input.stage === 'structural' ? 'latency' : 'flops',
      ...initOf(arch),
      ...input.template,
      ...(input.stage === 'modular' && input.candidate ? { candidate: input.candidate } : {}),
    };
    executeChild(evaluateArchitecture, {
      workflowId: evaluationWorkflowId(input.campaignId, input.stage, arch, scope),
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
        finished.set(arch, point);
        st.gpuSeconds += s.gpuSeconds;
        if (s.reused) st.reused++;
      })
      .catch((e: unknown) => {
        if (isCancellation(e)) return; // the stage itself is being cancelled
        log.warn('evaluation failed', { arch, error: String(e) });
        st.failed.push(arch);
        finished.set(arch, null);
      })
      .finally(() => {
        running.delete(arch);
        advance();
        maybeReport();
      });
  };

  try {
    return await mainLoop();
  } catch (e) {
    // cancelled: let the running evaluations finish *their* cancellation (their trainers stopped)
    // before this stage closes; otherwise closing would terminate them abruptly
    if (isCancellation(e)) await CancellationScope.nonCancellable(() => condition(() => running.size === 0));
    throw e;
  }

  async function mainLoop(): Promise<SearchStageResult> {
    while (true) {
      // wait until we may start one, or must drain / finish
      await condition(
        () =>
          (running.size === 0 && (budgetReason() !== null || needContinueAsNew())) ||
          (!ctl.paused && budgetReason() === null && !needContinueAsNew() && running.size < input.concurrency && canStartNext()),
      );
      if (running.size === 0 && needContinueAsNew() && budgetReason() === null) {
        await condition(allHandlersFinished);
        await continueAsNew<typeof searchStage>({ ...input, carried: pack(st, ctl, toyRevision, usedLayers) });
      }
      const reason = budgetReason();
      if (reason !== null) {
        if (running.size === 0) {
          const result: SearchStageResult = {
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
          await sendReport();
          return result;
        }
        continue;
      }
      const next = st.queue.shift();
      if (next !== undefined) {
        startEvaluation(next);
        continue;
      }
      // propose the next batch from everything started before the previous batch (see the header)
      const visible = st.started.slice(0, st.batchStart);
      const visibleSet = new Set(visible);
      const p = propose({
        space,
        evaluated: visible.map((a) => finished.get(a)).filter((e): e is EvalPoint => e != null),
        pending: [...st.started.filter((a) => !visibleSet.has(a)), ...visible.filter((a) => finished.get(a) === null)],
        rng: st.rng,
        count: Math.min(input.concurrency, input.maxEvaluations - st.started.length),
        population: input.population,
        numClasses: input.data.numClasses,
        memo,
      });
      st.rng = p.rng;
      st.batchStart = st.started.length;
      for (const pr of p.pruned) log.info('pruned by partial order', pr);
      if (p.archs.length === 0) {
        // nothing left to propose: finish with what was evaluated once the running ones are done
        spaceExhausted = true;
        continue;
      }
      st.queue = p.archs;
    }
  }
}
