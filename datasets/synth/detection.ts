/**
 * `data synth --kind detection`: writes generated scenes (scene.ts) as a COCO data set (the
 * canonical form), a VOCdevkit tree or a BDD100K labels file + images folder, so every converter
 * can be exercised end to end on data whose true boxes are known.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BDD_CLASSES } from '../classes';
import { instancesPath, type CocoInstances } from '../coco-schema';
import { encodePngRgb } from '../png';
import { classStyle, MAX_SYNTH_CLASSES } from './draw';
import { makeScene, type Scene } from './scene';

export type SynthFormat = 'coco' | 'voc' | 'bdd';

export interface SynthDetectionOptions {
  out: string;
  format: SynthFormat;
  train: number;
  val: number;
  /** image width (and height unless `height` is given) */
  size: number;
  /** image height of non-square images; default `size` */
  height?: number;
  classes: number;
  seed: number;
  onProgress?: (done: number, total: number) => void;
}

/** Scene index offset of the val split, so val images do not depend on the size of train. */
const SPLIT_OFFSET: Record<string, number> = { train: 0, val: 10_000_000 };

export function synthClassNames(format: SynthFormat, classes: number): string[] {
  const names: string[] = [];
  for (let c = 0; c < classes; c++) names.push(format === 'bdd' ? BDD_CLASSES[c] : classStyle(c).name);
  return names;
}

export function validateSynthOptions(o: SynthDetectionOptions): string | null {
  const max = o.format === 'bdd' ? BDD_CLASSES.length : MAX_SYNTH_CLASSES;
  if (o.classes < 1 || o.classes > max) return `--classes must be between 1 and ${max} for --format ${o.format}`;
  if (o.size < 32 || o.size > 4096) return '--size must be between 32 and 4096';
  if (o.height !== undefined && (o.height < 32 || o.height > 4096)) return '--size: the height must be between 32 and 4096';
  if (o.train < 0 || o.val < 0 || o.train + o.val === 0) return '--train and --val must be >= 0 and not both 0';
  return null;
}

export function stemOf(split: string, i: number): string {
  return `${split}_${String(i + 1).padStart(6, '0')}`;
}

/** Generate the scenes of one split, calling `sink` for each (in order). */
function forEachScene(o: SynthDetectionOptions, split: 'train' | 'val', sink: (scene: Scene, i: number) => void, tick: () => void): void {
  const n = split === 'train' ? o.train : o.val;
  for (let i = 0; i < n; i++) {
    sink(makeScene(SPLIT_OFFSET[split] + i, { size: o.size, height: o.height, classes: o.classes, seed: o.seed }), i);
    tick();
  }
}

