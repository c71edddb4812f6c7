/** `smnas data synth|convert|check|summary`: generated data sets, converters and strict validation. */
import { bool, int, parseFlags, printJson, requireStr, str, type Command } from '../../common/cli';
import { UserError } from '../../common/errors';
import { log } from '../../common/log';
import { ProgressBar } from '../../common/progress';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { convertBdd } from '../../datasets/bdd';
import { checkDataset, summarizeDataset } from '../../datasets/check';
import { DatasetError } from '../../datasets/coco';
import { listClassFolders } from '../../datasets/imagenet';
import { formatProblem } from '../../datasets/problems';
import { writeSynthClassification } from '../../datasets/synth/classification';
import { convertVoc } from '../../datasets/voc';
import { validateSynthOptions, writeSynthDetection, type SynthFormat } from '../../datasets/synth/detection';

const HELP = `usage: smnas data <subcommand> [options]

subcommands:
  synth    generate a data set of drawn shapes (deterministic given --seed)
             --kind detection|classification   (default detection)
             --format coco|voc|bdd             (detection only; default coco)
             --out <dir>                       (required)
             --train N --val N                 detection: images per split (default 400 / 100)
                                               classification: images per class per split (default 50 / 10)
             --size S | WxH                    square image side in pixels (default 128; classification 64);
                                               detection also takes width x height, e.g. 800x600
             --classes K                       detection: 1-30 (bdd: 1-10), default 4; classification: default 10
             --seed S                          (default 0)
             --json                            print a summary object on stdout
           layouts written:
             coco: <out>/annotations/instances_{train,val}.json, <out>/{train,val}/*.png
             voc:  <out>/VOCdevkit/VOC{2007,2012}/{Annotations/*.xml, JPEGImages/*.png, ImageSets/Main/{train,val,trainval}.txt},
                   VOC2007/ImageSets/Main/test.txt (the paper's protocol: 07+12 trainval = train scenes, 07 test = val scenes)
             bdd:  <out>/labels/det_20/det_{train,val}.json, <out>/images/100k/{train,val}/*.png
             classification: <out>/{train,val}/<class>/*.png

  convert  convert a source data set into the canonical COCO form
             --from voc|bdd --input <path> --split <name> --out <dir>
             [--year 2007,2012]     voc: which VOC<year> folders of a VOCdevkit (default: all found)
             [--classes a,b,...]    voc: fixed class list (objects of other classes are skipped)
             [--images <dir>]       bdd: images folder (default <root>/images/100k/<split>)
             [--copy]               copy images instead of symlinking them
             [--json]
           writes <out>/annotations/instances_<split>.json and <out>/<split>/<images>
  check    validate a canonical data set dir or one instances file and report every problem
             <dataset dir | instances.json> [--images <dir>] [--skip-images] [--allow-root <dir>]... [--json]
           images are read only from inside the split's images folder: a file_name with '..' or an
           absolute path, or a symlink leading out (image_outside_root), is an error and is not read;
           --allow-root <dir> (repeatable) trusts a folder too, e.g. the source a converted set links to
           exit 0: usable (maybe warnings); 1: errors that make training/evaluation wrong
  summary  classes and counts: <dataset dir> [--json]; a dir of class folders (train/<class>/...) is
           listed as an ImageNet-style classification set

examples:
  smnas data synth --out data/toy --train 400 --val 100 --size 128 --classes 4 --seed 1
  smnas data synth --kind classification --out data/toy-cls --classes 10
  smnas data synth --format voc --out data/toy-voc
  smnas data convert --from voc --input data/toy-voc/VOCdevkit --split train --out data/toy-voc-coco
  smnas data convert --from bdd --input /data/bdd100k --split val --out data/bdd-coco
  smnas data check data/toy --json
`;

/** `--size S` (square, height undefined) or `--size WxH` of a detection data set; default 128. */
function detectionSize(cmd: string, v: string | undefined): { width: number; height?: number } {
  if (v === undefined) return { width: 128 };
  const m = /^(\d+)(?:x(\d+))?$/.exec(v);
  if (!m) throw new UserError(`${cmd}: --size must be an integer or WxH (e.g. 800x600), got '${v}'`);
  return { width: Number(m[1]), height: m[2] === undefined ? undefined : Number(m[2]) };
}

