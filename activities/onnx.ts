/**
 * Deployable models (docs/deploy.md): `exportModel` runs the native trainer's `export` command on a
 * trained detector (its weights and the job that trained it) and writes the ONNX model with a
 * sidecar `<model>.json` (architecture, input size, normalisation, categories); `runOnnxDetector`
 * runs such a model with onnxruntime-node on image files, preprocessed as the trainer's evaluation
 * does (bilinear resize to fit the layout's input size, mean/std normalisation, zero padding to a
 * multiple of 32), and returns COCO-form detections in the original image frame and the wall time
 * of each image's inference in ms (the input of an `onnxruntime` latency backend).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { UserError } from '../common/errors';
import { readImageHeader } from '../datasets/image-header';
import { buildDetectionJob } from '../protocol/job-builder';
import { DetectionJobSchema, type DetectionJob } from '../protocol/job';
import { TRAINER_BIN } from '../common/paths';
import type { ResultMessage, TrainerMessage } from '../protocol/trainer-messages';
import type { ActivityDeps } from './index';
import { runTrainerProcess } from './trainer-process';

/** evaluation's normalisation (native/src/detector.cpp kMean / kStd), RGB */
export const PIXEL_MEAN = [123.675, 116.28, 103.53] as const;
export const PIXEL_STD = [58.395, 57.12, 57.375] as const;

export const OnnxSidecarSchema = z.object({
  arch: z.string(),
  /** 'HxW' (fixed input tensor) or 'dynamic' */
  input: z.string(),
  /** the layout's input size: images are resized to fit it, as in evaluation */
  layoutWidth: z.number().int().positive(),
  layoutHeight: z.number().int().positive(),
  numClasses: z.number().int().positive(),
  /** label i of the model is categories[i] (COCO category id and name), when the dataset was readable */
  categories: z.array(z.object({ id: z.number().int(), name: z.string() })).optional(),
  mean: z.array(z.number()).length(3),
  std: z.array(z.number()).length(3),
  opset: z.number().int(),
  scoreThreshold: z.number(),
  weights: z.string(),
});
export type OnnxSidecar = z.infer<typeof OnnxSidecarSchema>;

export function sidecarPath(model: string): string {
  return `${model}.json`;
}

/** The training job of a weights directory (`smnas train --out DIR` or a campaign's run folder); a weights file names its folder. */
export function trainedJobOf(weightsArg: string): { job: DetectionJob; weights: string } {
  const weightsDir = fs.existsSync(weightsArg) && fs.statSync(weightsArg).isFile() ? path.dirname(weightsArg) : weightsArg;
  if (!fs.existsSync(weightsDir)) throw new UserError(`${weightsArg}: no such folder`);
  const weights = path.join(weightsDir, 'weights');
  if (!fs.existsSync(weights)) throw new UserError(`${weightsDir}: no 'weights' file (the output folder of a detector training)`);
  // `smnas train` writes job-train.json; a campaign's run folder job-train-attempt<N>.json per attempt (the last one wins)
  const attempts = fs
    .readdirSync(weightsDir)
    .map((f) => /^job-train-attempt(\d+)\.json$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(b[1]) - Number(a[1]))
    .map((m) => m[0]);
  const jobFile = ['job-train.json', ...attempts].map((f) => path.join(weightsDir, f)).find((f) => fs.existsSync(f));
  if (!jobFile) throw new UserError(`${weightsDir}: no job-train.json beside the weights (the architecture and recipe of the model)`);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(jobFile, 'utf8'));
  } catch (e) {
    throw new UserError(`${jobFile}: not valid JSON (${(e as Error).message})`);
  }
  const r = DetectionJobSchema.safeParse(raw);
  if (!r.success) throw new UserError(`${jobFile}: not a detection job (${r.error.issues[0]?.message ?? 'invalid'})`);
  return { job: r.data, weights };
}

function categoriesOf(job: DetectionJob): OnnxSidecar['categories'] {
  if (!job.data) return undefined;
  for (const split of [job.data.valSplit, job.data.trainSplit]) {
    const file = path.join(job.data.root, 'annotations', `instances_${split}.json`);
    try {
      const coco = JSON.parse(fs.readFileSync(file, 'utf8')) as { categories?: { id: number; name: string }[] };
      if (coco.categories?.length === job.numClasses) {
        return [...coco.categories].sort((a, b) => a.id - b.id).map((c) => ({ id: c.id, name: c.name }));
      }
    } catch {
      // the dataset may be gone; labels then stay class indices
    }
  }
  return undefined;
}

