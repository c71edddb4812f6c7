/** `smnas detect`: run an exported (or exportable) detector on images with onnxruntime (docs/deploy.md). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bool, parseFlags, printJson, requireStr, str, type Command } from '../../common/cli';
import { UserError } from '../../common/errors';
import { ProgressBar } from '../../common/progress';
import { drawDetections, exportModel, runOnnxDetector } from '../../activities/onnx';

const IMAGE_EXT = /\.(png|jpe?g)$/i;

/** image files of the arguments: files as given, folders' .png/.jpg/.jpeg files sorted by name */
export function collectImages(args: string[]): { files: string[]; missing: string[]; folders: number } {
  const files: string[] = [];
  const missing: string[] = [];
  let folders = 0;
  for (const a of args) {
    let st: fs.Stats;
    try {
      st = fs.statSync(a);
    } catch {
      missing.push(a);
      continue;
    }
    if (st.isDirectory()) {
      folders++;
      for (const f of fs.readdirSync(a).sort()) if (IMAGE_EXT.test(f)) files.push(path.join(a, f));
    } else files.push(a);
  }
  return { files, missing, folders };
}

export const command: Command = {
  summary: 'detect objects in images with an ONNX model (or a trained weights folder) through onnxruntime',
  help: `usage: smnas detect --model <model.onnx|weights dir> <images or folders...> [--out dir] [--score 0.5] [--json]

  --model     an ONNX model written by smnas export (with its .json sidecar), or a detector
              training's output folder (exported to a temporary dynamic-size model first)
  --out DIR   write DIR/detections.json (COCO results, with an images list) and DIR/<image>.png,
              each image with its boxes, labels and scores drawn
  --score S   drop detections scoring below S (default 0.5; the model keeps those above the recipe's
              test threshold)
  --threads N onnxruntime intra-op threads (default: onnxruntime's choice)
  --json      print the COCO-form detections as JSON on stdout

Folders are searched for .png/.jpg/.jpeg files (a progress bar on stderr). Unreadable or missing
images are reported by name and skipped; the exit code is then 1 (after the rest are processed).
`,
  async main(argv) {
    const cmd = 'smnas detect';
    const flags = parseFlags(cmd, argv, {
      model: { type: 'string' },
      out: { type: 'string' },
      score: { type: 'string' },
      threads: { type: 'string' },
      json: { type: 'boolean' },
    });
    const modelArg = path.resolve(requireStr(cmd, flags, 'model'));
    const score = str(flags, 'score') === undefined ? 0.5 : Number(str(flags, 'score'));
    if (!Number.isFinite(score) || score < 0 || score > 1) throw new UserError(`${cmd}: --score must be a number in [0, 1], got '${str(flags, 'score')}'`);
    const threads = str(flags, 'threads') === undefined ? undefined : Number(str(flags, 'threads'));
    if (threads !== undefined && !(Number.isInteger(threads) && threads > 0)) throw new UserError(`${cmd}: --threads must be a positive integer`);
    if (flags.positionals.length === 0) throw new UserError(`${cmd}: no images given (files or folders)`);
    const { files, missing, folders } = collectImages(flags.positionals);
    for (const m of missing) process.stderr.write(`${cmd}: ${m}: no such file or folder, skipped\n`);
    if (files.length === 0) throw new UserError(`${cmd}: no .png/.jpg/.jpeg images in ${flags.positionals.join(', ')}`);

    let model = modelArg;
    let tmp: string | undefined;
    if (!fs.existsSync(modelArg)) throw new UserError(`${cmd}: --model ${modelArg}: no such file or folder`);
    if (fs.statSync(modelArg).isDirectory()) {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-detect-'));
      model = path.join(tmp, 'model.onnx');
      process.stderr.write(`exporting ${modelArg} to a temporary ONNX model...\n`);
      await exportModel({ weightsDir: modelArg, out: model, inputSize: 'dynamic', workDir: path.join(tmp, 'work') });
    }
    try {
      const bar = folders > 0 && files.length > 1 ? new ProgressBar('detect', files.length) : undefined;
      const run = await runOnnxDetector(model, files, { scoreThreshold: score, threads, onImage: (done) => bar?.update(done) });
      bar?.done();
      for (const f of run.failures) process.stderr.write(`${cmd}: ${f.file}: ${f.error}, skipped\n`);
      const coco = run.images.flatMap((im) => im.detections);
      const images = run.images.map((im) => ({ id: im.imageId, file_name: im.file, width: im.width, height: im.height, ms: im.ms }));
      const outDir = str(flags, 'out');
      if (outDir) {
        fs.mkdirSync(outDir, { recursive: true });
        fs.writeFileSync(path.join(outDir, 'detections.json'), JSON.stringify({ images, detections: coco }, null, 1) + '\n');
        const used = new Set<string>();
        for (const im of run.images) {
          let name = path.basename(im.file).replace(IMAGE_EXT, '');
          while (used.has(name)) name += '_';
          used.add(name);
          fs.writeFileSync(path.join(outDir, `${name}.png`), drawDetections(im.file, im.width, im.height, im.detections));
        }
      }
      if (bool(flags, 'json')) printJson({ images, detections: coco });
      else {
        for (const im of run.images) {
          const names = im.detections.map((d) => `${d.name ?? d.label} ${d.score.toFixed(2)}`).join(', ');
          process.stdout.write(`${im.file}: ${im.detections.length} detection(s)${names ? `: ${names}` : ''} (${im.ms.toFixed(1)} ms)\n`);
        }
        if (outDir) process.stdout.write(`wrote ${path.join(outDir, 'detections.json')} and ${run.images.length} annotated PNG(s)\n`);
      }
      return run.failures.length + missing.length > 0 ? 1 : 0;
    } finally {
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    }
  },
};
