/**
 * Control-queue activities around the artifact store: look a finished evaluation up before
 * training (so restarted and new campaigns on the same data reuse it), and record a finished one
 * (store record + the campaign's results log line).
 */
import { ApplicationFailure } from '@temporalio/common';
import { UserError } from '../common/errors';
import { withBackboneTraining } from '../protocol/recipe';
import { resolveDetectionRecipe } from '../protocol/recipe-file';
import type { ActivityDeps } from './index';
import { ArtifactStore, evaluationKey, recipeHash } from './artifact-store';
import { EvalKeyInputSchema, EvaluationRecordSchema, type EvalKeyInput, type EvaluationRecord, type LookupResult } from './types';

export function makeStoreActivities(deps: ActivityDeps, store: (root?: string) => ArtifactStore) {
  async function lookupEvaluation(input: EvalKeyInput & { artifactRoot?: string }): Promise<LookupResult> {
    const k = EvalKeyInputSchema.parse(input);
    let hash: string;
    try {
      // the recipe as the training uses it: recipe.backbone (pretrained backbones) is part of the hash
      hash = recipeHash(withBackboneTraining(resolveDetectionRecipe(k.recipe), k.recipeBackbone));
    } catch (e) {
      if (e instanceof UserError) throw ApplicationFailure.nonRetryable(`recipe '${k.recipe}': ${e.message}`, 'InvalidRecipe');
      throw e;
    }
    const key = evaluationKey({ ...k, recipeHash: hash });
    const record = store(input.artifactRoot).readEvaluation(key);
    if (record) deps.logger.info({ arch: k.arch, key }, 'reusing a finished evaluation from the artifact store');
    return { key, recipeHash: hash, record };
  }

  /** `candidate`: a stage-two evaluation's candidate (logged; one line per key and candidate) */
  async function recordEvaluation(input: { record: EvaluationRecord; artifactRoot?: string; reused?: boolean; candidate?: string }): Promise<string> {
    const record = EvaluationRecordSchema.parse(input.record);
    const st = store(input.artifactRoot);
    // a reused record stays as it was (its original campaign); the results log of this campaign still gets its line
    const file = input.reused ? st.evaluationFile(record.key) : st.writeEvaluation(record);
    st.appendResultLine(record.campaignId, record.key, {
      stage: record.stage,
      ...(input.candidate ? { candidate: input.candidate } : {}),
      arch: record.arch,
      recipe: record.recipe,
      recipeHash: record.recipeHash,
      kind: record.train.kind,
      mAP: record.train.mAP,
      stats: record.train.stats,
      gflops: record.cost?.gflops ?? null,
      mparams: record.cost?.mparams ?? null,
      latencyMs: record.latency?.medianMs ?? null,
      latencySpreadMs: record.latency ? [record.latency.p10Ms, record.latency.p90Ms] : null,
      // the latency protocol's verdict and where it ran (absent for the older noise-image benchmark)
      ...(record.latency?.reliable !== undefined ? { latencyReliable: record.latency.reliable, latencyReason: record.latency.reason ?? null } : {}),
      ...(record.latency?.environment ? { latencyDevice: record.latency.environment.deviceModel } : {}),
      wallSeconds: record.train.wallSeconds,
      gpuSeconds: record.train.gpuSeconds,
      attempts: record.train.attempt,
      resumedFrom: record.train.resumedFrom,
      incidents: record.train.incidents ?? [],
      reused: Boolean(input.reused),
      weights: record.train.weights,
      finishedAt: record.finishedAt,
    });
    return file;
  }

  return { lookupEvaluation, recordEvaluation };
}
