/**
 * The project's two kinds of worker (SPEC 7: task queues separate light control work from GPU work):
 *  - control: runs the workflows (bundled once from workflows/index.ts, cached on disk by source
 *    hash) and the light activities (data checks, store look-ups, cost model, reports);
 *  - gpu: runs the trainer activities, at most one per device it owns (a CPU-only host owns one
 *    slot, 'cpu'); its identity says what it is: host, pid, devices, trainer version.
 *  - latency: only for campaigns that require a latency device (`latency.device`): measureLatency
 *    on the queue latencyQueueName(requirement) (e.g. smnas-latency-cuda-v100); it refuses to
 *    start unless every device it owns meets the requirement (checkLatencyDevices).
 * All connect with the same settings (worker/connection.ts), so they join a dev server or a
 * production cluster alike. Shutdown on SIGINT/SIGTERM is the SDK runtime's (graceful drain).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CONTROL_QUEUE, GPU_QUEUE, nodeQueue } from '../protocol/campaign';
import { deviceMeets, latencyQueueName, type LatencyDeviceRequirement } from '../protocol/latency';
import type { RuntimeEnvironment } from '../protocol/trainer-messages';
import { UserError } from '../common/errors';
import { STATE_DIR, TRAINER_BIN } from '../common/paths';
import type { Logger } from '../common/log';
import { connectOptions, type ConnectionSettings } from './connection';
import { DEFAULT_WORKFLOWS_PATH, getWorkflowBundle } from './bundle';
import { pinoSdkLogger } from './sdk-logger';
import { trainerThreads } from './devices';
import type { LivenessRule } from '../activities/liveness';

export type WorkerKind = 'control' | 'gpu' | 'latency';

export interface CreateWorkerOptions {
  queue: WorkerKind;
  connection: ConnectionSettings;
  /** gpu and latency workers: ['cpu'] or ['cuda:0', ...] (worker/devices.ts resolves them) */
  devices?: string[];
  /** latency workers: the device requirement they serve; the task queue is latencyQueueName(it) */
  latencyDevice?: LatencyDeviceRequirement;
  /** latency workers: how a device is identified (default: `smnas-trainer env --device <d>`) */
  probeDevice?: (device: string) => Promise<RuntimeEnvironment>;
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
  o: Pick<CreateWorkerOptions, 'queue' | 'devices' | 'taskQueue' | 'maxConcurrentLightActivities' | 'latencyDevice' | 'node'>,
  host: { hostname: string; pid: number; trainerVersion: string },
): WorkerPlan {
  if (o.queue === 'latency') {
    if (!o.latencyDevice) throw new UserError('a latency worker needs the device requirement it serves (--latency-device cuda:V100, cpu, ...)');
    if (o.taskQueue !== undefined) throw new UserError('a latency worker polls the queue its --latency-device names; --task-queue does not apply');
    const req = o.latencyDevice;
    const devices = req.kind === 'cpu' ? ['cpu'] : (o.devices ?? []).filter((d) => d !== 'cpu');
    if (devices.length === 0)
      throw new UserError(
        `--latency-device ${req.kind}${req.model ? `:${req.model}` : ''}: this host has no CUDA device (--gpus, CUDA_VISIBLE_DEVICES, nvidia-smi)`,
      );
    const taskQueue = latencyQueueName(req);
    return {
      kind: 'latency',
      taskQueue,
      devices,
      maxConcurrentActivityTaskExecutions: devices.length,
      identity: `smnas-latency@${host.hostname}:${host.pid} queue=${taskQueue} devices=${devices.join(',')} trainer=${host.trainerVersion}`,
      runsWorkflows: false,
      extraTaskQueues: [],
    };
  }
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

/**
 * A latency worker's start-up check: every device it would measure on is identified (by the
 * trainer: kind and model) and must meet the requirement; otherwise the worker refuses to start,
 * naming each device and why, so a campaign's latency task never runs on the wrong kind of device.
 */
export async function checkLatencyDevices(
  req: LatencyDeviceRequirement,
  devices: string[],
  probe: (device: string) => Promise<RuntimeEnvironment>,
): Promise<Record<string, RuntimeEnvironment>> {
  const found: Record<string, RuntimeEnvironment> = {};
  const wrong: string[] = [];
  for (const d of devices) {
    let env: RuntimeEnvironment;
    try {
      env = await probe(d);
    } catch (e) {
      throw new UserError(`--latency-device: cannot identify ${d}: ${(e as Error).message}`);
    }
    const meets = deviceMeets(req, env);
    if (meets.ok) found[d] = env;
    else wrong.push(`${d} is ${meets.reason}`);
  }
  if (wrong.length) {
    const want = `${req.kind}${req.model ? ` (${req.model})` : ''}`;
    throw new UserError(`--latency-device: this worker's devices do not meet the requirement ${want} of queue ${latencyQueueName(req)}: ${wrong.join('; ')}`);
  }
  return found;
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
    trainerVersion: o.queue === 'control' ? 'n/a' : trainerVersion(),
  });
  let deviceModels: Record<string, RuntimeEnvironment> | undefined;
  if (plan.kind === 'latency') {
    const { probeEnvironment } = await import('../activities/latency');
    deviceModels = await checkLatencyDevices(o.latencyDevice!, plan.devices, o.probeDevice ?? ((d) => probeEnvironment(TRAINER_BIN, d)));
    o.logger.info(
      { taskQueue: plan.taskQueue, devices: Object.fromEntries(Object.entries(deviceModels).map(([d, e]) => [d, e.deviceModel])) },
      'latency devices checked',
    );
  }
  await installRuntime(o.logger);
  const { createControlActivities, createGpuActivities, createLatencyActivities, defaultActivityDeps } = await import('../activities/index');
  const deps = {
    ...defaultActivityDeps(o.logger.child({ worker: plan.kind }), plan.kind === 'control' ? ['cpu'] : plan.devices),
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
    return { worker: workers[0], workers, connection, plan, deviceModels };
  }
  const worker =
    plan.kind === 'latency'
      ? await Worker.create({ ...common, activities: createLatencyActivities(deps) })
      : await Worker.create({
          ...common,
          activities: createControlActivities(deps),
          workflowBundle: await getWorkflowBundle(DEFAULT_WORKFLOWS_PATH, path.join(STATE_DIR, 'cache')),
        });
  return { worker, workers: [worker], connection, plan, deviceModels };
}
