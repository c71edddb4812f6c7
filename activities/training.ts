/**
 * GPU-queue activities: everything that runs the native trainer.
 *  - trainDetector: `train` with the evaluator attached (train + evaluate in one run)
 *  - benchmarkLatency: `bench` on the target device (stage one's cost)
 *  - pretrainBackbone: `classify-train` on the classification folders
 *
 * Failure semantics (SPEC 7): invalid job / bad data -> non-retryable with the trainer's message;
 * divergence -> a recorded outcome with no score (never retried); a crash or a signal -> retryable,
 * and the retry resumes from the checkpoint named in the last heartbeat's details.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { z } from 'zod';
import { SMNAS_CLI } from '../common/paths';
import { instancesPath } from '../datasets/coco-schema';
import { evaluateVocFiles } from '../evaluation/coco-eval-io';
import { UserError } from '../common/errors';
import { buildClassificationJob, buildDetectionJob, type CommonJobOptions } from '../protocol/job-builder';
import { withBackboneTraining } from '../protocol/recipe';
import { resolveClassificationRecipe, resolveDetectionRecipe } from '../protocol/recipe-file';
import { TrainerExit, type BenchFigures, type ResultMessage, type TrainerMessage } from '../protocol/trainer-messages';
import type { ActivityDeps } from './index';
import { ArtifactStore, recipeHash, sha256, writeFileAtomic } from './artifact-store';
import { DevicePool } from './device-pool';
import { planProcesses, runTrainerGroup, type ProcessPlan } from './trainer-group';
import type { TrainerExitInfo } from './trainer-process';
import { DEFAULT_LIVENESS, LivenessWatch, type Stall } from './liveness';
import {
  BenchRequestSchema,
  PretrainRequestSchema,
  TrainRequestSchema,
  type BenchRequest,
  type PretrainOutcome,
  type PretrainRequest,
  type TrainOutcome,
  type TrainRequest,
} from './types';

/** What a training heartbeats: progress for people, the checkpoint for the next attempt. */
export const TrainingHeartbeatSchema = z.object({
  phase: z.enum(['starting', 'training', 'evaluating']),
  epoch: z.number().int().nullable(),
  iteration: z.number().int().nullable(),
  totalIterations: z.number().int().nullable(),
  loss: z.number().nullable(),
  checkpoint: z.object({ path: z.string(), epoch: z.number().int(), iteration: z.number().int() }).nullable(),
  device: z.string(),
  attempt: z.number().int(),
  /**
   * What went wrong in this and earlier attempts (a stalled trainer killed, unusable checkpoints
   * skipped, a left-behind trainer stopped): carried from attempt to attempt in the details and
   * copied into the outcome, so the Web UI and the results show it.
   */
  incidents: z.array(z.string()).optional(),
});
export type TrainingHeartbeat = z.infer<typeof TrainingHeartbeatSchema>;

/** The previous attempt's last heartbeat, if it parses (older or foreign details are ignored). */
export function priorHeartbeat(details: unknown): TrainingHeartbeat | null {
  const r = TrainingHeartbeatSchema.safeParse(details);
  return r.success ? r.data : null;
}

interface TrainerRunResult {
  result: ResultMessage | null;
  lastMetricsAP: number | null;
  lastTop1: number | null;
  resumedFrom: string | null;
  exit: TrainerExitInfo;
  error: { kind: string; message: string; field?: string } | null;
  /** set when the liveness watch killed the trainer */
  stall: Stall | null;
}

/** The timer's period: the worker's setting (10 s), at most a third of the activity's heartbeat timeout. */
function heartbeatEveryMs(deps: ActivityDeps, heartbeatTimeoutMs: number | undefined): number {
  const every = (deps.heartbeatEverySeconds ?? 10) * 1000;
  return heartbeatTimeoutMs ? Math.max(50, Math.min(every, heartbeatTimeoutMs / 3)) : every;
}

function addIncident(hb: TrainingHeartbeat, text: string): void {
  hb.incidents = [...(hb.incidents ?? []), `attempt ${hb.attempt}: ${text}`];
}

