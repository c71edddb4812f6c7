/**
 * Generated detection scenes: 1-6 shapes per image on a textured background, class given by shape
 * and colour, sizes from small (< 32x32 at 128 px) to large, no overlaps so every box is exact.
 * Pure: returns pixels and boxes; the writers in detection.ts put them on disk in each format.
 */
import { Rng } from '../prng';
import { Canvas, classStyle, drawShape, paintBackground } from './draw';

export interface SceneObject {
  /** 0-based class index */
  classIndex: number;
  /** tight box of the painted pixels, [x, y, w, h] integers */
  bbox: [number, number, number, number];
  /** marked `difficult` in the VOC form of the data set (a deterministic ~8% of objects) */
  difficult: boolean;
}

export interface Scene {
  width: number;
  height: number;
  rgb: Uint8Array;
  objects: SceneObject[];
}

export interface SceneOptions {
  /** image width; also the height unless `height` is given */
  size: number;
  /** image height for non-square scenes (e.g. 800x600); default `size` */
  height?: number;
  classes: number;
  seed: number;
  /** objects per image, inclusive bounds */
  minObjects?: number;
  maxObjects?: number;
}

/** Scene `index` of the stream for `seed` (independent of the other scenes, so splits can be generated in any order). */
export function makeScene(index: number, opts: SceneOptions): Scene {
  const rng = Rng.derive(opts.seed, index);
  // Object sizes scale with the shorter side; a square scene draws exactly what it drew before
  // non-square sizes existed (same random stream, same pixels).
  const width = opts.size;
  const height = opts.height ?? opts.size;
  const size = Math.min(width, height);
  const canvas = new Canvas(width, height);
  paintBackground(canvas, rng);
  const want = rng.int(opts.minObjects ?? 1, opts.maxObjects ?? 6);
  const placed: [number, number, number, number][] = [];
  const objects: SceneObject[] = [];
  const minSide = Math.max(8, Math.round(size * 0.1));
  const maxSide = Math.max(minSide + 1, Math.round(size * 0.75));
  // Draw the sizes first and place the largest first, so rejection sampling (no overlaps) does
  // not bias the data set towards small objects. Log-uniform sides: at 128 px roughly 40% small,
  // 45% medium and 15% large objects by COCO's area ranges.
  const sizes: { w: number; h: number }[] = [];
  for (let n = 0; n < want; n++) {
    const side = Math.exp(rng.uniform(Math.log(minSide), Math.log(maxSide)));
    const aspect = Math.exp(rng.uniform(Math.log(0.6), Math.log(1.6)));
    sizes.push({
      w: Math.max(minSide, Math.min(width - 4, Math.round(side * Math.sqrt(aspect)))),
      h: Math.max(minSide, Math.min(height - 4, Math.round(side / Math.sqrt(aspect)))),
    });
  }
  sizes.sort((a, b) => b.w * b.h - a.w * a.h);
  for (const { w, h } of sizes) {
    for (let attempt = 0; attempt < 30; attempt++) {
      const x = rng.int(1, width - 1 - w);
      const y = rng.int(1, height - 1 - h);
      const margin = 2;
      const overlaps = placed.some((b) => x < b[0] + b[2] + margin && b[0] < x + w + margin && y < b[1] + b[3] + margin && b[1] < y + h + margin);
      if (overlaps) continue;
      const classIndex = rng.int(0, opts.classes - 1);
      const style = classStyle(classIndex);
      const drawn = drawShape(canvas, style.shape, x, y, w, h, style.colour.rgb, rng);
      if (!drawn) continue;
      placed.push([x, y, w, h]);
      objects.push({ classIndex, bbox: drawn.bbox, difficult: rng.next() < 0.08 });
      break;
    }
  }
  return { width, height, rgb: canvas.rgb, objects };
}

/** One centred-ish object of class `classIndex` filling 35-85% of the image (classification data). */
export function makeClassificationImage(classIndex: number, index: number, size: number, seed: number): Uint8Array {
  const rng = Rng.derive(seed ^ 0x5bd1e995, classIndex * 1_000_003 + index);
  const canvas = new Canvas(size, size);
  paintBackground(canvas, rng);
  const style = classStyle(classIndex);
  const w = Math.round(size * rng.uniform(0.35, 0.85));
  const h = Math.round(size * rng.uniform(0.35, 0.85));
  const x = rng.int(0, size - w);
  const y = rng.int(0, size - h);
  drawShape(canvas, style.shape, x, y, w, h, style.colour.rgb, rng);
  return canvas.rgb;
}