export interface ExportOptions {
  /** folder with `weights` and `job-train.json` */
  weightsDir: string;
  out: string;
  /** [height, width] (multiples of 32) or 'dynamic'; default: the layout's size rounded up to 32 */
  inputSize?: [number, number] | 'dynamic';
  opset?: number;
  /** with the training data reachable: the first n validation images and libtorch detections under workDir/parity */
  parityImages?: number;
  workDir?: string;
  device?: string;
  signal?: AbortSignal;
  /** the trainer binary (default: native/build/smnas-trainer) */
  trainerBin?: string;
}

export interface ExportResult {
  model: string;
  sidecar: string;
  input: string;
  nodes: number;
  bytes: number;
  parity?: string;
}

const ceil32 = (x: number) => Math.ceil(x / 32) * 32;

/** Exports a trained detector to ONNX with the native trainer (`smnas-trainer export`). */
export async function exportModel(o: ExportOptions): Promise<ExportResult> {
  const { job: trained, weights } = trainedJobOf(o.weightsDir);
  const out = path.resolve(o.out);
  const inputSize = o.inputSize ?? [ceil32(trained.layout.input.height), ceil32(trained.layout.input.width)];
  const workDir = o.workDir ?? fs.mkdtempSync(path.join(path.dirname(out), '.smnas-export-'));
  const job = buildDetectionJob({
    command: 'export',
    arch: trained.arch,
    layout: trained.layout,
    recipe: trained.recipe,
    numClasses: trained.numClasses,
    dataRoot: o.parityImages && trained.data && fs.existsSync(trained.data.root) ? trained.data.root : undefined,
    valSplit: trained.data?.valSplit,
    trainSplit: trained.data?.trainSplit,
    outDir: workDir,
    device: o.device ?? 'cpu',
    seed: trained.seed,
    initWeights: path.resolve(weights),
    initKind: 'detector',
    export: { out, inputSize, opset: o.opset ?? 17, parityImages: o.parityImages ?? 0 },
  });
  const bin = o.trainerBin ?? TRAINER_BIN;
  if (!fs.existsSync(bin)) throw new UserError(`the native trainer is not built (${bin} missing): run scripts/setup.sh`);
  fs.mkdirSync(workDir, { recursive: true });
  const jobFile = path.join(workDir, 'job-export.json');
  fs.writeFileSync(jobFile, JSON.stringify(job, null, 2) + '\n');
  let result: ResultMessage | undefined;
  let error: Extract<TrainerMessage, { type: 'error' }> | undefined;
  const exit = await runTrainerProcess({
    bin,
    command: 'export',
    jobFile,
    signal: o.signal,
    onMessage: (m) => {
      if (m.type === 'result') result = m;
      else if (m.type === 'error') error = m;
    },
  });
  if (exit.code !== 0 || !result?.export) {
    const why = error
      ? `${error.kind}${error.field ? ` (${error.field})` : ''}: ${error.message}`
      : `trainer exit ${exit.code ?? exit.signal}: ${exit.stderrTail.trim().split('\n').pop() ?? ''}`;
    throw new UserError(`export of ${o.weightsDir}: ${why}`);
  }
  const e = result.export;
  const sidecar: OnnxSidecar = {
    arch: trained.arch,
    input: e.input,
    layoutWidth: trained.layout.input.width,
    layoutHeight: trained.layout.input.height,
    numClasses: trained.numClasses,
    categories: categoriesOf(trained),
    mean: [...PIXEL_MEAN],
    std: [...PIXEL_STD],
    opset: e.opset,
    scoreThreshold: trained.recipe.test.scoreThreshold,
    weights: path.resolve(weights),
  };
  fs.writeFileSync(sidecarPath(out), JSON.stringify(sidecar, null, 2) + '\n');
  if (!o.workDir && !e.parity) fs.rmSync(workDir, { recursive: true, force: true });
  return { model: out, sidecar: sidecarPath(out), input: e.input, nodes: e.nodes, bytes: e.bytes, parity: e.parity };
}

/** Detections of one image in the network input frame (x1, y1, x2, y2), as the model outputs them. */
export interface RawDetections {
  boxes: Float32Array;
  scores: Float32Array;
  labels: BigInt64Array;
}

