/**
 * BDD100K detection labels -> canonical COCO form.
 *  - input: a labels JSON file (det_20/det_<split>.json, or the 2018 bdd100k_labels_images_<split>.json),
 *    or the bdd100k root (labels/det_20/det_<split>.json, labels/bdd100k_labels_images_<split>.json);
 *    images from `images` or <root>/images/100k/<split>;
 *  - the 10 detection classes (classes.ts BDD_CLASSES, ids 1..10; 2018 names person/bike/motor
 *    and the toolkit's caravan/van are mapped); labels without box2d (lanes, drivable area) are
 *    skipped; as in the BDD100K toolkit's detection evaluation, boxes of 'other person',
 *    'other vehicle' and 'trailer' (BDD_IGNORED) and boxes with the `crowd` attribute become
 *    ignore regions (iscrowd = 1) of their mapped class, so COCO evaluation of the converted set
 *    is BDD's detection metric; boxed labels of any other category are dropped and counted;
 *  - box2d {x1, y1, x2, y2} -> [x1, y1, x2 - x1, y2 - y1] (the convention of BDD's bdd2coco);
 *  - frames carry no image size: it is read from each image's header.
 * Label files can be large: they are streamed when above the streaming threshold. Synchronous
 * (callers such as the campaign's data activity convert in one call).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { describeZodError } from '../common/errors';
import { BDD_ALIASES, BDD_CLASSES, BDD_IGNORED } from './classes';
import { DatasetError, STREAM_THRESHOLD } from './coco';
import { instancesPath, type CocoInstances } from './coco-schema';
import { readImageHeader } from './image-header';
import { JsonLocationError, streamJsonSync } from './json-stream';
import { placeImage, writeJsonAtomic } from './link';
import type { ConvertResult } from './voc';

const Box2dSchema = z.object({ x1: z.number(), y1: z.number(), x2: z.number(), y2: z.number() });
export const BddFrameSchema = z.looseObject({
  name: z.string().min(1),
  labels: z
    .array(
      z.looseObject({
        category: z.string(),
        box2d: Box2dSchema.optional().nullable(),
        attributes: z.looseObject({ crowd: z.boolean().optional() }).optional().nullable(),
      }),
    )
    .nullable()
    .optional(),
});
export type BddFrame = z.infer<typeof BddFrameSchema>;

export function findBddFiles(input: string, split: string, images?: string): { labels: string; images: string } {
  if (!fs.existsSync(input)) throw new DatasetError(`${input}: no such file or directory`);
  if (fs.statSync(input).isFile()) {
    const root = path.resolve(path.dirname(input), '..', '..');
    return { labels: input, images: images ?? path.join(root, 'images', '100k', split) };
  }
  const candidates = [
    path.join(input, 'labels', 'det_20', `det_${split}.json`),
    path.join(input, 'labels', `bdd100k_labels_images_${split}.json`),
    path.join(input, 'labels', `det_${split}.json`),
  ];
  const labels = candidates.find((c) => fs.existsSync(c));
  if (!labels) throw new DatasetError(`${input}: no BDD100K labels for split '${split}' (looked for ${candidates.join(', ')})`);
  return { labels, images: images ?? path.join(input, 'images', '100k', split) };
}

function readFrames(file: string, each: (f: BddFrame, index: number) => void): void {
  const take = (v: unknown, i: number) => {
    const r = BddFrameSchema.safeParse(v);
    if (!r.success) throw new DatasetError(describeZodError(`${file}: frame ${i}`, r.error));
    each(r.data, i);
  };
  if (fs.statSync(file).size <= STREAM_THRESHOLD) {
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      raw = undefined; // located by the streaming scanner below
    }
    if (raw !== undefined) {
      if (!Array.isArray(raw)) throw new DatasetError(`${file}: expected a JSON array of frames`);
      raw.forEach(take);
      return;
    }
  }
  try {
    streamJsonSync(file, {
      element: (_k, v, i) => take(v, i),
      arrayKeys: new Set(),
      other: () => {
        throw new DatasetError(`${file}: expected a JSON array of frames`);
      },
    });
  } catch (e) {
    if (e instanceof JsonLocationError) throw new DatasetError(`${file}: ${e.message}`);
    throw e;
  }
}

export function convertBdd(o: {
  input: string;
  split: string;
  out: string;
  images?: string;
  copy?: boolean;
  progress?: (done: number, total: number) => void;
}): ConvertResult {
  const files = findBddFiles(o.input, o.split, o.images);
  if (!fs.existsSync(files.images)) throw new DatasetError(`${files.images}: images folder not found (use --images)`);
  const catId = new Map<string, number>(BDD_CLASSES.map((n, i) => [n, i + 1]));
  const inst: CocoInstances = { images: [], annotations: [], categories: BDD_CLASSES.map((name, i) => ({ id: i + 1, name, supercategory: 'none' })) };
  const skipped: Record<string, number> = {};
  let ignored = 0;
  readFrames(files.labels, (f, i) => {
    const src = path.join(files.images, f.name);
    const h = readImageHeader(src);
    if (typeof h === 'string') throw new DatasetError(`${files.labels}: frame ${i} (${f.name}): image ${src}: ${h}`);
    placeImage(src, path.join(o.out, o.split, f.name), !!o.copy);
    const imageId = inst.images.length + 1;
    inst.images.push({ id: imageId, file_name: f.name, width: h.width, height: h.height });
    (f.labels ?? []).forEach((l, k) => {
      if (!l.box2d) return; // lanes, drivable area
      const ignore = BDD_IGNORED[l.category] !== undefined || l.attributes?.crowd === true;
      const name = BDD_IGNORED[l.category] ?? BDD_ALIASES[l.category] ?? l.category;
      const cid = catId.get(name);
      if (cid === undefined) {
        skipped[l.category] = (skipped[l.category] ?? 0) + 1;
        return;
      }
      const { x1, y1, x2, y2 } = l.box2d;
      const w = x2 - x1;
      const hh = y2 - y1;
      if (!(w > 0 && hh > 0)) throw new DatasetError(`${files.labels}: frame ${i} (${f.name}) label ${k}: empty box2d ${JSON.stringify(l.box2d)}`);
      if (ignore) ignored++;
      inst.annotations.push({
        id: inst.annotations.length + 1,
        image_id: imageId,
        category_id: cid,
        bbox: [x1, y1, w, hh],
        area: w * hh,
        iscrowd: ignore ? 1 : 0,
      });
    });
    o.progress?.(i + 1, 0);
  });
  writeJsonAtomic(instancesPath(o.out, o.split), inst);
  return {
    out: o.out,
    split: o.split,
    images: inst.images.length,
    annotations: inst.annotations.length,
    difficult: ignored,
    categories: [...BDD_CLASSES],
    skipped,
  };
}