async function synth(argv: string[]): Promise<number> {
  const cmd = 'smnas data synth';
  const flags = parseFlags(
    cmd,
    argv,
    {
      kind: { type: 'string' },
      format: { type: 'string' },
      out: { type: 'string' },
      train: { type: 'string' },
      val: { type: 'string' },
      size: { type: 'string' },
      classes: { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean' },
    },
    false,
  );
  const kind = str(flags, 'kind') ?? 'detection';
  const out = requireStr(cmd, flags, 'out');
  const seed = int(cmd, flags, 'seed', 0)!;
  const started = Date.now();
  if (kind === 'detection') {
    const format = (str(flags, 'format') ?? 'coco') as SynthFormat;
    if (!['coco', 'voc', 'bdd'].includes(format)) throw new UserError(`${cmd}: --format must be coco, voc or bdd, got '${format}'`);
    const { width, height } = detectionSize(cmd, str(flags, 'size'));
    const opts = {
      out,
      format,
      train: int(cmd, flags, 'train', 400)!,
      val: int(cmd, flags, 'val', 100)!,
      size: width,
      height,
      classes: int(cmd, flags, 'classes', 4)!,
      seed,
    };
    const err = validateSynthOptions(opts);
    if (err) throw new UserError(`${cmd}: ${err}`);
    const bar = new ProgressBar('synth', opts.train + opts.val);
    const r = writeSynthDetection({ ...opts, onProgress: (d) => bar.update(d) });
    bar.done();
    const size = opts.height === undefined ? opts.size : `${opts.size}x${opts.height}`;
    const summary = { kind, format, out, images: r.images, objects: r.objects, classes: opts.classes, size, seed, seconds: (Date.now() - started) / 1000 };
    log.info(summary, 'generated detection data set');
    if (bool(flags, 'json')) printJson(summary);
    else process.stdout.write(`${out}: ${r.images} images, ${r.objects} objects, ${opts.classes} classes (${format})\n`);
    return 0;
  }
  if (kind === 'classification') {
    if (str(flags, 'format') && str(flags, 'format') !== 'imagenet')
      throw new UserError(`${cmd}: --format does not apply to --kind classification (class folders)`);
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

function rethrowDatasetError(e: unknown): never {
  if (e instanceof DatasetError) throw new UserError(e.message);
  throw e;
}

async function convert(argv: string[]): Promise<number> {
  const cmd = 'smnas data convert';
  const flags = parseFlags(
    cmd,
    argv,
    {
      from: { type: 'string' },
      input: { type: 'string' },
      split: { type: 'string' },
      out: { type: 'string' },
      year: { type: 'string' },
      classes: { type: 'string' },
      images: { type: 'string' },
      copy: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    false,
  );
  const from = requireStr(cmd, flags, 'from');
  const input = requireStr(cmd, flags, 'input');
  const split = requireStr(cmd, flags, 'split');
  const out = requireStr(cmd, flags, 'out');
  if (!/^[\w.-]+$/.test(split)) throw new UserError(`${cmd}: --split must be a plain name like train or val, got '${split}'`);
  const bar = new ProgressBar(`convert ${split}`, 0);
  let r;
  try {
    if (from === 'voc') {
      r = convertVoc({
        input,
        split,
        out,
        copy: bool(flags, 'copy'),
        years: str(flags, 'year')
          ?.split(',')
          .map((s) => s.trim()),
        classes: str(flags, 'classes')
          ?.split(',')
          .map((s) => s.trim())
          .filter(Boolean),
        progress: (d, t) => bar.update(d, '', t),
      });
    } else if (from === 'bdd') {
      if (str(flags, 'year') || str(flags, 'classes')) throw new UserError(`${cmd}: --year and --classes apply to --from voc only`);
      r = await convertBdd({ input, split, out, images: str(flags, 'images'), copy: bool(flags, 'copy'), progress: (d) => bar.update(d, '', d + 1) });
    } else throw new UserError(`${cmd}: --from must be voc or bdd, got '${from}'`);
  } catch (e) {
    rethrowDatasetError(e);
  }
  bar.done();
  log.info(r, 'converted');
  if (bool(flags, 'json')) printJson(r);
  else {
    const skipped = Object.entries(r.skipped)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ');
    process.stdout.write(
      `${out}: split ${split}: ${r.images} images, ${r.annotations} boxes (${r.difficult} ${from === 'voc' ? 'difficult' : 'ignore regions'} -> iscrowd), ${r.categories.length} classes${skipped ? `; skipped ${skipped}` : ''}\n`,
    );
    // linked images lead into the source tree, which data check reads only when told to trust it
    const src = str(flags, 'images') ?? input;
    if (!bool(flags, 'copy')) process.stdout.write(`images linked into ${src}: check with 'smnas data check ${out} --allow-root ${src}'\n`);
  }
  return 0;
}

async function check(argv: string[]): Promise<number> {
  const cmd = 'smnas data check';
  const flags = parseFlags(cmd, argv, {
    images: { type: 'string' },
    'skip-images': { type: 'boolean' },
    'allow-root': { type: 'string', multiple: true },
    json: { type: 'boolean' },
  });
  const target = flags.positionals[0];
  if (!target || flags.positionals.length > 1) throw new UserError(`${cmd}: expected one <dataset dir | instances.json> (see '${cmd} --help')`);
  const bars = new Map<string, ProgressBar>();
  let report;
  try {
    report = await checkDataset(target, {
      imagesDir: str(flags, 'images'),
      skipImages: bool(flags, 'skip-images'),
      allowedRoots: (flags.values['allow-root'] as string[] | undefined) ?? [],
      progress: (phase, d, t) => {
        if (!bars.has(phase)) bars.set(phase, new ProgressBar(phase, t));
        bars.get(phase)!.update(d, '', t);
      },
    });
  } catch (e) {
    rethrowDatasetError(e);
  }
  if (bool(flags, 'json')) printJson(report);
  else {
    for (const s of report.splits) {
      process.stdout.write(
        `${s.split}: ${s.images} images (${s.imagesWithoutAnnotations} without boxes), ${s.annotations} boxes (${s.crowd} crowd/difficult), ${s.categories} classes  [${s.annotationsFile}]\n`,
      );
    }
    for (const p of report.problems) process.stdout.write(`${p.severity}: ${formatProblem(p)}\n`);
    const listed = report.problems.length;
    const total = report.errors + report.warnings;
    if (total > listed) process.stdout.write(`(${total - listed} more problems not listed; counts: ${JSON.stringify(report.counts)})\n`);
    process.stdout.write(`${report.ok ? 'OK' : 'FAILED'}: ${report.errors} errors, ${report.warnings} warnings\n`);
  }
  return report.ok ? 0 : 1;
}

async function summary(argv: string[]): Promise<number> {
  const cmd = 'smnas data summary';
  const flags = parseFlags(cmd, argv, { json: { type: 'boolean' } });
  const dir = flags.positionals[0];
  if (!dir) throw new UserError(`${cmd}: expected a <dataset dir>`);
  try {
    if (!fs.existsSync(path.join(dir, 'annotations')) && fs.existsSync(path.join(dir, 'train'))) {
      const splits = fs
        .readdirSync(dir)
        .filter((s) => fs.statSync(path.join(dir, s)).isDirectory())
        .sort();
      const listed = splits.map((s) => listClassFolders(dir, s));
      const r = {
        dir,
        kind: 'classification',
        numClasses: listed[0].classes.length,
        classes: listed[0].classes,
        splits: Object.fromEntries(listed.map((l) => [l.split, { images: l.images.length, perClass: l.counts }])),
      };
      if (bool(flags, 'json')) printJson(r);
      else process.stdout.write(`${dir}: ${r.numClasses} classes; ${listed.map((l) => `${l.split} ${l.images.length} images`).join(', ')}\n`);
      return 0;
    }
    const r = await summarizeDataset(dir);
    if (bool(flags, 'json')) printJson({ ...r, kind: 'detection' });
    else {
      process.stdout.write(`${dir}: ${r.numClasses} classes (${r.categories.map((c) => c.name).join(', ')})\n`);
      for (const [s, v] of Object.entries(r.splits)) process.stdout.write(`  ${s}: ${v.images} images, ${v.annotations} boxes\n`);
    }
  } catch (e) {
    rethrowDatasetError(e);
  }
  return 0;
}

const SUBCOMMANDS: Record<string, (argv: string[]) => Promise<number>> = { synth, convert, check, summary };

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
