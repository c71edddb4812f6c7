/**
 * smnasSearch: the campaign workflow (SPEC 7). Validates the campaign, prepares the data, then
 * runs the six stages, each as its own child workflow:
 *   structural search -> candidate selection -> modular search (one child per candidate, in
 *   parallel) -> pretrain -> final training -> transfer (one child per transfer dataset)
 * and writes the report. Its own state stays small (ids, metrics, fronts); the stages report
 * progress to it by signal, and it shows the campaign in the Web UI (search attributes, current
 * details) and answers the progress / fronts / candidates queries.
 */
import {
  ApplicationFailure,
  executeChild,
  getExternalWorkflowHandle,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  condition,
  allHandlersFinished,
  upsertSearchAttributes,
  workflowInfo,
  log,
  patched,
} from '@temporalio/workflow';
import type { ControlActivities } from '../activities';
import type { BackboneWeightsPlan, DataSummary, FinalRow, PretrainOutcome } from '../activities/types';
import { describeZodError } from '../common/errors';
import { parseCampaign, STAGES, type Campaign, type StageName } from '../protocol/campaign';
import { PRETRAINED_BACKBONE } from '../protocol/recipe';
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
} from './api';
import type { EvaluationSummary } from './evaluation';
import { stageWorkflowId } from './ids';
import { namedBackboneOf, paretoFront } from './search-ops';
import { makeCampaignTemplate, searchStage, type SearchStageResult } from './search-stage';
import { candidateSelection, pretrainStage, trainModelsStage } from './training-stages';

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

/**
 * patch id: a campaign that names `data.backboneWeights` or `data.missingBackboneWeights` checks
 * them at start (activity checkBackboneWeights) and uses them in stage one and the final stage.
 * Campaigns without either field run exactly as before (no patch marker, no new command).
 */
export const CAMPAIGN_BACKBONE_WEIGHTS = 'campaign-backbone-weights';

/**
 * patch id: `progress.evaluated` and the SmnasEvaluated search attribute count evaluations only
 * (structural, modular, final, transfer: what the results log holds). Before, they also added the
 * candidates selected and the backbones pretrained (18 for a toy campaign of 15 evaluations).
 */
export const COUNT_EVALUATIONS_ONLY = 'campaign-count-evaluations-only';

/**
 * patch id: after the final stage the campaign exports its final models to ONNX (control activity
 * exportFinalModels, docs/deploy.md) and the final table and report list them. Campaigns started
 * before run exactly as before (no marker, no new command).
 */
export const CAMPAIGN_EXPORT_ONNX = 'campaign-export-onnx';
const EVALUATION_STAGES: readonly StageName[] = ['structural', 'modular', 'final', 'transfer'];

