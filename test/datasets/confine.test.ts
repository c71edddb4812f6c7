/**
 * Hostile data sets: `file_name` with `..` or an absolute path, symlinks leading out of the data
 * root (a real symlink to a FIFO: opening it would hang the test, so passing proves it was never
 * opened), absurd image sizes, non-finite / negative / zero-area boxes, unknown categories,
 * corrupt and truncated images. `data check` names file, record and field and exits 1; admission
 * (describeCocoDir, the campaign's data activity) fails non-retryably and nothing is stored.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { describeCocoDir } from '../../activities/data';
import { command as dataCommand } from '../../cli/commands/data';
import { checkDataset } from '../../datasets/check';
import { DataRoots } from '../../datasets/confine';
import { MAX_IMAGE_SIDE, unsafeFileName, type CocoInstances } from '../../datasets/coco-schema';
import { encodePngRgb } from '../../datasets/png';
import { writeSynthDetection } from '../../datasets/synth/detection';

let dir: string;
let good: string;
let outside: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-confine-'));
  good = path.join(dir, 'good');
  writeSynthDetection({ out: good, format: 'coco', train: 6, val: 3, size: 64, classes: 2, seed: 5 });
  outside = path.join(dir, 'outside');
  fs.mkdirSync(outside);
  // a FIFO: any open() for reading blocks until a writer comes, which never happens
  execFileSync('mkfifo', [path.join(outside, 'secret.png')]);
  fs.writeFileSync(path.join(outside, 'real.png'), encodePngRgb(64, 64, new Uint8Array(64 * 64 * 3)));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** a copy of the good set whose train split is edited by `edit` (images and files under train/) */
function variant(name: string, edit: (inst: CocoInstances, trainDir: string) => void, rawText?: (text: string) => string): string {
  const d = path.join(dir, name);
  fs.cpSync(good, d, { recursive: true });
  const file = path.join(d, 'annotations/instances_train.json');
  const inst = JSON.parse(fs.readFileSync(file, 'utf8')) as CocoInstances;
  edit(inst, path.join(d, 'train'));
  const text = JSON.stringify(inst);
  fs.writeFileSync(file, rawText ? rawText(text) : text);
  return d;
}

const admit =
  (d: string, roots: string[] = []) =>
  () =>
    describeCocoDir('detection', d, 'train', 'val', roots);

function admissionError(d: string, roots: string[] = []): ApplicationFailure {
  try {
    admit(d, roots)();
  } catch (e) {
    return e as ApplicationFailure;
  }
  throw new Error(`${d} was admitted`);
}

test('unsafeFileName: relative names without .. only', () => {
  expect(unsafeFileName('a.png')).toBeUndefined();
  expect(unsafeFileName('sub/dir/a..b.png')).toBeUndefined();
  expect(unsafeFileName('../a.png')).toMatch(/'\.\.' segment/);
  expect(unsafeFileName('x/../../a.png')).toMatch(/'\.\.' segment/);
  expect(unsafeFileName('/etc/passwd')).toMatch(/absolute/);
  expect(unsafeFileName('a\\..\\b.png')).toMatch(/backslash/);
  expect(unsafeFileName('a\0.png')).toMatch(/NUL/);
  expect(unsafeFileName('')).toMatch(/empty/);
});

test('the good set is admitted and clean', async () => {
  expect(admit(good)()).toMatchObject({ trainImages: 6, valImages: 3, numClasses: 2 });
  expect(await checkDataset(good)).toMatchObject({ ok: true, errors: 0 });
});

test('file_name with .. or an absolute path: an invalid record naming the field; never resolved', async () => {
  const d = variant('dotdot', (inst) => {
    inst.images[0].file_name = '../val/val_000001.png';
    inst.images[1].file_name = path.join(outside, 'real.png');
  });
  const r = await checkDataset(d);
  expect(r.ok).toBe(false);
  expect(r.counts.invalid_record).toBe(2);
  const msgs = r.problems.filter((p) => p.code === 'invalid_record').map((p) => `${p.record}: ${p.message}`);
  expect(msgs[0]).toMatch(/^images\[0\].*file_name.*'\.\.' segment/);
  expect(msgs[1]).toMatch(/^images\[1\].*file_name.*absolute path/);
  const e = admissionError(d);
  expect(e).toBeInstanceOf(ApplicationFailure);
  expect(e.nonRetryable).toBe(true);
  expect(e.type).toBe('BadData');
  expect(e.message).toMatch(/instances_train\.json: images\.0\.file_name: '\.\.\/val\/val_000001\.png' has a '\.\.' segment/);
});

