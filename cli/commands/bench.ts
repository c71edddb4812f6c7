/** `smnas bench`: batch-1 inference latency (SPEC 4) of an architecture with the native trainer. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bool, int, parseFlags, printJson, requireStr, str, type Command } from '../../common/cli';
import { UserError } from '../../common/errors';
import { buildDetectionJob } from '../../protocol/job-builder';
import { resolveDetectionRecipe } from '../../protocol/recipe-file';
import { failureOf, runTrainerJob } from '../trainer-run';
import { safeName } from './train';
import { roundStats } from '../../activities/latency-stats';
import { TRAINER_BIN } from '../../common/paths';

export const command: Command = {
  summary: 'measure batch-1 inference latency (incl. NMS) and peak memory of an architecture',
  help: `usage: smnas bench --arch '<notation>' [--device cpu|cuda:0] [options]

  --arch          canonical architecture
  --device        cpu | cuda:<i> (default cpu); CUDA timings are synchronised
  --data DIR      time on the first validation image of this COCO-form dataset (resized like
                  evaluation) instead of a fixed noise image
  --classes K     number of classes of the head (default 80)
  --recipe        recipe whose test settings (proposals, NMS) apply (default paper-stage-one)
  --weights F     detector weights (default: random initialisation; latency does not depend on them
                  except through the number of boxes reaching NMS)
  --warmup N      untimed forwards first (default 10)
  --iterations N  timed forwards (default 50)
  --threads N     intra-op threads (default: all cores)
  --sample N      the campaigns' latency protocol (docs/campaign.md "Latency"; needs --data): a seeded
                  sample of N validation images, cycled, with --rounds rounds over it; prints the
                  median / p10 / p90 of the round latencies, their spread, the detections per image
                  and where it ran (statistics of activities/latency-stats.ts)
  --rounds R      rounds of the protocol (default 5)
  --seed S        seeds the sample (default 0)
  --backend B     native (default) | onnxruntime: with --sample, time the model exported to ONNX
                  (needs --weights: a training's output folder) with onnxruntime-node's CPU
                  execution provider, the same protocol (activities/latency-onnx.ts)
  --json          print the figures as JSON

examples:
  smnas bench --arch '512x512/resnet18/fpn(P2-P5,c=128)/rpn/2fc'
  smnas bench --arch '800x600/resnet50/fpn(P1-P5,c=256)/rpn/2fc' --device cuda:0 --json
`,
  async main(argv) {
    const cmd = 'smnas bench';
    const flags = parseFlags(
      cmd,
      argv,
      {
        arch: { type: 'string' },
        device: { type: 'string' },
        classes: { type: 'string' },
        data: { type: 'string' },
        recipe: { type: 'string' },
        weights: { type: 'string' },
        warmup: { type: 'string' },
        iterations: { type: 'string' },
        threads: { type: 'string' },
        sample: { type: 'string' },
        rounds: { type: 'string' },
        seed: { type: 'string' },
        backend: { type: 'string' },
        json: { type: 'boolean' },
      },
      false,
    );
    const arch = requireStr(cmd, flags, 'arch');
    const numClasses = int(cmd, flags, 'classes', 80)!;
    if (numClasses < 1) throw new UserError(`${cmd}: --classes must be >= 1`);
    const recipe = resolveDetectionRecipe(str(flags, 'recipe') ?? 'paper-stage-one');
    const sample = int(cmd, flags, 'sample', 0)!;
    const rounds = int(cmd, flags, 'rounds', 5)!;
    if (sample < 0 || rounds < 1) throw new UserError(`${cmd}: --sample must be >= 0 and --rounds >= 1`);
    if (sample > 0 && !str(flags, 'data')) throw new UserError(`${cmd}: --sample times validation images: it needs --data`);
    const backend = str(flags, 'backend') ?? 'native';
    if (backend !== 'native' && backend !== 'onnxruntime') throw new UserError(`${cmd}: --backend must be native or onnxruntime, got '${backend}'`);
    if (backend === 'onnxruntime') {
      const weights = str(flags, 'weights');
      if (sample === 0 || !weights) throw new UserError(`${cmd}: --backend onnxruntime needs --sample, --data and --weights (a training's output folder)`);
      if ((str(flags, 'device') ?? 'cpu') !== 'cpu') throw new UserError(`${cmd}: --backend onnxruntime runs on the CPU execution provider only`);
      return onnxBench(cmd, flags, { arch, weights: path.resolve(weights), data: path.resolve(str(flags, 'data')!), sample, rounds });
    }
    const job = buildDetectionJob({
      command: 'bench',
      arch,
      recipe,
      numClasses,
      dataRoot: str(flags, 'data') ? path.resolve(str(flags, 'data')!) : undefined,
      outDir: path.join(os.tmpdir(), `smnas-bench-${process.pid}-${safeName(arch)}`),
      device: str(flags, 'device') ?? 'cpu',
      threads: int(cmd, flags, 'threads', 0),
      initWeights: str(flags, 'weights') ? path.resolve(str(flags, 'weights')!) : undefined,
      initKind: 'detector',
      seed: int(cmd, flags, 'seed', 0),
      bench:
        sample > 0
          ? { warmup: int(cmd, flags, 'warmup', 10), iterations: sample, images: sample, rounds }
          : { warmup: int(cmd, flags, 'warmup', 10), iterations: int(cmd, flags, 'iterations', 50) },
    });
    const outcome = await runTrainerJob(job, { label: 'bench', quiet: true });
    const failure = failureOf(outcome);
    if (failure) {
      process.stderr.write(`${cmd}: ${failure.message}\n`);
      return failure.code;
    }
    const t = outcome.result!.timings;
    if (t) {
      const s = roundStats(t.rounds);
      const dets = t.detections.reduce((a, x) => a + x, 0) / Math.max(1, t.detections.length);
      const weights = str(flags, 'weights') ?? null;
      if (bool(flags, 'json')) printJson({ arch, backend: 'native', weights, images: t.images, detectionsPerImage: dets, environment: t.environment, ...s });
      else
        process.stdout.write(
          `${arch} on ${t.environment.deviceModel} (${t.environment.runtime}, ${t.environment.threads} threads), ${weights ? 'weights ' + weights : 'untrained'}: ` +
            `median ${s.medianMs.toFixed(2)} ms (p10 ${s.p10Ms.toFixed(2)}, p90 ${s.p90Ms.toFixed(2)}, spread ${s.spread.toFixed(3)}) over ${t.rounds.length} rounds of ` +
            `${t.images.length} validation images; ${dets.toFixed(1)} detections per image\n`,
        );
      return 0;
    }
    const b = outcome.result!.bench!;
    if (bool(flags, 'json')) printJson({ arch, ...b });
    else
      process.stdout.write(
        `${arch} on ${b.device}: median ${b.medianMs.toFixed(2)} ms (p10 ${b.p10Ms.toFixed(2)}, p90 ${b.p90Ms.toFixed(2)}, ` +
          `std ${b.stdMs.toFixed(2)}; ${b.iterations} runs after ${b.warmup} warm-up), peak memory ${b.peakMemoryMB.toFixed(0)} MB\n`,
      );
    return 0;
  },
};

/** `smnas bench --backend onnxruntime`: the latency protocol through onnxruntime-node (activities/latency-onnx.ts). */
async function onnxBench(
  cmd: string,
  flags: ReturnType<typeof parseFlags>,
  o: { arch: string; weights: string; data: string; sample: number; rounds: number },
): Promise<number> {
  const { probeEnvironment } = await import('../../activities/latency');
  const { onnxEnvironment, onnxTimings } = await import('../../activities/latency-onnx');
  const threads = int(cmd, flags, 'threads', 0)!;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-bench-onnx-'));
  try {
    const environment = onnxEnvironment(await probeEnvironment(TRAINER_BIN, 'cpu'), threads);
    const t = await onnxTimings({
      weights: o.weights,
      model: path.join(work, 'model.onnx'),
      dataRoot: o.data,
      valSplit: 'val',
      images: o.sample,
      rounds: o.rounds,
      warmup: int(cmd, flags, 'warmup', 10)!,
      seed: int(cmd, flags, 'seed', 0)!,
      threads,
      environment,
      trainerBin: TRAINER_BIN,
    });
    const s = roundStats(t.rounds);
    const dets = t.detections.reduce((a, x) => a + x, 0) / Math.max(1, t.detections.length);
    if (bool(flags, 'json'))
      printJson({ arch: o.arch, backend: 'onnxruntime', weights: o.weights, images: t.images, detectionsPerImage: dets, environment, ...s });
    else
      process.stdout.write(
        `${o.arch} on ${environment.deviceModel} (${environment.runtime}, ${threads || 'default'} threads), weights ${o.weights}: ` +
          `median ${s.medianMs.toFixed(2)} ms (p10 ${s.p10Ms.toFixed(2)}, p90 ${s.p90Ms.toFixed(2)}, spread ${s.spread.toFixed(3)}) over ${t.rounds.length} rounds of ` +
          `${t.images.length} validation images at ${t.inputWidth}x${t.inputHeight}; ${dets.toFixed(1)} detections per image\n`,
      );
    return 0;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
