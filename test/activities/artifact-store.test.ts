/**
 * The artifact store on a full disk: a child process with a tiny file-size limit (RLIMIT_FSIZE via
 * prlimit; works for root, unlike a read-only directory) writes through the compiled store
 * (dist/, built by scripts/setup.sh). Each failed write names its path, leaves the old record and
 * the results log as they were (no temp files, no half line), and succeeds once space is back.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArtifactStore, StorageError, storageError, writeFileAtomic } from '../../activities/artifact-store';
import { tmpDir } from './mock-trainer';

const work = tmpDir('smnas-store-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const DIST = path.join(__dirname, '..', '..', 'dist', 'activities', 'artifact-store.js');

test('full disk (RLIMIT_FSIZE): clear errors naming the path, nothing half-written, retried writes succeed', () => {
  expect(fs.existsSync(DIST)).toBe(true);
  const st = new ArtifactStore(path.join(work, 'store'));
  const record = st.benchFile('k1', 'cpu');
  st.writeJson(record, { medianMs: 1 });
  st.appendResultLine('c1', 'k1', { mAP: 0.5 });
  const log = path.join(st.campaignDir('c1'), 'results.jsonl');
  const logBefore = fs.readFileSync(log, 'utf8');
  const big = 'x'.repeat(20000);
  const child = `
    const { ArtifactStore } = require(${JSON.stringify(DIST)});
    const st = new ArtifactStore(${JSON.stringify(st.root)});
    const out = {};
    for (const [name, fn] of Object.entries({
      record: () => st.writeJson(${JSON.stringify(record)}, { medianMs: 2, pad: ${JSON.stringify(big)} }),
      log: () => st.appendResultLine('c1', 'k2', { mAP: 0.6, pad: ${JSON.stringify(big)} }),
    })) {
      try { fn(); out[name] = 'written'; } catch (e) { out[name] = { name: e.name, message: e.message }; }
    }
    process.stdout.write(JSON.stringify(out));`;
  const out = JSON.parse(execFileSync('prlimit', ['--fsize=8192', process.execPath, '-e', child], { encoding: 'utf8' }));
  expect(out.record).toEqual({ name: 'StorageError', message: expect.stringContaining(`cannot write ${record}: file too large (file size limit)`) });
  expect(out.log).toEqual({ name: 'StorageError', message: expect.stringContaining(`cannot write ${log}: file too large`) });
  // the old record and the log are intact; no temp file, no marker for the failed line
  expect(JSON.parse(fs.readFileSync(record, 'utf8'))).toEqual({ medianMs: 1 });
  expect(fs.readdirSync(path.dirname(record))).toEqual([path.basename(record)]);
  expect(fs.readFileSync(log, 'utf8')).toBe(logBefore);
  expect(fs.existsSync(path.join(st.campaignDir('c1'), 'logged', 'k2'))).toBe(false);
  // space is back: the retried writes go through
  st.writeJson(record, { medianMs: 2, pad: big });
  st.appendResultLine('c1', 'k2', { mAP: 0.6, pad: big });
  expect(st.readJson<{ medianMs: number }>(record)!.medianMs).toBe(2);
  expect(st.readResultsLog<{ key: string }>('c1').map((e) => e.key)).toEqual(['k1', 'k2']);
});

test('full-disk-like errno codes become StorageError (retryable); others keep their class', () => {
  const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  const e = storageError('/store/x.json', enospc);
  expect(e).toBeInstanceOf(StorageError);
  expect(e.message).toMatch(/^cannot write \/store\/x\.json: no space left on the device/);
  const erofs = storageError('/store/y.json', Object.assign(new Error('EROFS'), { code: 'EROFS' }));
  expect(erofs.message).toMatch(/read-only filesystem/);
  const other = new TypeError('bad argument');
  expect(storageError('/store/z.json', other)).toBe(other);
  // a path below a regular file: ENOTDIR is not a storage condition, but no temp file is left either
  fs.writeFileSync(path.join(work, 'plain'), 'x');
  expect(() => writeFileAtomic(path.join(work, 'plain', 'a.json'), '{}')).toThrow(/ENOTDIR|EEXIST/);
});

test('a results log whose last line was cut short reads without it; a bad line elsewhere is an error naming it', () => {
  const st = new ArtifactStore(path.join(work, 'torn'));
  st.appendResultLine('c', 'a', { mAP: 1 });
  const log = path.join(st.campaignDir('c'), 'results.jsonl');
  fs.appendFileSync(log, '{"key":"b","mA');
  expect(st.readResultsLog<{ key: string }>('c').map((e) => e.key)).toEqual(['a']);
  fs.writeFileSync(log, '{"key":"b","mA\n{"key":"a"}\n');
  expect(() => st.readResultsLog('c')).toThrow(`${log}: line 1 is not JSON`);
});
