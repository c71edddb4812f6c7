/**
 * The artifact store: results and artifacts live here, outside workflow history. A folder by
 * default (docs/campaign.md documents the layout):
 *
 *   <root>/evaluations/<key[0..2]>/<key>.json   one EvaluationRecord per finished evaluation
 *   <root>/runs/<key>/                           trainer outDir of that evaluation (weights, checkpoints, detections)
 *   <root>/bench/<key>-<device>.json             latency figures of the older noise-image benchmark
 *   <root>/latency/<k[0..2]>/<k>.json            latency protocol measurements (activities/latency.ts)
 *   <root>/pretrain/<key>/                       backbone pretraining runs (weights)
 *   <root>/datasets/<name>-<fingerprint16>/      transfer sets converted to canonical COCO form
 *   <root>/campaigns/<campaignId>/               results.d/<id>.json (one file per results-log line), fronts.json,
 *                                                candidates.json, final.json, report.md, *.svg, results.jsonl (the
 *                                                merged log, exported by the report step; older campaigns appended it)
 *
 * Every write is atomic (write a temp file in the same folder, then rename), so a killed worker
 * never leaves a half-written record that a later campaign would trust.
 * Keys: sha256 over the canonical architecture, the recipe hash, the dataset fingerprint, the
 * purpose (stage) and any initial weights, so a restarted or new campaign on the same data finds
 * finished evaluations and reuses them instead of training again.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EvaluationRecordSchema, type EvaluationRecord, type EvalKeyInput } from './types';

export function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Stable JSON (sorted keys) so that equal recipes hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function recipeHash(recipe: unknown): string {
  return sha256(canonicalJson(recipe)).slice(0, 16);
}

/** The store key of an evaluation: sha256(canonical arch + recipe hash + dataset fingerprint + purpose + init). */
export function evaluationKey(k: Omit<EvalKeyInput, 'recipe'> & { recipeHash: string }): string {
  return sha256([k.arch, k.recipeHash, k.datasetFingerprint, k.purpose, k.initWeights ?? ''].join('\n'));
}

/**
 * A write to the store failed for a reason of the machine, not of the data: full disk, quota, file
 * size limit, read-only filesystem, I/O error. The message names the path; the record it was
 * writing is untouched (old content or absent). Retryable: Temporal retries the activity (with
 * backoff) until space is back. Any other write error keeps its own class.
 */
export class StorageError extends Error {
  override name = 'StorageError';
  constructor(
    readonly path: string,
    readonly code: string,
    cause: Error,
  ) {
    super(
      `cannot write ${path}: ${STORAGE_CODES[code] ?? code} (${cause.message.split('\n')[0]}); nothing was stored, the work is retried once it can be written`,
    );
  }
}

const STORAGE_CODES: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large (file size limit)',
  EROFS: 'read-only filesystem',
  EIO: 'I/O error',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
};

/** Rethrow a filesystem error of a store write as a StorageError naming `file` (others unchanged). */
export function storageError(file: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code && code in STORAGE_CODES) return new StorageError(file, code, e as Error);
  return e as Error;
}

/**
 * Write a file atomically: temp file beside it, fsync, rename. On failure the temp file is removed
 * and the target keeps its old content; full-disk-like failures throw StorageError.
 */
export function writeFileAtomic(file: string, data: string | Buffer): void {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw storageError(file, e);
  }
}

/** What identifies a results-log line: its key, and for stage two the candidate it was logged for. */
export function resultLineId(l: { key: string; candidate?: string | null }): string {
  return l.candidate ? `${l.key}\n${l.candidate}` : l.key;
}

export class ArtifactStore {
  constructor(readonly root: string) {}

