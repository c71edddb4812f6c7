/**
 * One architecture evaluation = one child workflow (SPEC 7): look the result up in the artifact
 * store, else train + evaluate on a GPU worker, then the stage's cost (stage one: latency
 * benchmark on the target device; stage two: FLOPs from the cost model; final: both), record it
 * (store + results log) and hand the parent a small summary. Its workflow id is derived from the
 * campaign id, stage and canonical string (workflows/ids.ts), so it is never started twice.
 */
import { CancellationScope, patched, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { ControlActivities, GpuActivities } from '../activities';
import type { DatasetRef, EvaluationRecord, TrainOutcome, TrainRequest } from '../activities/types';
import { nodeQueue } from '../common/queues';
import type { Campaign, MultiHost } from '../protocol/campaign';
import type { InitKind } from '../protocol/job';
import type { BackboneTraining } from '../protocol/recipe';
import { latencyQueueName, type LatencySettings } from '../protocol/latency';

export interface EvaluationInput {
  campaignId: string;
  stage: 'structural' | 'modular' | 'final' | 'transfer';
  arch: string;
  recipe: string;
  data: DatasetRef;
  seed: number;
  /** which cost to measure after training */
  cost: 'latency' | 'flops' | 'both' | 'none';
  latencyDevice: string;
  bench: Campaign['bench'];
  /**
   * the latency protocol's settings (protocol/campaign.ts latencySettings); absent in inputs
   * written before it, which then use legacyLatencySettings
   */
  latency?: LatencySettings;
  queues: Campaign['queues'];
  timeouts: Campaign['timeouts'];
  /** absent in histories recorded before checkpoints were a campaign setting */
  checkpoints?: Campaign['checkpoints'];
  artifactRoot?: string;
  initWeights?: string;
  initKind?: InitKind;
  /** recipe.backbone on top of the named recipe (PRETRAINED_BACKBONE with ImageNet weights); part of the store key */
  recipeBackbone?: BackboneTraining;
  /**
   * modular: the stage-one candidate whose stage-two search asked for this evaluation; logged with
   * the result (the same architecture asked for by two candidates' searches is logged for each).
   * Absent in histories recorded before it was passed.
   */
  candidate?: string;
  /** trainings that span several hosts (the campaign's multiHost; absent: one host) */
  multiHost?: MultiHostPlan;
}

/** The campaign's multiHost with each stage's processes per node (ceil(recipe.devices / nodes)), worked out by makeCampaignTemplate. */
export type MultiHostPlan = MultiHost & { processesPerNode: Partial<Record<EvaluationInput['stage'], number>> };

/**
 * patch id: a training of a stage the campaign's `multiHost` names runs on every node at once
 * (trainDetector on node 0's queue, joinTraining on the others'). Campaigns without multiHost
 * never reach it.
 */
export const MULTI_HOST_TRAINING = 'multi-host-training';

export interface EvaluationSummary {
  key: string;
  arch: string;
  kind: 'ok' | 'diverged';
  mAP: number | null;
  latencyMs: number | null;
  gflops: number | null;
  gpuSeconds: number;
  attempts: number;
  reused: boolean;
  weights: string | null;
  /** the data set's own metric (transfer sets scored with VOC mAP@0.5 or BDD's AP); null: COCO AP only (= mAP) */
  datasetMetric?: { name: string; value: number } | null;
}

/**
 * patch id: latency is measured by measureLatency with the trained weights on a sample of
 * validation images (on the latency queue when the campaign requires a device); before, by
 * benchmarkLatency on an untrained model and a noise image.
 */
export const LATENCY_TRAINED_WEIGHTS = 'latency-trained-weights';

/** The settings of an evaluation started before the campaign had a latency section (toy-sized). */
export function legacyLatencySettings(input: Pick<EvaluationInput, 'bench'>): LatencySettings {
  return {
    backend: 'native',
    images: 4,
    rounds: Math.max(2, input.bench.iterations),
    warmup: input.bench.warmup,
    maxSpread: 0.25,
    maxMeasurements: 3,
    seed: 0,
  };
}

function activities(input: EvaluationInput) {
  // The store look-up, the record and the cost model take milliseconds: local activities (run by
  // the control worker that runs this workflow, no task-queue round trip) keep the orchestration
  // overhead per evaluation small. They are still recorded in history and retried.
  const control = proxyLocalActivities<ControlActivities>({
    startToCloseTimeout: '2 minutes',
    retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['InvalidRecipe', 'InvalidArch', 'MissingCostModel'] },
  });
  // device activities: trainings (and their evaluation) by default; failures retrying cannot fix
  // are non-retryable
  const gpuOn = (taskQueue: string, nonRetryableErrorTypes = ['InvalidJob', 'BadData', 'NoMetrics', 'Diverged']) =>
    proxyActivities<GpuActivities>({
      taskQueue,
      startToCloseTimeout: `${input.timeouts.trainingHours} hours`,
      heartbeatTimeout: `${input.timeouts.heartbeatSeconds} seconds`,
      retry: { maximumAttempts: input.timeouts.maxAttempts, initialInterval: '5 seconds', nonRetryableErrorTypes },
    });
  const latency = input.latency ?? legacyLatencySettings(input);
  // a required latency device: its own task queue, which only workers with such devices poll
  const measure = gpuOn(latency.device ? latencyQueueName(latency.device) : input.queues.gpu, ['InvalidJob', 'BadData', 'MissingWeights']);
  return { control, gpu: gpuOn(input.queues.gpu), gpuOn, measure, latency };
}

