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
import { CancellationScope, condition, continueAsNew, isCancellation, allHandlersFinished } from '@temporalio/workflow';
import type { DatasetRef } from '../activities/types';
import type { Campaign } from '../protocol/campaign';
import type { NamedBackbone } from '../search';
import type { EvalPoint } from './api';
import type { EvaluationInput } from './evaluation';
import { SearchStageRun, type SearchStageCarry } from './search-stage-run';

export {
  SEARCH_USED_LAYERS,
  STAGE_HISTORY_CAP,
  STAGE_HISTORY_EVENTS,
  STAGE_REPORT_STEPS,
  STAGE_TWO_SEED,
  TOY_SPACE_REVISION_2,
  type SearchStageCarry,
} from './search-stage-run';

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
  template: Pick<EvaluationInput, 'latencyDevice' | 'bench' | 'queues' | 'timeouts' | 'checkpoints' | 'artifactRoot'>;
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

export function makeCampaignTemplate(c: Campaign): SearchStageInput['template'] {
  return { latencyDevice: c.latencyDevice, bench: c.bench, queues: c.queues, timeouts: c.timeouts, checkpoints: c.checkpoints, artifactRoot: c.artifactRoot };
}

export async function searchStage(input: SearchStageInput): Promise<SearchStageResult> {
  const run = new SearchStageRun(input);
  try {
    while (true) {
      // wait until one may start, or the stage must drain / finish
      await condition(() => run.mayProceed());
      if (run.mustContinueAsNew()) {
        await condition(allHandlersFinished);
        await continueAsNew<typeof searchStage>({ ...input, carried: run.carry() });
      }
      const reason = run.budgetReason();
      if (reason !== null) {
        if (run.running.size === 0) {
          const result = run.result(reason);
          await run.sendReport();
          return result;
        }
        continue;
      }
      if (!run.startQueued()) run.proposeBatch();
    }
  } catch (e) {
    // cancelled: let the running evaluations finish *their* cancellation (their trainers stopped)
    // before this stage closes; otherwise closing would terminate them abruptly
    if (isCancellation(e)) await CancellationScope.nonCancellable(() => condition(() => run.running.size === 0));
    throw e;
  }
}