  evaluationFile(key: string): string {
    return path.join(this.root, 'evaluations', key.slice(0, 2), `${key}.json`);
  }
  runDir(key: string): string {
    return path.join(this.root, 'runs', key);
  }
  benchFile(key: string, device: string): string {
    return path.join(this.root, 'bench', `${key}-${device.replace(/[^a-z0-9]/gi, '_')}.json`);
  }
  /** a latency measurement of the latency protocol (activities/latency.ts), keyed by everything that changes it */
  latencyFile(cacheKey: string): string {
    return path.join(this.root, 'latency', cacheKey.slice(0, 2), `${cacheKey}.json`);
  }
  pretrainDir(key: string): string {
    return path.join(this.root, 'pretrain', key);
  }
  datasetDir(name: string, fingerprint: string): string {
    return path.join(this.root, 'datasets', `${name}-${fingerprint.slice(0, 16)}`);
  }
  campaignDir(campaignId: string): string {
    return path.join(this.root, 'campaigns', campaignId);
  }

  /** A finished evaluation, or null. A record that does not parse is treated as missing (and reported by the caller). */
  readEvaluation(key: string): EvaluationRecord | null {
    const file = this.evaluationFile(key);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      return null;
    }
    const r = EvaluationRecordSchema.safeParse(JSON.parse(text));
    return r.success && r.data.key === key ? r.data : null;
  }

  writeEvaluation(record: EvaluationRecord): string {
    const file = this.evaluationFile(record.key);
    writeFileAtomic(file, JSON.stringify(record, null, 1) + '\n');
    return file;
  }

  readJson<T>(file: string): T | null {
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
    } catch {
      return null;
    }
  }

  writeJson(file: string, value: unknown): void {
    writeFileAtomic(file, JSON.stringify(value, null, 1) + '\n');
  }

  /**
   * Log one evaluation in a campaign's results log: one file per line, `results.d/<id>.json`
   * (id: sha256 of the key and candidate), written atomically (temp file + fsync + rename). No
   * append: on a shared filesystem (NFS) appends of two hosts may interleave or tear, renames do
   * not. Idempotent: the file name is derived from what identifies the line, so a retried record
   * activity (or a second control worker on another host) writes the same file again, and a
   * line already there is kept as it is (first write wins; its content is the same evaluation).
   * Readers merge the record files with a results.jsonl of older campaigns (readResultsLog,
   * dashboard/store-reader.ts); exportResultsLog writes results.jsonl from them at the end.
   */
  appendResultLine(campaignId: string, key: string, line: Record<string, unknown> & { candidate?: string }): void {
    const file = resultRecordFile(this.campaignDir(campaignId), { key, candidate: line.candidate });
    if (fs.existsSync(file)) return;
    // loggedAt orders the lines (ms since the epoch, with the sub-millisecond part of the process's
    // monotonic clock so that lines logged within one millisecond keep their order)
    writeFileAtomic(file, JSON.stringify({ key, ...line, loggedAt: performance.timeOrigin + performance.now() }) + '\n');
  }

  /**
   * Writes the merged results log as `results.jsonl` (temp file + rename; one line per key and
   * candidate), for readers of single files: the report folder, downloads, scripts. Run by the
   * report step; readers of the store still merge, so a stale export is harmless.
   */
  exportResultsLog(campaignId: string): string {
    const dir = this.campaignDir(campaignId);
    const file = path.join(dir, 'results.jsonl');
    const entries = this.readResultsLog<{ key: string }>(campaignId);
    writeFileAtomic(file, entries.map((e) => JSON.stringify(e) + '\n').join(''));
    return file;
  }

  /** The results log of a campaign, one entry per key and candidate (the last line wins). */
  readResultsLog<T extends { key: string; candidate?: string | null }>(campaignId: string): T[] {
    const byKey = new Map<string, T>();
    for (const e of resultsLogEntries(this.campaignDir(campaignId))) {
      let entry: T;
      try {
        entry = JSON.parse(e.text) as T;
      } catch (err) {
        // a last line without its newline is an append cut short (the worker died in the write): not a record
        if (e.torn) continue;
        throw new Error(`${e.file}: ${e.line ? `line ${e.line} ` : ''}is not JSON (${(err as Error).message})`);
      }
      const id = resultLineId(entry);
      byKey.delete(id); // keep first-seen order of the last occurrence
      byKey.set(id, entry);
    }
    return [...byKey.values()];
  }
}