/**
 * Run the trainer with heartbeats driven by its progress (activities/liveness.ts): every progress /
 * checkpoint message heartbeats, and a timer heartbeats in between only while the trainer is
 * within its liveness allowance (cancellation reaches an activity only through heartbeats). A
 * trainer silent for longer is killed (process group) and the attempt fails retryably.
 */
async function runWithHeartbeats(
  deps: ActivityDeps,
  command: string,
  jobFile: string,
  hb: TrainingHeartbeat,
  devices: string[] = [hb.device],
  valImages: number | null = null,
): Promise<TrainerRunResult> {
  const ctx = Context.current();
  const out: Omit<TrainerRunResult, 'exit'> = { result: null, lastMetricsAP: null, lastTop1: null, resumedFrom: null, error: null, stall: null };
  const beat = () => ctx.heartbeat({ ...hb });
  beat();
  const watch = new LivenessWatch({ ...DEFAULT_LIVENESS, ...deps.liveness }, Date.now(), valImages);
  const stalled = new AbortController();
  const timer = setInterval(
    () => {
      if (out.stall) return;
      const stall = watch.check(Date.now());
      if (!stall) {
        beat();
        return;
      }
      out.stall = stall;
      addIncident(hb, `${stall.reason}; trainer killed`);
      deps.logger.warn({ jobFile, ...stall }, 'trainer stalled: killing its process group');
      beat(); // the reason reaches the details the Web UI shows and the next attempt reads
      stalled.abort();
    },
    heartbeatEveryMs(deps, ctx.info.heartbeatTimeoutMs),
  );
  const onMessage = (m: TrainerMessage) => {
    watch.onMessage(m, Date.now());
    switch (m.type) {
      case 'started':
        out.resumedFrom = m.resumedFrom?.path ?? null;
        hb.phase = 'training';
        for (const s of m.skippedCheckpoints ?? []) addIncident(hb, `checkpoint ${s.path} not used: ${s.reason}`);
        if (m.skippedCheckpoints?.length && !m.resumedFrom) addIncident(hb, 'no usable checkpoint: training restarted from the beginning');
        break;
      case 'progress':
        Object.assign(hb, {
          phase: watch.phase === 'evaluating' ? 'evaluating' : 'training',
          epoch: m.epoch,
          iteration: m.iteration,
          totalIterations: m.totalIterations,
          loss: m.loss,
        });
        beat();
        break;
      case 'checkpoint':
        hb.checkpoint = { path: m.path, epoch: m.epoch, iteration: m.iteration };
        beat();
        break;
      case 'metrics':
        if (m.stats) out.lastMetricsAP = m.stats.AP;
        if (m.top1 !== undefined) out.lastTop1 = m.top1;
        break;
      case 'result':
        out.result = m;
        break;
      case 'error':
        if (!(m.kind === 'peer_lost' && out.error && out.error.kind !== 'peer_lost')) out.error = { kind: m.kind, message: m.message, field: m.field };
        break;
    }
  };
  try {
    // one process, or one per leased device (a data-parallel training: rank 0 reports)
    const exit = await runTrainerGroup({
      nproc: devices.length,
      devices: devices.length > 1 ? devices : undefined,
      onPeerMessage: (rank, m) => {
        if (m.type === 'error') {
          deps.logger.warn({ rank, kind: m.kind, message: m.message }, 'trainer process failed');
          // a rank's own invalid job / bad data explains the others' peer_lost
          const decisive = m.kind === 'invalid_job' || m.kind === 'bad_data';
          if (!out.error || (decisive && out.error.kind === 'peer_lost')) out.error = { kind: m.kind, message: `rank ${rank}: ${m.message}`, field: m.field };
        }
      },
      bin: deps.trainerBin,
      command,
      jobFile,
      onMessage,
      onBadLine: (line, error) => deps.logger.warn({ line: line.slice(0, 200), error }, 'trainer wrote a non-protocol line'),
      signal: AbortSignal.any([ctx.cancellationSignal, stalled.signal]),
      killGraceMs: deps.killGraceMs,
      pidFile: path.join(path.dirname(jobFile), 'trainer.pid'),
      onStaleTrainerStopped: (pid) => {
        addIncident(hb, `a trainer left running by an earlier attempt (pid ${pid}) was stopped before this one started`);
        deps.logger.warn({ pid, jobFile }, 'stopped a trainer an earlier attempt left running');
      },
    });
    return { ...out, exit };
  } finally {
    clearInterval(timer);
  }
}

