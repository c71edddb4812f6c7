/** scoreDatasetMetric: a transfer set's own metric from the trainer's detections (real files, the project's VOC evaluator). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { scoreDatasetMetric } from '../../activities/training';
import type { DatasetRef } from '../../activities/types';
import { instancesPath, type CocoInstances } from '../../datasets/coco-schema';
import { tmpDir } from './mock-trainer';

const work = tmpDir('smnas-metric-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const gt: CocoInstances = {
  images: [
    { id: 1, file_name: 'a.png', width: 100, height: 100 },
    { id: 2, file_name: 'b.png', width: 100, height: 100 },
  ],
  annotations: [
    { id: 1, image_id: 1, category_id: 1, bbox: [10, 10, 30, 30], area: 900, iscrowd: 0 },
    { id: 2, image_id: 2, category_id: 1, bbox: [50, 50, 20, 20], area: 400, iscrowd: 0 },
    // a VOC 'difficult' object: neither found nor missed
    { id: 3, image_id: 2, category_id: 2, bbox: [0, 0, 10, 10], area: 100, iscrowd: 1 },
    { id: 4, image_id: 1, category_id: 2, bbox: [60, 10, 30, 30], area: 900, iscrowd: 0 },
  ],
  categories: [
    { id: 1, name: 'cat', supercategory: 'none' },
    { id: 2, name: 'dog', supercategory: 'none' },
  ],
};
const file = instancesPath(work, 'test');
fs.mkdirSync(path.dirname(file), { recursive: true });
fs.writeFileSync(file, JSON.stringify(gt));
const data = (metric?: DatasetRef['metric']): DatasetRef => ({
  name: 'voc',
  root: work,
  trainSplit: 'trainval',
  valSplit: 'test',
  numClasses: 2,
  trainImages: 2,
  valImages: 2,
  fingerprint: 'f',
  metric,
});
const dets = (list: object[]) => {
  const f = path.join(work, `dets-${Math.random()}.json`);
  fs.writeFileSync(f, JSON.stringify(list));
  return f;
};

describe('scoreDatasetMetric', () => {
  test('VOC mAP@0.5 from the detections: every object found is 1; a class missed halves it', async () => {
    const all = dets([
      { image_id: 1, category_id: 1, bbox: [11, 11, 30, 30], score: 0.9 },
      { image_id: 2, category_id: 1, bbox: [50, 50, 20, 21], score: 0.8 },
      { image_id: 1, category_id: 2, bbox: [60, 10, 30, 30], score: 0.7 },
      { image_id: 2, category_id: 2, bbox: [0, 0, 10, 10], score: 0.95 }, // on the difficult one: ignored
    ]);
    expect(await scoreDatasetMetric({ arch: 'a', data: data('voc-map50') }, 0.1, all)).toEqual({ name: 'voc-map50', value: 1 });
    expect(await scoreDatasetMetric({ arch: 'a', data: data('voc07-map50') }, 0.1, all)).toEqual({ name: 'voc07-map50', value: 1 });
    const noDogs = dets([
      { image_id: 1, category_id: 1, bbox: [11, 11, 30, 30], score: 0.9 },
      { image_id: 2, category_id: 1, bbox: [50, 50, 20, 21], score: 0.8 },
    ]);
    expect((await scoreDatasetMetric({ arch: 'a', data: data('voc-map50') }, 0.1, noDogs))!.value).toBeCloseTo(0.5, 10);
  });

  test("BDD's AP is the trainer's COCO AP; COCO AP adds nothing", async () => {
    expect(await scoreDatasetMetric({ arch: 'a', data: data('bdd-ap') }, 0.37, '/nonexistent')).toEqual({ name: 'bdd-ap', value: 0.37 });
    expect(await scoreDatasetMetric({ arch: 'a', data: data('coco-ap') }, 0.37, '/nonexistent')).toBeUndefined();
    expect(await scoreDatasetMetric({ arch: 'a', data: data() }, 0.37, '/nonexistent')).toBeUndefined();
  });

  test('unreadable detections fail non-retryably, naming the files', async () => {
    const err = await scoreDatasetMetric({ arch: 'x/y', data: data('voc-map50') }, 0.1, path.join(work, 'missing.json')).catch((e) => e);
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toMatch(/train x\/y: voc-map50 on .*instances_test\.json with .*missing\.json/);
  });
});
