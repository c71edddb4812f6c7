/**
 * The control activities on real (generated) files: toy data preparation (generation in COCO, VOC
 * and BDD form + classification folders, VOC/BDD converted to canonical COCO form, fingerprints),
 * the artifact store (atomic records, stable keys, reuse). The report: test/activities/report.test.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { createControlActivities } from '../../activities';
import { canonicalJson, evaluationKey, readResultsText } from '../../activities/artifact-store';
import type { DataSummary, EvaluationRecord, LookupResult } from '../../activities/types';
import { makeToyCampaign } from '../../protocol/campaign';
import { tmpDir } from './mock-trainer';

const work = tmpDir('smnas-data-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const acts = createControlActivities({
  artifactRoot: path.join(work, 'store'),
  trainerBin: '/nonexistent',
  devices: ['cpu'],
  logger: pino({ level: 'silent' }),
});
const run = <T>(fn: (...a: any[]) => Promise<T>, ...args: unknown[]) => new MockActivityEnvironment().run(fn as any, ...args) as Promise<T>;

describe('prepareData', () => {
  const base = makeToyCampaign({ id: 'data-test', dataRoot: path.join(work, 'toy'), artifactRoot: path.join(work, 'store') });
  const c = { ...base, data: { ...base.data, synthesize: { root: path.join(work, 'toy'), trainImages: 6, valImages: 3, imageSize: 64, classes: 3, seed: 1 } } };

  test('generates the toy data sets, converts VOC and BDD to COCO form, fingerprints everything', async () => {
    const s = await run<DataSummary>(acts.prepareData, c);
    expect(s.generated).toBe(true);
    expect(s.detection).toMatchObject({ numClasses: 3, trainImages: 6, valImages: 3 });
    expect(s.transfer.map((t) => t.name)).toEqual(['voc', 'bdd']);
    // the paper's transfer protocol: VOC07+12 trainval -> VOC07 test scored with VOC mAP@0.5; BDD train -> val with BDD's AP
    expect(s.transfer.map((t) => [t.trainSplit, t.valSplit, t.metric])).toEqual([
      ['trainval', 'test', 'voc-map50'],
      ['train', 'val', 'bdd-ap'],
    ]);
    for (const t of s.transfer) {
      expect(t.root.startsWith(path.join(work, 'store', 'datasets'))).toBe(true);
      expect(fs.existsSync(path.join(t.root, 'annotations', `instances_${t.trainSplit}.json`))).toBe(true);
      expect([t.trainImages, t.valImages]).toEqual([6, 3]);
    }
    expect(s.classification).toMatchObject({ classes: 3 });
    expect(fs.existsSync(path.join(s.campaignDir, 'data.json'))).toBe(true);
    // a second call generates nothing and gives the same fingerprints
    const again = await run<DataSummary>(acts.prepareData, c);
    expect(again.generated).toBe(false);
    expect(again.detection.fingerprint).toBe(s.detection.fingerprint);
    expect(again.transfer.map((t) => t.root)).toEqual(s.transfer.map((t) => t.root));
  });

  test('bad data is non-retryable and names the file', async () => {
    const broken = path.join(work, 'broken');
    fs.mkdirSync(path.join(broken, 'annotations'), { recursive: true });
    fs.writeFileSync(path.join(broken, 'annotations', 'instances_train.json'), '{"images": [');
    const bad = { ...c, data: { detection: { root: broken, trainSplit: 'train', valSplit: 'val' }, transfer: [] } };
    const err = await run(acts.prepareData, bad).catch((e) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toMatch(/instances_train\.json: not valid JSON/);
  });

  test('a transfer protocol of the campaign is converted as asked; impossible ones name the data set', async () => {
    const voc = {
      name: 'voc12',
      format: 'voc' as const,
      root: path.join(work, 'toy', 'voc'),
      train: { split: 'train', years: ['2012'] },
      test: { split: 'val', years: ['2012'] },
      metric: 'voc07-map50' as const,
    };
    const s = await run<DataSummary>(acts.prepareData, { ...c, data: { ...c.data, transfer: [voc] } });
    expect(s.transfer[0]).toMatchObject({ trainSplit: 'train', valSplit: 'val', trainImages: 2, valImages: 1, metric: 'voc07-map50' });
    const same = await run(acts.prepareData, { ...c, data: { ...c.data, transfer: [{ ...voc, test: { split: 'train' } }] } }).catch((e) => e);
    expect(same.nonRetryable).toBe(true);
    expect(same.message).toMatch(/transfer dataset 'voc12': train and test both use split 'train'/);
    const missing = await run(acts.prepareData, { ...c, data: { ...c.data, transfer: [{ ...voc, test: { split: 'test', years: ['2012'] } }] } }).catch(
      (e) => e,
    );
    expect(missing.nonRetryable).toBe(true);
    expect(missing.message).toMatch(/transfer dataset 'voc12' \(voc, .*\): .*VOC2012\/ImageSets\/Main\/test\.txt: split file not found/);
    const years = await run(acts.prepareData, {
      ...c,
      data: { ...c.data, transfer: [{ name: 'b', format: 'bdd', root: '/x', train: { split: 'train', years: ['2007'] } }] },
    }).catch((e) => e);
    expect(years.message).toMatch(/data\.transfer\.0\.train\.years: years apply to VOC data sets only/);
  });

  test('a data set leading out of its root is refused at admission; nothing is stored for the campaign', async () => {
    const hostile = path.join(work, 'hostile');
    fs.cpSync(path.join(work, 'toy', 'coco'), hostile, { recursive: true });
    const file = path.join(hostile, 'annotations', 'instances_val.json');
    const inst = JSON.parse(fs.readFileSync(file, 'utf8'));
    fs.symlinkSync(path.join(work, 'toy', 'voc'), path.join(hostile, 'val', 'escape'));
    inst.images[1].file_name = 'escape/../../secret.png';
    fs.writeFileSync(file, JSON.stringify(inst));
    const id = 'hostile-data';
    const bad = { ...c, id, data: { detection: { root: hostile, trainSplit: 'train', valSplit: 'val' }, transfer: [] } };
    const err = await run(acts.prepareData, bad).catch((e) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err.nonRetryable).toBe(true);
    expect(err.type).toBe('BadData');
    expect(err.message).toMatch(/instances_val\.json: images\.1\.file_name: 'escape\/\.\.\/\.\.\/secret\.png' has a '\.\.' segment/);
    // the same through a symlinked folder: the real path is outside
    inst.images[1].file_name = 'escape/VOCdevkit/VOC2007/JPEGImages/' + fs.readdirSync(path.join(work, 'toy', 'voc', 'VOCdevkit', 'VOC2007', 'JPEGImages'))[0];
    fs.writeFileSync(file, JSON.stringify(inst));
    const err2 = await run(acts.prepareData, bad).catch((e) => e);
    expect(err2.nonRetryable).toBe(true);
    expect(err2.message).toMatch(/instances_val\.json: images\[1\] \(id \d+\): .*escape\/VOCdevkit.* resolves to .*outside the data root/);
    expect(fs.existsSync(path.join(work, 'store', 'campaigns', id))).toBe(false);
    // class folders: an image symlinked out of the classification root
    const cls = path.join(work, 'hostile-cls');
    fs.cpSync(path.join(work, 'toy', 'classification'), cls, { recursive: true });
    const klass = fs.readdirSync(path.join(cls, 'train'))[0];
    fs.symlinkSync(path.join(hostile, 'annotations', 'instances_val.json'), path.join(cls, 'train', klass, 'zz.png'));
    const err3 = await run(acts.prepareData, { ...c, id, data: { ...c.data, classification: { root: cls } } }).catch((e) => e);
    expect(err3.nonRetryable).toBe(true);
    expect(err3.message).toMatch(/^classification data: .*zz\.png resolves to .*instances_val\.json, outside the data root/);
    expect(fs.existsSync(path.join(work, 'store', 'campaigns', id))).toBe(false);
  });

  test('an invalid campaign names the field', async () => {
    const err = await run(acts.prepareData, { ...c, candidates: -1 }).catch((e) => e);
    expect(err.message).toMatch(/^campaign: candidates: /);
  });
});

describe('artifact store', () => {
  test('keys are stable sha256 over arch, recipe hash, data, purpose and init weights', () => {
    const k = { arch: 'a', recipeHash: 'r', datasetFingerprint: 'd', purpose: 'structural' as const };
    expect(evaluationKey(k)).toMatch(/^[0-9a-f]{64}$/);
    expect(evaluationKey(k)).toBe(evaluationKey({ ...k }));
    expect(evaluationKey({ ...k, purpose: 'modular' })).not.toBe(evaluationKey(k));
    expect(evaluationKey({ ...k, initWeights: 'w.pt' })).not.toBe(evaluationKey(k));
    expect(canonicalJson({ b: 1, a: [1, { d: 2, c: 3 }] })).toBe(canonicalJson({ a: [1, { c: 3, d: 2 }], b: 1 }));
  });

  test('a recorded evaluation is found again (reuse) and logged once per key', async () => {
    const req = { arch: '64x64/basicblock_16_11-21-21-21/fpn(P1-P4,c=32)/rpn/2fc', recipe: 'toy-stage-one', datasetFingerprint: 'fp', purpose: 'structural' };
    const miss = await run<LookupResult>(acts.lookupEvaluation, req);
    expect(miss.record).toBeNull();
    const record: EvaluationRecord = {
      key: miss.key,
      campaignId: 'store-test',
      stage: 'structural',
      arch: req.arch,
      recipe: req.recipe,
      recipeHash: miss.recipeHash,
      datasetFingerprint: 'fp',
      train: {
        kind: 'ok',
        mAP: 0.3,
        stats: null,
        weights: '/w.pt',
        outDir: '/o',
        wallSeconds: 3,
        gpuSeconds: 3,
        device: 'cpu',
        attempt: 2,
        resumedFrom: '/c.pt',
        message: null,
      },
      cost: null,
      latency: null,
      finishedAt: '2026-01-01T00:00:00.000Z',
    };
    await run(acts.recordEvaluation, { record });
    await run(acts.recordEvaluation, { record }); // a retried record activity
    const hit = await run<LookupResult>(acts.lookupEvaluation, req);
    expect(hit.record).toEqual(record);
    const log = readResultsText(path.join(work, 'store', 'campaigns', 'store-test'))
      .trim()
      .split('\n');
    expect(log).toHaveLength(1);
    expect(JSON.parse(log[0])).toMatchObject({ arch: req.arch, recipe: 'toy-stage-one', mAP: 0.3, attempts: 2, wallSeconds: 3, reused: false });
    // no temp files left behind by the atomic writes
    const dir = path.dirname(path.join(work, 'store', 'evaluations', miss.key.slice(0, 2), 'x'));
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});

describe('prepareData off the main thread', () => {
  test('heavy data generation does not block the event loop that dispatches workflow tasks', async () => {
    const base = makeToyCampaign({ id: 'data-thread', dataRoot: path.join(work, 'heavy'), artifactRoot: path.join(work, 'store') });
    // detection data only (no transfer sets, no classification folders): a second or two of work
    const c = {
      ...base,
      data: {
        ...base.data,
        transfer: [],
        classification: undefined,
        synthesize: { root: path.join(work, 'heavy'), trainImages: 60, valImages: 10, imageSize: 128, classes: 3, seed: 2 },
      },
    };
    let longestGap = 0;
    let last = Date.now();
    const tick = setInterval(() => {
      const now = Date.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
    }, 10);
    const t0 = Date.now();
    const s = await run<DataSummary>(acts.prepareData, c);
    const took = Date.now() - t0;
    clearInterval(tick);
    longestGap = Math.max(longestGap, Date.now() - last); // a loop blocked to the end never ticked at all
    expect(s.detection).toMatchObject({ trainImages: 60, valImages: 10 });
    expect(took).toBeGreaterThan(500); // heavy enough that inline work would have stalled the loop
    expect(longestGap).toBeLessThan(Math.min(250, took / 2));
  });
});