/**
 * One training on every node of the campaign's multiHost at once: node 0 (trainDetector) trains,
 * evaluates and reports; nodes 1.. (joinTraining) run their share of the processes. Each node's
 * activity is retried by Temporal like any training (a node that dies makes the others fail fast
 * at their next collective, so all are retried and meet again at the rendezvous, resuming from
 * rank 0's checkpoint); a node that fails for good cancels the others.
 */
async function trainOnNodes(input: EvaluationInput, req: TrainRequest, summary: string): Promise<TrainOutcome> {
  const mh = input.multiHost!;
  const { gpuOn } = activities(input);
  const processesPerNode = mh.processesPerNode[input.stage] ?? 1;
  // one rendezvous port per training (its key), so concurrent multi-host trainings do not collide
  const masterPort = mh.masterPort + (parseInt(req.key.slice(0, 8), 16) % mh.ports);
  return CancellationScope.cancellable(async () => {
    const scope = CancellationScope.current();
    const nodes = Array.from({ length: mh.nodes }, (_, rank) => {
      const node = { rank, count: mh.nodes, masterAddr: mh.masterAddr, masterPort, processesPerNode };
      const gpu = gpuOn(nodeQueue(input.queues.gpu, rank));
      const run: Promise<unknown> =
        rank === 0
          ? gpu.trainDetector.executeWithOptions({ summary: `${summary} (node 0 of ${mh.nodes})` }, [{ ...req, node }])
          : gpu.joinTraining.executeWithOptions({ summary: `${summary} (node ${rank} of ${mh.nodes})` }, [{ ...req, node }]);
      return run.catch((e) => {
        scope.cancel(); // the others would only wait at the rendezvous until it times out
        throw e;
      });
    });
    const [outcome] = await Promise.all(nodes);
    return outcome as TrainOutcome;
  });
}

