/**
 * smnasSearch: the campaign workflow (SPEC 7). Validates the campaign, prepares the data, then
 * runs the six stages, each as its own child workflow:
 *   structural search -> candidate selection -> modular search (one child per candidate, in
 *   parallel) -> pretrain -> final training -> transfer (one child per transfer dataset)
 * and writes the report. Its state and handlers live in CampaignState (workflows/campaign-state.ts:
 * progress, fronts, candidates, pause / resume / stop, the Web UI); this file wires the stages:
 * one function per stage, and smnasSearch runs them in order.
 */
import { ApplicationFailure, executeChild, proxyActivities, condition, allHandlersFinished, upsertSearchAttributes, log, patched } from '@temporalio/workflow';
import type { ControlActivities, GpuActivities } from '../activities';
import type { DataSummary, FinalRow, PretrainOutcome } from '../activities/types';
import { describeZodError } from '../common/errors';
import { parseCampaign, type Campaign } from '../protocol/campaign';
import { PRETRAINED_BACKBONE } from '../protocol/recipe';
import { SmnasCampaign, type EvalPoint, type Fronts } from './api';
import { CampaignState } from './campaign-state';
import type { EvaluationSummary } from './evaluation';
import { stageWorkflowId } from './ids';
import { namedBackboneOf, paretoFront } from './search-ops';
import { makeCampaignTemplate, searchStage, type SearchStageInput, type SearchStageResult } from './search-stage';
import { candidateSelection, pretrainStage, trainModelsStage } from './training-stages';

export { costBands } from './campaign-state';

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

type Control = ReturnType<typeof proxyActivities<ControlActivities>>;

/** What a stage function needs besides the state: the control activities and the prepared data. */
interface StageContext {
  st: CampaignState;
  control: Control;
  data: DataSummary;
  template: SearchStageInput['template'];
}

/** The backbone weights' use: stage one's search settings, and a finalist's own ImageNet weights. */
interface WeightsUse {
  stageOne: Pick<SearchStageInput, 'backboneInit' | 'namedBackbones'>;
  imagenetWeightsOf(arch: string): string | undefined;
}

/** Backbone weights: checked before any other work (a bad file fails the campaign at once). */
async function checkWeights(st: CampaignState, control: Control): Promise<WeightsUse> {
  const c = st.c;
  if ((c.data.backboneWeights !== undefined || c.data.missingBackboneWeights !== undefined) && patched(CAMPAIGN_BACKBONE_WEIGHTS)) {
    st.weightsPlan = await control.checkBackboneWeights(c);
    for (const m of st.weightsPlan.messages) log.info(`backbone weights: ${m}`, { campaign: c.id });
    st.show();
  }
  const plan = st.weightsPlan;
  return {
    stageOne:
      plan === null
        ? {}
        : {
            ...(Object.keys(plan.stageOneWeights).length > 0 ? { backboneInit: plan.stageOneWeights } : {}),
            ...(plan.policy === 'exclude' ? { namedBackbones: plan.stageOneBackbones } : {}),
          },
    // a finalist that is exactly a named backbone with ImageNet weights starts from them (not pretrained again)
    imagenetWeightsOf: (arch) => {
      if (plan === null) return undefined;
      const name = namedBackboneOf(arch);
      return name ? plan.finalWeights[name] : undefined;
    },
  };
}

/** 1. structural search */
async function structuralStage({ st, data, template }: StageContext, weights: WeightsUse): Promise<SearchStageResult> {
  const c = st.c;
  st.begin('structural');
  const id = stageWorkflowId(c.id, 'structural');
  const s1: SearchStageResult = await st.runStage(id, () =>
    executeChild(searchStage, {
      ...st.childOptions(id, 'Stage one: structural search'),
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
          deadline: st.deadline,
          gpuSecondsBudget: st.gpuBudgetLeft(),
          continueAsNewEvery: c.budgets.continueAsNewEvery,
          parentWorkflowId: st.workflowId,
          template,
          ...weights.stageOne,
        },
      ],
    }),
  );
  st.gpuSecondsUsed += s1.gpuSeconds;
  st.fronts.structural = s1.front;
  st.stages.structural = { ...st.stages.structural, evaluated: s1.evaluatedCount, failed: s1.failedCount, reused: s1.reusedCount, gpuSeconds: s1.gpuSeconds };
  st.finish('structural', s1.stopped ? 'stopped' : 'done');
  if (s1.front.length === 0) throw ApplicationFailure.nonRetryable('stage one (structural) finished without any scored architecture', 'EmptyStage');
  return s1;
}

/** 2. candidate selection from the stage-one front */
async function selectionStage({ st }: StageContext, s1: SearchStageResult): Promise<void> {
  const c = st.c;
  st.begin('selection');
  const id = stageWorkflowId(c.id, 'selection');
  st.candidates.selected = await st.runStage(id, () =>
    executeChild(candidateSelection, {
      ...st.childOptions(id, `Select ${c.candidates} candidates from the stage-one front`),
      args: [{ front: s1.front, k: c.candidates }],
    }),
  );
  st.stages.selection = { ...st.stages.selection, evaluated: st.candidates.selected.length, planned: c.candidates };
  st.finish('selection');
}

