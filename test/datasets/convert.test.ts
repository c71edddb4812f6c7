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

  it("VOC: synth voc is the paper's devkit layout; VOC07+12 trainval == synth train, VOC07 test == synth val (difficult -> iscrowd)", async () => {
    writeSynthDetection({ ...base, classes: 5, format: 'coco', out: path.join(dir, 'coco') });
    writeSynthDetection({ ...base, classes: 5, format: 'voc', out: path.join(dir, 'voc') });
    const main = (y: string, f: string) =>
      fs
        .readFileSync(path.join(dir, 'voc/VOCdevkit', y, 'ImageSets/Main', `${f}.txt`), 'utf8')
        .trim()
        .split('\n');
    expect(main('VOC2007', 'trainval')).toHaveLength(6);
    expect(main('VOC2012', 'trainval')).toHaveLength(6);
    expect(main('VOC2007', 'test')).toHaveLength(base.val);
    expect([...main('VOC2007', 'train'), ...main('VOC2007', 'val')]).toEqual(main('VOC2007', 'trainval'));
    expect(fs.existsSync(path.join(dir, 'voc/VOCdevkit/VOC2012/ImageSets/Main/test.txt'))).toBe(false); // as in the real devkit
    const out = path.join(dir, 'voc-coco');
    let difficult = 0;
    for (const [split, years, synth] of [
      ['trainval', undefined, 'train'],
      ['test', ['2007'], 'val'],
    ] as const) {
      const r = convertVoc({ input: path.join(dir, 'voc', 'VOCdevkit'), split, out, years: years && [...years] });
      difficult += r.difficult;
      const want = read(path.join(dir, 'coco/annotations', `instances_${synth}.json`));
      const got = read(path.join(out, 'annotations', `instances_${split}.json`));
      const wantNames = new Map(want.categories.map((c) => [c.id, c.name]));
      const gotNames = new Map(got.categories.map((c) => [c.id, c.name]));
      // same classes (VOC: sorted names), same images and sizes (two years merged: file names get the year)
      expect([...gotNames.values()]).toEqual([...wantNames.values()].sort());
      const unprefixed = (f: string) => f.replace(/^VOC\d{4}_/, '');
      expect(got.images.map((i) => [unprefixed(i.file_name), i.width, i.height])).toEqual(want.images.map((i) => [i.file_name, i.width, i.height]));
      // boxes equal; the VOC copy marks some objects difficult, which become iscrowd=1
      const w = boxesByImage(want, (c) => wantNames.get(c)!);
      const g = new Map([...boxesByImage(got, (c) => gotNames.get(c)!)].map(([f, b]) => [unprefixed(f), b]));
      for (const [file, boxes] of w) expect(g.get(file)!.map((s) => s.replace(/\|1$/, '|0'))).toEqual(boxes);
      // images are linked and readable
      for (const im of got.images) expect(fs.statSync(path.join(out, split, im.file_name)).size).toBeGreaterThan(0);
    }
    expect(difficult).toBeGreaterThan(0);
    // the converted set links into the VOC tree: data check reads those images only when told to trust it
    expect((await checkDataset(out)).counts.image_outside_root).toBe(12 + 5);
    const report = await checkDataset(out, { allowedRoots: [path.join(dir, 'voc')] });
    expect(report.errors).toBe(0);
    expect(report.splits.map((s) => s.split).sort()).toEqual(['test', 'trainval']);
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
    expect((await checkDataset(out, { allowedRoots: [path.join(dir, 'bdd')] })).errors).toBe(0);
  });

  it("convertToCoco (the campaign entry point) writes the protocol's splits with the same categories", () => {
    const out = path.join(dir, 'campaign-voc');
    const r = convertToCoco({ format: 'voc', src: path.join(dir, 'voc'), out, splits: [{ split: 'trainval' }, { split: 'test', years: ['2007'] }] });
    expect(r.map((x) => x.split)).toEqual(['trainval', 'test']);
    const train = read(path.join(out, 'annotations/instances_trainval.json'));
    const test = read(path.join(out, 'annotations/instances_test.json'));
    expect(test.categories).toEqual(train.categories);
    expect(train.images).toHaveLength(base.train);
    expect(test.images).toHaveLength(base.val);
    expect(() => convertToCoco({ format: 'voc', src: path.join(dir, 'voc'), out, splits: ['test', { split: 'test', years: ['2007'] }] })).toThrow(
      /split names must differ/,
    );
    expect(() => convertToCoco({ format: 'voc', src: path.join(dir, 'voc'), out, splits: [{ split: 'test', years: ['2012'] }] })).toThrow(
      /VOC2012\/ImageSets\/Main\/test\.txt: split file not found/,
    );
    const outB = path.join(dir, 'campaign-bdd');
    expect(convertToCoco({ format: 'bdd', src: path.join(dir, 'bdd'), out: outB }).map((x) => x.images)).toEqual([base.train, base.val]);
  });

  it('VOC: merges VOC2007 + VOC2012 (prefixed file names); BDD: 2018 names, ignore regions, skipped categories, frames without labels', () => {
    const devkit = path.join(dir, 'voc', 'VOCdevkit');
    const out = path.join(dir, 'voc0712');
    const r = convertVoc({ input: path.join(dir, 'voc'), split: 'trainval', out });
    expect(r.images).toBe(base.train);
    const inst = read(path.join(out, 'annotations/instances_trainval.json'));
    expect(inst.images[0].file_name).toBe('VOC2007_train_000001.png');
    expect(inst.images[6].file_name).toBe('VOC2012_train_000007.png');
    expect(convertVoc({ input: devkit, split: 'val', out: path.join(dir, 'voc12'), years: ['2012'] }).images).toBe(3);

    const root = path.join(dir, 'bdd2018');
    fs.mkdirSync(path.join(root, 'labels'), { recursive: true });
    fs.mkdirSync(path.join(root, 'images', '100k', 'val'), { recursive: true });
    for (const n of ['a.png', 'b.png']) fs.copyFileSync(path.join(dir, 'bdd/images/100k/val/val_000001.png'), path.join(root, 'images/100k/val', n));
    const box = { x1: 1, y1: 2, x2: 11.5, y2: 22 };
    fs.writeFileSync(
      path.join(root, 'labels', 'bdd100k_labels_images_val.json'),
      JSON.stringify([
        {
          name: 'a.png',
          labels: [
            { category: 'person', box2d: box },
            { category: 'bike', box2d: box },
            { category: 'motor', box2d: box },
            { category: 'other vehicle', box2d: box },
            { category: 'car', box2d: box, attributes: { crowd: true } },
            { category: 'van', box2d: box },
            { category: 'animal', box2d: box },
            { category: 'drivable area', poly2d: [] },
          ],
        },
        { name: 'b.png', labels: null },
      ]),
    );
    const b = convertBdd({ input: root, split: 'val', out: path.join(dir, 'bdd2018-coco') });
    // BDD's det config: 'other vehicle' and crowd boxes are ignore regions of 'car', 'van' is a car; unknown boxed categories are dropped
    expect(b).toMatchObject({ images: 2, annotations: 6, difficult: 2, skipped: { animal: 1 } });
    const bi = read(path.join(dir, 'bdd2018-coco/annotations/instances_val.json'));
    const names = new Map(bi.categories.map((c) => [c.id, c.name]));
    expect(bi.annotations.map((a) => `${names.get(a.category_id)}:${a.iscrowd}`)).toEqual([
      'pedestrian:0',
      'bicycle:0',
      'motorcycle:0',
      'car:1',
      'car:1',
      'car:0',
    ]);
    expect(bi.annotations[0].bbox).toEqual([1, 2, 10.5, 20]);
    fs.writeFileSync(path.join(root, 'labels', 'bdd100k_labels_images_val.json'), JSON.stringify([{ name: 'zzz.png', labels: [] }]));
    expect(() => convertBdd({ input: root, split: 'val', out: path.join(dir, 'x') })).toThrow(/frame 0 \(zzz\.png\): image .*zzz\.png: missing/);
  });

  it('VOC XML errors name the file and object', () => {
    expect(() =>
      parseVocXml('<annotation><filename>a.jpg</filename><object><name>cat</name><bndbox><xmin>x</xmin></bndbox></object></annotation>', 'A/1.xml'),
    ).toThrow('A/1.xml: object 0 (cat): <xmin> is not a number');
    expect(() => parseVocXml('<foo/>', 'A/2.xml')).toThrow('A/2.xml: not a VOC annotation');
    const a = parseVocXml(
      '<annotation><filename>b.jpg</filename><size><width>10</width><height>20</height></size><object><name>person</name><difficult>1</difficult><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>5.0</xmax><ymax>9</ymax></bndbox><part><name>head</name><bndbox><xmin>3</xmin><ymin>3</ymin><xmax>4</xmax><ymax>4</ymax></bndbox></part></object></annotation>',
      'x.xml',
    );
    expect(a).toEqual({ filename: 'b.jpg', width: 10, height: 20, objects: [{ name: 'person', difficult: true, xmin: 1, ymin: 2, xmax: 5, ymax: 9 }] });
  });
});
