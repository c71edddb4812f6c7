/** The search library's public API. Pure TypeScript: safe to import from Temporal workflow code. */
export * from './layout';
export * from './notation';
export * from './layout-resolve';
export * from './rng';
export * from './space';
export * from './cost';
export * from './pareto';
export * from './pruning';
export * from './evolution';