/** 3. modular search, one child per candidate, in parallel; then the finalists; returns their architectures */
async function modularStage({ st, data, template }: StageContext): Promise<string[]> {
  const c = st.c;
  st.begin('modular');
  const k = st.candidates.selected.length;
  st.stages.modular.planned = k * c.stages.modular.maxEvaluationsPerCandidate;
  const perChildConcurrency = Math.max(1, Math.floor(c.budgets.maxConcurrentTrainings / k));
  const perChildGpu = st.gpuBudgetLeft();
  const s2: SearchStageResult[] = await Promise.all(
    st.candidates.selected.map((cand, i) => {
      const id = stageWorkflowId(c.id, 'modular', cand.arch);
      return st.runStage(id, () =>
        executeChild(searchStage, {
          ...st.childOptions(id, `Stage two: modular search around C${i} ${cand.arch}`),
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
              deadline: st.deadline,
              gpuSecondsBudget: perChildGpu === null ? null : perChildGpu / k,
              continueAsNewEvery: c.budgets.continueAsNewEvery,
              parentWorkflowId: st.workflowId,
              template,
            },
          ],
        }),
      );
    }),
  );
  for (const r of s2) {
    st.gpuSecondsUsed += r.gpuSeconds;
    st.fronts.modular[r.candidate!] = r.front;
  }
  st.stages.modular = {
    ...st.stages.modular,
    evaluated: s2.reduce((n, r) => n + r.evaluatedCount, 0),
    failed: s2.reduce((n, r) => n + r.failedCount, 0),
    reused: s2.reduce((n, r) => n + r.reusedCount, 0),
    gpuSeconds: s2.reduce((n, r) => n + r.gpuSeconds, 0),
  };
  st.finish('modular', s2.some((r) => r.stopped) ? 'stopped' : 'done');
  // finalists: the stage-two models spread over the combined front's FLOPs range (E0..); the
  // front of the union of all stage-two evaluations is the front of the union of their fronts
  const combined = paretoFront(s2.flatMap((r) => r.front));
  st.candidates.finalists = await executeChild(candidateSelection, {
    ...st.childOptions(stageWorkflowId(c.id, 'finalists'), `Select ${c.stages.modular.finalists} finalists from the stage-two fronts`),
    args: [{ front: combined, k: c.stages.modular.finalists }],
  });
  if (st.candidates.finalists.length === 0) throw ApplicationFailure.nonRetryable('stage two (modular) finished without any scored architecture', 'EmptyStage');
  return st.candidates.finalists.map((f) => f.arch);
}