test('a symlink leading out of the data root is refused and never opened (a real symlink to a FIFO)', async () => {
  const d = variant('symlink', (inst, trainDir) => {
    fs.symlinkSync(path.join(outside, 'secret.png'), path.join(trainDir, 'evil.png'));
    inst.images[0].file_name = 'evil.png';
    // a directory symlink leading out, and a dangling one
    fs.symlinkSync(outside, path.join(trainDir, 'sub'));
    inst.images[1].file_name = 'sub/real.png';
    fs.symlinkSync(path.join(outside, 'gone.png'), path.join(trainDir, 'dangling.png'));
    inst.images[2].file_name = 'dangling.png';
  });
  const r = await checkDataset(d);
  expect(r.counts.image_outside_root).toBe(2);
  expect(r.counts.missing_image).toBe(1);
  const out = r.problems.filter((p) => p.code === 'image_outside_root');
  expect(out[0].record).toBe('images[0] (id 1)');
  expect(out[0].message).toContain(`evil.png resolves to ${fs.realpathSync(path.join(outside, 'secret.png'))}, outside the data root`);
  const e = admissionError(d);
  expect(e.nonRetryable).toBe(true);
  expect(e.message).toMatch(/instances_train\.json: images\[0\] \(id 1\): .*evil\.png resolves to .*outside the data root/);
  // the folder a campaign names as trusted (a converted set's source) may be linked into ...
  const ok = variant('symlink-trusted', (inst, trainDir) => {
    fs.symlinkSync(outside, path.join(trainDir, 'sub'));
    inst.images[1].file_name = 'sub/real.png';
  });
  expect(admit(ok, [outside])()).toMatchObject({ trainImages: 6 });
  expect((await checkDataset(ok, { allowedRoots: [outside] })).counts.image_outside_root).toBeUndefined();
  // ... but only that folder: the FIFO next to it stays out of reach when the root is elsewhere
  expect(new DataRoots(path.join(d, 'train'), [path.join(dir, 'good')]).resolve('evil.png')).toMatchObject({ problem: 'outside' });
  // a symlinked images folder is the data root itself (a common layout: train2017 -> /bigdisk/...)
  const linkedSplit = path.join(dir, 'linked-split');
  fs.cpSync(good, linkedSplit, { recursive: true });
  fs.renameSync(path.join(linkedSplit, 'train'), path.join(dir, 'train-elsewhere'));
  fs.symlinkSync(path.join(dir, 'train-elsewhere'), path.join(linkedSplit, 'train'));
  expect(admit(linkedSplit)()).toMatchObject({ trainImages: 6 });
});

test('absurd sizes, non-finite / negative / zero-area boxes, unknown categories and images', async () => {
  const d = variant(
    'records',
    (inst) => {
      inst.images[0].width = 100_000;
      inst.images[0].height = 100_000;
      inst.images[1].width = 0;
      inst.annotations[0].bbox = [1, 2, 1234.5, 3];
      inst.annotations[1].bbox = [5, 5, -4, 3];
      inst.annotations[2].bbox = [5, 5, 0, 0];
      inst.annotations[3].category_id = 77;
      inst.annotations[4].image_id = 4242;
    },
    // JSON has no NaN or Infinity; 1e999 is how a file says it, and it parses as Infinity
    (text) => text.replace('1234.5', '1e999'),
  );
  const r = await checkDataset(d);
  expect(r.ok).toBe(false);
  const rec = (code: string) => r.problems.filter((p) => p.code === code).map((p) => `${p.record}: ${p.message}`);
  expect(rec('invalid_record')).toEqual(
    expect.arrayContaining([
      expect.stringMatching(new RegExp(`^images\\[0\\].*width.*${MAX_IMAGE_SIDE}`)),
      expect.stringMatching(/^images\[1\].*width/),
      expect.stringMatching(/^annotations\[0\].*bbox/),
    ]),
  );
  expect(rec('bbox_degenerate')).toEqual([expect.stringMatching(/^annotations\[1\]/), expect.stringMatching(/^annotations\[2\]/)]);
  expect(rec('unknown_category')[0]).toMatch(/^annotations\[3\] \(id \d+\): category_id 77 is not in categories/);
  // (the boxes of the dropped images[0] and [1] are reported too: their image is not in images)
  expect(rec('unknown_image')).toEqual(expect.arrayContaining([expect.stringMatching(/^annotations\[4\] \(id \d+\): image_id 4242 is not in images/)]));
  // admission names the first record at fault
  expect(admissionError(d).message).toMatch(/instances_train\.json: images\.0\.width: .*16384/);
  const cats = variant('unknown-cat', (inst) => {
    inst.annotations[3].category_id = 77;
  });
  expect(admissionError(cats).message).toMatch(/instances_train\.json: annotations\[3\] \(id \d+\): category_id 77 is not in categories/);
});

