/** data check reports every problem with file and record; loaders name file/record/line/column. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { command as dataCommand } from '../../cli/commands/data';
import { checkDataset, summarizeDataset } from '../../datasets/check';
import { DatasetError, loadCocoInstances } from '../../datasets/coco';
import type { CocoInstances } from '../../datasets/coco-schema';
import { streamJson } from '../../datasets/json-stream';
import { encodePngRgb } from '../../datasets/png';
import { writeSynthDetection } from '../../datasets/synth/detection';

describe('data check and COCO loading', () => {
  let dir: string;
  let good: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-check-'));
    good = path.join(dir, 'good');
    writeSynthDetection({ out: good, format: 'coco', train: 8, val: 4, size: 64, classes: 3, seed: 2 });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a generated data set is clean; summarizeDataset gives classes and counts', async () => {
    const r = await checkDataset(good);
    expect(r).toMatchObject({ ok: true, errors: 0, warnings: 0 });
    const s = await summarizeDataset(good);
    expect(s.numClasses).toBe(3);
    expect(s.categories.map((c) => c.id)).toEqual([1, 2, 3]);
    expect(s.splits.train.images).toBe(8);
    expect(s.splits.val.images).toBe(4);
  });

  it('reports every kind of problem, each naming file and record', async () => {
    const bad = path.join(dir, 'bad');
    fs.cpSync(good, bad, { recursive: true });
    const file = path.join(bad, 'annotations/instances_train.json');
    const inst: CocoInstances = JSON.parse(fs.readFileSync(file, 'utf8'));
    inst.annotations[1].id = inst.annotations[0].id; // duplicate id
    inst.annotations[2].category_id = 99; // unknown category
    inst.annotations[3].bbox = [50, 50, 40, 40]; // outside the 64x64 image
    inst.annotations[4].bbox = [5, 5, 0, 3]; // zero size
    inst.annotations[5].image_id = 12345; // unknown image
    inst.images.push({ id: 100, file_name: 'nope.png', width: 64, height: 64 }); // missing image
    fs.writeFileSync(path.join(bad, 'train', 'small.png'), encodePngRgb(32, 16, new Uint8Array(32 * 16 * 3)));
    inst.images.push({ id: 101, file_name: 'small.png', width: 64, height: 64 }); // size mismatch
    fs.writeFileSync(path.join(bad, 'train', 'junk.png'), 'not an image');
    inst.images.push({ id: 102, file_name: 'junk.png', width: 64, height: 64 }); // unreadable
    (inst.images as unknown[]).push({ id: 103, file_name: 'x.png', width: -3 }); // invalid record
    fs.writeFileSync(file, JSON.stringify(inst));
    // the val split is malformed JSON
    fs.writeFileSync(path.join(bad, 'annotations/instances_val.json'), '{"images": [\n  {"id": 1,\n   "file_name": "a.png" "width": 3}]}');
    const r = await checkDataset(bad);
    expect(r.ok).toBe(false);
    for (const code of [
      'duplicate_annotation_id',
      'unknown_category',
      'bbox_outside_image',
      'bbox_degenerate',
      'unknown_image',
      'missing_image',
      'image_size_mismatch',
      'unreadable_image',
      'invalid_record',
      'malformed_json',
    ]) {
      expect(r.counts[code]).toBeGreaterThanOrEqual(1);
    }
    const byCode = (c: string) => r.problems.find((p) => p.code === c)!;
    expect(byCode('unknown_category').record).toBe('annotations[2] (id 3)');
    expect(byCode('image_size_mismatch').message).toContain('is 32x16 but the annotation says 64x64');
    expect(byCode('invalid_record').record).toBe('images[11] (id 103)');
    expect(byCode('invalid_record').message).toMatch(/width/);
    expect(byCode('malformed_json').message).toMatch(/line 3, column 25 \(images\[0\]\)/);
    expect(byCode('missing_image').file).toBe(file);

    // the CLI exits 1 and prints every problem
    const out: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    try {
      expect(await dataCommand.main(['check', bad])).toBe(1);
    } finally {
      spy.mockRestore();
    }
    const text = out.join('');
    expect(text).toMatch(/error: .*instances_train.json: annotations\[2\] \(id 3\): category_id 99 is not in categories/);
    expect(text).toMatch(/FAILED: \d+ errors/);
  });

  it('loader errors name file and record; malformed JSON gives line and column', async () => {
    const f = path.join(dir, 'x.json');
    fs.writeFileSync(
      f,
      JSON.stringify({
        images: [{ id: 1, file_name: 'a', width: 1, height: 1 }],
        annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 1], area: 1 }],
        categories: [],
      }),
    );
    await expect(loadCocoInstances(f)).rejects.toThrow(/x\.json: annotations\[0\] \(id 1\): bbox/);
    fs.writeFileSync(f, '{"images": [], "annotations": [],\n "categories": [ {"id": 1, "name": "a"}, ]}');
    await expect(loadCocoInstances(f)).rejects.toThrow(/x\.json: expected a value, found '\]' at line 2, column 42 \(categories\[1\]\)/);
    fs.writeFileSync(f, '{"annotations": []}');
    await expect(loadCocoInstances(f)).rejects.toThrow(DatasetError);
    await expect(loadCocoInstances(path.join(dir, 'missing.json'))).rejects.toThrow(/missing\.json: no such file/);
  });

  it('streaming with tiny reads gives the same records as JSON.parse (segmentation dropped)', async () => {
    const file = path.join(good, 'annotations/instances_train.json');
    const inst = JSON.parse(fs.readFileSync(file, 'utf8'));
    inst.annotations[0].segmentation = [[1, 2, 3, 4, 5, 6]];
    inst.info = { description: 'escaped "quotes" and brackets ] } [ {', version: 1 };
    const f2 = path.join(dir, 'stream.json');
    fs.writeFileSync(f2, JSON.stringify(inst, null, 1));
    for (const chunkSize of [1, 7, 4096]) {
      const got = await loadCocoInstances(f2, { stream: true, chunkSize });
      delete inst.annotations[0].segmentation;
      expect(got.annotations).toEqual(inst.annotations.map((a: object) => ({ iscrowd: 0, ...a })));
      expect(got.images).toEqual(inst.images);
      expect(got.categories).toEqual(inst.categories);
    }
    const seen: string[] = [];
    const arr = path.join(dir, 'arr.json');
    fs.writeFileSync(arr, '[1, "a\\"]", {"b": [2, {}]}, null]');
    await streamJson(arr, { element: (_k, v) => seen.push(JSON.stringify(v)), chunkSize: 3 });
    expect(seen).toEqual(['1', '"a\\"]"', '{"b":[2,{}]}', 'null']);
    fs.writeFileSync(arr, '[{"a": 1}, {"a": NaN}]');
    await expect(streamJson(arr, { element: () => undefined })).rejects.toThrow(/NaN .*line 1, column 18 \(record 1\)/);
  });
});