export async function evaluateArchitecture(input: EvaluationInput): Promise<EvaluationSummary> {
  const { control, gpu, measure, latency: latencySettings } = activities(input);
  const found = await control.lookupEvaluation({
    arch: input.arch,
    recipe: input.recipe,
    datasetFingerprint: input.data.fingerprint,
    purpose: input.stage,
    initWeights: input.initWeights,
    recipeBackbone: input.recipeBackbone,
    artifactRoot: input.artifactRoot,
  });
  if (found.record) {
    // the same architecture, recipe and data were evaluated before (this or another campaign): reuse
    const rec: EvaluationRecord = { ...found.record, campaignId: input.campaignId, stage: input.stage };
    await control.recordEvaluation({ record: rec, artifactRoot: input.artifactRoot, reused: true, ...(input.candidate ? { candidate: input.candidate } : {}) });
    return summarise(rec, true);
  }
  const trainReq: TrainRequest = {
    campaignId: input.campaignId,
    key: found.key,
    arch: input.arch,
    recipe: input.recipe,
    data: input.data,
    seed: input.seed,
    initWeights: input.initWeights,
    initKind: input.initKind,
    recipeBackbone: input.recipeBackbone,
    artifactRoot: input.artifactRoot,
    checkpoint: input.checkpoints,
  };
  const summary = `train + evaluate (${input.stage}, ${input.recipe}): ${input.arch}`;
  const train =
    input.multiHost?.stages.includes(input.stage) && patched(MULTI_HOST_TRAINING)
      ? await trainOnNodes(input, trainReq, summary)
      : await gpu.trainDetector.executeWithOptions({ summary }, [trainReq]);
  const wantFlops = input.cost === 'flops' || input.cost === 'both';
  const wantLatency = (input.cost === 'latency' || input.cost === 'both') && train.kind === 'ok';
  // with the trained weights (histories recorded before the patch keep the untrained benchmark)
  const trained = wantLatency && patched(LATENCY_TRAINED_WEIGHTS);
  const where = latencySettings.device
    ? `${latencySettings.device.kind}${latencySettings.device.model ? ` ${latencySettings.device.model}` : ''}`
    : input.latencyDevice;
  const [cost, latency] = await Promise.all([
    wantFlops ? control.computeCost({ arch: input.arch, numClasses: input.data.numClasses, recipe: input.recipe }) : null,
    trained
      ? measure.measureLatency.executeWithOptions({ summary: `latency (trained weights) on ${where}: ${input.arch}` }, [
          {
            key: found.key,
            arch: input.arch,
            recipe: input.recipe,
            data: input.data,
            weights: train.weights,
            settings: latencySettings,
            device: input.latencyDevice,
            artifactRoot: input.artifactRoot,
          },
        ])
      : wantLatency
        ? gpu.benchmarkLatency.executeWithOptions({ summary: `latency on ${input.latencyDevice}: ${input.arch}` }, [
            {
              key: found.key,
              arch: input.arch,
              recipe: input.recipe,
              numClasses: input.data.numClasses,
              device: input.latencyDevice,
              warmup: input.bench.warmup,
              iterations: input.bench.iterations,
              artifactRoot: input.artifactRoot,
            },
          ])
        : null,
  ]);
  const record: EvaluationRecord = {
    key: found.key,
    campaignId: input.campaignId,
    stage: input.stage,
    arch: input.arch,
    recipe: input.recipe,
    recipeHash: found.recipeHash,
    datasetFingerprint: input.data.fingerprint,
    train,
    cost,
    latency,
    finishedAt: new Date().toISOString(), // workflow time: deterministic on replay
  };
  await control.recordEvaluation({ record, artifactRoot: input.artifactRoot, ...(input.candidate ? { candidate: input.candidate } : {}) });
  return summarise(record, false);
}

function summarise(r: EvaluationRecord, reused: boolean): EvaluationSummary {
  return {
    key: r.key,
    arch: r.arch,
    kind: r.train.kind,
    mAP: r.train.mAP,
    latencyMs: r.latency?.medianMs ?? null,
    gflops: r.cost?.gflops ?? null,
    gpuSeconds: reused ? 0 : r.train.gpuSeconds,
    attempts: r.train.attempt,
    reused,
    weights: r.train.weights,
    datasetMetric: r.train.datasetMetric ?? null,
  };
}
