/**
 * The campaign's activities, in two sets that the workers register (worker/):
 *  - control (queue smnas-control): data preparation and checks, store look-ups and records,
 *    the cost model, reports. Light, CPU, many at once.
 *  - gpu (queue smnas-gpu): everything that runs the native trainer (train + evaluate, latency
 *    benchmark, backbone pretraining). One at a time per device the worker owns.
 *  - latency (queue smnas-latency-<kind>[-<model>], only for campaigns with latency.device):
 *    measureLatency on a device of the required kind and model.
 * Workflows call them by these names through proxyActivities<ControlActivities | GpuActivities>.
 */
import * as path from 'node:path';
import { STATE_DIR, TRAINER_BIN } from '../common/paths';
import type { Logger } from '../common/log';
import type { LivenessRule } from './liveness';
import { ArtifactStore } from './artifact-store';
import { DevicePool } from './device-pool';
import { makeBackboneWeightsActivities } from './backbone-weights';
import { makeDataActivities } from './data';
import { makeStoreActivities } from './store-activities';
import { makeCostActivities } from './cost';
import { makeOnnxActivities } from './onnx';
import { makeReportActivities } from './report';
import { makeTrainerActivities } from './training';
import { makeLatencyActivities } from './latency';

export interface ActivityDeps {
  /** default artifact store root (a campaign's artifactRoot overrides it) */
  artifactRoot: string;
  /** the native trainer binary (common/paths.ts TRAINER_BIN) */
  trainerBin: string;
  /** devices this worker owns: ['cpu'] or ['cuda:0', 'cuda:1', ...]; one training per device */
  devices: string[];
  logger: Logger;
  /** argv of the COCO evaluator the trainer runs after training (default: bin/smnas eval) */
  evaluator?: string[];
  /** seconds between heartbeats while the trainer is quiet (default 10) */
  heartbeatEverySeconds?: number;
  /** progress-based liveness allowances (activities/liveness.ts; defaults DEFAULT_LIVENESS) */
  liveness?: Partial<LivenessRule>;
  /** SIGTERM -> SIGKILL grace period when a training is cancelled (default 10 s) */
  killGraceMs?: number;
  /** intra-op threads handed to each trainer (0 = all cores; workers set worker/devices.ts trainerThreads) */
  threads?: number;
  /** how often trainings write checkpoints (default every 30 s of wall time) */
  checkpoint?: { everyIterations?: number; everySeconds?: number };
  /** Temporal Web UI base and namespace, for the report's links to workflows (default http://localhost:8233, default) */
  webUi?: string;
  namespace?: string;
}

/** Defaults for a worker on this machine: store under $SMNAS_STATE/artifacts, the built trainer, CPU. */
export function defaultActivityDeps(logger: Logger, devices: string[] = ['cpu']): ActivityDeps {
  return { artifactRoot: path.join(STATE_DIR, 'artifacts'), trainerBin: TRAINER_BIN, devices, logger };
}

export function createControlActivities(deps: ActivityDeps) {
  const store = (root?: string) => new ArtifactStore(root ?? deps.artifactRoot);
  return {
    ...makeDataActivities(deps),
    ...makeBackboneWeightsActivities(deps),
    ...makeStoreActivities(deps, store),
    ...makeCostActivities(deps),
    ...makeReportActivities(deps, store),
  };
}

export function createGpuActivities(deps: ActivityDeps) {
  const store = (root?: string) => new ArtifactStore(root ?? deps.artifactRoot);
  const pool = new DevicePool(deps.devices);
  // measureLatency shares the device pool: a latency measurement never runs beside a training on its device;
  // exportFinalModels runs the trainer (its export command, on the CPU), which control workers do not have
  return { ...makeTrainerActivities(deps, store, pool), ...makeLatencyActivities(deps, store, pool), ...makeOnnxActivities(deps) };
}

/**
 * A latency worker's activities (queue latencyQueueName(requirement), worker/create-worker.ts):
 * measureLatency alone, one at a time per device, on devices checked against the requirement.
 */
export function createLatencyActivities(deps: ActivityDeps) {
  const store = (root?: string) => new ArtifactStore(root ?? deps.artifactRoot);
  return makeLatencyActivities(deps, store, new DevicePool(deps.devices));
}

export type ControlActivities = ReturnType<typeof createControlActivities>;
export type GpuActivities = ReturnType<typeof createGpuActivities>;
export type LatencyActivities = ReturnType<typeof createLatencyActivities>;
