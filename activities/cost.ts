/**
 * The cost activity: FLOPs / params / MAC of an architecture from the search library's cost model
 * (SPEC 4), which works on the resolved DetectorLayout. Stage two's cost is these FLOPs.
 */
import { ApplicationFailure } from '@temporalio/common';
import * as search from '../search';
import { resolveDetectionRecipe } from '../protocol/recipe-file';
import type { ActivityDeps } from './index';
import type { CostFigures } from './types';

type CostModel = (layout: search.DetectorLayout, opts?: Record<string, unknown>) => {
  flops: number;
  params: number;
  mac?: number;
  modules?: Record<string, { flops: number; params: number }>;
};

function costModel(): CostModel {
  const lib = search as unknown as Record<string, unknown>;
  const fn = lib.detectorCost ?? lib.costOfLayout ?? lib.computeCost;
  if (typeof fn !== 'function') throw ApplicationFailure.nonRetryable('the search library exports no cost model (detectorCost)', 'MissingCostModel');
  return fn as CostModel;
}

export function makeCostActivities(_deps: ActivityDeps) {
  async function computeCost(input: { arch: string; numClasses: number; recipe: string }): Promise<CostFigures> {
    let layout: search.DetectorLayout;
    try {
      const recipe = resolveDetectionRecipe(input.recipe);
      layout = search.resolveLayout(input.arch, { numClasses: input.numClasses, fcWidth: recipe.fcWidth });
    } catch (e) {
      throw ApplicationFailure.nonRetryable(`cost of ${input.arch}: ${(e as Error).message}`, 'InvalidArch');
    }
    const c = costModel()(layout);
    const backbone = c.modules?.backbone;
    return {
      gflops: c.flops / 1e9,
      backboneGflops: backbone ? backbone.flops / 1e9 : c.flops / 1e9,
      mparams: c.params / 1e6,
      mmac: c.mac !== undefined ? c.mac / 1e6 : null,
    };
  }
  return { computeCost };
}
