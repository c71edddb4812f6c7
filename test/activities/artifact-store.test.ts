/**
 * The artifact store on a full disk: a child process with a tiny file-size limit (RLIMIT_FSIZE via
 * prlimit; works for root, unlike a read-only directory) writes through the compiled store
 * (dist/, built by scripts/setup.sh). Each failed write names its path, leaves the old record and
 * the results log as they were (no temp files, no half line), and succeeds once space is back.
 * The results log on a shared filesystem: one file per line, atomic and idempotent, written by
 * concurrent processes (two hosts) without loss or interleaving, merged with an older appended log.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  ArtifactStore,
  readResultsText,
  resultRecordFile,
  resultsLogEntries,
  StorageError,
  storageError,
  writeFileAtomic,
} from '../../activities/artifact-store';
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
  const log = resultRecordFile(st.campaignDir('c1'), { key: 'k2' });
  const logBefore = readResultsText(st.campaignDir('c1'));
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
  expect(readResultsText(st.campaignDir('c1'))).toBe(logBefore);
  expect(fs.readdirSync(path.dirname(log))).toEqual([path.basename(resultRecordFile(st.campaignDir('c1'), { key: 'k1' }))]);
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

test('an appended results log (older campaigns) whose last line was cut short reads without it; a bad line elsewhere is an error naming it', () => {
  const st = new ArtifactStore(path.join(work, 'torn'));
  const log = path.join(st.campaignDir('c'), 'results.jsonl');
  fs.mkdirSync(path.dirname(log), { recursive: true });
  fs.writeFileSync(log, '{"key":"a","mAP":1}\n');
  fs.appendFileSync(log, '{"key":"b","mA');
  expect(st.readResultsLog<{ key: string }>('c').map((e) => e.key)).toEqual(['a']);
  fs.writeFileSync(log, '{"key":"b","mA\n{"key":"a"}\n');
  expect(() => st.readResultsLog('c')).toThrow(`${log}: line 1 is not JSON`);
});

test('results log: one file per line, idempotent, merged in log order with an older appended results.jsonl', () => {
  const st = new ArtifactStore(path.join(work, 'records'));
  const dir = st.campaignDir('c');
  // a campaign started before one-file-per-line: two appended lines (one logged twice by a retry)
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'results.jsonl'), '{"key":"old1","mAP":0.1}\n{"key":"old2","mAP":0.2}\n{"key":"old1","mAP":0.1}\n');
  st.appendResultLine('c', 'n1', { mAP: 0.3 });
  st.appendResultLine('c', 'n2', { mAP: 0.4, candidate: 'A' });
  st.appendResultLine('c', 'n2', { mAP: 0.4, candidate: 'B' }); // another candidate: its own line
  st.appendResultLine('c', 'n1', { mAP: 0.3 }); // a retried record activity: nothing more
  expect(fs.readdirSync(path.join(dir, 'results.d'))).toHaveLength(3);
  expect(fs.readdirSync(path.join(dir, 'results.d')).every((n) => /^[0-9a-f]{32}\.json$/.test(n))).toBe(true);
  const log = st.readResultsLog<{ key: string; candidate?: string }>('c');
  expect(log.map((e) => [e.key, e.candidate])).toEqual([
    ['old2', undefined],
    ['old1', undefined],
    ['n1', undefined],
    ['n2', 'A'],
    ['n2', 'B'],
  ]);
  // the legacy duplicate is still a line (the dashboard counts it); the records never duplicate
  expect(resultsLogEntries(dir)).toHaveLength(6);
  // export: the merged log as one file, one line per key and candidate; reading it back changes nothing
  st.exportResultsLog('c');
  expect(fs.readFileSync(path.join(dir, 'results.jsonl'), 'utf8').trim().split('\n')).toHaveLength(5);
  expect(st.readResultsLog<{ key: string }>('c')).toEqual(log);
  expect(resultsLogEntries(dir)).toHaveLength(5);
});

test('results log: concurrent writers (as two hosts on NFS) lose nothing and never interleave', () => {
  const st = new ArtifactStore(path.join(work, 'concurrent'));
  const big = 'y'.repeat(100_000); // far above any atomic-append size
  const child = (who: string) => `
    const { ArtifactStore } = require(${JSON.stringify(DIST)});
    const st = new ArtifactStore(${JSON.stringify(st.root)});
    for (let i = 0; i < 40; i++) {
      // both write keys 0..39 (the same evaluations, as two control workers retrying) and 20 of their own
      st.appendResultLine('c', 'k' + i, { mAP: i, pad: ${JSON.stringify(big)} });
      if (i % 2 === 0) st.appendResultLine('c', '${who}' + i, { mAP: i, pad: ${JSON.stringify(big)} });
    }`;
  return Promise.all(
    ['h1', 'h2'].map(
      (who) =>
        new Promise<void>((resolve, reject) => {
          const script = path.join(work, `writer-${who}.js`);
          fs.writeFileSync(script, child(who));
          const p = spawn(process.execPath, [script], { stdio: 'inherit' });
          p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer ${who} exited ${code}`))));
        }),
    ),
  ).then(() => {
    const log = st.readResultsLog<{ key: string; mAP: number; pad: string }>('c');
    expect(log).toHaveLength(40 + 20 + 20);
    expect(new Set(log.map((e) => e.key)).size).toBe(80);
    for (const e of log) expect([e.key, e.pad.length, e.mAP]).toEqual([e.key, big.length, Number(e.key.replace(/^(k|h1|h2)/, ''))]);
    // no temp file left behind
    expect(fs.readdirSync(path.join(st.campaignDir('c'), 'results.d')).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });
});
