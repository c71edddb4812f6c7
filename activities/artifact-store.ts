/**
 * The artifact store: results and artifacts live here, outside workflow history. A folder by
 * default (docs/campaign.md documents the layout):
 *
 *   <root>/evaluations/<key[0..2]>/<key>.json   one EvaluationRecord per finished evaluation
 *   <root>/runs/<key>/                           trainer outDir of that evaluation (weights, checkpoints, detections)
 *   <root>/bench/<key>-<device>.json             latency figures
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

/** Write a file atomically: temp file beside it, fsync, rename. */
export function writeFileAtomic(file: string, data: string | Buffer): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
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
    fs.mkdirSync(path.dirname(marker), { recursive: true });
    fs.appendFileSync(path.join(dir, 'results.jsonl'), JSON.stringify({ key, ...line }) + '\n');
    fs.writeFileSync(marker, '');
  }

  /** The results log of a campaign, one entry per key and candidate (the last line wins). */
  readResultsLog<T extends { key: string; candidate?: string | null }>(campaignId: string): T[] {
    const file = path.join(this.campaignDir(campaignId), 'results.jsonl');
    if (!fs.existsSync(file)) return [];
    const byKey = new Map<string, T>();
    for (const l of fs.readFileSync(file, 'utf8').split('\n')) {
      if (!l.trim()) continue;
      const entry = JSON.parse(l) as T;
      const id = resultLineId(entry);
      byKey.delete(id); // keep first-seen order of the last occurrence
      byKey.set(id, entry);
    }
    return [...byKey.values()];
  }
}
