/**
 * Builds the evaluator's columns from COCO files/objects, strictly: detections that refer to
 * unknown images or categories, non-finite or NaN numbers and negative sizes are errors naming the
 * record (pycocotools would assert, or silently drop them).
 */
import * as fs from 'node:fs';
import { DatasetError, loadCocoInstances, STREAM_THRESHOLD } from '../datasets/coco';
import type { CocoDetection, CocoInstances } from '../datasets/coco-schema';
import { JsonLocationError, streamJson } from '../datasets/json-stream';
import { evaluateVocColumns } from './voc-eval';
import { evaluateCocoColumns, type CocoEvalResult, type DetColumns, type GtColumns, type PerClassResult } from './coco-eval';

export interface GtIndex {
  columns: GtColumns;
  imgIndex: Map<number, number>;
  catIndex: Map<number, number>;
  /** category id -> name */
  catNames: Map<number, string>;
}

/** Columns of the ground truth; duplicate ids and dangling references are errors naming the record. */
export function indexGroundTruth(gt: CocoInstances, source = 'ground truth'): GtIndex {
  const fail = (record: string, msg: string): never => {
    throw new DatasetError(`${source}: ${record}: ${msg}`);
  };
  const imgIds = [...new Set(gt.images.map((im) => im.id))].sort((a, b) => a - b);
  if (imgIds.length !== gt.images.length) {
    const seen = new Set<number>();
    gt.images.forEach((im, i) => (seen.has(im.id) ? fail(`images[${i}]`, `duplicate image id ${im.id}`) : seen.add(im.id)));
  }
  const catIds = [...new Set(gt.categories.map((c) => c.id))].sort((a, b) => a - b);
  if (catIds.length !== gt.categories.length) {
    const seen = new Set<number>();
    gt.categories.forEach((c, i) => (seen.has(c.id) ? fail(`categories[${i}]`, `duplicate category id ${c.id}`) : seen.add(c.id)));
  }
  const imgIndex = new Map(imgIds.map((id, i) => [id, i]));
  const catIndex = new Map(catIds.map((id, i) => [id, i]));
  const n = gt.annotations.length;
  const cols: GtColumns = {
    imgIds,
    catIds,
    n,
    imgIdx: new Int32Array(n),
    catIdx: new Int32Array(n),
    box: new Float64Array(4 * n),
    area: new Float64Array(n),
    crowd: new Uint8Array(n),
    id: new Float64Array(n),
  };
  const annIds = new Set<number>();
  gt.annotations.forEach((a, j) => {
    const ii = imgIndex.get(a.image_id);
    if (ii === undefined) fail(`annotations[${j}] (id ${a.id})`, `image_id ${a.image_id} is not in images`);
    const ki = catIndex.get(a.category_id);
    if (ki === undefined) fail(`annotations[${j}] (id ${a.id})`, `category_id ${a.category_id} is not in categories`);
    if (annIds.has(a.id)) fail(`annotations[${j}]`, `duplicate annotation id ${a.id}`);
    annIds.add(a.id);
    cols.imgIdx[j] = ii!;
    cols.catIdx[j] = ki!;
    cols.box.set(a.bbox, 4 * j);
    cols.area[j] = a.area;
    cols.crowd[j] = a.iscrowd ? 1 : 0;
    cols.id[j] = a.id;
  });
  return { columns: cols, imgIndex, catIndex, catNames: new Map(gt.categories.map((c) => [c.id, c.name])) };
}

/** Accumulates detections into growable columns, validating each record. */
export class DetectionCollector {
  n = 0;
  private cap = 1024;
  private imgIdx = new Int32Array(this.cap);
  private catIdx = new Int32Array(this.cap);
  private box = new Float64Array(4 * this.cap);
  private score = new Float64Array(this.cap);

  constructor(
    private readonly gt: GtIndex,
    private readonly source: string,
  ) {}

  add(rec: unknown, index: number): void {
    const fail = (msg: string): never => {
      throw new DatasetError(`${this.source}: record ${index}: ${msg}`);
    };
    if (!rec || typeof rec !== 'object' || Array.isArray(rec)) fail('expected an object {image_id, category_id, bbox, score}');
    const r = rec as Record<string, unknown>;
    const { image_id, category_id, bbox, score } = r;
    if (typeof image_id !== 'number' || !Number.isInteger(image_id)) fail(`image_id must be an integer, got ${JSON.stringify(image_id)}`);
    if (typeof category_id !== 'number' || !Number.isInteger(category_id)) fail(`category_id must be an integer, got ${JSON.stringify(category_id)}`);
    if (typeof score !== 'number' || !Number.isFinite(score))
      fail(`score must be a finite number, got ${score === null ? 'null (NaN?)' : JSON.stringify(score)}`);
    if (!Array.isArray(bbox) || bbox.length !== 4 || !bbox.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      fail(`bbox must be [x, y, w, h] of 4 finite numbers, got ${JSON.stringify(bbox)}`);
    }
    const b = bbox as number[];
    if (b[2] < 0 || b[3] < 0) fail(`bbox has a negative size (w=${b[2]}, h=${b[3]})`);
    const ii = this.gt.imgIndex.get(image_id as number);
    if (ii === undefined) fail(`image_id ${image_id} is not an image of the ground truth`);
    const ki = this.gt.catIndex.get(category_id as number);
    if (ki === undefined) fail(`category_id ${category_id} is not a category of the ground truth`);
    if (this.n === this.cap) this.grow();
    const j = this.n++;
    this.imgIdx[j] = ii!;
    this.catIdx[j] = ki!;
    this.box[4 * j] = b[0];
    this.box[4 * j + 1] = b[1];
    this.box[4 * j + 2] = b[2];
    this.box[4 * j + 3] = b[3];
    this.score[j] = score as number;
  }

