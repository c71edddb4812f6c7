/** `smnas bench`: batch-1 inference latency (SPEC 4) of an architecture with the native trainer. */
import * as os from 'node:os';
import * as path from 'node:path';
import { bool, int, parseFlags, printJson, requireStr, str, type Command } from '../../common/cli';
import { UserError } from '../../common/errors';
import { buildDetectionJob } from '../../protocol/job-builder';
import { resolveDetectionRecipe } from '../../protocol/recipe-file';
import { failureOf, runTrainerJob } from '../trainer-run';
import { safeName } from './train';

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
        json: { type: 'boolean' },
      },
      false,
    );
    const arch = requireStr(cmd, flags, 'arch');
    const numClasses = int(cmd, flags, 'classes', 80)!;
    if (numClasses < 1) throw new UserError(`${cmd}: --classes must be >= 1`);
    const recipe = resolveDetectionRecipe(str(flags, 'recipe') ?? 'paper-stage-one');
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
      bench: { warmup: int(cmd, flags, 'warmup', 10), iterations: int(cmd, flags, 'iterations', 50) },
    });
    const outcome = await runTrainerJob(job, { label: 'bench', quiet: true });
    const failure = failureOf(outcome);
    if (failure) {
      process.stderr.write(`${cmd}: ${failure.message}\n`);
      return failure.code;
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
