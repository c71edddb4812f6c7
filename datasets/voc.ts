/**
 * Pascal VOC (VOCdevkit) -> canonical COCO form.
 *  - input: a VOCdevkit folder (VOC2007/, VOC2012/ inside; all years are merged unless `years`
 *    is given), a folder containing VOCdevkit/, or one VOC<year> folder;
 *  - split: a file ImageSets/Main/<split>.txt (train, val, trainval, test);
 *  - boxes: VOC pixel indices are 1-based and inclusive, so x = xmin - 1, w = xmax - xmin + 1;
 *  - `difficult` objects become iscrowd = 1: COCO evaluation treats them as ignore regions and
 *    VOC evaluation (voc-eval.ts) as difficult (neither TP nor FP, not counted in recall);
 *  - categories: the 20 VOC classes in devkit order when every name is one of them, otherwise the
 *    sorted names found in all Annotations/*.xml (so every split gets the same ids), or `classes`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VOC_CLASSES } from './classes';
import { DatasetError } from './coco';
import { instancesPath, type CocoInstances } from './coco-schema';
import { readImageHeader } from './image-header';
import { placeImage, writeJsonAtomic } from './link';

export interface VocObject {
  name: string;
  difficult: boolean;
  /** 1-based inclusive pixel indices, as in the XML */
  xmin: number;
  ymin: number;
  xmax: number;
  ymax: number;
}
export interface VocAnnotation {
  filename: string;
  width: number | null;
  height: number | null;
  objects: VocObject[];
}

function tag(xml: string, name: string): string | undefined {
  const m = new RegExp(`<${name}>\\s*([^<]*?)\\s*</${name}>`).exec(xml);
  return m?.[1];
}

/** Parse one VOC annotation XML (the devkit's flat structure); errors name the file and object. */
export function parseVocXml(xml: string, file: string): VocAnnotation {
  const fail = (msg: string): never => {
    throw new DatasetError(`${file}: ${msg}`);
  };
  if (!/<annotation[\s>]/.test(xml)) fail('not a VOC annotation (no <annotation> element)');
  const filename = tag(xml, 'filename') ?? fail('missing <filename>');
  const size = /<size>([\s\S]*?)<\/size>/.exec(xml)?.[1];
  const num = (s: string | undefined) => (s === undefined || s === '' ? null : Number(s));
  const width = size ? num(tag(size, 'width')) : null;
  const height = size ? num(tag(size, 'height')) : null;
  const objects: VocObject[] = [];
  const re = /<object>([\s\S]*?)<\/object>/g;
  let m: RegExpExecArray | null;
  let k = 0;
  while ((m = re.exec(xml))) {
    const body = m[1];
    // <part> children (person layout) have their own bndbox: cut them out first
    const own = body.replace(/<part>[\s\S]*?<\/part>/g, '');
    const name = tag(own, 'name') ?? fail(`object ${k}: missing <name>`);
    const bnd = /<bndbox>([\s\S]*?)<\/bndbox>/.exec(own)?.[1] ?? fail(`object ${k} (${name}): missing <bndbox>`);
    const coord = (c: string) => {
      const v = Number(tag(bnd, c));
      if (!Number.isFinite(v)) fail(`object ${k} (${name}): <${c}> is not a number`);
      return v;
    };
    const difficult = tag(own, 'difficult');
    objects.push({ name, difficult: difficult === '1', xmin: coord('xmin'), ymin: coord('ymin'), xmax: coord('xmax'), ymax: coord('ymax') });
    k++;
  }
  return { filename, width, height, objects };
}

/** VOC<year> folders under `input`. */
export function findVocYears(input: string, years?: string[]): string[] {
  if (!fs.existsSync(input)) throw new DatasetError(`${input}: no such directory`);
  if (fs.existsSync(path.join(input, 'Annotations'))) return [input];
  const devkit = fs.existsSync(path.join(input, 'VOCdevkit')) ? path.join(input, 'VOCdevkit') : input;
  const found = fs
    .readdirSync(devkit)
    .filter((d) => /^VOC\d{4}$/.test(d) && fs.existsSync(path.join(devkit, d, 'Annotations')))
    .filter((d) => !years || years.includes(d.slice(3)) || years.includes(d))
    .sort();
  if (found.length === 0) throw new DatasetError(`${input}: no VOC<year>/Annotations folder found (expected a VOCdevkit layout)`);
  return found.map((d) => path.join(devkit, d));
}

export interface ConvertResult {
  out: string;
  split: string;
  images: number;
  annotations: number;
  /** annotations written as iscrowd = 1: VOC `difficult` objects, BDD ignore regions */
  difficult: number;
  categories: string[];
  skipped: Record<string, number>;
}