  private grow(): void {
    this.cap *= 2;
    const gi = new Int32Array(this.cap);
    gi.set(this.imgIdx);
    this.imgIdx = gi;
    const gc = new Int32Array(this.cap);
    gc.set(this.catIdx);
    this.catIdx = gc;
    const gb = new Float64Array(4 * this.cap);
    gb.set(this.box);
    this.box = gb;
    const gs = new Float64Array(this.cap);
    gs.set(this.score);
    this.score = gs;
  }

  columns(): DetColumns {
    return {
      n: this.n,
      imgIdx: this.imgIdx.subarray(0, this.n),
      catIdx: this.catIdx.subarray(0, this.n),
      box: this.box.subarray(0, 4 * this.n),
      score: this.score.subarray(0, this.n),
    };
  }
}

/** Read a COCO results file (a JSON array of detections); streamed when it is large. */
export async function loadDetections(file: string, gt: GtIndex, progress?: (done: number, total: number) => void): Promise<DetColumns> {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch (e) {
    throw new DatasetError(`${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'cannot read'}`);
  }
  const collector = new DetectionCollector(gt, file);
  if (size <= STREAM_THRESHOLD) {
    let raw: unknown;
    let parsed = true;
    try {
      raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      parsed = false; // the streaming scanner below reports where
    }
    if (parsed) {
      if (!Array.isArray(raw)) throw new DatasetError(`${file}: a results file must be a JSON array of detections`);
      raw.forEach((r, i) => collector.add(r, i));
      return collector.columns();
    }
  }
  try {
    let isArray = true;
    await streamJson(file, {
      element: (key, value, index) => {
        if (key !== '') isArray = false;
        else collector.add(value, index);
      },
      arrayKeys: new Set(),
      other: () => {
        isArray = false;
      },
      progress,
    });
    if (!isArray) throw new DatasetError(`${file}: a results file must be a JSON array of detections`);
  } catch (e) {
    if (e instanceof JsonLocationError) throw new DatasetError(`${file}: ${e.message}`);
    throw e;
  }
  return collector.columns();
}

export interface CocoEvalReport {
  stats: CocoEvalResult['stats'];
  /** keyed by category name ("name#id" when names repeat) */
  perClass: Record<string, PerClassResult & { id: number }>;
}

export function toReport(result: CocoEvalResult, catNames: Map<number, string>): CocoEvalReport {
  const counts = new Map<string, number>();
  for (const name of catNames.values()) counts.set(name, (counts.get(name) ?? 0) + 1);
  const perClass: CocoEvalReport['perClass'] = {};
  for (const [id, r] of result.perClass) {
    const name = catNames.get(id) ?? String(id);
    perClass[counts.get(name)! > 1 ? `${name}#${id}` : name] = { id, ...r };
  }
  return { stats: result.stats, perClass };
}

/** Library entry point: evaluate in-memory ground truth and detections like pycocotools COCOeval (bbox). */
export function evaluateCoco(gt: CocoInstances, dets: readonly CocoDetection[]): CocoEvalReport {
  const index = indexGroundTruth(gt);
  const c = new DetectionCollector(index, 'detections');
  dets.forEach((d, i) => c.add(d, i));
  return toReport(evaluateCocoColumns(index.columns, c.columns()), index.catNames);
}

/** Files in, report out (used by `smnas eval` and the bench); `progress` gets (classes done, classes). */
export async function evaluateCocoFiles(
  gtFile: string,
  detFile: string,
  progress?: (done: number, total: number, dets: number) => void,
): Promise<CocoEvalReport> {
  const gt = await loadCocoInstances(gtFile);
  const index = indexGroundTruth(gt, gtFile);
  const dets = await loadDetections(detFile, index);
  return toReport(evaluateCocoColumns(index.columns, dets, progress && ((d, t) => progress(d, t, dets.n))), index.catNames);
}

export interface VocEvalReport {
  mAP: number;
  metric: 'voc2010' | 'voc07';
  iouThr: number;
  perClass: Record<string, { id: number; AP: number | null; numGt: number; numDets: number }>;
}

/** Pascal VOC mAP on canonical files (difficult objects are the GT annotations with iscrowd = 1). */
export async function evaluateVocFiles(gtFile: string, detFile: string, opts: { voc07?: boolean; iouThr?: number } = {}): Promise<VocEvalReport> {
  const gt = await loadCocoInstances(gtFile);
  const index = indexGroundTruth(gt, gtFile);
  const dets = await loadDetections(detFile, index);
  const r = evaluateVocColumns(index.columns, dets, opts);
  const perClass: VocEvalReport['perClass'] = {};
  for (const [id, v] of r.perClass) perClass[index.catNames.get(id) ?? String(id)] = { id, ...v };
  return { mAP: r.mAP, metric: r.metric, iouThr: r.iouThr, perClass };
}