/** Map a trainer run that produced no ok/diverged result to the right failure kind. */
function failureOf(run: TrainerRunResult, what: string): Error {
  const ctx = Context.current();
  if (run.stall && !ctx.cancellationSignal.aborted) {
    return ApplicationFailure.retryable(
      `${what}: ${run.stall.reason}; trainer process group ${run.exit.pid} killed, the next attempt resumes from its last checkpoint`,
      'TrainerStalled',
    );
  }
  if (run.exit.aborted || ctx.cancellationSignal.aborted) {
    return new CancelledFailure(`${what}: cancelled, trainer process group ${run.exit.pid} stopped`);
  }
  const code = run.exit.code;
  const msg = run.error ? `${run.error.message}${run.error.field ? ` (field ${run.error.field})` : ''}` : lastLine(run.exit.stderrTail);
  if (code === TrainerExit.invalidJob || run.error?.kind === 'invalid_job') {
    return ApplicationFailure.nonRetryable(`${what}: invalid job: ${msg}`, 'InvalidJob');
  }
  if (code === TrainerExit.badData || run.error?.kind === 'bad_data') {
    return ApplicationFailure.nonRetryable(`${what}: bad data: ${msg}`, 'BadData');
  }
  const how = code === null ? `killed by ${run.exit.signal}` : `exit code ${code}`;
  return ApplicationFailure.retryable(`${what}: trainer ${how}: ${msg || 'no message'}`, 'TrainerCrash');
}

function lastLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim());
  return lines.length ? lines[lines.length - 1].slice(0, 500) : '';
}

function hasCheckpoints(outDir: string): boolean {
  try {
    return fs.readdirSync(path.join(outDir, 'checkpoints')).length > 0;
  } catch {
    return false;
  }
}

/** UserErrors of the job builders are configuration errors: never retried. */
function nonRetryableConfig<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof UserError) throw ApplicationFailure.nonRetryable(`${what}: ${e.message}`, 'InvalidJob');
    throw e;
  }
}

async function withDevices<T>(pool: DevicePool, n: number, fn: (devices: string[]) => Promise<T>): Promise<T> {
  const devices = await pool.acquireMany(n, Context.current().cancellationSignal);
  try {
    return await fn(devices);
  } finally {
    pool.releaseMany(devices);
  }
}

/**
 * The data set's own metric (DatasetRef.metric) of a finished training: VOC mAP@0.5 from the
 * trainer's detections on the test split with the project's VOC evaluator; BDD's detection AP is
 * the COCO AP the trainer reported (the converter made BDD's ignore boxes iscrowd regions).
 * Undefined for COCO AP, which `mAP` already is.
 */
export async function scoreDatasetMetric(req: Pick<TrainRequest, 'arch' | 'data'>, mAP: number, detections: string): Promise<TrainOutcome['datasetMetric']> {
  const metric = req.data.metric;
  if (metric === undefined || metric === 'coco-ap') return undefined;
  if (metric === 'bdd-ap') return { name: metric, value: mAP };
  const gt = instancesPath(req.data.root, req.data.valSplit);
  try {
    const r = await evaluateVocFiles(gt, detections, { voc07: metric === 'voc07-map50' });
    return { name: metric, value: r.mAP };
  } catch (e) {
    // the trainer's own output or the prepared data set is unreadable: retrying the same files cannot help
    throw ApplicationFailure.nonRetryable(`train ${req.arch}: ${metric} on ${gt} with ${detections}: ${(e as Error).message}`, 'MetricFailed');
  }
}

