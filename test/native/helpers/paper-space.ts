/**
 * The paper-space check (issue: "no architecture the search library can sample may be rejected by
 * the trainer"): architectures sampled with fixed seeds from the `paper` profile's stage-one space
 * and from stage-two spaces around several stage-one candidates, each built by the trainer at a
 * small input size, its parameter count compared with the cost model, then one training step and
 * one evaluation on generated data.
 */
import * as fs from 'node:fs';
import { layoutCost } from '../../../search/cost';
import { type Arch, formatArch } from '../../../search/notation';
import { Rng } from '../../../search/rng';
import { getSearchSpaces, sampleArchs, stageTwoSpaceFrom } from '../../../search/space';
import { buildDetectionJob } from '../../../protocol/job-builder';
import { getDetectionRecipe } from '../../../protocol/recipes';
import { evaluatorArgv, resultOf, runTrainer, shapesDataset, tmpDir } from './trainer';

/** The input every sampled architecture is rescaled to (multiples of 32; P6 maps are 1x1). */
export const SMALL_INPUT = { width: 96, height: 64 } as const;

export function stageOneSample(count: number, seed = 101): string[] {
  return sampleArchs(getSearchSpaces('paper').stageOne, new Rng(seed), count).map(formatArch);
}

/** `perCandidate` stage-two architectures around each of `candidates` stage-one architectures. */
export function stageTwoSample(candidates: number, perCandidate: number, seed = 202): string[] {
  const rng = new Rng(seed);
  const out: string[] = [];
  const seeds: Arch[] = sampleArchs(getSearchSpaces('paper').stageOne, rng, candidates);
  for (const a of seeds) out.push(...sampleArchs(stageTwoSpaceFrom(a, { profile: 'paper' }), rng, perCandidate).map(formatArch));
  return out;
}

export interface PaperSpaceCase {
  arch: string;
  recipe: 'paper-stage-one' | 'paper-stage-two';
}

/** Builds, counts, trains one step and evaluates one architecture; returns what to assert on. */
export async function checkArchitecture({ arch, recipe: recipeName }: PaperSpaceCase) {
  const recipe = getDetectionRecipe(recipeName);
  recipe.batchSize = 2;
  recipe.maxIterations = 1;
  recipe.workers = 1;
  recipe.augment = { flip: true, scaleJitter: [1, 1] };
  // one step and one evaluation exercise every module at any sampling size; the recipes' 512 RoIs
  // per image and 1000 test proposals (on two 96x64 images) made the 1024-wide box-head FCs the
  // largest part of a large model's check (bench/paper-space-timing.ts, BENCHMARKS.md)
  recipe.roi = { ...recipe.roi, samplesPerImage: 64 };
  recipe.rpn = { ...recipe.rpn, trainPostNms: 200, testPreNms: 200, testPostNms: 100 };
  const job = buildDetectionJob({
    command: 'train', arch, recipe, numClasses: 4, dataRoot: shapesDataset(2, 2, 96, 7), outDir: tmpDir('paper-space'),
    threads: 1, seed: 1, evaluator: evaluatorArgv(),
  });
  job.layout.input = { ...SMALL_INPUT };
  // a large model's weights and checkpoints take up to ~1 GB: 200 of them must not pile up in /tmp
  const run = await runTrainer(job).finally(() => fs.rmSync(job.outDir, { recursive: true, force: true }));
  const started = run.messages.find((m) => m.type === 'started');
  const result = run.code === 0 ? resultOf(run) : undefined;
  return {
    code: run.code,
    stderr: run.code === 0 ? '' : run.stderr.slice(-1500),
    invalid: run.invalid,
    params: started?.type === 'started' ? started.params : undefined,
    costParams: layoutCost(job.layout).params,
    kind: result?.kind,
    evaluated: typeof result?.metrics?.stats?.AP === 'number',
  };
}
