/**
 * The public interface of a running campaign: signals, updates, queries and custom search
 * attributes. Shared by the workflows (sandbox) and by clients (CLI, tests), so only
 * @temporalio/workflow definitions and zod live here.
 *
 *   signal/update pause      finish running evaluations, start none
 *   signal/update resume     start evaluations again
 *   signal/update stopStage  keep what finished in the current stage, move to the next one
 *   cancel                   Temporal's own cancellation (propagates to children and activities)
 *   query progress           stage, evaluated/planned, running, failed, best mAP per cost band
 *   query fronts             the current Pareto fronts of both search stages
 *   query candidates         the selected stage-one candidates and the finalists
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey } from '@temporalio/common';
import { z } from 'zod';

// ---------------------------------------------------------------------------------------------
// Data shapes returned by queries (zod, so clients can validate what comes back)

/** One evaluated architecture as the parent keeps it: small, no artifacts (those are in the store). */
export const EvalPointSchema = z.object({
  arch: z.string(),
  /** COCO AP (0..1 as the evaluator reports it); null when training diverged or failed */
  mAP: z.number().nullable(),
  /** the stage's cost: stage one latency in ms on the target device, stage two GFLOPs */
  cost: z.number(),
  costKind: z.enum(['latencyMs', 'gflops']),
  /** artifact store key of the full record */
  key: z.string(),
  /** true when the result came from the store instead of a new training */
  reused: z.boolean().default(false),
});
export type EvalPoint = z.infer<typeof EvalPointSchema>;

export const StageStatusSchema = z.enum(['pending', 'running', 'done', 'stopped', 'skipped', 'failed']);

export const StageProgressSchema = z.object({
  status: StageStatusSchema,
  evaluated: z.number().int(),
  planned: z.number().int(),
  running: z.number().int(),
  failed: z.number().int(),
  reused: z.number().int(),
  /** seconds of training this stage has used (sum of evaluation wall times on their devices) */
  gpuSeconds: z.number(),
  /** architectures whose evaluations are in flight (at most a few dozen) */
  runningArchs: z.array(z.string()),
});
export type StageProgress = z.infer<typeof StageProgressSchema>;

export const CostBandSchema = z.object({
  stage: z.enum(['structural', 'modular']),
  band: z.enum(['low', 'mid', 'high']),
  costFrom: z.number(),
  costTo: z.number(),
  bestMap: z.number().nullable(),
  arch: z.string().nullable(),
});
export type CostBand = z.infer<typeof CostBandSchema>;

export const ProgressSchema = z.object({
  campaignId: z.string(),
  profile: z.string(),
  phase: z.string(),
  paused: z.boolean(),
  stages: z.record(z.string(), StageProgressSchema),
  bestMapByCostBand: z.array(CostBandSchema),
  bestMap: z.number().nullable(),
  /** evaluations finished across the campaign (structural, modular, final, transfer; campaigns started before the campaign-count-evaluations-only patch also add the selection and pretrain stages) */
  evaluated: z.number().int(),
  /** ms since epoch (workflow time) */
  startedAt: z.number(),
  updatedAt: z.number(),
  /** where reports and results live */
  artifactDir: z.string().nullable(),
  error: z.string().nullable(),
  /** what the campaign does with `data.backboneWeights` (one line per fact); absent when the campaign names none */
  backboneWeights: z.array(z.string()).optional(),
});
export type Progress = z.infer<typeof ProgressSchema>;

export const FrontsSchema = z.object({
  /** the stage-one Pareto front (rank 0), latency vs mAP */
  structural: z.array(EvalPointSchema),
  /** the stage-two front of each selected candidate (keyed by the candidate's canonical string) */
  modular: z.record(z.string(), z.array(EvalPointSchema)),
});
export type Fronts = z.infer<typeof FrontsSchema>;

export const CandidatesSchema = z.object({
  /** K stage-one candidates spread across the cost range (C0..C{K-1}) */
  selected: z.array(EvalPointSchema),
  /** the stage-two models that go on to pretrain, final training and transfer (E0..) */
  finalists: z.array(EvalPointSchema),
});
export type Candidates = z.infer<typeof CandidatesSchema>;

/** What a stage child tells its parent while it runs (throttled; see workflows/search-stage.ts). */
export const StageReportSchema = z.object({
  stage: z.string(),
  /** for modular search: the candidate this child searches around */
  candidate: z.string().optional(),
  progress: StageProgressSchema,
  /**
   * The stage's current front; null in a signal when it did not change since the previous one
   * (every signal is stored in the campaign's history: a front of ~30 points is ~6 KB, and
   * sending it with each of 10k evaluation reports would pass Temporal's 50 MB history limit).
   */
  front: z.array(EvalPointSchema).nullable(),
});
export type StageReport = z.infer<typeof StageReportSchema>;

// ---------------------------------------------------------------------------------------------
// Signals, updates and queries

export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
/** optional argument: only stop if this is still the current stage (avoids stopping the next one by accident) */
export const stopStageSignal = defineSignal<[stage?: string]>('stopStage');

/** Same as the signals, but the caller gets the progress after the change. */
export const pauseUpdate = defineUpdate<Progress>('pauseCampaign');
export const resumeUpdate = defineUpdate<Progress>('resumeCampaign');
export const stopStageUpdate = defineUpdate<Progress, [stage?: string]>('stopCurrentStage');

export const progressQuery = defineQuery<Progress>('progress');
export const frontsQuery = defineQuery<Fronts>('fronts');
export const candidatesQuery = defineQuery<Candidates>('candidates');

/** Internal: a stage child reports progress to the campaign workflow. */
export const stageReportSignal = defineSignal<[StageReport]>('stageReport');
/** Internal: a stage child's own progress (the parent forwards pause/resume/stopStage to it). */
export const stageProgressQuery = defineQuery<StageReport>('stageProgress');

// ---------------------------------------------------------------------------------------------
// Custom search attributes (Web UI columns / `temporal workflow list --query`)

export const SmnasStage = defineSearchAttributeKey('SmnasStage', 'KEYWORD');
export const SmnasEvaluated = defineSearchAttributeKey('SmnasEvaluated', 'INT');
export const SmnasBestMap = defineSearchAttributeKey('SmnasBestMap', 'DOUBLE');
/** the campaign id, on the campaign and on every child (list all work of one campaign) */
export const SmnasCampaign = defineSearchAttributeKey('SmnasCampaign', 'KEYWORD');
/** canonical architecture string on evaluation children */
export const SmnasArch = defineSearchAttributeKey('SmnasArch', 'KEYWORD');

/**
 * For `temporal server start-dev --search-attribute Name=Type` (the CLI's type names) and
 * TestWorkflowEnvironment's `searchAttributes`.
 */
export const SEARCH_ATTRIBUTES: { name: string; type: 'Keyword' | 'Int' | 'Double' }[] = [
  { name: SmnasStage.name, type: 'Keyword' },
  { name: SmnasEvaluated.name, type: 'Int' },
  { name: SmnasBestMap.name, type: 'Double' },
  { name: SmnasCampaign.name, type: 'Keyword' },
  { name: SmnasArch.name, type: 'Keyword' },
];
export const SEARCH_ATTRIBUTE_KEYS = [SmnasStage, SmnasEvaluated, SmnasBestMap, SmnasCampaign, SmnasArch];

/** Workflow ids: everything of a campaign is derived from its id, so restarts find the same children. */
export const campaignWorkflowId = (campaignId: string) => `smnas-${campaignId}`;
