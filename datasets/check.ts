/**
 * `data check`: validates a canonical data set (or one instances file) and reports EVERY problem
 * found: malformed JSON (line/column), invalid records, duplicate ids, dangling references, boxes of
 * zero/negative size or outside the image, missing/unreadable images, images whose size differs
 * from the annotation (PNG/JPEG headers only), images cut short (PNG/JPEG trailers), and images
 * that lie outside the data root (datasets/confine.ts: never read). `ok` is false when an error would make training or
 * evaluation wrong; warnings are suspicious but usable.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DatasetError, loadCocoInstances, sourceIndex } from './coco';
import type { CocoInstances } from './coco-schema';
import { DataRoots } from './confine';
import { readImageHeaderAsync, readImageTrailerAsync } from './image-header';
import type { Problem } from './problems';

/** Boxes may exceed the image by this much (float rounding in real annotation files) before it is an error. */
export const BOX_TOLERANCE_PX = 1;
/** At most this many problems of one code are listed in full (all are counted). */
export const MAX_LISTED_PER_CODE = 200;

export interface SplitInfo {
  split: string;
  annotationsFile: string;
  imagesDir: string;
  images: number;
  annotations: number;
  crowd: number;
  imagesWithoutAnnotations: number;
  categories: number;
}

export interface CheckReport {
  target: string;
  ok: boolean;
  errors: number;
  warnings: number;
  splits: SplitInfo[];
  /** count per problem code, all problems */
  counts: Record<string, number>;
  /** the problems, at most MAX_LISTED_PER_CODE per code */
  problems: Problem[];
}

export interface CheckOptions {
  /** images folder when the target is a single instances file outside the canonical layout */
  imagesDir?: string;
  /** skip reading image headers */
  skipImages?: boolean;
  /**
   * Folders outside the split's images folder that images may resolve into through symlinks
   * (e.g. the source of a converted set); any other image leading out is an `image_outside_root`
   * error and is never read.
   */
  allowedRoots?: readonly string[];
  progress?: (phase: string, done: number, total: number) => void;
}

/** The splits of a canonical dir (annotations/instances_<split>.json), or the one file given. */
export function discoverSplits(target: string, imagesDir?: string): { split: string; annotationsFile: string; imagesDir: string }[] {
  let st: fs.Stats;
  try {
    st = fs.statSync(target);
  } catch {
    throw new DatasetError(`${target}: no such file or directory`);
  }
  const splitOf = (file: string) => /^instances_(.+)\.json$/.exec(path.basename(file))?.[1];
  if (st.isDirectory()) {
    const annDir = path.join(target, 'annotations');
    const files = fs.existsSync(annDir)
      ? fs
          .readdirSync(annDir)
          .filter((f) => splitOf(f))
          .sort()
      : [];
    if (files.length === 0) throw new DatasetError(`${target}: no annotations/instances_<split>.json (expected the canonical layout; see docs/datasets.md)`);
    return files.map((f) => ({ split: splitOf(f)!, annotationsFile: path.join(annDir, f), imagesDir: imagesDir ?? path.join(target, splitOf(f)!) }));
  }
  const split = splitOf(target) ?? path.basename(target, '.json');
  const root = path.basename(path.dirname(target)) === 'annotations' ? path.dirname(path.dirname(target)) : path.dirname(target);
  return [{ split, annotationsFile: target, imagesDir: imagesDir ?? path.join(root, split) }];
}

class ProblemList {
  readonly counts: Record<string, number> = {};
  readonly listed: Problem[] = [];
  errors = 0;
  warnings = 0;
  add(p: Problem): void {
    this.counts[p.code] = (this.counts[p.code] ?? 0) + 1;
    if (p.severity === 'error') this.errors++;
    else this.warnings++;
    if (this.counts[p.code] <= MAX_LISTED_PER_CODE) this.listed.push(p);
  }
}