/** An onnxruntime session on an exported detector. */
export class OnnxDetector {
  private constructor(
    readonly session: ort.InferenceSession,
    readonly info: OnnxSidecar,
  ) {}

  static async open(model: string, opts: { threads?: number } = {}): Promise<OnnxDetector> {
    if (!fs.existsSync(model)) throw new UserError(`${model}: no such model file`);
    const side = sidecarPath(model);
    if (!fs.existsSync(side)) throw new UserError(`${model}: its sidecar ${path.basename(side)} is missing (written by smnas export)`);
    const info = OnnxSidecarSchema.safeParse(JSON.parse(fs.readFileSync(side, 'utf8')));
    if (!info.success) throw new UserError(`${side}: ${info.error.issues[0]?.message ?? 'invalid'}`);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(model, {
        executionProviders: ['cpu'],
        ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
      });
    } catch (e) {
      throw new UserError(`${model}: onnxruntime cannot load it: ${(e as Error).message}`);
    }
    return new OnnxDetector(session, info.data);
  }

  /** runs the model on a prepared input [1,3,H,W] (normalised, padded) with content size (w, h) */
  async run(input: Float32Array, dims: readonly number[], width: number, height: number): Promise<RawDetections> {
    const out = await this.session.run({
      image: new ort.Tensor('float32', input, dims),
      image_size: new ort.Tensor('float32', Float32Array.from([width, height]), [2]),
    });
    return { boxes: out.boxes.data as Float32Array, scores: out.scores.data as Float32Array, labels: out.labels.data as BigInt64Array };
  }

  /** the input tensor size for an image resized to (w, h): the fixed size, or evaluation's padding */
  paddedSize(w: number, h: number): [number, number] {
    const m = /^(\d+)x(\d+)$/.exec(this.info.input);
    if (m) return [Number(m[2]), Number(m[1])];
    return [Math.max(this.info.layoutWidth, ceil32(w)), Math.max(this.info.layoutHeight, ceil32(h))];
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/** RGB pixels of a PNG or JPEG file (decoded by resvg); a string says why it cannot be read. */
export function decodeImage(file: string): { width: number; height: number; rgb: Uint8Array } | string {
  const header = readImageHeader(file);
  if (typeof header === 'string') return header;
  const mime = header.format === 'png' ? 'image/png' : 'image/jpeg';
  const { width, height } = header;
  const data = fs.readFileSync(file).toString('base64');
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${width}" height="${height}">` +
    `<image width="${width}" height="${height}" xlink:href="data:${mime};base64,${data}"/></svg>`;
  let rgba: Uint8Array;
  try {
    const r = new Resvg(svg, { fitTo: { mode: 'original' } }).render();
    if (r.width !== width || r.height !== height) return `decoded ${r.width}x${r.height}, header says ${width}x${height}`;
    rgba = r.pixels;
  } catch (e) {
    return `cannot decode: ${(e as Error).message}`;
  }
  const rgb = new Uint8Array(width * height * 3);
  let empty = true;
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    rgb[j] = rgba[i];
    rgb[j + 1] = rgba[i + 1];
    rgb[j + 2] = rgba[i + 2];
    if (rgba[i + 3] !== 0) empty = false;
  }
  // resvg draws nothing for image data it cannot decode: a fully transparent result is a bad file
  if (empty) return 'cannot decode the image data';
  return { width, height, rgb };
}

/** native/src/image.cpp cropResize over the whole image: bilinear, half-pixel centres, float math. */
export function resizeBilinear(rgb: Uint8Array, w: number, h: number, outW: number, outH: number): Uint8Array {
  if (outW === w && outH === h) return rgb;
  const f = Math.fround;
  const out = new Uint8Array(outW * outH * 3);
  const sx = f(w / outW),
    sy = f(h / outH);
  for (let y = 0; y < outH; ++y) {
    const fy = Math.max(0, f(f(f(y + 0.5) * sy) - 0.5));
    const iy = Math.min(Math.trunc(fy), h - 1),
      iy1 = Math.min(iy + 1, h - 1);
    const wy = f(fy - iy);
    for (let x = 0; x < outW; ++x) {
      const fx = Math.max(0, f(f(f(x + 0.5) * sx) - 0.5));
      const ix = Math.min(Math.trunc(fx), w - 1),
        ix1 = Math.min(ix + 1, w - 1);
      const wx = f(fx - ix);
      for (let c = 0; c < 3; ++c) {
        const a = rgb[(iy * w + ix) * 3 + c],
          b = rgb[(iy * w + ix1) * 3 + c];
        const d = rgb[(iy1 * w + ix) * 3 + c],
          e = rgb[(iy1 * w + ix1) * 3 + c];
        const top = f(f(a * f(1 - wx)) + f(b * wx));
        const bot = f(f(d * f(1 - wx)) + f(e * wx));
        const v = f(f(top * f(1 - wy)) + f(bot * wy));
        out[(y * outW + x) * 3 + c] = Math.round(Math.min(255, Math.max(0, v)));
      }
    }
  }
  return out;
}

