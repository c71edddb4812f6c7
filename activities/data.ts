/**
 * Control-queue data activity: make the campaign's data sets ready and describe them.
 *  - toy campaigns: generate the data (detection in COCO, VOC and BDD form, classification
 *    folders) with the datasets library, unless it is already there;
 *  - convert transfer sets in VOC / BDD form to canonical COCO form under the artifact store
 *    (once per source fingerprint);
 *  - check every detection set (annotations parse, images referenced exist) and fingerprint it
 *    (sha256 of the annotation files; part of every evaluation key).
 * Returns a small summary; bad data fails non-retryably with a message naming the file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { describeZodError } from '../common/errors';
import { parseCampaign, transferProtocol, type Campaign, type TransferDataset } from '../protocol/campaign';
import { CocoInstancesSchema, instancesPath, imagesDir } from '../datasets/coco-schema';
import { writeSynthDetection } from '../datasets/synth/detection';
import { writeSynthClassification } from '../datasets/synth/classification';
import { convertToCoco } from '../datasets/convert';
import { checkInstances } from '../datasets/check';
import { DataRoots } from '../datasets/confine';
import { formatProblem } from '../datasets/problems';
import type { ActivityDeps } from './index';
import { runDataThread } from './data-thread-client';
import { ArtifactStore, sha256, writeFileAtomic } from './artifact-store';
import type { DataSummary, DatasetRef } from './types';

const badData = (msg: string) => ApplicationFailure.nonRetryable(msg, 'BadData');

/**
 * Problems found by checkInstances that make a data set unusable at admission (the trainer would
 * fail on them mid-campaign, or train on wrong labels). Degenerate boxes are not among them: the
 * trainer drops them, as mmdetection does, and `data check` reports them.
 */
const ADMISSION_ERRORS = new Set(['unknown_category', 'unknown_image', 'duplicate_image_id', 'duplicate_category_id', 'no_categories']);

/**
 * Check a canonical COCO dir and fingerprint it. Images must resolve (symlinks followed) inside
 * the split's images folder or one of `allowedRoots` (datasets/confine.ts); one that does not is
 * refused and never read.
 */