export async function smnasSearch(input: unknown): Promise<{ campaignId: string; artifactDir: string; finalTable: FinalRow[]; fronts: Fronts }> {
  // ---- validation: a bad campaign fails at once, non-retryably, naming the field
  const parsed = parseCampaign(input);
  if (!parsed.success) throw ApplicationFailure.nonRetryable(describeZodError('campaign', parsed.error), 'InvalidCampaign');
  const c: Campaign = parsed.data;
  const countEvaluationsOnly = patched(COUNT_EVALUATIONS_ONLY);
  const me = workflowInfo().workflowId;
  const startedAt = Date.now();
  const deadline = c.budgets.wallClockHours !== undefined ? startedAt + c.budgets.wallClockHours * 3600_000 : null;

  // ---- small state
  const stages: Record<string, StageProgress> = Object.fromEntries(STAGES.map((s) => [s, emptyProgress()]));
  stages.structural.planned = c.stages.structural.maxEvaluations;
  let phase: string = 'data';
  let paused = false;
  let error: string | null = null;
  let artifactDir: string | null = null;
  /** what the campaign does with data.backboneWeights (null: the campaign names none) */
  let weightsPlan: BackboneWeightsPlan | null = null;
  const fronts: Fronts = { structural: [], modular: {} };
  const candidates: Candidates = { selected: [], finalists: [] };
  let gpuSecondsUsed = 0;
  /** stage children running now (their ids), so pause / resume / stop reach them */
  const activeChildren = new Set<string>();
  const modularProgress: Record<string, StageProgress> = {};

  const bestMap = (): number | null => {
    const all = [...fronts.structural, ...Object.values(fronts.modular).flat()].map((p) => p.mAP).filter((m): m is number => m !== null);
    return all.length ? Math.max(...all) : null;
  };
  const evaluatedTotal = () => (countEvaluationsOnly ? EVALUATION_STAGES : STAGES).reduce((n, s) => n + stages[s].evaluated, 0);
  const progress = (): Progress => ({
    campaignId: c.id,
    profile: c.profile,
    phase,
    paused,
    stages,
    bestMapByCostBand: [...costBands('structural', fronts.structural), ...costBands('modular', Object.values(fronts.modular).flat())],
    bestMap: bestMap(),
    evaluated: evaluatedTotal(),
    startedAt,
    updatedAt: Date.now(),
    artifactDir,
    error,
    ...(weightsPlan ? { backboneWeights: weightsPlan.messages } : {}),
  });

  // ---- Web UI: search attributes and current details, refreshed as the campaign advances
  let shownEvaluated = -1;
  let shownPhase = '';
  const show = () => {
    const ev = evaluatedTotal();
    if (ev === shownEvaluated && phase === shownPhase) return;
    shownEvaluated = ev;
    shownPhase = phase;
    const best = bestMap();
    upsertSearchAttributes([
      { key: SmnasStage, value: phase },
      { key: SmnasEvaluated, value: ev },
      ...(best !== null ? [{ key: SmnasBestMap, value: best }] : []),
    ]);
    const rows = STAGES.map((s) => `| ${s} | ${stages[s].status} | ${stages[s].evaluated}/${stages[s].planned} | ${stages[s].running} | ${stages[s].failed} |`);
    const front = fronts.structural.slice(0, 8).map((p) => `| ${p.arch} | ${p.mAP?.toFixed(4) ?? '-'} | ${p.cost.toFixed(2)} ms |`);
    setCurrentDetails(
      [
        `## SM-NAS campaign \`${c.id}\` (${c.profile})`,
        `**Stage:** ${phase}${paused ? ' (paused)' : ''} · **evaluated:** ${ev} · **best mAP:** ${best?.toFixed(4) ?? '-'}`,
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
  };
  upsertSearchAttributes([{ key: SmnasCampaign, value: c.id }]);
  show();

  // ---- handlers
  const forward = async (fn: (id: string) => Promise<void>) => {
    for (const id of [...activeChildren]) {
      try {
        await fn(id);
      } catch (e) {
        log.warn('could not reach a stage workflow', { id, error: String(e) });
      }
    }
  };
  const doPause = async () => {
    paused = true;
    show();
    await forward((id) => getExternalWorkflowHandle(id).signal(pauseSignal));
  };
  const doResume = async () => {
    paused = false;
    show();
    await forward((id) => getExternalWorkflowHandle(id).signal(resumeSignal));
  };
  const doStop = async (stage?: string) => {
    if (stage && stage !== phase) return;
    await forward((id) => getExternalWorkflowHandle(id).signal(stopStageSignal));
  };
  setHandler(pauseSignal, doPause);
  setHandler(resumeSignal, doResume);
  setHandler(stopStageSignal, doStop);
  setHandler(pauseUpdate, async () => (await doPause(), progress()));
  setHandler(resumeUpdate, async () => (await doResume(), progress()));
  setHandler(stopStageUpdate, async (stage?: string) => (await doStop(stage), progress()));
  setHandler(progressQuery, progress);
  setHandler(frontsQuery, () => fronts);
  setHandler(candidatesQuery, () => candidates);
  setHandler(stageReportSignal, (r) => {
    if (r.stage === 'modular' && r.candidate) {
      modularProgress[r.candidate] = r.progress;
      if (r.front) fronts.modular[r.candidate] = r.front; // null: unchanged
      const all = Object.values(modularProgress);
      stages.modular = {
        ...stages.modular,
        evaluated: all.reduce((n, p) => n + p.evaluated, 0),
        running: all.reduce((n, p) => n + p.running, 0),
        failed: all.reduce((n, p) => n + p.failed, 0),
        reused: all.reduce((n, p) => n + p.reused, 0),
        gpuSeconds: all.reduce((n, p) => n + p.gpuSeconds, 0),
        runningArchs: all.flatMap((p) => p.runningArchs).slice(0, 50),
      };
    } else if (r.stage === 'structural') {
      stages.structural = { ...r.progress, status: 'running' };
      if (r.front) fronts.structural = r.front;
    }
    show();
  });

  // ---- helpers to run a stage child with pause state handed down
  const childOpts = (id: string, summary: string) => ({
    workflowId: id,
    taskQueue: c.queues.control,
    staticSummary: summary,
    typedSearchAttributes: [{ key: SmnasCampaign, value: c.id }],
    // a stage's task can be a replay of its whole run (a worker restarted or evicted it): give it
    // more than the default 10 s, so a loaded worker finishes it instead of retrying it
    workflowTaskTimeout: '60 seconds' as const,
  });
  async function runStage<T>(id: string, run: () => Promise<T>): Promise<T> {
    activeChildren.add(id);
    try {
      // a child started while the campaign is paused starts paused
      const p = run();
      if (paused)
        await getExternalWorkflowHandle(id)
          .signal(pauseSignal)
          .catch(() => undefined);
      return await p;
    } finally {
      activeChildren.delete(id);
    }
  }
  const gpuBudgetLeft = () => (c.budgets.gpuHours !== undefined ? Math.max(0, c.budgets.gpuHours * 3600 - gpuSecondsUsed) : null);
  const begin = (s: StageName) => {
    phase = s;
    stages[s] = { ...stages[s], status: 'running' };
    show();
  };
  const finish = (s: StageName, status: StageProgress['status'] = 'done') => {
    stages[s] = { ...stages[s], status, running: 0, runningArchs: [] };
    show();
  };

  const control = proxyActivities<ControlActivities>({
    taskQueue: c.queues.control,
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: undefined,
    retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['BadData', 'InvalidCampaign', 'MissingConverter'] },
  });

  try {
    // ---- backbone weights: checked before any other work (a bad file fails the campaign at once)
    if ((c.data.backboneWeights !== undefined || c.data.missingBackboneWeights !== undefined) && patched(CAMPAIGN_BACKBONE_WEIGHTS)) {
      weightsPlan = await control.checkBackboneWeights(c);
      for (const m of weightsPlan.messages) log.info(`backbone weights: ${m}`, { campaign: c.id });
      show();
    }
    const stageOneWeights =
      weightsPlan === null
        ? {}
        : {
            ...(Object.keys(weightsPlan.stageOneWeights).length > 0 ? { backboneInit: weightsPlan.stageOneWeights } : {}),
            ...(weightsPlan.policy === 'exclude' ? { namedBackbones: weightsPlan.stageOneBackbones } : {}),
          };
    /** a finalist that is exactly a named backbone with ImageNet weights starts from them (not pretrained again) */
    const imagenetWeightsOf = (arch: string): string | undefined => {
      if (weightsPlan === null) return undefined;
      const name = namedBackboneOf(arch);
      return name ? weightsPlan.finalWeights[name] : undefined;
    };

    // ---- data
    const data: DataSummary = await control.prepareData(c);
    artifactDir = data.campaignDir;
    show();
    const template = makeCampaignTemplate(c);

    // ---- 1. structural search
    begin('structural');
    const s1: SearchStageResult = await runStage(stageWorkflowId(c.id, 'structural'), () =>
      executeChild(searchStage, {
        ...childOpts(stageWorkflowId(c.id, 'structural'), 'Stage one: structural search'),
        args: [
          {
            campaignId: c.id,
            stage: 'structural',
            space: c.space,
            recipe: c.stages.structural.recipe,
            data: data.detection,
            seed: c.seed,
            maxEvaluations: c.stages.structural.maxEvaluations,
            population: c.stages.structural.population,
            concurrency: c.budgets.maxConcurrentTrainings,
            deadline,
            gpuSecondsBudget: gpuBudgetLeft(),
            continueAsNewEvery: c.budgets.continueAsNewEvery,
            parentWorkflowId: me,
            template,
            ...stageOneWeights,
          },
        ],
      }),
    );
    gpuSecondsUsed += s1.gpuSeconds;
    fronts.structural = s1.front;
    stages.structural = { ...stages.structural, evaluated: s1.evaluatedCount, failed: s1.failedCount, reused: s1.reusedCount, gpuSeconds: s1.gpuSeconds };
    finish('structural', s1.stopped ? 'stopped' : 'done');
    if (s1.front.length === 0) throw ApplicationFailure.nonRetryable('stage one (structural) finished without any scored architecture', 'EmptyStage');

    // ---- 2. candidate selection
    begin('selection');
    candidates.selected = await runStage(stageWorkflowId(c.id, 'selection'), () =>
      executeChild(candidateSelection, {
        ...childOpts(stageWorkflowId(c.id, 'selection'), `Select ${c.candidates} candidates from the stage-one front`),
        args: [{ front: s1.front, k: c.candidates }],
      }),
    );
    stages.selection = { ...stages.selection, evaluated: candidates.selected.length, planned: c.candidates };
    finish('selection');

    // ---- 3. modular search, one child per candidate, in parallel
    begin('modular');
    const k = candidates.selected.length;
    stages.modular.planned = k * c.stages.modular.maxEvaluationsPerCandidate;
    const perChildConcurrency = Math.max(1, Math.floor(c.budgets.maxConcurrentTrainings / k));
    const perChildGpu = gpuBudgetLeft();
    const s2: SearchStageResult[] = await Promise.all(
      candidates.selected.map((cand, i) => {
        const id = stageWorkflowId(c.id, 'modular', cand.arch);
        return runStage(id, () =>
          executeChild(searchStage, {
            ...childOpts(id, `Stage two: modular search around C${i} ${cand.arch}`),
            args: [
              {
                campaignId: c.id,
                stage: 'modular',
                candidate: cand.arch,
                space: c.space,
                recipe: c.stages.modular.recipe,
                data: data.detection,
                seed: c.seed + 1 + i,
                maxEvaluations: c.stages.modular.maxEvaluationsPerCandidate,
                population: c.stages.modular.population,
                concurrency: perChildConcurrency,
                deadline,
                gpuSecondsBudget: perChildGpu === null ? null : perChildGpu / k,
                continueAsNewEvery: c.budgets.continueAsNewEvery,
                parentWorkflowId: me,
                template,
              },
            ],
          }),
        );
      }),
    );
    for (const r of s2) {
      gpuSecondsUsed += r.gpuSeconds;
      fronts.modular[r.candidate!] = r.front;
    }
    stages.modular = {
      ...stages.modular,
      evaluated: s2.reduce((n, r) => n + r.evaluatedCount, 0),
      failed: s2.reduce((n, r) => n + r.failedCount, 0),
      reused: s2.reduce((n, r) => n + r.reusedCount, 0),
      gpuSeconds: s2.reduce((n, r) => n + r.gpuSeconds, 0),
    };
    finish('modular', s2.some((r) => r.stopped) ? 'stopped' : 'done');
    // finalists: the stage-two models spread over the combined front's FLOPs range (E0..); the
    // front of the union of all stage-two evaluations is the front of the union of their fronts
    const combined = paretoFront(s2.flatMap((r) => r.front));
    candidates.finalists = await executeChild(candidateSelection, {
      ...childOpts(stageWorkflowId(c.id, 'finalists'), `Select ${c.stages.modular.finalists} finalists from the stage-two fronts`),
      args: [{ front: combined, k: c.stages.modular.finalists }],
    });
    if (candidates.finalists.length === 0) throw ApplicationFailure.nonRetryable('stage two (modular) finished without any scored architecture', 'EmptyStage');
    const finalArchs = candidates.finalists.map((f) => f.arch);

    // ---- 4. pretrain (finalists with ImageNet weights of their own are not pretrained again)
    const toPretrain = finalArchs.filter((a) => imagenetWeightsOf(a) === undefined);
    let pretrained: Record<string, PretrainOutcome | null> = {};
    if (data.classification && toPretrain.length > 0) {
      begin('pretrain');
      stages.pretrain.planned = toPretrain.length;
      pretrained = await runStage(stageWorkflowId(c.id, 'pretrain'), () =>
        executeChild(pretrainStage, {
          ...childOpts(stageWorkflowId(c.id, 'pretrain'), `Pretrain ${toPretrain.length} backbones`),
          args: [
            {
              campaignId: c.id,
              archs: toPretrain,
              recipe: c.stages.pretrain.recipe,
              classification: { root: data.classification!.root, fingerprint: data.classification!.fingerprint },
              seed: c.seed,
              concurrency: c.budgets.maxConcurrentTrainings,
              queues: c.queues,
              timeouts: c.timeouts,
              checkpoints: c.checkpoints,
              artifactRoot: c.artifactRoot,
            },
          ],
        }),
      );
      const ok = Object.values(pretrained).filter((p) => p !== null).length;
      stages.pretrain = { ...stages.pretrain, evaluated: ok, failed: toPretrain.length - ok };
      finish('pretrain');
    } else {
      finish('pretrain', 'skipped');
    }

    // ---- 5. final training
    begin('final');
    stages.final.planned = finalArchs.length;
    const finals: Record<string, EvaluationSummary | null> = await runStage(stageWorkflowId(c.id, 'final'), () =>
      executeChild(trainModelsStage, {
        ...childOpts(stageWorkflowId(c.id, 'final'), `Final training of ${finalArchs.length} models`),
        args: [
          {
            campaignId: c.id,
            stage: 'final',
            models: finalArchs.map((arch) => {
              const imagenet = imagenetWeightsOf(arch);
              return imagenet !== undefined
                ? { arch, initWeights: imagenet, initKind: 'torchvision' as const, recipeBackbone: { ...PRETRAINED_BACKBONE } }
                : { arch, initWeights: pretrained[arch]?.weights, initKind: 'backbone' as const };
            }),
            recipe: c.stages.final.recipe,
            data: data.detection,
            seed: c.seed,
            concurrency: c.budgets.maxConcurrentTrainings,
            template,
          },
        ],
      }),
    );
    const finalOk = Object.values(finals).filter((f) => f !== null && f.kind === 'ok');
    stages.final = { ...stages.final, evaluated: finalOk.length, failed: finalArchs.length - finalOk.length };
    finish('final');
    // deployable models: the final models with weights as ONNX files in the campaign folder
    const exported =
      finalArchs.some((a) => finals[a]?.weights) && patched(CAMPAIGN_EXPORT_ONNX)
        ? await control.exportFinalModels({
            campaignDir: data.campaignDir,
            models: finalArchs.map((arch) => ({ arch, weights: finals[arch]?.weights ?? null })),
          })
        : null;

    // ---- 6. transfer, one child per dataset
    const transferResults: Record<string, Record<string, EvaluationSummary | null>> = {};
    const transferable = finalArchs.filter((a) => finals[a]?.weights);
    if (data.transfer.length > 0 && transferable.length > 0) {
      begin('transfer');
      stages.transfer.planned = data.transfer.length * transferable.length;
      await Promise.all(
        data.transfer.map(async (ds) => {
          const id = stageWorkflowId(c.id, 'transfer', ds.name);
          transferResults[ds.name] = await runStage(id, () =>
            executeChild(trainModelsStage, {
              ...childOpts(id, `Transfer to ${ds.name}`),
              args: [
                {
                  campaignId: c.id,
                  stage: 'transfer',
                  scope: ds.name,
                  models: transferable.map((arch) => ({ arch, initWeights: finals[arch]!.weights!, initKind: 'detector' as const })),
                  recipe: c.stages.transfer.recipe,
                  data: ds,
                  seed: c.seed,
                  concurrency: Math.max(1, Math.floor(c.budgets.maxConcurrentTrainings / data.transfer.length)),
                  template,
                },
              ],
            }),
          );
          stages.transfer.evaluated += Object.values(transferResults[ds.name]).filter((r) => r !== null).length;
          show();
        }),
      );
      finish('transfer');
    } else {
      finish('transfer', 'skipped');
    }

    // ---- report
    phase = 'report';
    show();
    const finalTable: FinalRow[] = finalArchs.map((arch) => ({
      arch,
      pretrainTop1: pretrained[arch]?.top1 ?? null,
      finalMap: finals[arch]?.mAP ?? null,
      gflops: finals[arch]?.gflops ?? null,
      latencyMs: finals[arch]?.latencyMs ?? null,
      // each data set's own metric (VOC mAP@0.5, BDD's AP), and COCO-style AP on the same split beside it
      transfer: Object.fromEntries(
        data.transfer.map((ds) => {
          const r = transferResults[ds.name]?.[arch];
          return [ds.name, r?.datasetMetric?.value ?? r?.mAP ?? null];
        }),
      ),
      transferCocoAP: Object.fromEntries(data.transfer.map((ds) => [ds.name, transferResults[ds.name]?.[arch]?.mAP ?? null])),
      weights: finals[arch]?.weights ?? null,
      ...(exported ? { onnx: exported[arch]?.model ?? null, ...(exported[arch]?.error !== undefined ? { onnxError: exported[arch].error } : {}) } : {}),
    }));
    const strip = (p: EvalPoint) => ({ arch: p.arch, mAP: p.mAP, cost: p.cost, key: p.key });
    await control.writeReport({
      campaignId: c.id,
      campaignDir: data.campaignDir,
      artifactRoot: c.artifactRoot,
      structuralFront: fronts.structural.map(strip),
      modularFronts: Object.fromEntries(Object.entries(fronts.modular).map(([k2, v]) => [k2, v.map(strip)])),
      selected: candidates.selected.map((p) => p.arch),
      finalTable,
      transferMetrics: Object.fromEntries(data.transfer.map((ds) => [ds.name, ds.metric ?? 'coco-ap'])),
    });
    phase = 'done';
    show();
    log.info('campaign finished', { campaign: c.id, evaluations: evaluatedTotal() });
    // let pending update handlers answer before the workflow closes
    await condition(allHandlersFinished);
    return { campaignId: c.id, artifactDir: data.campaignDir, finalTable, fronts };
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
    show();
    throw e;
  }
}
