/** Converter round trips: the same generated scenes written as VOC / BDD and converted back equal the COCO form. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { convertBdd } from '../../datasets/bdd';
import { convertToCoco } from '../../datasets/convert';
import { checkDataset } from '../../datasets/check';
import type { CocoInstances } from '../../datasets/coco-schema';
import { writeSynthDetection } from '../../datasets/synth/detection';
import { convertVoc, parseVocXml } from '../../datasets/voc';

const read = (f: string): CocoInstances => JSON.parse(fs.readFileSync(f, 'utf8'));

/** image file name -> sorted list of "class|x,y,w,h|crowd" */
function boxesByImage(inst: CocoInstances, nameOf: (catId: number) => string): Map<string, string[]> {
  const files = new Map(inst.images.map((im) => [im.id, im.file_name]));
  const out = new Map<string, string[]>(inst.images.map((im) => [im.file_name, []]));
  for (const a of inst.annotations) out.get(files.get(a.image_id)!)!.push(`${nameOf(a.category_id)}|${a.bbox.join(',')}|${a.iscrowd}`);
  for (const v of out.values()) v.sort();
  return out;
}

describe('converters', () => {
  let dir: string;
  const base = { train: 12, val: 5, size: 96, seed: 21 };
  beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-convert-'))));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('VOC: synth voc -> convert == synth coco (difficult -> iscrowd), for both splits, and passes data check', async () => {
    writeSynthDetection({ ...base, classes: 5, format: 'coco', out: path.join(dir, 'coco') });
    writeSynthDetection({ ...base, classes: 5, format: 'voc', out: path.join(dir, 'voc') });
    const out = path.join(dir, 'voc-coco');
    let difficult = 0;
    for (const split of ['train', 'val']) {
      const r = convertVoc({ input: path.join(dir, 'voc', 'VOCdevkit'), split, out });
      difficult += r.difficult;
      const want = read(path.join(dir, 'coco/annotations', `instances_${split}.json`));
      const got = read(path.join(out, 'annotations', `instances_${split}.json`));
      const wantNames = new Map(want.categories.map((c) => [c.id, c.name]));
      const gotNames = new Map(got.categories.map((c) => [c.id, c.name]));
      // same classes (VOC: sorted names), same images and sizes
      expect([...gotNames.values()]).toEqual([...wantNames.values()].sort());
      expect(got.images.map((i) => [i.file_name, i.width, i.height])).toEqual(want.images.map((i) => [i.file_name, i.width, i.height]));
      // boxes equal; the VOC copy marks some objects difficult, which become iscrowd=1
      const w = boxesByImage(want, (c) => wantNames.get(c)!);
      const g = boxesByImage(got, (c) => gotNames.get(c)!);
      for (const [file, boxes] of w) expect(g.get(file)!.map((s) => s.replace(/\|1$/, '|0'))).toEqual(boxes);
      // images are linked and readable
      for (const im of got.images) expect(fs.statSync(path.join(out, split, im.file_name)).size).toBeGreaterThan(0);
    }
    expect(difficult).toBeGreaterThan(0);
    const report = await checkDataset(out);
    expect(report.errors).toBe(0);
    expect(report.splits.map((s) => s.split)).toEqual(['train', 'val']);
  });

  it('BDD: synth bdd -> convert == synth coco (10 classes, lane labels skipped)', async () => {
    writeSynthDetection({ ...base, classes: 10, format: 'coco', out: path.join(dir, 'coco10') });
    writeSynthDetection({ ...base, classes: 10, format: 'bdd', out: path.join(dir, 'bdd') });
    const out = path.join(dir, 'bdd-coco');
    for (const split of ['train', 'val']) {
      const r = await convertBdd({ input: path.join(dir, 'bdd'), split, out, copy: split === 'val' });
      expect(r.categories).toHaveLength(10);
      const want = read(path.join(dir, 'coco10/annotations', `instances_${split}.json`));
      const got = read(path.join(out, 'annotations', `instances_${split}.json`));
      // same class index (BDD names replace the shape names)
      expect(boxesByImage(got, (c) => String(c))).toEqual(boxesByImage(want, (c) => String(c)));
      expect(got.images.map((i) => [i.width, i.height])).toEqual(want.images.map((i) => [i.width, i.height]));
    }
    expect(fs.lstatSync(path.join(out, 'val', 'val_000001.png')).isSymbolicLink()).toBe(false);
    expect(fs.lstatSync(path.join(out, 'train', 'train_000001.png')).isSymbolicLink()).toBe(true);
    expect((await checkDataset(out)).errors).toBe(0);
  });

  it('convertToCoco (the campaign entry point) writes train and val with the same categories', () => {
    const out = path.join(dir, 'campaign-voc');
    const r = convertToCoco({ format: 'voc', src: path.join(dir, 'voc'), out });
    expect(r.map((x) => x.split)).toEqual(['train', 'val']);
    const train = read(path.join(out, 'annotations/instances_train.json'));
    const val = read(path.join(out, 'annotations/instances_val.json'));
    expect(val.categories).toEqual(train.categories);
    expect(train.images).toHaveLength(base.train);
    const outB = path.join(dir, 'campaign-bdd');
    expect(convertToCoco({ format: 'bdd', src: path.join(dir, 'bdd'), out: outB }).map((x) => x.images)).toEqual([base.train, base.val]);
  });

  it('VOC: merges VOC2007 + VOC2012 (prefixed file names); BDD: 2018 names, skipped categories, frames without labels', () => {
    const devkit = path.join(dir, 'voc', 'VOCdevkit');
    fs.cpSync(path.join(devkit, 'VOC2007'), path.join(devkit, 'VOC2012'), { recursive: true });
    const out = path.join(dir, 'voc0712');
    const r = convertVoc({ input: path.join(dir, 'voc'), split: 'trainval', out });
    expect(r.images).toBe(2 * (base.train + base.val));
    const inst = read(path.join(out, 'annotations/instances_trainval.json'));
    expect(inst.images[0].file_name).toBe('VOC2007_train_000001.png');
    expect(inst.images[base.train + base.val].file_name).toBe('VOC2012_train_000001.png');
    expect(convertVoc({ input: devkit, split: 'val', out: path.join(dir, 'voc12'), years: ['2012'] }).images).toBe(base.val);
    fs.rmSync(path.join(devkit, 'VOC2012'), { recursive: true });

    const root = path.join(dir, 'bdd2018');
    fs.mkdirSync(path.join(root, 'labels'), { recursive: true });
    fs.mkdirSync(path.join(root, 'images', '100k', 'val'), { recursive: true });
    for (const n of ['a.png', 'b.png']) fs.copyFileSync(path.join(dir, 'bdd/images/100k/val/val_000001.png'), path.join(root, 'images/100k/val', n));
    const box = { x1: 1, y1: 2, x2: 11.5, y2: 22 };
    fs.writeFileSync(
      path.join(root, 'labels', 'bdd100k_labels_images_val.json'),
      JSON.stringify([
        { name: 'a.png', labels: [{ category: 'person', box2d: box }, { category: 'bike', box2d: box }, { category: 'motor', box2d: box }, { category: 'other vehicle', box2d: box }, { category: 'drivable area', poly2d: [] }] },
        { name: 'b.png', labels: null },
      ]),
    );
    const b = convertBdd({ input: root, split: 'val', out: path.join(dir, 'bdd2018-coco') });
    expect(b).toMatchObject({ images: 2, annotations: 3, skipped: { 'other vehicle': 1 } });
    const bi = read(path.join(dir, 'bdd2018-coco/annotations/instances_val.json'));
    const names = new Map(bi.categories.map((c) => [c.id, c.name]));
    expect(bi.annotations.map((a) => names.get(a.category_id))).toEqual(['pedestrian', 'bicycle', 'motorcycle']);
    expect(bi.annotations[0].bbox).toEqual([1, 2, 10.5, 20]);
    fs.writeFileSync(path.join(root, 'labels', 'bdd100k_labels_images_val.json'), JSON.stringify([{ name: 'zzz.png', labels: [] }]));
    expect(() => convertBdd({ input: root, split: 'val', out: path.join(dir, 'x') })).toThrow(/frame 0 \(zzz\.png\): image .*zzz\.png: missing/);
  });

  it('VOC XML errors name the file and object', () => {
    expect(() => parseVocXml('<annotation><filename>a.jpg</filename><object><name>cat</name><bndbox><xmin>x</xmin></bndbox></object></annotation>', 'A/1.xml')).toThrow(
      'A/1.xml: object 0 (cat): <xmin> is not a number',
    );
    expect(() => parseVocXml('<foo/>', 'A/2.xml')).toThrow('A/2.xml: not a VOC annotation');
    const a = parseVocXml(
      '<annotation><filename>b.jpg</filename><size><width>10</width><height>20</height></size><object><name>person</name><difficult>1</difficult><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>5.0</xmax><ymax>9</ymax></bndbox><part><name>head</name><bndbox><xmin>3</xmin><ymin>3</ymin><xmax>4</xmax><ymax>4</ymax></bndbox></part></object></annotation>',
      'x.xml',
    );
    expect(a).toEqual({ filename: 'b.jpg', width: 10, height: 20, objects: [{ name: 'person', difficult: true, xmin: 1, ymin: 2, xmax: 5, ymax: 9 }] });
  });
});
