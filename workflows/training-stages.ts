/**
 * The stages after the search, each its own child workflow:
 *  - candidateSelection: K stage-one front models spread across the cost range (search library)
 *  - pretrainStage: backbone pretraining of each finalist on the classification folders
 *  - finalTrainingStage: the final schedule for each finalist from its pretrained backbone,
 *    evaluated, with latency and FLOPs
 *  - transferStage: one per transfer dataset, each final model fine-tuned from its final weights
 * All start trainings through runBounded, so pause / resume / stop-stage work here too.
 */
import { executeChild, proxyActivities, setHandler } from '@temporalio/workflow';
import type { GpuActivities } from '../activities';
import type { DatasetRef, PretrainOutcome } from '../activities/types';
import type { Campaign } from '../protocol/campaign';
import type { InitKind } from '../protocol/job';
import type { BackboneTraining } from '../protocol/recipe';
import { SmnasArch, SmnasCampaign, SmnasStage, stageProgressQuery, type EvalPoint, type StageReport } from './api';
import { evaluateArchitecture, type EvaluationInput, type EvaluationSummary } from './evaluation';
import { evaluationWorkflowId } from './ids';
import { selectFromFront } from './search-ops';
import type { SearchStageInput } from './search-stage';
import { installStageControl, runBounded } from './stage-control';

export async function candidateSelection(input: { front: EvalPoint[]; k: number }): Promise<EvalPoint[]> {
  return selectFromFront(input.front, input.k);
}

interface StageRun {
  evaluated: number;
  failed: number;
  running: string[];
}

function installProgress(stage: string, planned: number, run: StageRun, front: () => EvalPoint[] = () => []) {
  setHandler(stageProgressQuery, (): StageReport => ({
    stage,
    progress: {
      status: 'running',
      evaluated: run.evaluated,
      planned,
      running: run.running.length,
      failed: run.failed,
      reused: 0,
      gpuSeconds: 0,
      runningArchs: run.running.slice(0, 50),
    },
    front: front(),
  }));
}

export interface PretrainStageInput {
  campaignId: string;
  archs: string[];
  recipe: string;
  classification: { root: string; fingerprint: string };
  seed: number;
  concurrency: number;
  queues: Campaign['queues'];
  timeouts: Campaign['timeouts'];
  checkpoints?: Campaign['checkpoints'];
  artifactRoot?: string;
}

export async function pretrainStage(input: PretrainStageInput): Promise<Record<string, PretrainOutcome | null>> {
  const ctl = installStageControl('pretrain');
  const run: StageRun = { evaluated: 0, failed: 0, running: [] };
  installProgress('pretrain', input.archs.length, run);
  const gpu = proxyActivities<GpuActivities>({
    taskQueue: input.queues.gpu,
    startToCloseTimeout: `${input.timeouts.trainingHours} hours`,
    heartbeatTimeout: `${input.timeouts.heartbeatSeconds} seconds`,
    retry: { maximumAttempts: input.timeouts.maxAttempts, initialInterval: '5 seconds', nonRetryableErrorTypes: ['InvalidJob', 'BadData', 'Diverged'] },
  });
  const results = await runBounded(
    input.archs,
    input.concurrency,
    ctl,
    async (arch) => {
      run.running.push(arch);
      try {
        return await gpu.pretrainBackbone.executeWithOptions({ summary: `pretrain backbone of ${arch}` }, [
          {
            campaignId: input.campaignId,
            arch,
            recipe: input.recipe,
            dataRoot: input.classification.root,
            fingerprint: input.classification.fingerprint,
            seed: input.seed,
            artifactRoot: input.artifactRoot,
            checkpoint: input.checkpoints,
          },
        ]);
      } finally {
        run.running.splice(run.running.indexOf(arch), 1);
      }
    },
    () => undefined,
  );
  const out: Record<string, PretrainOutcome | null> = {};
  input.archs.forEach((a, i) => {
    const r = results[i];
    out[a] = r?.ok ? r.value : null;
  });
  return out;
}

export interface FinalStageInput {
  campaignId: string;
  stage: 'final' | 'transfer';
  /** transfer: the dataset name (the child's scope) */
  scope?: string;
  /** per model: its initial weights (torchvision: an ImageNet checkpoint, trained with recipeBackbone = PRETRAINED_BACKBONE) */
  models: { arch: string; initWeights?: string; initKind?: InitKind; recipeBackbone?: BackboneTraining }[];
  recipe: string;
  data: DatasetRef;
  seed: number;
  concurrency: number;
  template: SearchStageInput['template'];
}

/** Final training (cost: latency + FLOPs) or transfer to one dataset (no cost): one evaluation child per model. */
export async function trainModelsStage(input: FinalStageInput): Promise<Record<string, EvaluationSummary | null>> {
  const ctl = installStageControl(input.stage);
  const run: StageRun = { evaluated: 0, failed: 0, running: [] };
  installProgress(input.stage, input.models.length, run);
  const results = await runBounded(input.models, input.concurrency, ctl, async (m) => {
    run.running.push(m.arch);
    const args: EvaluationInput = {
      campaignId: input.campaignId,
      stage: input.stage,
      arch: m.arch,
      recipe: input.recipe,
      data: input.data,
      seed: input.seed,
      cost: input.stage === 'final' ? 'both' : 'none',
      initWeights: m.initWeights,
      initKind: m.initKind,
      ...(m.recipeBackbone ? { recipeBackbone: m.recipeBackbone } : {}),
      ...input.template,
    };
    try {
      const s = await executeChild(evaluateArchitecture, {
        workflowId: evaluationWorkflowId(input.campaignId, input.stage, m.arch, input.scope),
        taskQueue: input.template.queues.control,
        args: [args],
        staticSummary: `${input.stage}${input.scope ? ` on ${input.scope}` : ''}: ${m.arch}`,
        typedSearchAttributes: [
          { key: SmnasCampaign, value: input.campaignId },
          { key: SmnasStage, value: input.stage },
          { key: SmnasArch, value: m.arch },
        ],
      });
      run.evaluated++;
      return s;
    } catch (e) {
      run.failed++;
      throw e;
    } finally {
      run.running.splice(run.running.indexOf(m.arch), 1);
    }
  });
  const out: Record<string, EvaluationSummary | null> = {};
  input.models.forEach((m, i) => {
    const r = results[i];
    out[m.arch] = r?.ok ? r.value : null;
  });
  return out;
}
