/**
 * The workflows the control worker bundles (workflowsPath). Everything here runs in Temporal's
 * deterministic sandbox: no Node APIs; search decisions come from the pure search library.
 */
export { smnasSearch } from './campaign';
export { searchStage } from './search-stage';
export { candidateSelection, pretrainStage, trainModelsStage } from './training-stages';
export { evaluateArchitecture } from './evaluation';