/** The global batch of the newest earlier attempt's job file in outDir (what its checkpoints were written with). */
function previousGlobalBatch(outDir: string, prefix: string): number | undefined {
  let files: string[];
  try {
    files = fs.readdirSync(outDir).filter((f) => f.startsWith(prefix) && f.endsWith('.json'));
  } catch {
    return undefined;
  }
  const attempt = (f: string) => Number(/(\d+)\.json$/.exec(f)?.[1] ?? 0);
  files.sort((a, b) => attempt(b) - attempt(a));
  for (const f of files) {
    try {
      const j = JSON.parse(fs.readFileSync(path.join(outDir, f), 'utf8')) as { recipe?: { batchSize?: number }; distributed?: { worldSize?: number } };
      if (typeof j.recipe?.batchSize === 'number') return j.recipe.batchSize * (j.distributed?.worldSize ?? 1);
    } catch {
      /* a torn file: try the one before */
    }
  }
  return undefined;
}

/** The job's device and distributed settings for the leased devices (one process each). */
function placement(devices: string[]): { device: string; distributed?: { worldSize: number } } {
  if (devices.length === 1) return { device: devices[0] };
  // each process sees its own GPU as cuda:0 (trainer-group.ts sets CUDA_VISIBLE_DEVICES)
  return { device: devices[0] === 'cpu' ? 'cpu' : 'cuda:0', distributed: { worldSize: devices.length } };
}

/** One training to launch (launchTraining in makeTrainerActivities). */
interface TrainingLaunch {
  /** names the training in configuration errors */
  what: string;
  command: 'train' | 'classify-train';
  outDir: string;
  /** the attempt's job file is <outDir>/<jobPrefix><attempt>.json (also how an earlier attempt's global batch is found) */
  jobPrefix: string;
  /** recipe.devices and recipe.batchSize */
  devices: number | undefined;
  batchSize: number;
  /** validation images (the liveness allowance of the evaluation after training) */
  valImages?: number;
  /** fields of the "started" log line */
  log: Record<string, unknown>;
  seed: number;
  /** the request's checkpoint policy (over the worker's and the defaults) */
  checkpoint?: CommonJobOptions['checkpoint'];
  /** the job, from the options every training shares and the batch size per process */
  buildJob(common: CommonJobOptions, batchSize: number): object;
}

interface LaunchedTraining {
  run: TrainerRunResult;
  devices: string[];
  /** the leased devices, comma-joined */
  device: string;
  hb: TrainingHeartbeat;
  attempt: number;
}