export function convertVoc(o: {
  input: string;
  split: string;
  out: string;
  years?: string[];
  classes?: string[];
  copy?: boolean;
  progress?: (done: number, total: number) => void;
}): ConvertResult {
  const yearDirs = findVocYears(o.input, o.years);
  const entries: { yearDir: string; id: string }[] = [];
  for (const yd of yearDirs) {
    const list = path.join(yd, 'ImageSets', 'Main', `${o.split}.txt`);
    if (!fs.existsSync(list)) {
      const avail = fs.existsSync(path.dirname(list))
        ? fs
            .readdirSync(path.dirname(list))
            .filter((f) => !f.includes('_') && f.endsWith('.txt'))
            .map((f) => f.slice(0, -4))
        : [];
      throw new DatasetError(`${list}: split file not found${avail.length ? ` (available: ${avail.join(', ')})` : ''}`);
    }
    for (const line of fs.readFileSync(list, 'utf8').split('\n')) {
      const id = line.trim().split(/\s+/)[0];
      if (id) entries.push({ yearDir: yd, id });
    }
  }
  const parsed = entries.map((e) => {
    const xmlFile = path.join(e.yearDir, 'Annotations', `${e.id}.xml`);
    let xml: string;
    try {
      xml = fs.readFileSync(xmlFile, 'utf8');
    } catch {
      throw new DatasetError(`${xmlFile}: annotation of '${e.id}' (listed in ImageSets/Main/${o.split}.txt) not found`);
    }
    return { ...e, xmlFile, ann: parseVocXml(xml, xmlFile) };
  });
  let classes = o.classes;
  if (!classes) {
    const names = new Set(parsed.flatMap((p) => p.ann.objects.map((x) => x.name)));
    if ([...names].every((n) => (VOC_CLASSES as readonly string[]).includes(n))) classes = [...VOC_CLASSES];
    else {
      // names of the whole data set, not just this split, so train and val get the same ids
      for (const yd of yearDirs) {
        for (const f of fs.readdirSync(path.join(yd, 'Annotations'))) {
          if (!f.endsWith('.xml')) continue;
          const file = path.join(yd, 'Annotations', f);
          for (const ob of parseVocXml(fs.readFileSync(file, 'utf8'), file).objects) names.add(ob.name);
        }
      }
      classes = [...names].sort();
    }
  }
  const catId = new Map(classes.map((n, i) => [n, i + 1]));
  const inst: CocoInstances = { images: [], annotations: [], categories: classes.map((name, i) => ({ id: i + 1, name, supercategory: 'none' })) };
  const prefix = yearDirs.length > 1;
  const skipped: Record<string, number> = {};
  let difficult = 0;
  parsed.forEach((p, i) => {
    const jpeg = path.join(p.yearDir, 'JPEGImages');
    const candidates = [p.ann.filename, `${p.id}.jpg`, `${p.id}.png`];
    const src = candidates.map((c) => path.join(jpeg, c)).find((c) => fs.existsSync(c));
    if (!src) throw new DatasetError(`${p.xmlFile}: image not found (looked for ${candidates.map((c) => path.join(jpeg, c)).join(', ')})`);
    let { width, height } = p.ann;
    if (!width || !height) {
      const h = readImageHeader(src);
      if (typeof h === 'string') throw new DatasetError(`${src}: ${h} (needed for the image size missing in ${p.xmlFile})`);
      ({ width, height } = h);
    }
    const fileName = (prefix ? `${path.basename(p.yearDir)}_` : '') + path.basename(src);
    placeImage(src, path.join(o.out, o.split, fileName), !!o.copy);
    const imageId = i + 1;
    inst.images.push({ id: imageId, file_name: fileName, width, height });
    p.ann.objects.forEach((ob, k) => {
      const cid = catId.get(ob.name);
      if (cid === undefined) {
        if (o.classes) {
          skipped[ob.name] = (skipped[ob.name] ?? 0) + 1;
          return;
        }
        throw new DatasetError(`${p.xmlFile}: object ${k}: unknown class '${ob.name}'`);
      }
      const x = ob.xmin - 1;
      const y = ob.ymin - 1;
      const w = ob.xmax - ob.xmin + 1;
      const h = ob.ymax - ob.ymin + 1;
      if (w <= 0 || h <= 0)
        throw new DatasetError(`${p.xmlFile}: object ${k} (${ob.name}): empty box xmin=${ob.xmin} xmax=${ob.xmax} ymin=${ob.ymin} ymax=${ob.ymax}`);
      if (ob.difficult) difficult++;
      inst.annotations.push({
        id: inst.annotations.length + 1,
        image_id: imageId,
        category_id: cid,
        bbox: [x, y, w, h],
        area: w * h,
        iscrowd: ob.difficult ? 1 : 0,
      });
    });
    o.progress?.(i + 1, parsed.length);
  });
  writeJsonAtomic(instancesPath(o.out, o.split), inst);
  return { out: o.out, split: o.split, images: inst.images.length, annotations: inst.annotations.length, difficult, categories: classes, skipped };
}