export function writeSynthDetection(o: SynthDetectionOptions): { images: number; objects: number } {
  const err = validateSynthOptions(o);
  if (err) throw new Error(err);
  const names = synthClassNames(o.format, o.classes);
  const total = o.train + o.val;
  let done = 0;
  let objects = 0;
  const tick = () => o.onProgress?.(++done, total);
  fs.mkdirSync(o.out, { recursive: true });

  if (o.format === 'coco') {
    for (const split of ['train', 'val'] as const) {
      const dir = path.join(o.out, split);
      fs.mkdirSync(dir, { recursive: true });
      const inst: CocoInstances = {
        images: [],
        annotations: [],
        categories: names.map((name, c) => ({ id: c + 1, name, supercategory: 'shape' })),
      };
      forEachScene(
        o,
        split,
        (scene, i) => {
          const file = `${stemOf(split, i)}.png`;
          fs.writeFileSync(path.join(dir, file), encodePngRgb(scene.width, scene.height, scene.rgb));
          inst.images.push({ id: i + 1, file_name: file, width: scene.width, height: scene.height });
          for (const obj of scene.objects) {
            inst.annotations.push({
              id: inst.annotations.length + 1,
              image_id: i + 1,
              category_id: obj.classIndex + 1,
              bbox: obj.bbox,
              area: obj.bbox[2] * obj.bbox[3],
              iscrowd: 0,
            });
          }
          objects += scene.objects.length;
        },
        tick,
      );
      const file = instancesPath(o.out, split);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, JSON.stringify(inst));
    }
  } else if (o.format === 'voc') {
    // The devkit layout of the paper's VOC protocol: the train scenes are VOC2007 trainval (first
    // half) and VOC2012 trainval (second half), each with its train / val lists; the val scenes
    // are VOC2007 test. So VOC07+12 trainval is the train split and VOC07 test the val split.
    const devkit = path.join(o.out, 'VOCdevkit');
    const years = ['VOC2007', 'VOC2012'] as const;
    for (const y of years)
      for (const sub of ['Annotations', 'JPEGImages', path.join('ImageSets', 'Main')]) fs.mkdirSync(path.join(devkit, y, sub), { recursive: true });
    const trainval: Record<(typeof years)[number], string[]> = { VOC2007: [], VOC2012: [] };
    const test: string[] = [];
    const in2007 = Math.ceil(o.train / 2);
    for (const split of ['train', 'val'] as const) {
      forEachScene(
        o,
        split,
        (scene, i) => {
          const stem = stemOf(split, i);
          const year = split === 'val' || i < in2007 ? 'VOC2007' : 'VOC2012';
          const root = path.join(devkit, year);
          // Generated images are PNG; the XML's <filename> names the file, as in the devkit.
          fs.writeFileSync(path.join(root, 'JPEGImages', `${stem}.png`), encodePngRgb(scene.width, scene.height, scene.rgb));
          fs.writeFileSync(path.join(root, 'Annotations', `${stem}.xml`), vocXml(stem, `${stem}.png`, scene, names, year));
          (split === 'val' ? test : trainval[year]).push(stem);
          objects += scene.objects.length;
        },
        tick,
      );
    }
    const list = (year: string, name: string, stems: string[]) =>
      fs.writeFileSync(path.join(devkit, year, 'ImageSets', 'Main', `${name}.txt`), stems.map((s) => s + '\n').join(''));
    for (const y of years) {
      const half = Math.ceil(trainval[y].length / 2);
      list(y, 'train', trainval[y].slice(0, half));
      list(y, 'val', trainval[y].slice(half));
      list(y, 'trainval', trainval[y]);
    }
    list('VOC2007', 'test', test);
  } else {
    for (const split of ['train', 'val'] as const) {
      const imgDir = path.join(o.out, 'images', '100k', split);
      fs.mkdirSync(imgDir, { recursive: true });
      const frames: unknown[] = [];
      forEachScene(
        o,
        split,
        (scene, i) => {
          const name = `${stemOf(split, i)}.png`;
          fs.writeFileSync(path.join(imgDir, name), encodePngRgb(scene.width, scene.height, scene.rgb));
          frames.push({
            name,
            attributes: { weather: 'clear', scene: 'city street', timeofday: 'daytime' },
            timestamp: 10000,
            labels: scene.objects.map((obj, k) => ({
              id: String(k),
              category: names[obj.classIndex],
              attributes: { occluded: false, truncated: false, trafficLightColor: 'NA' },
              // BDD box2d is [x1, y1, x2, y2] with x2 = x + w (the bdd2coco convention, see datasets/bdd.ts)
              box2d: { x1: obj.bbox[0], y1: obj.bbox[1], x2: obj.bbox[0] + obj.bbox[2], y2: obj.bbox[1] + obj.bbox[3] },
            })),
          });
          objects += scene.objects.length;
        },
        tick,
      );
      // a lane label without box2d, as in the real files: converters must skip it
      if (frames.length > 0) {
        (frames[0] as { labels: unknown[] }).labels.push({
          id: 'lane0',
          category: 'lane',
          attributes: {},
          poly2d: [
            {
              vertices: [
                [0, 0],
                [5, 5],
              ],
              types: 'LL',
              closed: false,
            },
          ],
        });
      }
      const labelDir = path.join(o.out, 'labels', 'det_20');
      fs.mkdirSync(labelDir, { recursive: true });
      fs.writeFileSync(path.join(labelDir, `det_${split}.json`), JSON.stringify(frames));
    }
  }
  return { images: total, objects };
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A VOC annotation; VOC boxes are 1-based inclusive pixel indices: xmin = x + 1, xmax = x + w. */
function vocXml(stem: string, file: string, scene: Scene, names: string[], year: string): string {
  const objs = scene.objects
    .map((o) => {
      const [x, y, w, h] = o.bbox;
      return `  <object>
    <name>${xmlEscape(names[o.classIndex])}</name>
    <pose>Unspecified</pose>
    <truncated>0</truncated>
    <difficult>${o.difficult ? 1 : 0}</difficult>
    <bndbox>
      <xmin>${x + 1}</xmin>
      <ymin>${y + 1}</ymin>
      <xmax>${x + w}</xmax>
      <ymax>${y + h}</ymax>
    </bndbox>
  </object>\n`;
    })
    .join('');
  return `<annotation>
  <folder>${year}</folder>
  <filename>${xmlEscape(file)}</filename>
  <source><database>smnas synthetic</database></source>
  <size>
    <width>${scene.width}</width>
    <height>${scene.height}</height>
    <depth>3</depth>
  </size>
  <segmented>0</segmented>
${objs}</annotation>
`;
}