const RECORD_CACHE_MAX = 200_000;
const recordCache = new Map<string, { file: string; text: string; at: number; id: string | null; stamp: string }>();

/** The record file of one results-log line (ArtifactStore.appendResultLine). */
export function resultRecordFile(campaignDir: string, l: { key: string; candidate?: string | null }): string {
  return path.join(campaignDir, 'results.d', `${sha256(resultLineId(l)).slice(0, 32)}.json`);
}

/**
 * The lines of a campaign's results log, in log order: first the lines of `results.jsonl` (the
 * appended log of campaigns before one-file-per-line, or an export) that no record file has, then
 * the record files of `results.d/` by the time they were logged. `torn`: the last line of
 * results.jsonl without its newline (an append cut short). Callers parse and validate `text`.
 */
export function resultsLogEntries(campaignDir: string): { file: string; line: number | null; text: string; torn: boolean }[] {
  const recordsDir = path.join(campaignDir, 'results.d');
  const records: { file: string; text: string; at: number; id: string | null; stamp?: string }[] = [];
  let names: string[] = [];
  try {
    names = fs.readdirSync(recordsDir).filter((n) => n.endsWith('.json'));
  } catch {
    // no record yet (or a campaign from before one-file-per-line)
  }
  for (const n of names) {
    const file = path.join(recordsDir, n);
    // a record file is written once, by rename: read each once per process while its size and
    // mtime stay (the dashboard re-reads a running campaign every few seconds; a stat is cheaper
    // than a read on NFS, and a damaged or replaced file is read again)
    let stamp: string;
    try {
      const st = fs.statSync(file);
      stamp = `${st.size}:${st.mtimeMs}`;
    } catch {
      continue; // removed since the listing
    }
    const known = recordCache.get(file);
    if (known && known.stamp === stamp) {
      records.push(known);
      continue;
    }
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8').trim();
    } catch {
      continue;
    }
    let at = Number.MAX_SAFE_INTEGER;
    let id: string | null = null;
    try {
      const v = JSON.parse(text) as { key: string; candidate?: string | null; loggedAt?: number };
      if (typeof v.loggedAt === 'number') at = v.loggedAt;
      id = resultLineId(v);
    } catch {
      // reported by the caller's parse; not cached, so a repaired file is read again
    }
    const r = { file, text, at, id, stamp };
    if (id !== null) {
      if (recordCache.size >= RECORD_CACHE_MAX) recordCache.clear();
      recordCache.set(file, r);
    }
    records.push(r);
  }
  records.sort((a, b) => a.at - b.at || (a.file < b.file ? -1 : 1));
  const ids = new Set(records.map((r) => r.id).filter((x): x is string => x !== null));
  const out: { file: string; line: number | null; text: string; torn: boolean }[] = [];
  const log = path.join(campaignDir, 'results.jsonl');
  let legacy: string | null = null;
  try {
    legacy = fs.readFileSync(log, 'utf8');
  } catch {
    // none
  }
  if (legacy !== null) {
    const lines = legacy.split('\n');
    lines.forEach((l, i) => {
      if (!l.trim()) return;
      const torn = i === lines.length - 1;
      if (ids.size) {
        try {
          if (ids.has(resultLineId(JSON.parse(l) as { key: string; candidate?: string | null }))) return;
        } catch {
          // not JSON: the caller reports it
        }
      }
      out.push({ file: log, line: i + 1, text: l, torn });
    });
  }
  for (const r of records) out.push({ file: r.file, line: null, text: r.text, torn: false });
  return out;
}

/** The merged results log of a campaign folder as JSONL text (what the exported results.jsonl holds, duplicates of older logs included). */
export function readResultsText(campaignDir: string): string {
  return resultsLogEntries(campaignDir)
    .filter((e) => !e.torn)
    .map((e) => e.text + '\n')
    .join('');
}