/** Checks on the annotations alone (pure; exported for tests). */
export function checkInstances(inst: CocoInstances, file: string, add: (p: Problem) => void): { imageIds: Set<number> } {
  const err = (code: string, record: string, message: string) => add({ severity: 'error', code, file, record, message });
  const warn = (code: string, record: string, message: string) => add({ severity: 'warning', code, file, record, message });
  const images = new Map<number, { width: number; height: number }>();
  const fileNames = new Map<string, number>();
  inst.images.forEach((im, i) => {
    const rec = `images[${sourceIndex.get(im) ?? i}] (id ${im.id})`;
    if (images.has(im.id)) err('duplicate_image_id', rec, `duplicate image id ${im.id}`);
    else images.set(im.id, im);
    const prev = fileNames.get(im.file_name);
    if (prev !== undefined) warn('duplicate_file_name', rec, `file_name '${im.file_name}' also used by image id ${prev}`);
    else fileNames.set(im.file_name, im.id);
  });
  const cats = new Set<number>();
  const catNames = new Set<string>();
  inst.categories.forEach((c, i) => {
    const rec = `categories[${sourceIndex.get(c) ?? i}] (id ${c.id})`;
    if (cats.has(c.id)) err('duplicate_category_id', rec, `duplicate category id ${c.id}`);
    cats.add(c.id);
    if (catNames.has(c.name)) warn('duplicate_category_name', rec, `duplicate category name '${c.name}'`);
    catNames.add(c.name);
  });
  if (inst.categories.length === 0) err('no_categories', 'categories', 'no categories');
  const annIds = new Set<number>();
  const perCat = new Map<number, number>();
  const annotated = new Set<number>();
  inst.annotations.forEach((a, i) => {
    const rec = `annotations[${sourceIndex.get(a) ?? i}] (id ${a.id})`;
    if (annIds.has(a.id)) err('duplicate_annotation_id', rec, `duplicate annotation id ${a.id}`);
    annIds.add(a.id);
    if (a.id === 0) warn('annotation_id_zero', rec, 'annotation id 0: pycocotools treats a match to it as unmatched (counts a false positive)');
    const im = images.get(a.image_id);
    if (!im) err('unknown_image', rec, `image_id ${a.image_id} is not in images`);
    if (!cats.has(a.category_id)) err('unknown_category', rec, `category_id ${a.category_id} is not in categories`);
    perCat.set(a.category_id, (perCat.get(a.category_id) ?? 0) + 1);
    annotated.add(a.image_id);
    const [x, y, w, h] = a.bbox;
    if (!(w > 0 && h > 0)) err('bbox_degenerate', rec, `bbox [${a.bbox.join(', ')}] has zero or negative size`);
    else if (im && (x < -BOX_TOLERANCE_PX || y < -BOX_TOLERANCE_PX || x + w > im.width + BOX_TOLERANCE_PX || y + h > im.height + BOX_TOLERANCE_PX)) {
      err('bbox_outside_image', rec, `bbox [${a.bbox.join(', ')}] extends outside the ${im.width}x${im.height} image`);
    }
    if (!a.iscrowd && a.area <= 0) warn('zero_area', rec, 'area is 0 (it decides the small/medium/large range in evaluation)');
  });
  inst.categories.forEach((c, i) => {
    if (!perCat.has(c.id))
      warn('category_without_annotations', `categories[${sourceIndex.get(c) ?? i}] (id ${c.id})`, `category '${c.name}' has no annotations`);
  });
  return { imageIds: annotated };
}

