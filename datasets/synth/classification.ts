/**
 * `data synth --kind classification`: ImageNet-style class folders for backbone pretraining,
 * `<out>/{train,val}/<class>/<class>_<n>.png`, one shape/colour class per folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodePngRgb } from '../png';
import { classStyle, MAX_SYNTH_CLASSES } from './draw';
import { makeClassificationImage } from './scene';

export interface SynthClassificationOptions {
  out: string;
  /** images per class in each split */
  train: number;
  val: number;
  size: number;
  classes: number;
  seed: number;
  onProgress?: (done: number, total: number) => void;
}

export function writeSynthClassification(o: SynthClassificationOptions): { images: number } {
  if (o.classes < 2 || o.classes > MAX_SYNTH_CLASSES) throw new Error(`--classes must be between 2 and ${MAX_SYNTH_CLASSES} for --kind classification`);
  if (o.size < 16 || o.size > 4096) throw new Error('--size must be between 16 and 4096');
  const total = o.classes * (o.train + o.val);
  let done = 0;
  for (const [split, n, offset] of [
    ['train', o.train, 0],
    ['val', o.val, 1_000_000],
  ] as const) {
    for (let c = 0; c < o.classes; c++) {
      const name = classStyle(c).name;
      const dir = path.join(o.out, split, name);
      fs.mkdirSync(dir, { recursive: true });
      for (let i = 0; i < n; i++) {
        const rgb = makeClassificationImage(c, offset + i, o.size, o.seed);
        fs.writeFileSync(path.join(dir, `${name}_${String(i + 1).padStart(5, '0')}.png`), encodePngRgb(o.size, o.size, rgb));
        o.onProgress?.(++done, total);
      }
    }
  }
  return { images: total };
}