export interface PreparedInput {
  input: Float32Array;
  dims: [number, number, number, number];
  /** content size after resizing */
  width: number;
  height: number;
  /** resized / original, per axis */
  sx: number;
  sy: number;
}

/** evaluation's preparation (native/src/data.cpp prepareDetection, detector.cpp makeBatch) for one image */
export function prepareInput(det: OnnxDetector, img: { width: number; height: number; rgb: Uint8Array }): PreparedInput {
  const fixed = /^(\d+)x(\d+)$/.exec(det.info.input);
  // a fixed input smaller than the layout bounds the resize too
  const W = fixed ? Math.min(det.info.layoutWidth, Number(fixed[2])) : det.info.layoutWidth;
  const H = fixed ? Math.min(det.info.layoutHeight, Number(fixed[1])) : det.info.layoutHeight;
  const scale = Math.min(W / img.width, H / img.height);
  const nw = Math.max(1, Math.round(img.width * scale)),
    nh = Math.max(1, Math.round(img.height * scale));
  const rgb = resizeBilinear(img.rgb, img.width, img.height, nw, nh);
  const [pw, ph] = det.paddedSize(nw, nh);
  const input = new Float32Array(3 * pw * ph);
  for (let c = 0; c < 3; ++c) {
    const plane = c * pw * ph;
    const mean = Math.fround(det.info.mean[c]),
      std = Math.fround(det.info.std[c]);
    for (let y = 0; y < nh; ++y) for (let x = 0; x < nw; ++x) input[plane + y * pw + x] = Math.fround(Math.fround(rgb[(y * nw + x) * 3 + c] - mean) / std);
  }
  return { input, dims: [1, 3, ph, pw], width: nw, height: nh, sx: nw / img.width, sy: nh / img.height };
}

/** one detection in COCO results form, in the original image's pixels */
export interface CocoDetection {
  image_id: number;
  category_id: number;
  bbox: [number, number, number, number];
  score: number;
  /** the model's class index and, when known, the category name */
  label: number;
  name?: string;
}

export interface ImageDetections {
  file: string;
  imageId: number;
  width: number;
  height: number;
  detections: CocoDetection[];
  /** wall time of the model's inference (onnxruntime session.run) */
  ms: number;
}

export interface DetectorRun {
  images: ImageDetections[];
  /** images that could not be read, by name, with the reason */
  failures: { file: string; error: string }[];
}

/**
 * Runs an exported model on image files: detections at or above `scoreThreshold` (default: the
 * model's own test threshold) in the original frame, and each image's inference time in ms.
 * Unreadable images are listed in `failures` and skipped. `onImage` sees each one done.
 */
export async function runOnnxDetector(
  modelPath: string,
  imagePaths: string[],
  opts: { scoreThreshold?: number; threads?: number; onImage?: (done: number, total: number) => void } = {},
): Promise<DetectorRun> {
  const det = await OnnxDetector.open(modelPath, { threads: opts.threads });
  const run: DetectorRun = { images: [], failures: [] };
  try {
    const minScore = opts.scoreThreshold ?? det.info.scoreThreshold;
    const r2 = (v: number) => Math.round(v * 100) / 100;
    for (let i = 0; i < imagePaths.length; ++i) {
      const file = imagePaths[i];
      const img = decodeImage(file);
      if (typeof img === 'string') {
        run.failures.push({ file, error: img });
        opts.onImage?.(i + 1, imagePaths.length);
        continue;
      }
      const p = prepareInput(det, img);
      const t0 = process.hrtime.bigint();
      const raw = await det.run(p.input, p.dims, p.width, p.height);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const detections: CocoDetection[] = [];
      for (let k = 0; k < raw.scores.length; ++k) {
        if (raw.scores[k] < minScore) continue;
        const label = Number(raw.labels[k]);
        const x1 = raw.boxes[4 * k] / p.sx,
          y1 = raw.boxes[4 * k + 1] / p.sy;
        const x2 = raw.boxes[4 * k + 2] / p.sx,
          y2 = raw.boxes[4 * k + 3] / p.sy;
        const cat = det.info.categories?.[label];
        detections.push({
          image_id: i + 1,
          category_id: cat?.id ?? label + 1,
          bbox: [r2(x1), r2(y1), r2(x2 - x1), r2(y2 - y1)],
          score: Math.round(raw.scores[k] * 1e5) / 1e5,
          label,
          ...(cat ? { name: cat.name } : {}),
        });
      }
      run.images.push({ file, imageId: i + 1, width: img.width, height: img.height, detections, ms });
      opts.onImage?.(i + 1, imagePaths.length);
    }
  } finally {
    await det.close();
  }
  return run;
}

