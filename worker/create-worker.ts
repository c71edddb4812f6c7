/**
 * The project's two kinds of worker (SPEC 7: task queues separate light control work from GPU work):
 *  - control: runs the workflows (bundled once from workflows/index.ts, cached on disk by source
 *    hash) and the light activities (data checks, store look-ups, cost model, reports);
 *  - gpu: runs the trainer activities, at most one per device it owns (a CPU-only host owns one
 *    slot, 'cpu'); its identity says what it is: host, pid, devices, trainer version.
 * Both connect with the same settings (worker/connection.ts), so they join a dev server or a
 * production cluster alike. Shutdown on SIGINT/SIGTERM is the SDK runtime's (graceful drain).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CONTROL_QUEUE, GPU_QUEUE, nodeQueue } from '../protocol/campaign';
import { STATE_DIR, TRAINER_BIN } from '../common/paths';
import type { Logger } from '../common/log';
import { connectOptions, type ConnectionSettings } from './connection';
import { DEFAULT_WORKFLOWS_PATH, getWorkflowBundle } from './bundle';
import { pinoSdkLogger } from './sdk-logger';
import { trainerThreads } from './devices';
import type { LivenessRule } from '../activities/liveness';

export type WorkerKind = 'control' | 'gpu';

export interface CreateWorkerOptions {
  queue: WorkerKind;
  connection: ConnectionSettings;
  /** gpu workers: ['cpu'] or ['cuda:0', ...] (worker/devices.ts resolves them) */
  devices?: string[];
  /** override the task queue (a campaign may name its own queues) */
  taskQueue?: string;
  /** default artifact store root ($SMNAS_STATE/artifacts) */
  artifactRoot?: string;
  /** how long running activities get to finish on shutdown before they are cancelled */
  shutdownGraceMs?: number;
  /** gpu workers: trainer liveness allowances (activities/liveness.ts) */
  liveness?: Partial<LivenessRule>;
  /** gpu workers: intra-op threads per trainer (default: cores / devices, worker/devices.ts trainerThreads) */
  trainerThreads?: number;
  /**
   * gpu workers: this host is node k of the campaigns' multi-host trainings (protocol/campaign.ts
   * MultiHostSchema): the worker also polls nodeQueue(taskQueue, k), with the same devices
   */
  node?: number;
  /** control workers: how many light activities at once (default 8) */
  maxConcurrentLightActivities?: number;
  logger: Logger;
}

/** What a worker will be, decided before anything connects. Pure, so tests can check it. */
export interface WorkerPlan {
  kind: WorkerKind;
  taskQueue: string;
  devices: string[];
  /** activity slots: one per device for gpu workers */
  maxConcurrentActivityTaskExecutions: number;
  identity: string;
  runsWorkflows: boolean;
  /** more task queues the same activities (and devices) serve: a gpu worker's node queue */
  extraTaskQueues: string[];
}

export function planWorker(
  o: Pick<CreateWorkerOptions, 'queue' | 'devices' | 'taskQueue' | 'maxConcurrentLightActivities' | 'node'>,
  host: { hostname: string; pid: number; trainerVersion: string },
): WorkerPlan {
  if (o.queue === 'gpu') {
    const devices = o.devices && o.devices.length > 0 ? o.devices : ['cpu'];
    const taskQueue = o.taskQueue ?? GPU_QUEUE;
    return {
      kind: 'gpu',
      taskQueue,
      devices,
      maxConcurrentActivityTaskExecutions: devices.length,
      identity: `smnas-gpu@${host.hostname}:${host.pid} devices=${devices.join(',')} trainer=${host.trainerVersion}${o.node !== undefined ? ` node=${o.node}` : ''}`,
      runsWorkflows: false,
      extraTaskQueues: o.node !== undefined ? [nodeQueue(taskQueue, o.node)] : [],
    };
  }
  return {
    kind: 'control',
    taskQueue: o.taskQueue ?? CONTROL_QUEUE,
    devices: [],
    maxConcurrentActivityTaskExecutions: o.maxConcurrentLightActivities ?? 8,
    identity: `smnas-control@${host.hostname}:${host.pid}`,
    runsWorkflows: true,
    extraTaskQueues: [],
  };
}

/**
 * What trainer this worker runs: `smnas-trainer --version` when the binary answers it, else a
 * content hash of the binary (`sha256:<12 hex>`, as precise as a version for telling workers
 * apart); 'missing' when there is no binary.
 */
export function trainerVersion(bin = TRAINER_BIN): string {
  if (!fs.existsSync(bin)) return 'missing';
  try {
    const out = execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] });
    const first = out.trim().split('\n')[0];
    if (first && !first.startsWith('{')) return first.replace(/\s+/g, '_');
  } catch {
    // no --version in this build: fall through to the content hash
  }
  return `sha256:${createHash('sha256').update(fs.readFileSync(bin)).digest('hex').slice(0, 12)}`;
}

let runtimeInstalled = false;
/** The SDK runtime: logs through pino; SIGINT/SIGTERM start a graceful worker shutdown. */
export async function installRuntime(logger: Logger): Promise<void> {
  if (runtimeInstalled) return;
  const { Runtime } = await import('@temporalio/worker');
  try {
    Runtime.install({ logger: pinoSdkLogger(logger), shutdownSignals: ['SIGINT', 'SIGTERM'] });
  } catch {
    // already installed in this process (tests): keep it
  }
  runtimeInstalled = true;
}

export async function createWorker(o: CreateWorkerOptions) {
  const { NativeConnection, Worker } = await import('@temporalio/worker');
  const plan = planWorker(o, {
    hostname: os.hostname(),
    pid: process.pid,
    trainerVersion: o.queue === 'gpu' ? trainerVersion() : 'n/a',
  });
  await installRuntime(o.logger);
  const { createControlActivities, createGpuActivities, defaultActivityDeps } = await import('../activities/index');
  const deps = {
    ...defaultActivityDeps(o.logger.child({ worker: plan.kind }), plan.kind === 'gpu' ? plan.devices : ['cpu']),
    ...(o.artifactRoot ? { artifactRoot: o.artifactRoot } : {}),
    namespace: o.connection.namespace,
    ...(process.env.SMNAS_WEB_UI ? { webUi: process.env.SMNAS_WEB_UI } : {}),
    ...(o.liveness ? { liveness: o.liveness } : {}),
    threads: o.trainerThreads ?? trainerThreads(os.availableParallelism(), plan.devices.length || 1),
  };
  const connection = await NativeConnection.connect(connectOptions(o.connection));
  const common = {
    connection,
    namespace: o.connection.namespace,
    taskQueue: plan.taskQueue,
    identity: plan.identity,
    shutdownGraceTime: o.shutdownGraceMs ?? 15_000,
    maxConcurrentActivityTaskExecutions: plan.maxConcurrentActivityTaskExecutions,
  };
  if (plan.kind === 'gpu') {
    // one set of activities (one device pool) for every queue this worker polls
    const activities = createGpuActivities(deps);
    const workers = [];
    for (const taskQueue of [plan.taskQueue, ...plan.extraTaskQueues]) workers.push(await Worker.create({ ...common, taskQueue, activities }));
    return { worker: workers[0], workers, connection, plan };
  }
  const worker = await Worker.create({
    ...common,
    activities: createControlActivities(deps),
    workflowBundle: await getWorkflowBundle(DEFAULT_WORKFLOWS_PATH, path.join(STATE_DIR, 'cache')),
  });
  return { worker, workers: [worker], connection, plan };
}