export function makeTrainerActivities(deps: ActivityDeps, store: (root?: string) => ArtifactStore, pool: DevicePool) {
  const evaluator = deps.evaluator ?? [...SMNAS_CLI, 'eval'];

  /**
   * What trainDetector and pretrainBackbone share: resume or not (an earlier attempt's heartbeat
   * or checkpoints in outDir), the process plan (recipe.devices, keeping the global batch of the
   * checkpoints being resumed), the devices leased, the attempt's job file, the heartbeat carried
   * from the earlier attempt, and the trainer group's run.
   */
  async function launchTraining<T>(l: TrainingLaunch, then: (r: LaunchedTraining) => T | Promise<T>): Promise<T> {
    const ctx = Context.current();
    const attempt = ctx.info.attempt;
    const prior = priorHeartbeat(ctx.info.heartbeatDetails);
    // the run folder is keyed by what is trained (arch + recipe + data + purpose + init), so its
    // checkpoints belong to this very training, also when a campaign was terminated and started
    // again (attempt 1, no heartbeat details)
    const resume = prior?.checkpoint != null || hasCheckpoints(l.outDir);
    const plan: ProcessPlan = planProcesses(l.devices ?? 1, l.batchSize, pool.devices.length, resume ? previousGlobalBatch(l.outDir, l.jobPrefix) : undefined);
    return withDevices(pool, plan.nproc, async (devices) => {
      const { device: jobDevice, distributed } = placement(devices);
      const device = devices.join(',');
      const common: CommonJobOptions = {
        outDir: l.outDir,
        seed: l.seed,
        device: jobDevice,
        distributed,
        threads: deps.threads ?? 0,
        resume,
        checkpoint: { everySeconds: 30, keep: 2, ...deps.checkpoint, ...l.checkpoint },
      };
      const job = nonRetryableConfig(l.what, () => l.buildJob(common, plan.batchSize));
      const jobFile = path.join(l.outDir, `${l.jobPrefix}${attempt}.json`);
      writeFileAtomic(jobFile, JSON.stringify(job, null, 1));
      const hb: TrainingHeartbeat = {
        phase: 'starting',
        epoch: prior?.epoch ?? null,
        iteration: prior?.iteration ?? null,
        totalIterations: prior?.totalIterations ?? null,
        loss: prior?.loss ?? null,
        checkpoint: prior?.checkpoint ?? null,
        device,
        attempt,
        incidents: prior?.incidents,
      };
      deps.logger.info(
        { ...l.log, device, processes: devices.length, attempt, resume, outDir: l.outDir },
        `${l.command === 'train' ? 'training' : 'pretraining'} started`,
      );
      const run = await runWithHeartbeats(deps, l.command, jobFile, hb, devices, l.valImages);
      return then({ run, devices, device, hb, attempt });
    });
  }

  async function trainDetector(input: TrainRequest): Promise<TrainOutcome> {
    const req = nonRetryableConfig('trainDetector', () => TrainRequestSchema.parse(input));
    const recipe = nonRetryableConfig(`trainDetector ${req.arch}`, () => withBackboneTraining(resolveDetectionRecipe(req.recipe), req.recipeBackbone));
    const outDir = store(req.artifactRoot).runDir(req.key);
    const launch: TrainingLaunch = {
      what: `trainDetector ${req.arch}`,
      command: 'train',
      outDir,
      jobPrefix: 'job-train-attempt',
      devices: recipe.devices,
      batchSize: recipe.batchSize,
      valImages: req.data.valImages,
      log: { arch: req.arch, initKind: req.initKind, initWeights: req.initWeights },
      seed: req.seed,
      checkpoint: req.checkpoint,
      buildJob: (common, batchSize) =>
        buildDetectionJob({
          ...common,
          command: 'train',
          arch: req.arch,
          recipe: batchSize === recipe.batchSize ? recipe : { ...recipe, batchSize },
          numClasses: req.data.numClasses,
          dataRoot: req.data.root,
          trainSplit: req.data.trainSplit,
          valSplit: req.data.valSplit,
          initWeights: req.initWeights,
          initKind: req.initKind,
          evaluator,
        }),
    };
    return launchTraining(launch, async ({ run, devices, device, hb, attempt }) => {
      const incidents = hb.incidents ?? [];
      const r = run.result;
      if (!r || run.exit.code !== (r.kind === 'diverged' ? TrainerExit.diverged : TrainerExit.ok)) {
        // a diverged run may exit 4 with a result line; anything else without a result is a failure
        if (!(r && (run.exit.code === TrainerExit.ok || run.exit.code === TrainerExit.diverged))) throw failureOf(run, `train ${req.arch}`);
      }
      if (r.kind === 'diverged') {
        deps.logger.warn({ arch: req.arch, message: r.message }, 'training diverged: recorded with no score');
        return {
          kind: 'diverged',
          mAP: null,
          stats: null,
          weights: r.weights ?? null,
          outDir,
          wallSeconds: r.wallSeconds,
          gpuSeconds: r.wallSeconds * devices.length,
          device,
          attempt,
          resumedFrom: run.resumedFrom,
          message: r.message ?? 'diverged',
          incidents,
        };
      }
      const stats = r.metrics?.stats ?? null;
      const mAP = stats?.AP ?? run.lastMetricsAP;
      if (mAP === null || mAP === undefined) {
        throw ApplicationFailure.nonRetryable(
          `train ${req.arch}: the trainer finished without COCO metrics (is the evaluator ${evaluator.join(' ')} working?)`,
          'NoMetrics',
        );
      }
      const datasetMetric = await scoreDatasetMetric(req, mAP, r.detections ?? path.join(outDir, 'detections_val.json'));
      return {
        kind: 'ok',
        mAP,
        stats,
        weights: r.weights ?? null,
        outDir,
        wallSeconds: r.wallSeconds,
        gpuSeconds: r.wallSeconds * devices.length,
        device,
        attempt,
        resumedFrom: run.resumedFrom,
        message: null,
        incidents,
        ...(datasetMetric ? { datasetMetric } : {}),
      };
    });
  }

  async function benchmarkLatency(input: BenchRequest): Promise<BenchFigures> {
    const req = nonRetryableConfig('benchmarkLatency', () => BenchRequestSchema.parse(input));
    const st = store(req.artifactRoot);
    const file = st.benchFile(req.key, req.device);
    const cached = st.readJson<BenchFigures>(file);
    if (cached) return cached;
    const recipe = nonRetryableConfig(`bench ${req.arch}`, () => resolveDetectionRecipe(req.recipe));
    return withDevices(pool, 1, async ([leased]) => {
      // latency is measured on the campaign's target device kind; on a multi-GPU host the leased GPU
      const device = req.device.startsWith('cuda') && leased.startsWith('cuda') ? leased : req.device;
      const outDir = path.join(path.dirname(file), `${req.key}-run`);
      const job = nonRetryableConfig(`bench ${req.arch}`, () =>
        buildDetectionJob({
          command: 'bench',
          outDir,
          device,
          threads: deps.threads ?? 0,
          arch: req.arch,
          recipe,
          numClasses: req.numClasses,
          bench: { warmup: req.warmup, iterations: req.iterations },
        }),
      );
      const jobFile = path.join(outDir, 'job-bench.json');
      writeFileAtomic(jobFile, JSON.stringify(job, null, 1));
      const hb: TrainingHeartbeat = {
        phase: 'evaluating',
        epoch: null,
        iteration: null,
        totalIterations: null,
        loss: null,
        checkpoint: null,
        device,
        attempt: Context.current().info.attempt,
      };
      const run = await runWithHeartbeats(deps, 'bench', jobFile, hb);
      if (!run.result?.bench || run.exit.code !== TrainerExit.ok) throw failureOf(run, `bench ${req.arch}`);
      st.writeJson(file, run.result.bench);
      return run.result.bench;
    });
  }

  async function pretrainBackbone(input: PretrainRequest): Promise<PretrainOutcome> {
    const req = nonRetryableConfig('pretrainBackbone', () => PretrainRequestSchema.parse(input));
    const recipe = nonRetryableConfig(`pretrain ${req.arch}`, () => resolveClassificationRecipe(req.recipe));
    const st = store(req.artifactRoot);
    const key = sha256(['pretrain', req.arch, recipeHash(recipe), req.fingerprint].join('\n'));
    const outDir = st.pretrainDir(key);
    const outcomeFile = path.join(outDir, 'outcome.json');
    const cached = st.readJson<PretrainOutcome>(outcomeFile);
    if (cached) return { ...cached, reused: true };
    const launch: TrainingLaunch = {
      what: `pretrain ${req.arch}`,
      command: 'classify-train',
      outDir,
      jobPrefix: 'job-pretrain-attempt',
      devices: recipe.devices,
      batchSize: recipe.batchSize,
      log: { arch: req.arch },
      seed: req.seed,
      checkpoint: req.checkpoint,
      buildJob: (common, batchSize) =>
        buildClassificationJob({
          ...common,
          command: 'classify-train',
          arch: req.arch,
          recipe: batchSize === recipe.batchSize ? recipe : { ...recipe, batchSize },
          dataRoot: req.dataRoot,
        }),
    };
    return launchTraining(launch, async ({ run, hb }) => {
      const r = run.result;
      if (!r || run.exit.code !== TrainerExit.ok || r.kind !== 'ok' || !r.weights) {
        if (r?.kind === 'diverged') throw ApplicationFailure.nonRetryable(`pretrain ${req.arch}: diverged: ${r.message ?? ''}`, 'Diverged');
        throw failureOf(run, `pretrain ${req.arch}`);
      }
      const outcome: PretrainOutcome = {
        key,
        weights: r.weights,
        top1: r.metrics?.top1 ?? run.lastTop1,
        top5: r.metrics?.top5 ?? null,
        wallSeconds: r.wallSeconds,
        reused: false,
        resumedFrom: run.resumedFrom,
        incidents: hb.incidents ?? [],
      };
      st.writeJson(outcomeFile, outcome);
      return outcome;
    });
  }

  return { trainDetector, benchmarkLatency, pretrainBackbone };
}