/** 4. pretrain (finalists with ImageNet weights of their own are not pretrained again) */
async function pretrainFinalists({ st, data }: StageContext, finalArchs: string[], weights: WeightsUse): Promise<Record<string, PretrainOutcome | null>> {
  const c = st.c;
  const toPretrain = finalArchs.filter((a) => weights.imagenetWeightsOf(a) === undefined);
  if (!data.classification || toPretrain.length === 0) {
    st.finish('pretrain', 'skipped');
    return {};
  }
  st.begin('pretrain');
  st.stages.pretrain.planned = toPretrain.length;
  const id = stageWorkflowId(c.id, 'pretrain');
  const pretrained = await st.runStage(id, () =>
    executeChild(pretrainStage, {
      ...st.childOptions(id, `Pretrain ${toPretrain.length} backbones`),
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
  st.stages.pretrain = { ...st.stages.pretrain, evaluated: ok, failed: toPretrain.length - ok };
  st.finish('pretrain');
  return pretrained;
}

/** 5. final training (2x schedule), from the pretrained backbones or a finalist's own ImageNet weights */
async function finalStage(
  { st, data, template }: StageContext,
  finalArchs: string[],
  pretrained: Record<string, PretrainOutcome | null>,
  weights: WeightsUse,
): Promise<Record<string, EvaluationSummary | null>> {
  const c = st.c;
  st.begin('final');
  st.stages.final.planned = finalArchs.length;
  const id = stageWorkflowId(c.id, 'final');
  const finals: Record<string, EvaluationSummary | null> = await st.runStage(id, () =>
    executeChild(trainModelsStage, {
      ...st.childOptions(id, `Final training of ${finalArchs.length} models`),
      args: [
        {
          campaignId: c.id,
          stage: 'final',
          models: finalArchs.map((arch) => {
            const imagenet = weights.imagenetWeightsOf(arch);
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
  st.stages.final = { ...st.stages.final, evaluated: finalOk.length, failed: finalArchs.length - finalOk.length };
  st.finish('final');
  return finals;
}

/** Deployable models: the final models with weights as ONNX files in the campaign folder (null: none, or a campaign started before). */
async function exportFinalModels({ st, data }: StageContext, finalArchs: string[], finals: Record<string, EvaluationSummary | null>) {
  if (!(finalArchs.some((a) => finals[a]?.weights) && patched(CAMPAIGN_EXPORT_ONNX))) return null;
  // on a GPU worker: the export runs the trainer (on the CPU), which control workers do not carry
  const gpu = proxyActivities<GpuActivities>({
    taskQueue: st.c.queues.gpu,
    startToCloseTimeout: '2 hours',
    retry: { maximumAttempts: 3 },
  });
  return gpu.exportFinalModels({
    campaignDir: data.campaignDir,
    models: finalArchs.map((arch) => ({ arch, weights: finals[arch]?.weights ?? null })),
  });
}

/** 6. transfer, one child per data set; results by data set and architecture */
async function transferStage(
  { st, data, template }: StageContext,
  finalArchs: string[],
  finals: Record<string, EvaluationSummary | null>,
): Promise<Record<string, Record<string, EvaluationSummary | null>>> {
  const c = st.c;
  const transferResults: Record<string, Record<string, EvaluationSummary | null>> = {};
  const transferable = finalArchs.filter((a) => finals[a]?.weights);
  if (data.transfer.length === 0 || transferable.length === 0) {
    st.finish('transfer', 'skipped');
    return transferResults;
  }
  st.begin('transfer');
  st.stages.transfer.planned = data.transfer.length * transferable.length;
  await Promise.all(
    data.transfer.map(async (ds) => {
      const id = stageWorkflowId(c.id, 'transfer', ds.name);
      transferResults[ds.name] = await st.runStage(id, () =>
        executeChild(trainModelsStage, {
          ...st.childOptions(id, `Transfer to ${ds.name}`),
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
      st.stages.transfer.evaluated += Object.values(transferResults[ds.name]).filter((r) => r !== null).length;
      st.show();
    }),
  );
  st.finish('transfer');
  return transferResults;
}

/** The final table: each finalist's pretraining, final mAP, cost and transfer results. */
function finalTableOf(
  data: DataSummary,
  finalArchs: string[],
  pretrained: Record<string, PretrainOutcome | null>,
  finals: Record<string, EvaluationSummary | null>,
  transferResults: Record<string, Record<string, EvaluationSummary | null>>,
  exported: Awaited<ReturnType<typeof exportFinalModels>>,
): FinalRow[] {
  return finalArchs.map((arch) => ({
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
}

export async function smnasSearch(input: unknown): Promise<{ campaignId: string; artifactDir: string; finalTable: FinalRow[]; fronts: Fronts }> {
  // a bad campaign fails at once, non-retryably, naming the field
  const parsed = parseCampaign(input);
  if (!parsed.success) throw ApplicationFailure.nonRetryable(describeZodError('campaign', parsed.error), 'InvalidCampaign');
  const c: Campaign = parsed.data;
  const st = new CampaignState(c, patched(COUNT_EVALUATIONS_ONLY));
  upsertSearchAttributes([{ key: SmnasCampaign, value: c.id }]);
  st.show();
  st.registerHandlers();
  const control = proxyActivities<ControlActivities>({
    taskQueue: c.queues.control,
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: undefined,
    retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['BadData', 'InvalidCampaign', 'MissingConverter'] },
  });

  try {
    const weights = await checkWeights(st, control);
    const data: DataSummary = await control.prepareData(c);
    st.artifactDir = data.campaignDir;
    st.show();
    const ctx: StageContext = { st, control, data, template: makeCampaignTemplate(c) };

    const s1 = await structuralStage(ctx, weights);
    await selectionStage(ctx, s1);
    const finalArchs = await modularStage(ctx);
    const pretrained = await pretrainFinalists(ctx, finalArchs, weights);
    const finals = await finalStage(ctx, finalArchs, pretrained, weights);
    const exported = await exportFinalModels(ctx, finalArchs, finals);
    const transferResults = await transferStage(ctx, finalArchs, finals);

    // ---- report
    st.phase = 'report';
    st.show();
    const finalTable = finalTableOf(data, finalArchs, pretrained, finals, transferResults, exported);
    const strip = (p: EvalPoint) => ({ arch: p.arch, mAP: p.mAP, cost: p.cost, key: p.key });
    await control.writeReport({
      campaignId: c.id,
      campaignDir: data.campaignDir,
      artifactRoot: c.artifactRoot,
      structuralFront: st.fronts.structural.map(strip),
      modularFronts: Object.fromEntries(Object.entries(st.fronts.modular).map(([k, v]) => [k, v.map(strip)])),
      selected: st.candidates.selected.map((p) => p.arch),
      finalTable,
      transferMetrics: Object.fromEntries(data.transfer.map((ds) => [ds.name, ds.metric ?? 'coco-ap'])),
    });
    st.phase = 'done';
    st.show();
    log.info('campaign finished', { campaign: c.id, evaluations: st.evaluatedTotal() });
    // let pending update handlers answer before the workflow closes
    await condition(allHandlersFinished);
    return { campaignId: c.id, artifactDir: data.campaignDir, finalTable, fronts: st.fronts };
  } catch (e) {
    st.error = e instanceof Error ? e.message : String(e);
    st.show();
    throw e;
  }
}
