/**
 * MOCKED GPU activities for workflow tests (training is not the point there): the same names and
 * shapes as activities/training.ts, answering after a short delay with figures derived
 * deterministically from the architecture string. They record every call so tests can check stage
 * order, budgets and reuse. The control activities in these tests are the real ones.
 */
import { Context } from '@temporalio/activity';
import pino from 'pino';
import { makeOnnxActivities } from '../../activities/onnx';
import { TRAINER_BIN } from '../../common/paths';
import { CancelledFailure } from '@temporalio/common';
import type { BenchFigures } from '../../protocol/trainer-messages';
import type { BenchRequest, LatencyRequest, PretrainOutcome, PretrainRequest, TrainOutcome, TrainRequest } from '../../activities/types';

function hash(s: string): number {
  let h = 2166136261;
  for (const ch of s) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return h;
}

export interface MockCall {
  activity: 'trainDetector' | 'benchmarkLatency' | 'measureLatency' | 'pretrainBackbone';
  arch: string;
  at: number;
  /** TrainRequest.key embeds nothing about the stage; tests look at the recipe */
  recipe: string;
  /** measureLatency: the weights timed and the device requirement */
  weights?: string | null;
  latencyDevice?: LatencyRequest['settings']['device'];
  /** trainDetector: the initial weights asked for */
  initWeights?: string;
  initKind?: string;
  recipeBackbone?: TrainRequest['recipeBackbone'];
}

export class MockGpu {
  calls: MockCall[] = [];
  running = 0;
  maxRunning = 0;
  /** activities that saw their cancellation (the way a real training would stop its trainer) */
  cancelled: string[] = [];
  constructor(readonly delayMs = 30) {}

  private async busy<T>(fn: () => T): Promise<T> {
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    const ctx = Context.current();
    const beat = setInterval(() => ctx.heartbeat(), 100);
    try {
      ctx.heartbeat();
      await ctx.sleep(this.delayMs); // rejects when the activity is cancelled
      return fn();
    } catch (e) {
      if (e instanceof CancelledFailure || ctx.cancellationSignal.aborted) this.cancelled.push(ctx.info.activityType);
      throw e;
    } finally {
      clearInterval(beat);
      this.running--;
    }
  }

  activities() {
    return {
      trainDetector: (r: TrainRequest): Promise<TrainOutcome> => {
        this.calls.push({
          activity: 'trainDetector',
          arch: r.arch,
          at: Date.now(),
          recipe: r.recipe,
          initWeights: r.initWeights,
          initKind: r.initKind,
          recipeBackbone: r.recipeBackbone,
        });
        return this.busy(() => ({
          kind: 'ok' as const,
          mAP: (hash(r.arch + r.recipe) % 1000) / 2000,
          stats: null,
          weights: `/mock/weights/${hash(r.arch + r.recipe + (r.initWeights ?? ''))}.pt`,
          outDir: '/mock',
          wallSeconds: 1,
          gpuSeconds: 1,
          device: 'cpu',
          attempt: 1,
          resumedFrom: null,
          message: null,
        }));
      },
      benchmarkLatency: (r: BenchRequest): Promise<BenchFigures> => {
        this.calls.push({ activity: 'benchmarkLatency', arch: r.arch, at: Date.now(), recipe: r.recipe });
        const ms = 5 + (hash(r.arch) % 100) / 4;
        return this.busy(() => ({
          device: r.device,
          warmup: r.warmup,
          iterations: r.iterations,
          medianMs: ms,
          meanMs: ms,
          p10Ms: ms,
          p90Ms: ms,
          stdMs: 0,
          peakMemoryMB: 1,
        }));
      },
      measureLatency: (r: LatencyRequest): Promise<BenchFigures> => {
        this.calls.push({ activity: 'measureLatency', arch: r.arch, at: Date.now(), recipe: r.recipe, weights: r.weights, latencyDevice: r.settings.device });
        const ms = 5 + (hash(r.arch) % 100) / 4;
        return this.busy(() => ({
          device: r.device,
          warmup: r.settings.warmup,
          iterations: r.settings.images,
          medianMs: ms,
          meanMs: ms,
          p10Ms: ms,
          p90Ms: ms,
          stdMs: 0,
          peakMemoryMB: 1,
          backend: r.settings.backend,
          weights: r.weights,
          images: r.settings.images,
          rounds: r.settings.rounds,
          spread: 0,
          reliable: true,
          reason: null,
        }));
      },
      pretrainBackbone: (r: PretrainRequest): Promise<PretrainOutcome> => {
        this.calls.push({ activity: 'pretrainBackbone', arch: r.arch, at: Date.now(), recipe: r.recipe });
        return this.busy(() => ({
          key: `pre-${hash(r.arch)}`,
          weights: `/mock/pretrained/${hash(r.arch)}.pt`,
          top1: 0.5,
          top5: 0.9,
          wallSeconds: 1,
          reused: false,
        }));
      },
      // not a training: the REAL export activity (the mocked weights do not exist, so each model is
      // reported as not exported, with the reason)
      exportFinalModels: makeOnnxActivities({ artifactRoot: '/nonexistent', trainerBin: TRAINER_BIN, devices: ['cpu'], logger: pino({ level: 'silent' }) })
        .exportFinalModels,
    };
  }
}
