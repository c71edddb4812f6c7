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
 *   <root>/campaigns/<campaignId>/               results.jsonl, fronts.json, candidates.json, final.json, report.md, *.svg
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
   * Append one line to a campaign's results log (O_APPEND, one write per line, so concurrent
   * workers never interleave and the cost stays constant however long the log grows). A marker
   * per (campaign, key, candidate) keeps a retried record activity from logging an evaluation
   * twice; if a worker dies between the append and the marker, the retry appends the line again,
   * so readers take the last line per key and candidate (readResultsLog). A stage-two
   * architecture that two candidates' searches both asked for has one key and two lines, one per
   * candidate (the second a reuse), as both searches count it.
   */
  appendResultLine(campaignId: string, key: string, line: Record<string, unknown> & { candidate?: string }): void {
    const dir = this.campaignDir(campaignId);
    const marker = path.join(dir, 'logged', line.candidate ? `${key}-${sha256(line.candidate).slice(0, 16)}` : key);
    if (fs.existsSync(marker)) return;
    const log = path.join(dir, 'results.jsonl');
    let fd: number | null = null;
    let size = 0;
    try {
      fs.mkdirSync(path.dirname(marker), { recursive: true });
      fd = fs.openSync(log, 'a');
      size = fs.fstatSync(fd).size;
      const bytes = Buffer.from(JSON.stringify({ key, ...line }) + '\n');
      // one write in the normal case; a short write goes on, and the next write reports the error
      for (let off = 0; off < bytes.length;) off += fs.writeSync(fd, bytes, off, bytes.length - off);
      fs.fsyncSync(fd);
    } catch (e) {
      // a short write (full disk, size limit) would leave half a line: cut the log back to where it was
      if (fd !== null) {
        try {
          fs.ftruncateSync(fd, size);
        } catch {
          /* the reader also skips a torn last line */
        }
      }
      throw storageError(log, e);
    } finally {
      if (fd !== null) fs.closeSync(fd);
    }
    try {
      fs.writeFileSync(marker, '');
    } catch (e) {
      throw storageError(marker, e); // the retry appends the line again; readers take the last per key
    }
  }

  /** The results log of a campaign, one entry per key and candidate (the last line wins). */
  readResultsLog<T extends { key: string; candidate?: string | null }>(campaignId: string): T[] {
    const file = path.join(this.campaignDir(campaignId), 'results.jsonl');
    if (!fs.existsSync(file)) return [];
    const byKey = new Map<string, T>();
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    for (const [i, l] of lines.entries()) {
      if (!l.trim()) continue;
      let entry: T;
      try {
        entry = JSON.parse(l) as T;
      } catch (e) {
        // a last line without its newline is an append cut short (the worker died in the write): not a record
        if (i === lines.length - 1) continue;
        throw new Error(`${file}: line ${i + 1} is not JSON (${(e as Error).message})`);
      }
      const id = resultLineId(entry);
      byKey.delete(id); // keep first-seen order of the last occurrence
      byKey.set(id, entry);
    }
    return [...byKey.values()];
  }
}
