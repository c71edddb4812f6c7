/** `smnas data synth|convert|check|summary`: generated data sets, converters and strict validation. */
import { bool, int, parseFlags, printJson, requireStr, str, type Command } from '../../common/cli';
import { UserError } from '../../common/errors';
import { log } from '../../common/log';
import { ProgressBar } from '../../common/progress';
import { writeSynthClassification } from '../../datasets/synth/classification';
import { validateSynthOptions, writeSynthDetection, type SynthFormat } from '../../datasets/synth/detection';

const HELP = `usage: smnas data <subcommand> [options]

subcommands:
  synth    generate a data set of drawn shapes (deterministic given --seed)
             --kind detection|classification   (default detection)
             --format coco|voc|bdd             (detection only; default coco)
             --out <dir>                       (required)
             --train N --val N                 detection: images per split (default 400 / 100)
                                               classification: images per class per split (default 50 / 10)
             --size S                          square image side in pixels (default 128; classification 64)
             --classes K                       detection: 1-30 (bdd: 1-10), default 4; classification: default 10
             --seed S                          (default 0)
             --json                            print a summary object on stdout
           layouts written:
             coco: <out>/annotations/instances_{train,val}.json, <out>/{train,val}/*.png
             voc:  <out>/VOCdevkit/VOC2007/{Annotations/*.xml, JPEGImages/*.png, ImageSets/Main/{train,val,trainval}.txt}
             bdd:  <out>/labels/det_20/det_{train,val}.json, <out>/images/100k/{train,val}/*.png
             classification: <out>/{train,val}/<class>/*.png

examples:
  smnas data synth --out data/toy --train 400 --val 100 --size 128 --classes 4 --seed 1
  smnas data synth --kind classification --out data/toy-cls --classes 10
  smnas data synth --format voc --out data/toy-voc
`;

async function synth(argv: string[]): Promise<number> {
  const cmd = 'smnas data synth';
  const flags = parseFlags(cmd, argv, {
    kind: { type: 'string' },
    format: { type: 'string' },
    out: { type: 'string' },
    train: { type: 'string' },
    val: { type: 'string' },
    size: { type: 'string' },
    classes: { type: 'string' },
    seed: { type: 'string' },
    json: { type: 'boolean' },
  }, false);
  const kind = str(flags, 'kind') ?? 'detection';
  const out = requireStr(cmd, flags, 'out');
  const seed = int(cmd, flags, 'seed', 0)!;
  const started = Date.now();
  if (kind === 'detection') {
    const format = (str(flags, 'format') ?? 'coco') as SynthFormat;
    if (!['coco', 'voc', 'bdd'].includes(format)) throw new UserError(`${cmd}: --format must be coco, voc or bdd, got '${format}'`);
    const opts = {
      out,
      format,
      train: int(cmd, flags, 'train', 400)!,
      val: int(cmd, flags, 'val', 100)!,
      size: int(cmd, flags, 'size', 128)!,
      classes: int(cmd, flags, 'classes', 4)!,
      seed,
    };
    const err = validateSynthOptions(opts);
    if (err) throw new UserError(`${cmd}: ${err}`);
    const bar = new ProgressBar('synth', opts.train + opts.val);
    const r = writeSynthDetection({ ...opts, onProgress: (d) => bar.update(d) });
    bar.done();
    const summary = { kind, format, out, images: r.images, objects: r.objects, classes: opts.classes, size: opts.size, seed, seconds: (Date.now() - started) / 1000 };
    log.info(summary, 'generated detection data set');
    if (bool(flags, 'json')) printJson(summary);
    else process.stdout.write(`${out}: ${r.images} images, ${r.objects} objects, ${opts.classes} classes (${format})\n`);
    return 0;
  }
  if (kind === 'classification') {
    if (str(flags, 'format') && str(flags, 'format') !== 'imagenet') throw new UserError(`${cmd}: --format does not apply to --kind classification (class folders)`);
    const opts = {
      out,
      train: int(cmd, flags, 'train', 50)!,
      val: int(cmd, flags, 'val', 10)!,
      size: int(cmd, flags, 'size', 64)!,
      classes: int(cmd, flags, 'classes', 10)!,
      seed,
    };
    if (opts.classes < 2 || opts.classes > 30) throw new UserError(`${cmd}: --classes must be between 2 and 30 for --kind classification`);
    if (opts.size < 16 || opts.size > 4096) throw new UserError(`${cmd}: --size must be between 16 and 4096`);
    if (opts.train < 0 || opts.val < 0) throw new UserError(`${cmd}: --train and --val must be >= 0`);
    const bar = new ProgressBar('synth', opts.classes * (opts.train + opts.val));
    const r = writeSynthClassification({ ...opts, onProgress: (d) => bar.update(d) });
    bar.done();
    const summary = { kind, out, images: r.images, classes: opts.classes, size: opts.size, seed, seconds: (Date.now() - started) / 1000 };
    log.info(summary, 'generated classification data set');
    if (bool(flags, 'json')) printJson(summary);
    else process.stdout.write(`${out}: ${r.images} images in ${opts.classes} class folders\n`);
    return 0;
  }
  throw new UserError(`${cmd}: --kind must be detection or classification, got '${kind}'`);
}

const SUBCOMMANDS: Record<string, (argv: string[]) => Promise<number>> = { synth };

export const command: Command = {
  summary: 'generate, convert and check data sets (COCO, VOC, BDD100K, class folders)',
  help: HELP,
  async main(argv) {
    const [sub, ...rest] = argv;
    const fn = sub ? SUBCOMMANDS[sub] : undefined;
    if (!fn) throw new UserError(`smnas data: unknown subcommand '${sub ?? ''}' (expected ${Object.keys(SUBCOMMANDS).join(', ')}; see 'smnas data --help')`);
    return fn(rest);
  },
};
