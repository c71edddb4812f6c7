/**
 * measureLatency: the latency protocol (docs/campaign.md "Latency"). An evaluated architecture is
 * timed with its trained weights on a fixed, seeded sample of its campaign's validation images
 * (cycled), at the stage's input size, batch 1, with the recipe's post-processing (the trainer's
 * `bench` with `bench.images`, the code path of evaluation). The trainer reports every forward's
 * time; the statistics are computed here (latency-stats.ts), so a second backend only has to
 * produce timings. A measurement whose spread over rounds is above `maxSpread` is repeated, up to
 * `maxMeasurements`; then the steadiest is recorded with `reliable: false` and the reason.
 *
 * Where it ran is part of the figure and of its cache key: device kind and model, runtime,
 * trainer build (hash of the binary), threads, backend, input size, the weights' content, the
 * sample and the protocol's settings. A different device model or trainer build measures again;
 * figures of the older noise-image benchmark (`<store>/bench/`) are never read by it.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { buildDetectionJob } from '../protocol/job-builder';
import { deviceMeets } from '../protocol/latency';
import { resolveDetectionRecipe } from '../protocol/recipe-file';
import {
  BenchTimingsSchema,
  RuntimeEnvironmentSchema,
  TrainerExit,
  parseTrainerLine,
  type BenchFigures,
  type BenchTimings,
  type RuntimeEnvironment,
} from '../protocol/trainer-messages';
import type { ActivityDeps } from './index';
import { ArtifactStore, canonicalJson, recipeHash, sha256, writeFileAtomic } from './artifact-store';
import { DevicePool } from './device-pool';
import { judgeMeasurements, roundStats, type RoundStats } from './latency-stats';
import { LatencyRequestSchema, type LatencyRequest } from './types';
import { failureOf, nonRetryableConfig, runWithHeartbeats, withDevices, type TrainingHeartbeat } from './training';
import { onnxEnvironment, onnxTimings } from './latency-onnx';
import { UserError } from '../common/errors';

/** Bumped when the protocol changes what a figure means: older cache entries are then never read. */
export const LATENCY_PROTOCOL = 'trained-val-sample-v1';

const envCache = new Map<string, Promise<RuntimeEnvironment>>();

/**
 * `smnas-trainer env --device <d>`: where a measurement on this device would run (device model,
 * runtime, trainer build). Cached per binary (path, size, mtime) and device for the worker's life.
 */
export function probeEnvironment(trainerBin: string, device: string): Promise<RuntimeEnvironment> {
  let id: string;
  try {
    const st = fs.statSync(trainerBin);
    id = `${trainerBin}\n${st.size}\n${st.mtimeMs}\n${device}`;
  } catch {
    return Promise.reject(new Error(`the trainer ${trainerBin} does not exist (build it: scripts/setup.sh)`));
  }
  let p = envCache.get(id);
  if (!p) {
    p = new Promise<RuntimeEnvironment>((resolve, reject) => {
      execFile(trainerBin, ['env', '--device', device], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
        for (const line of stdout.split('\n')) {
          const m = line.trim() ? parseTrainerLine(line) : null;
          if (m?.ok && m.message.type === 'result' && m.message.environment) return resolve(RuntimeEnvironmentSchema.parse(m.message.environment));
          if (m?.ok && m.message.type === 'error') return reject(new Error(`${trainerBin} env --device ${device}: ${m.message.message}`));
        }
        reject(
          new Error(`${trainerBin} env --device ${device}: no environment reported${err ? ` (${err.message.split('\n')[0]})` : ''} ${stderr.slice(-300)}`),
        );
      });
    });
    envCache.set(id, p);
    p.catch(() => envCache.delete(id));
  }
  return p;
}

