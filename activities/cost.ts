/**
 * The cost activity: FLOPs / params / MAC of an architecture from the search library's cost model
 * (SPEC 4), which works on the resolved DetectorLayout. Stage two's cost is these FLOPs.
 */
import { ApplicationFailure } from '@temporalio/common';
import * as search from '../search';
import { resolveDetectionRecipe } from '../protocol/recipe-file';
import type { ActivityDeps } from './index';
import type { CostFigures } from './types';

export function makeCostActivities(_deps: ActivityDeps) {
  async function computeCost(input: { arch: string; numClasses: number; recipe: string }): Promise<CostFigures> {
    let layout: search.DetectorLayout;
    try {
      const recipe = resolveDetectionRecipe(input.recipe);
      layout = search.resolveLayout(input.arch, { numClasses: input.numClasses, fcWidth: recipe.fcWidth });
    } catch (e) {
      throw ApplicationFailure.nonRetryable(`cost of ${input.arch}: ${(e as Error).message}`, 'InvalidArch');
    }
    const c = search.layoutCost(layout);
    const backbone = c.modules.backbone;
    return {
      gflops: c.flops / 1e9,
      backboneGflops: backbone.flops / 1e9,
      mparams: c.params / 1e6,
      mmac: c.mac / 1e6,
    };
  }
  return { computeCost };
}