async function checkImages(
  inst: CocoInstances,
  file: string,
  imagesDir: string,
  add: (p: Problem) => void,
  allowedRoots: readonly string[],
  progress?: (done: number, total: number) => void,
): Promise<void> {
  if (!fs.existsSync(imagesDir)) {
    add({ severity: 'error', code: 'missing_images_dir', file, message: `images folder ${imagesDir} does not exist` });
    return;
  }
  const roots = new DataRoots(imagesDir, allowedRoots);
  let next = 0;
  let done = 0;
  // images are read 16 at a time; their problems are reported in record order afterwards, so the
  // report (and which problems are listed in full) does not depend on which read finished first
  const found: Problem[][] = [];
  const worker = async () => {
    while (next < inst.images.length) {
      const i = next++;
      const add = (p: Problem) => (found[i] ??= []).push(p);
      const im = inst.images[i];
      const rec = `images[${sourceIndex.get(im) ?? i}] (id ${im.id})`;
      const c = await roots.resolveAsync(im.file_name);
      const p = c.path;
      if ('problem' in c) {
        add({ severity: 'error', code: c.problem === 'missing' ? 'missing_image' : 'image_outside_root', file, record: rec, message: c.message });
        progress?.(++done, inst.images.length);
        continue;
      }
      const h = await readImageHeaderAsync(p);
      if (typeof h === 'string') {
        add({ severity: 'error', code: h === 'missing' ? 'missing_image' : 'unreadable_image', file, record: rec, message: `${p}: ${h}` });
      } else if (h.width !== im.width || h.height !== im.height) {
        add({
          severity: 'error',
          code: 'image_size_mismatch',
          file,
          record: rec,
          message: `${p} is ${h.width}x${h.height} but the annotation says ${im.width}x${im.height}`,
        });
      } else {
        // a cut-short file: the trainer cannot decode a PNG without its end; a JPEG decodes partly grey
        const t = await readImageTrailerAsync(p, h.format);
        if (t) add({ severity: h.format === 'png' ? 'error' : 'warning', code: 'truncated_image', file, record: rec, message: `${p}: ${t}` });
      }
      progress?.(++done, inst.images.length);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  for (const list of found) for (const p of list ?? []) add(p);
}

export async function checkDataset(target: string, opts: CheckOptions = {}): Promise<CheckReport> {
  const problems = new ProblemList();
  const add = (p: Problem) => problems.add(p);
  const splits: SplitInfo[] = [];
  let firstCats: { split: string; key: string } | undefined;
  for (const s of discoverSplits(target, opts.imagesDir)) {
    let inst: CocoInstances;
    try {
      inst = await loadCocoInstances(s.annotationsFile, { onProblem: add, progress: (d, t) => opts.progress?.(`read ${s.split}`, d, t) });
    } catch (e) {
      if (!(e instanceof DatasetError)) throw e;
      add(e.problem ?? { severity: 'error', code: 'unreadable_annotations', file: s.annotationsFile, message: e.message });
      continue;
    }
    const { imageIds } = checkInstances(inst, s.annotationsFile, add);
    if (!opts.skipImages)
      await checkImages(inst, s.annotationsFile, s.imagesDir, add, opts.allowedRoots ?? [], (d, t) => opts.progress?.(`images ${s.split}`, d, t));
    const key = JSON.stringify([...inst.categories].sort((a, b) => a.id - b.id).map((c) => [c.id, c.name]));
    if (!firstCats) firstCats = { split: s.split, key };
    else if (firstCats.key !== key) {
      add({
        severity: 'error',
        code: 'category_mismatch',
        file: s.annotationsFile,
        message: `categories differ from split '${firstCats.split}' (ids and names must match across splits)`,
      });
    }
    splits.push({
      ...s,
      images: inst.images.length,
      annotations: inst.annotations.length,
      crowd: inst.annotations.filter((a) => a.iscrowd).length,
      imagesWithoutAnnotations: inst.images.filter((im) => !imageIds.has(im.id)).length,
      categories: inst.categories.length,
    });
  }
  return {
    target,
    ok: problems.errors === 0,
    errors: problems.errors,
    warnings: problems.warnings,
    splits,
    counts: problems.counts,
    problems: problems.listed,
  };
}

export interface DatasetSummary {
  dir: string;
  numClasses: number;
  /** sorted by id; label index i (0-based, as trained) = categories[i] */
  categories: { id: number; name: string }[];
  splits: Record<string, { annotationsFile: string; imagesDir: string; images: number; annotations: number }>;
}

/** Classes and counts of a canonical data set (no image reads); throws DatasetError on unreadable files. */
export async function summarizeDataset(dir: string): Promise<DatasetSummary> {
  const out: DatasetSummary = { dir, numClasses: 0, categories: [], splits: {} };
  for (const s of discoverSplits(dir)) {
    const inst = await loadCocoInstances(s.annotationsFile);
    if (out.categories.length === 0) {
      out.categories = inst.categories.map((c) => ({ id: c.id, name: c.name })).sort((a, b) => a.id - b.id);
      out.numClasses = out.categories.length;
    }
    out.splits[s.split] = { annotationsFile: s.annotationsFile, imagesDir: s.imagesDir, images: inst.images.length, annotations: inst.annotations.length };
  }
  return out;
}