test('corrupt and truncated images: named by data check; the CLI exits 1', async () => {
  const d = variant('images', (inst, trainDir) => {
    const file = (i: number) => path.join(trainDir, inst.images[i].file_name);
    const png = fs.readFileSync(file(0));
    fs.writeFileSync(file(0), png.subarray(0, png.length - 40)); // cut short: header fine, no IEND
    fs.writeFileSync(file(1), png.subarray(0, 10)); // cut inside the header
    const flipped = Buffer.from(png);
    flipped.write('JUNK', 12, 'ascii'); // IHDR chunk type destroyed
    fs.writeFileSync(file(2), flipped);
    fs.writeFileSync(file(3), Buffer.alloc(0));
    // a PNG whose header claims an absurd size, annotated with the same size
    const huge = Buffer.from(png);
    huge.writeUInt32BE(MAX_IMAGE_SIDE * 8, 16);
    fs.writeFileSync(file(4), huge);
  });
  const r = await checkDataset(d);
  const rec = (code: string) => r.problems.filter((p) => p.code === code).map((p) => `${p.record}: ${p.message}`);
  expect(rec('truncated_image')).toEqual([expect.stringMatching(/^images\[0\] .*train_\d+\.png: PNG truncated/)]);
  expect(rec('unreadable_image')).toEqual([
    expect.stringMatching(/^images\[1\] .*: not a PNG or JPEG file/),
    expect.stringMatching(/^images\[2\] .*: PNG without IHDR chunk/),
    expect.stringMatching(/^images\[3\] .*: empty file/),
  ]);
  expect(rec('image_size_mismatch')).toEqual([
    expect.stringMatching(new RegExp(`^images\\[4\\] .* is ${MAX_IMAGE_SIDE * 8}x64 but the annotation says 64x64`)),
  ]);
  const out: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
  try {
    expect(await dataCommand.main(['check', d])).toBe(1);
  } finally {
    spy.mockRestore();
  }
  expect(out.join('')).toMatch(/error: .*instances_train\.json: images\[0\] \(id 1\): .*PNG truncated/);
});

test('mutated annotation files: data check never crashes, names file and record, and admission is never stricter', async () => {
  const fc = (await import('fast-check')).default;
  const { mutationOf } = await import('../support/mutate');
  const d = path.join(dir, 'mutated');
  fs.cpSync(good, d, { recursive: true });
  const file = path.join(d, 'annotations/instances_train.json');
  const base = JSON.parse(fs.readFileSync(file, 'utf8')) as CocoInstances;
  // a small document: two images, three boxes, the categories
  const doc = {
    images: base.images.slice(0, 2),
    annotations: base.annotations.filter((a) => a.image_id === base.images[0].id).slice(0, 3),
    categories: base.categories,
  };
  let rejected = 0;
  await fc.assert(
    fc.asyncProperty(mutationOf([doc]), async (m) => {
      fs.writeFileSync(file, JSON.stringify(m.value));
      const r = await checkDataset(d);
      for (const p of r.problems) {
        expect(p.file).toBeTruthy();
        expect(p.message).not.toMatch(/\[object Object\]|NaN/);
      }
      let admitted = true;
      try {
        admit(d)();
      } catch (e) {
        admitted = false;
        expect(e).toBeInstanceOf(ApplicationFailure);
        expect((e as ApplicationFailure).nonRetryable).toBe(true);
        expect((e as Error).message).toContain(file);
      }
      if (r.ok) expect(admitted).toBe(true);
      if (!admitted) {
        rejected++;
        expect(r.ok).toBe(false);
      }
    }),
    { numRuns: 150, seed: 15 },
  );
  expect(rejected).toBeGreaterThan(20);
});
