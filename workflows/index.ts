/**
 * The workflows the control worker bundles (workflowsPath). Everything here runs in Temporal's
 * deterministic sandbox: no Node APIs; search decisions come from the pure search library.
 *
 * Why the stage and campaign workflows are required lazily: the SDK runs the module scope of this
 * file, and of everything it imports, again for every workflow it creates (module state stays
 * per workflow). A campaign creates thousands of short `evaluateArchitecture` workflows, and
 * building the zod schemas and search spaces the other workflows import cost ~10 ms each time,
 * a quarter of the worker's workflow thread (profiled, BENCHMARKS.md "Orchestration"). So
 * evaluation.ts is imported eagerly (it needs only @temporalio/workflow), and the others load
 * on the first call of their workflow function, i.e. only in workflows of those types. The
 * SDK's `preloadModules` cannot share them instead: it deep-freezes shared modules, and zod
 * defines its methods lazily on the schema objects.
 */
import type * as CampaignModule from './campaign';
import type * as SearchStageModule from './search-stage';
import type * as TrainingStagesModule from './training-stages';

export { evaluateArchitecture } from './evaluation';

/* eslint-disable @typescript-eslint/no-require-imports */
const campaign = (): typeof CampaignModule => require('./campaign');
const searchStages = (): typeof SearchStageModule => require('./search-stage');
const trainingStages = (): typeof TrainingStagesModule => require('./training-stages');
/* eslint-enable @typescript-eslint/no-require-imports */

export function smnasSearch(...args: Parameters<typeof CampaignModule.smnasSearch>): ReturnType<typeof CampaignModule.smnasSearch> {
  return campaign().smnasSearch(...args);
}
export function searchStage(...args: Parameters<typeof SearchStageModule.searchStage>): ReturnType<typeof SearchStageModule.searchStage> {
  return searchStages().searchStage(...args);
}
export function candidateSelection(...args: Parameters<typeof TrainingStagesModule.candidateSelection>): ReturnType<typeof TrainingStagesModule.candidateSelection> {
  return trainingStages().candidateSelection(...args);
}
export function pretrainStage(...args: Parameters<typeof TrainingStagesModule.pretrainStage>): ReturnType<typeof TrainingStagesModule.pretrainStage> {
  return trainingStages().pretrainStage(...args);
}
export function trainModelsStage(...args: Parameters<typeof TrainingStagesModule.trainModelsStage>): ReturnType<typeof TrainingStagesModule.trainModelsStage> {
  return trainingStages().trainModelsStage(...args);
}