export function describeCocoDir(name: string, root: string, trainSplit: string, valSplit: string, allowedRoots: readonly string[] = []): DatasetRef {
  const hash = sha256('');
  const h = [hash];
  const counts: number[] = [];
  let numClasses = 0;
  for (const split of [trainSplit, valSplit]) {
    const file = instancesPath(root, split);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw badData(`${name}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw badData(`${file}: not valid JSON: ${(e as Error).message}`);
    }
    const r = CocoInstancesSchema.safeParse(json);
    if (!r.success) throw badData(describeZodError(file, r.error));
    let firstError: string | undefined;
    checkInstances(r.data, file, (p) => {
      if (p.severity === 'error' && ADMISSION_ERRORS.has(p.code)) firstError ??= formatProblem(p);
    });
    if (firstError) throw badData(firstError);
    const roots = new DataRoots(imagesDir(root, split), allowedRoots);
    r.data.images.forEach((img, i) => {
      const c = roots.resolve(img.file_name);
      if ('problem' in c) {
        throw badData(`${file}: images[${i}] (id ${img.id}): ${c.problem === 'missing' ? `file ${c.path} does not exist` : c.message}`);
      }
    });
    numClasses = Math.max(numClasses, r.data.categories.length);
    counts.push(r.data.images.length);
    h.push(sha256(text));
  }
  if (numClasses === 0) throw badData(`${instancesPath(root, trainSplit)}: no categories`);
  return {
    name,
    root,
    trainSplit,
    valSplit,
    numClasses,
    trainImages: counts[0],
    valImages: counts[1],
    fingerprint: sha256(h.join('\n')),
  };
}

/** A fingerprint of a raw (VOC / BDD) dataset tree: names and sizes of its annotation files. */
function treeFingerprint(root: string): string {
  const entries: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 5) return;
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p, depth + 1);
      else if (/\.(xml|json|txt)$/.test(e.name)) entries.push(`${path.relative(root, p)}:${fs.statSync(p).size}:${sha256(fs.readFileSync(p))}`);
    }
  };
  walk(root, 0);
  return sha256(entries.join('\n'));
}

/**
 * A transfer data set in canonical COCO form with the splits of its protocol (transferProtocol:
 * the paper's VOC07+12 trainval / VOC07 test, BDD100K train / val, unless the campaign says
 * otherwise) and the metric its results are scored with.
 */
function prepareTransfer(st: ArtifactStore, t: TransferDataset): DatasetRef {
  const p = transferProtocol(t);
  const withMetric = (ref: DatasetRef): DatasetRef => (p.metric === 'coco-ap' ? ref : { ...ref, metric: p.metric });
  if (p.train.split === p.test.split)
    throw badData(`transfer dataset '${t.name}': train and test both use split '${p.train.split}' (the converted set needs one folder per split)`);
  if (t.format === 'coco') return withMetric(describeCocoDir(t.name, t.root, p.train.split, p.test.split));
  if (!fs.existsSync(t.root)) throw badData(`transfer dataset '${t.name}': ${t.root} does not exist`);
  // the splits are part of what is converted: another protocol on the same files is another set
  const out = st.datasetDir(t.name, sha256(`${treeFingerprint(t.root)}\n${JSON.stringify([p.train, p.test])}`));
  const done = path.join(out, '.converted');
  if (!fs.existsSync(done)) {
    const tmp = `${out}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    try {
      convertToCoco({ format: t.format, src: t.root, out: tmp, splits: [p.train, p.test] });
    } catch (e) {
      if (e instanceof ApplicationFailure) throw e;
      throw badData(`transfer dataset '${t.name}' (${t.format}, ${t.root}): ${(e as Error).message}`);
    }
    fs.rmSync(out, { recursive: true, force: true });
    fs.renameSync(tmp, out); // the converted set appears whole or not at all
    writeFileAtomic(done, new Date().toISOString() + '\n');
  }
  // the converted set links its images into the source tree the campaign names
  return withMetric(describeCocoDir(t.name, out, p.train.split, p.test.split, [t.root]));
}

function describeClassification(root: string): NonNullable<DataSummary['classification']> {
  const train = path.join(root, 'train');
  if (!fs.existsSync(train)) throw badData(`classification data: ${train} does not exist (expected <root>/train/<class>/*.png)`);
  const classes = fs
    .readdirSync(train, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  let images = 0;
  const parts: string[] = [];
  // class folders and images must resolve inside the classification root (symlinks never lead out)
  const roots = new DataRoots(root);
  for (const c of classes) {
    const files = fs.readdirSync(path.join(train, c)).sort();
    for (const f of files) {
      const r = roots.resolve(path.join('train', c, f));
      if ('problem' in r && r.problem === 'outside') throw badData(`classification data: ${r.message}`);
    }
    images += files.length;
    parts.push(`${c}:${files.length}:${files.join(',')}`);
  }
  if (classes.length < 2) throw badData(`classification data: ${train} needs at least two class folders`);
  return { root, classes: classes.length, trainImages: images, fingerprint: sha256(parts.join('\n')) };
}

/** Generate the toy data sets where missing (each form in its own folder, marked complete when whole). */
function synthesizeToyData(c: Campaign): boolean {
  const s = c.data.synthesize;
  if (!s) return false;
  let generated = false;
  /** `layoutFile`: a file the current generator writes; data generated by an older layout (without it) is generated again */
  const make = (dir: string, fn: (tmp: string) => void, layoutFile?: string) => {
    if (fs.existsSync(path.join(dir, '.complete')) && (!layoutFile || fs.existsSync(path.join(dir, layoutFile)))) return;
    const tmp = `${dir}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fn(tmp);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
    writeFileAtomic(path.join(dir, '.complete'), new Date().toISOString() + '\n');
    generated = true;
  };
  const opts = { train: s.trainImages, val: s.valImages, size: s.imageSize, classes: s.classes, seed: s.seed };
  make(c.data.detection.root, (out) => writeSynthDetection({ ...opts, out, format: 'coco' }));
  for (const t of c.data.transfer) {
    if (t.format === 'coco') make(t.root, (out) => writeSynthDetection({ ...opts, out, format: 'coco', seed: s.seed + 1 }));
    // VOC: the devkit layout of the paper's protocol (VOC2007 test) since 2026-11-30
    else
      make(
        t.root,
        (out) => writeSynthDetection({ ...opts, out, format: t.format as 'voc' | 'bdd', seed: s.seed + (t.format === 'voc' ? 2 : 3) }),
        t.format === 'voc' ? 'VOCdevkit/VOC2007/ImageSets/Main/test.txt' : undefined,
      );
  }
  if (c.data.classification) {
    make(c.data.classification.root, (out) =>
      // per class; enough that toy pretraining (batch 32) gets ~10 iterations an epoch and learns
      writeSynthClassification({
        out,
        train: Math.max(100, s.trainImages),
        val: Math.max(20, s.valImages),
        size: Math.min(64, s.imageSize),
        classes: Math.max(2, s.classes),
        seed: s.seed + 4,
      }),
    );
  }
  return generated;
}

/**
 * The work of prepareData, synchronous (generation, conversion, hashing): run in a worker thread by
 * the activity (activities/data-thread.ts), so it never blocks the control worker's event loop.
 */
export function prepareDataSync(input: unknown, defaultArtifactRoot: string): DataSummary {
  const r = parseCampaign(input);
  if (!r.success) throw ApplicationFailure.nonRetryable(describeZodError('campaign', r.error), 'InvalidCampaign');
  const c = r.data;
  const st = new ArtifactStore(c.artifactRoot ?? defaultArtifactRoot);
  const generated = synthesizeToyData(c);
  const d = c.data.detection;
  const detection = describeCocoDir('detection', d.root, d.trainSplit, d.valSplit);
  const transfer = c.data.transfer.map((t) => prepareTransfer(st, t));
  const classification = c.data.classification ? describeClassification(c.data.classification.root) : null;
  const campaignDir = st.campaignDir(c.id);
  fs.mkdirSync(campaignDir, { recursive: true });
  const summary: DataSummary = { detection, transfer, classification, campaignDir, generated };
  st.writeJson(path.join(campaignDir, 'data.json'), summary);
  return summary;
}

export function makeDataActivities(deps: ActivityDeps) {
  async function prepareData(input: unknown): Promise<DataSummary> {
    const summary = await runDataThread(input, deps.artifactRoot, deps.logger);
    const id = (input as { id?: unknown }).id;
    deps.logger.info({ campaign: id, generated: summary.generated, detection: summary.detection.fingerprint.slice(0, 12) }, 'campaign data ready');
    return summary;
  }
  return { prepareData };
}