/** sha256 of a file's content, streamed (weights files reach hundreds of MB). */
export function sha256OfFile(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    fs.createReadStream(file)
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/** The input size of an architecture string (`<W>x<H>/...`). */
export function inputSizeOf(arch: string): { width: number; height: number } {
  const m = /^(\d+)x(\d+)\//.exec(arch);
  if (!m) throw new Error(`no input size in '${arch}'`);
  return { width: Number(m[1]), height: Number(m[2]) };
}

export interface LatencyKeyParts {
  backend: string;
  arch: string;
  recipeHash: string;
  numClasses: number;
  width: number;
  height: number;
  /** sha256 of the weights file; null for an untrained model */
  weightsSha256: string | null;
  dataFingerprint: string;
  valSplit: string;
  images: number;
  rounds: number;
  warmup: number;
  seed: number;
  threads: number;
  environment: Pick<RuntimeEnvironment, 'deviceKind' | 'deviceModel' | 'runtime' | 'trainerVersion'>;
}

/** The cache key of a latency figure: everything that changes it. */
export function latencyCacheKey(p: LatencyKeyParts): string {
  const e = p.environment;
  return sha256(
    canonicalJson({
      protocol: LATENCY_PROTOCOL,
      ...p,
      environment: { deviceKind: e.deviceKind, deviceModel: e.deviceModel, runtime: e.runtime, trainerVersion: e.trainerVersion },
    }),
  );
}

/** What the store keeps per cache key: the figure and every measurement's raw timings. */
interface LatencyCacheEntry {
  protocol: string;
  key: LatencyKeyParts;
  figures: BenchFigures;
  measurements: BenchTimings[];
}

/** The figure of the measurement kept (pure; tests and other backends build theirs the same way). */
export function latencyFigures(
  t: BenchTimings,
  s: RoundStats,
  o: {
    backend: string;
    weightsSha256: string | null;
    maxSpread: number;
    measurements: number;
    reliable: boolean;
    reason: string | null;
    cacheKey: string;
    images: number;
  },
): BenchFigures {
  const dets = t.detections.length ? t.detections.reduce((a, b) => a + b, 0) / t.detections.length : 0;
  return {
    device: t.device,
    warmup: t.warmup,
    iterations: t.iterations,
    medianMs: s.medianMs,
    meanMs: s.meanMs,
    p10Ms: s.p10Ms,
    p90Ms: s.p90Ms,
    stdMs: s.stdMs,
    peakMemoryMB: t.peakMemoryMB,
    input: `validation sample of ${o.images} images`,
    environment: t.environment,
    backend: o.backend,
    weights: t.weights,
    weightsSha256: o.weightsSha256,
    images: o.images,
    rounds: t.rounds.length,
    inputWidth: t.inputWidth,
    inputHeight: t.inputHeight,
    roundMs: s.roundMs,
    imageP50Ms: s.imageP50Ms,
    imageP90Ms: s.imageP90Ms,
    detectionsPerImage: dets,
    spread: s.spread,
    maxSpread: o.maxSpread,
    measurements: o.measurements,
    reliable: o.reliable,
    reason: o.reason,
    cacheKey: o.cacheKey,
    cached: false,
  };
}

export function makeLatencyActivities(deps: ActivityDeps, store: (root?: string) => ArtifactStore, pool: DevicePool) {
  async function measureLatency(input: LatencyRequest): Promise<BenchFigures> {
    const req = nonRetryableConfig('measureLatency', () => LatencyRequestSchema.parse(input));
    const s = req.settings;
    const onnx = s.backend === 'onnxruntime';
    if (onnx && (s.device?.kind === 'cuda' || (!s.device && req.device.startsWith('cuda'))))
      throw ApplicationFailure.nonRetryable(
        `latency ${req.arch}: the onnxruntime backend measures with onnxruntime-node's CPU execution provider only; ask for a cpu latency device or the native backend`,
        'InvalidJob',
      );
    if (onnx && req.weights === null)
      throw ApplicationFailure.nonRetryable(
        `latency ${req.arch}: the onnxruntime backend times the exported trained model; there are no weights`,
        'InvalidJob',
      );
    const recipe = nonRetryableConfig(`latency ${req.arch}`, () => resolveDetectionRecipe(req.recipe));
    const st = store(req.artifactRoot);
    let weightsSha256: string | null = null;
    if (req.weights !== null) {
      try {
        weightsSha256 = await sha256OfFile(req.weights);
      } catch (e) {
        // the training's own output is gone: measuring again cannot bring it back
        throw ApplicationFailure.nonRetryable(`latency ${req.arch}: cannot read the trained weights ${req.weights}: ${(e as Error).message}`, 'MissingWeights');
      }
    }
    return withDevices(pool, 1, async ([leased]) => {
      let device: string;
      if (s.device) {
        device = leased;
      } else {
        // no requirement: the campaign's latencyDevice; on a multi-GPU host the leased GPU
        device = req.device.startsWith('cuda') && leased.startsWith('cuda') ? leased : req.device;
      }
      let env: RuntimeEnvironment;
      try {
        env = onnx ? onnxEnvironment(await probeEnvironment(deps.trainerBin, 'cpu'), deps.threads ?? 0) : await probeEnvironment(deps.trainerBin, device);
      } catch (e) {
        throw ApplicationFailure.retryable(`latency ${req.arch}: ${(e as Error).message}`, 'TrainerCrash');
      }
      if (s.device) {
        const meets = deviceMeets(s.device, env);
        // the worker checked its devices at start-up; a figure from another device is never recorded
        if (!meets.ok) throw ApplicationFailure.retryable(`latency ${req.arch}: this worker's ${device} is ${meets.reason}`, 'WrongLatencyDevice');
      }
      const { width, height } = inputSizeOf(req.arch);
      // what the protocol measures with, for the key and for either backend
      const sampling = { images: s.images, rounds: s.rounds, warmup: s.warmup, seed: s.seed, threads: deps.threads ?? 0 };
      const parts: LatencyKeyParts = {
        backend: s.backend,
        arch: req.arch,
        recipeHash: recipeHash(recipe),
        numClasses: req.data.numClasses,
        width,
        height,
        weightsSha256,
        dataFingerprint: req.data.fingerprint,
        valSplit: req.data.valSplit,
        ...sampling,
        environment: env,
      };
      const cacheKey = latencyCacheKey(parts);
      const file = st.latencyFile(cacheKey);
      const cached = st.readJson<LatencyCacheEntry>(file);
      if (cached && cached.protocol === LATENCY_PROTOCOL && cached.figures?.cacheKey === cacheKey) return { ...cached.figures, cached: true };

      const outDir = path.join(path.dirname(file), `${cacheKey}-run`);
      // the native backend's job for the trainer's `bench` (the onnxruntime one exports and times in this process)
      const job = onnx
        ? null
        : nonRetryableConfig(`latency ${req.arch}`, () =>
            buildDetectionJob({
              command: 'bench',
              outDir,
              device,
              seed: s.seed,
              threads: deps.threads ?? 0,
              arch: req.arch,
              recipe,
              numClasses: req.data.numClasses,
              dataRoot: req.data.root,
              trainSplit: req.data.trainSplit,
              valSplit: req.data.valSplit,
              ...(req.weights !== null ? { initWeights: req.weights, initKind: 'detector' as const } : {}),
              bench: { warmup: s.warmup, iterations: s.images, images: s.images, rounds: s.rounds },
            }),
          );
      const jobFile = path.join(outDir, 'job-latency.json');
      if (job) writeFileAtomic(jobFile, JSON.stringify(job, null, 1));
      const measurements: BenchTimings[] = [];
      const stats: RoundStats[] = [];
      for (;;) {
        const hb: TrainingHeartbeat = {
          phase: 'evaluating',
          epoch: null,
          iteration: measurements.length,
          totalIterations: s.maxMeasurements,
          loss: null,
          checkpoint: null,
          device,
          attempt: Context.current().info.attempt,
        };
        let t: BenchTimings;
        if (onnx) {
          const ctx = Context.current();
          ctx.heartbeat(hb);
          try {
            t = await onnxTimings({
              weights: req.weights!,
              model: path.join(outDir, 'model.onnx'),
              dataRoot: req.data.root,
              valSplit: req.data.valSplit,
              ...sampling,
              environment: env,
              trainerBin: deps.trainerBin,
              signal: ctx.cancellationSignal,
              onProgress: () => ctx.heartbeat(hb),
            });
          } catch (e) {
            // the model does not export or the data cannot be read: the same inputs fail again
            if (e instanceof UserError) throw ApplicationFailure.nonRetryable(`latency ${req.arch} (onnxruntime): ${e.message}`, 'InvalidJob');
            throw e;
          }
        } else {
          const run = await runWithHeartbeats(deps, 'bench', jobFile, hb);
          if (!run.result?.timings || run.exit.code !== TrainerExit.ok) throw failureOf(run, `latency ${req.arch}`);
          t = BenchTimingsSchema.parse(run.result.timings);
        }
        if (t.environment.trainerVersion !== env.trainerVersion || t.environment.deviceModel !== env.deviceModel) {
          envCache.clear();
          throw ApplicationFailure.retryable(
            `latency ${req.arch}: the trainer or device changed during the measurement (${env.trainerVersion} on ${env.deviceModel} -> ${t.environment.trainerVersion} on ${t.environment.deviceModel})`,
            'TrainerCrash',
          );
        }
        measurements.push(t);
        stats.push(roundStats(t.rounds));
        const verdict = judgeMeasurements(
          stats.map((x) => x.spread),
          s.maxSpread,
          s.maxMeasurements,
        );
        if (verdict === 'measure-again') {
          deps.logger.info({ arch: req.arch, spread: stats[stats.length - 1].spread, maxSpread: s.maxSpread }, 'latency spread too wide: measuring again');
          continue;
        }
        const figures = latencyFigures(measurements[verdict.chosen], stats[verdict.chosen], {
          backend: s.backend,
          weightsSha256,
          maxSpread: s.maxSpread,
          measurements: measurements.length,
          reliable: verdict.reliable,
          reason: verdict.reason,
          cacheKey,
          images: s.images,
        });
        const entry: LatencyCacheEntry = { protocol: LATENCY_PROTOCOL, key: parts, figures, measurements };
        if (verdict.reliable) {
          st.writeJson(file, entry);
        } else {
          // kept for inspection, never reused: the next evaluation with this key measures again
          st.writeJson(file.replace(/\.json$/, '.unreliable.json'), entry);
          deps.logger.warn({ arch: req.arch, device, reason: verdict.reason }, 'latency recorded as unreliable');
        }
        deps.logger.info(
          { arch: req.arch, device, deviceModel: env.deviceModel, medianMs: figures.medianMs, spread: figures.spread, reliable: figures.reliable },
          'latency measured',
        );
        return figures;
      }
    });
  }
  return { measureLatency };
}
