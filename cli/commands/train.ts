/** `smnas train`: train one detector with the native trainer (like mmdetection's tools/train.py). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bool, int, parseFlags, printJson, requireStr, str, type Command } from '../../common/cli';
import { UserError } from '../../common/errors';
import { PROJECT_ROOT } from '../../common/paths';
import { InitKindSchema } from '../../protocol/job';
import { buildDetectionJob } from '../../protocol/job-builder';
import { MixedPrecisionSchema, NormSchema } from '../../protocol/recipe';
import { resolveDetectionRecipe } from '../../protocol/recipe-file';
import { COCO_STAT_NAMES } from '../../protocol/trainer-messages';
import { failureOf, runTrainerJob } from '../trainer-run';

/** Category count of a COCO-form dataset dir (categories of annotations/instances_<split>.json). */
export function datasetClassCount(root: string, split = 'train'): number {
  const file = path.join(root, 'annotations', `instances_${split}.json`);
  let doc: { categories?: unknown };
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`${file}: cannot read the dataset's annotations (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!Array.isArray(doc.categories) || doc.categories.length === 0) throw new UserError(`${file}: 'categories' must be a non-empty array`);
  return doc.categories.length;
}

export function safeName(arch: string): string {
  return arch.replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/_+$/, '');
}

export const command: Command = {
  summary: 'train a detector with the native trainer and report its COCO statistics',
  help: `usage: smnas train --arch '<notation>' --data <dataset dir> [options]

  --arch         canonical architecture, e.g. '128x128/resnet18/fpn(P1-P4,c=64)/rpn/2fc'
  --data         COCO-form dataset dir: annotations/instances_{train,val}.json, train/ and val/ images
  --recipe       toy | paper | a named recipe (toy-final, paper-stage-two, ...) | a recipe JSON file
                 (default toy = toy-train: from scratch, BN, 12 epochs)
  --norm         bn | gn | gn+ws (overrides the recipe)
  --epochs N     (overrides the recipe)
  --max-iterations N   stop after N iterations (the schedule is computed for that length)
  --mixed-precision off|bf16|fp16   autocast of the training forward pass (fp16: CUDA only)
  --out <dir>    output dir (default runs/<arch>); holds weights, detections_val.json, metrics.json,
                 checkpoints/ and the job file
  --resume       continue from the newest valid checkpoint in <out>/checkpoints
  --init <file>  backbone weights from 'smnas-trainer classify-train' (or --init-kind detector|torchvision)
  --init-kind    backbone | detector | torchvision (a torchvision ImageNet checkpoint, .pth or
                 .safetensors, e.g. resnet50-0676ba61.pth, imported into the backbone; BN only)
  --frozen-stages N   -1 none, 0 the stem, k the stem and stages 1..k (recipe.backbone.frozenStages)
  --norm-eval    every backbone BatchNorm in eval mode while training (recipe.backbone.normEval)
                 (mmdetection's pretrained-backbone settings: --frozen-stages 1 --norm-eval)
  --device       cpu | cuda:<i>  (default cpu)
  --nproc N      data-parallel: N processes of one training on this host (c10d: Gloo on the CPU,
                 NCCL on CUDA), process r on cuda:<i+r> or the CPU; the recipe's batchSize is per
                 process (global batch N x batchSize; scale the lr with recipe.optimizer.lrReferenceBatch).
                 A checkpoint resumes with any N of the same global batch. Default 1
  --threads N    intra-op threads (default: all cores)
  --seed N       (default 0)
  --json         print the trainer's final result message as JSON

  Ctrl-C / SIGTERM: the trainer writes a checkpoint and exits 5; run again with --resume.

examples:
  smnas data synth --out data/shapes --train 400 --val 100 --size 128
  smnas train --arch '128x128/resnet18/fpn(P1-P4,c=64)/rpn/2fc' --data data/shapes --norm gn+ws --epochs 10
  smnas train --arch '128x128/basicblock_16_1-21-21-21/fpn(P2-P5,c=32)/none/retina' --data data/shapes --recipe toy-final --json
`,
  async main(argv) {
    const cmd = 'smnas train';
    const flags = parseFlags(
      cmd,
      argv,
      {
        arch: { type: 'string' },
        data: { type: 'string' },
        recipe: { type: 'string' },
        norm: { type: 'string' },
        epochs: { type: 'string' },
        'max-iterations': { type: 'string' },
        'mixed-precision': { type: 'string' },
        out: { type: 'string' },
        resume: { type: 'boolean' },
        init: { type: 'string' },
        'init-kind': { type: 'string' },
        'frozen-stages': { type: 'string' },
        'norm-eval': { type: 'boolean' },
        device: { type: 'string' },
        threads: { type: 'string' },
        seed: { type: 'string' },
        nproc: { type: 'string' },
        json: { type: 'boolean' },
      },
      false,
    );
    const nproc = int(cmd, flags, 'nproc', 1)!;
    if (nproc < 1) throw new UserError(`${cmd}: --nproc must be >= 1`);
    const arch = requireStr(cmd, flags, 'arch');
    const data = requireStr(cmd, flags, 'data');
    const recipe = resolveDetectionRecipe(str(flags, 'recipe') ?? 'toy');
    const norm = str(flags, 'norm');
    if (norm !== undefined) {
      const n = NormSchema.safeParse(norm);
      if (!n.success) throw new UserError(`${cmd}: --norm must be bn, gn or gn+ws, got '${norm}'`);
      recipe.norm = n.data;
    }
    const epochs = int(cmd, flags, 'epochs');
    if (epochs !== undefined) {
      if (epochs < 1) throw new UserError(`${cmd}: --epochs must be >= 1`);
      recipe.epochs = epochs;
    }
    const maxIt = int(cmd, flags, 'max-iterations');
    if (maxIt !== undefined) recipe.maxIterations = maxIt;
    const mp = str(flags, 'mixed-precision');
    if (mp !== undefined) {
      const m = MixedPrecisionSchema.safeParse(mp);
      if (!m.success) throw new UserError(`${cmd}: --mixed-precision must be off, bf16 or fp16, got '${mp}'`);
      recipe.mixedPrecision = m.data;
    }
    const ik = InitKindSchema.safeParse(str(flags, 'init-kind') ?? 'backbone');
    if (!ik.success) throw new UserError(`${cmd}: --init-kind must be backbone, detector or torchvision`);
    const initKind = ik.data;
    const frozen = int(cmd, flags, 'frozen-stages');
    if (frozen !== undefined || bool(flags, 'norm-eval')) {
      if (frozen !== undefined && (frozen < -1 || frozen > 4)) throw new UserError(`${cmd}: --frozen-stages must be -1..4`);
      recipe.backbone = {
        frozenStages: frozen ?? recipe.backbone?.frozenStages ?? -1,
        normEval: bool(flags, 'norm-eval') || (recipe.backbone?.normEval ?? false),
      };
    }
    const numClasses = datasetClassCount(data);
    const outDir = path.resolve(str(flags, 'out') ?? path.join('runs', safeName(arch)));
    const job = buildDetectionJob({
      command: 'train',
      arch,
      recipe,
      numClasses,
      dataRoot: path.resolve(data),
      outDir,
      seed: int(cmd, flags, 'seed', 0),
      device: str(flags, 'device') ?? 'cpu',
      threads: int(cmd, flags, 'threads', 0),
      resume: bool(flags, 'resume'),
      initWeights: str(flags, 'init') ? path.resolve(str(flags, 'init')!) : undefined,
      initKind,
      // the compiled CLI this command runs from (bin/smnas would first rebuild dist/ and fail on any
      // unrelated TypeScript error)
      evaluator: [process.execPath, path.join(PROJECT_ROOT, 'dist', 'cli', 'smnas.js'), 'eval'],
      checkpoint: { everySeconds: 120, keep: 2 },
      ...(nproc > 1 ? { distributed: { worldSize: nproc } } : {}),
    });
    const outcome = await runTrainerJob(job, { label: 'train', quiet: false, nproc });
    const failure = failureOf(outcome);
    if (bool(flags, 'json') && outcome.result) printJson(outcome.result);
    if (failure) {
      process.stderr.write(`smnas train: ${failure.message}\n`);
      return failure.code;
    }
    if (!bool(flags, 'json')) {
      const r = outcome.result!;
      const stats = r.metrics?.stats;
      const lines = [`trained ${arch} in ${r.wallSeconds.toFixed(1)} s (${(r.imagesPerSec ?? 0).toFixed(1)} images/s)`, `out: ${outDir}`];
      if (stats) for (const k of COCO_STAT_NAMES) lines.push(`  ${k.padEnd(6)} ${stats[k].toFixed(4)}`);
      process.stdout.write(lines.join('\n') + '\n');
    }
    return 0;
  },
};
