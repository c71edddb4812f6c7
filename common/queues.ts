/**
 * Task-queue names shared by workers and workflows. Dependency-free: workflows/evaluation.ts
 * imports it, and that module must stay light (workflows/index.ts explains why).
 */

/** The task queue node k's GPU worker polls for the multi-host trainings of campaigns on `gpuQueue`. */
export function nodeQueue(gpuQueue: string, rank: number): string {
  return `${gpuQueue}-node${rank}`;
}
