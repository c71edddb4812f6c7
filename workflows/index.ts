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

/** workflow `name` of the module `load` returns, loaded on the workflow's first call */
function lazy<M, K extends keyof M>(load: () => M, name: K): M[K] {
  const fn = (...args: unknown[]) => (load()[name] as (...a: unknown[]) => unknown)(...args);
  // named like the workflow, so clients can start it by reference (client.workflow.start(smnasSearch, ...))
  Object.defineProperty(fn, 'name', { value: name });
  return fn as M[K];
}

/* eslint-disable @typescript-eslint/no-require-imports */
const campaign = (): typeof CampaignModule => require('./campaign');
const searchStages = (): typeof SearchStageModule => require('./search-stage');
const trainingStages = (): typeof TrainingStagesModule => require('./training-stages');
/* eslint-enable @typescript-eslint/no-require-imports */

export const smnasSearch = lazy(campaign, 'smnasSearch');
export const searchStage = lazy(searchStages, 'searchStage');
export const candidateSelection = lazy(trainingStages, 'candidateSelection');
export const pretrainStage = lazy(trainingStages, 'pretrainStage');
export const trainModelsStage = lazy(trainingStages, 'trainModelsStage');
