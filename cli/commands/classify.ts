/**
 * `smnas classify`: run a torchvision ImageNet checkpoint imported into the trainer's backbone on a
 * folder of images and print each image's top-k classes and logits (the import's check against
 * torchvision in Python; native/README.md "Backbone weights").
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bool, int, parseFlags, printJson, requireStr, str, type Command } from '../../common/cli';
import { UserError } from '../../common/errors';
import { buildClassifyJob } from '../../protocol/job-builder';
import { failureOf, runTrainerJob } from '../trainer-run';

export const command: Command = {
  summary: 'classify images with a torchvision ImageNet checkpoint imported into the trainer (top-k logits)',
  help: `usage: smnas classify --arch <backbone> --weights <file.pth|file.safetensors> --images <dir> [options]

  --arch         resnet18 | resnet34 | resnet50 | resnet101 | resnext50_32x4d | resnext101_32x4d |
                 mobilenet_v2 (or any BN backbone notation whose checkpoint uses torchvision's naming)
  --weights      torchvision state_dict: torch.save's .pth (e.g. resnet50-0676ba61.pth) or .safetensors
                 with the same names; unknown, missing or mis-shaped keys are named and fail (exit 2)
  --images       folder of .png/.jpg/.jpeg/.bmp images (all of them, sorted by name)
  --top K        classes per image (default 5)
  --classes N    outputs of the fc layer (default 1000)
  --device       cpu | cuda:<i> (default cpu)
  --threads N    intra-op threads (default: all cores)
  --json         print the trainer's result (predictions: [{file, classes, logits}]) as JSON

  Preprocessing is torchvision's ImageNet evaluation on the decoded uint8 tensor:
  Resize(256, antialias=True), CenterCrop(224), ConvertImageDtype(float), Normalize(ImageNet mean, std).

example:
  smnas classify --arch resnet50 --weights resnet50-0676ba61.pth --images photos/ --json
`,
  async main(argv) {
    const cmd = 'smnas classify';
    const flags = parseFlags(
      cmd,
      argv,
      {
        arch: { type: 'string' },
        weights: { type: 'string' },
        images: { type: 'string' },
        top: { type: 'string' },
        classes: { type: 'string' },
        device: { type: 'string' },
        threads: { type: 'string' },
        json: { type: 'boolean' },
      },
      false,
    );
    const weights = path.resolve(requireStr(cmd, flags, 'weights'));
    const images = path.resolve(requireStr(cmd, flags, 'images'));
    if (!fs.existsSync(weights)) throw new UserError(`${cmd}: --weights ${weights} does not exist`);
    if (!fs.statSync(images, { throwIfNoEntry: false })?.isDirectory()) throw new UserError(`${cmd}: --images ${images} is not a directory`);
    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-classify-'));
    try {
      const job = buildClassifyJob({
        backbone: requireStr(cmd, flags, 'arch'),
        weights,
        images,
        numClasses: int(cmd, flags, 'classes', 1000),
        topK: int(cmd, flags, 'top', 5),
        outDir,
        device: str(flags, 'device') ?? 'cpu',
        threads: int(cmd, flags, 'threads', 0),
      });
      const outcome = await runTrainerJob(job, { label: 'classify', quiet: true });
      const failure = failureOf(outcome);
      if (failure) {
        process.stderr.write(`${cmd}: ${failure.message}\n`);
        return failure.code;
      }
      const preds = outcome.result?.predictions ?? [];
      if (bool(flags, 'json')) printJson({ arch: job.arch, weights, predictions: preds });
      else for (const p of preds) process.stdout.write(`${p.file}: ${p.classes.map((c, i) => `${c} (${p.logits[i].toFixed(4)})`).join(', ')}\n`);
      return 0;
    } finally {
      fs.rmSync(outDir, { recursive: true, force: true });
    }
  },
};