const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#42d4f4', '#f032e6', '#bfef45', '#469990', '#9a6324'];
const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The image with its detections drawn (boxes, label and score), as PNG bytes (resvg). */
export function drawDetections(file: string, width: number, height: number, detections: CocoDetection[]): Buffer {
  const header = readImageHeader(file);
  const mime = typeof header !== 'string' && header.format === 'jpeg' ? 'image/jpeg' : 'image/png';
  const stroke = Math.max(1, Math.round(Math.min(width, height) / 200));
  const fontSize = Math.max(8, Math.round(Math.min(width, height) / 40));
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${width}" height="${height}">`,
    `<image width="${width}" height="${height}" xlink:href="data:${mime};base64,${fs.readFileSync(file).toString('base64')}"/>`,
  ];
  for (const d of detections) {
    const [x, y, w, h] = d.bbox;
    const color = PALETTE[d.label % PALETTE.length];
    const text = xmlEscape(`${d.name ?? `class ${d.label}`} ${d.score.toFixed(2)}`);
    const ty = y >= fontSize + 2 ? y - 2 : y + fontSize;
    parts.push(`<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="none" stroke="${color}" stroke-width="${stroke}"/>`);
    parts.push(
      `<text x="${x + 1}" y="${ty}" font-size="${fontSize}" fill="${color}" stroke="black" stroke-width="${fontSize / 12}" paint-order="stroke">${text}</text>`,
    );
  }
  parts.push('</svg>');
  const r = new Resvg(parts.join(''), { fitTo: { mode: 'original' }, font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } });
  return r.render().asPng();
}

/** One final model's export by the campaign: the model file, or why there is none. */
export interface FinalModelExport {
  model: string | null;
  error?: string;
}

/** file-name-safe form of an architecture notation */
function archFileName(arch: string): string {
  return arch.replace(/[^A-Za-z0-9_.=-]+/g, '_').replace(/^_+|_+$/g, '');
}

/**
 * Control-queue activity of the campaign's last stage: each final model with weights is exported
 * to <campaignDir>/models/E<i>_<arch>.onnx (dynamic input size, with its .json sidecar). A model
 * without weights or whose export fails is reported with its reason; the campaign goes on.
 */
export function makeOnnxActivities(deps: ActivityDeps) {
  async function exportFinalModels(input: {
    campaignDir: string;
    models: { arch: string; weights: string | null }[];
  }): Promise<Record<string, FinalModelExport>> {
    const dir = path.join(input.campaignDir, 'models');
    fs.mkdirSync(dir, { recursive: true });
    const out: Record<string, FinalModelExport> = {};
    for (const [i, m] of input.models.entries()) {
      if (!m.weights) {
        out[m.arch] = { model: null, error: 'no final weights' };
        continue;
      }
      const file = path.join(dir, `E${i}_${archFileName(m.arch)}.onnx`);
      const workDir = path.join(dir, `.export-E${i}`);
      try {
        const r = await exportModel({ weightsDir: m.weights, out: file, inputSize: 'dynamic', workDir, trainerBin: deps.trainerBin });
        out[m.arch] = { model: r.model };
        deps.logger.info({ arch: m.arch, model: r.model, nodes: r.nodes }, 'final model exported to ONNX');
      } catch (e) {
        out[m.arch] = { model: null, error: (e as Error).message };
        deps.logger.warn({ arch: m.arch, error: (e as Error).message }, 'final model not exported to ONNX');
      } finally {
        fs.rmSync(workDir, { recursive: true, force: true });
      }
    }
    return out;
  }
  return { exportFinalModels };
}
