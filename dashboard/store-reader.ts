/**
 * Read-only access to what a campaign wrote in the artifact store (docs/campaign.md): the results
 * log, fronts.json, candidates.json, final.json, data.json and the evaluation records of transfer
 * runs (their dataset). Never writes. A results-log line that does not parse is an error naming
 * the file, the line and the field; the other files are optional (a running campaign has not
 * written them yet) but must parse when present.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { describeZodError, UserError } from '../common/errors';
import { resultLineId, resultsLogEntries } from '../activities/artifact-store';
import {
  ReportInputSchema,
  ResultLineSchema,
  DataSummarySchema,
  EvaluationRecordSchema,
  type DataSummary,
  type ReportInput,
  type ResultLine,
} from '../activities/types';

export class StoreReadError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'StoreReadError';
  }
}

/** Everything the store holds about one campaign (files absent so far are null). */
export interface CampaignSnapshot {
  campaignId: string;
  dir: string;
  artifactRoot: string;
  /** one entry per evaluation key and candidate (the last line wins, as ArtifactStore.readResultsLog) */
  results: ResultLine[];
  /** lines in results.jsonl (more than results.length only when a retried record logged a key twice) */
  logLines: number;
  fronts: { structural: ReportInput['structuralFront']; modular: ReportInput['modularFronts'] } | null;
  selected: string[] | null;
  finalTable: ReportInput['finalTable'] | null;
  data: DataSummary | null;
  /** key -> transfer dataset name (from the evaluation records' dataset fingerprints and data.json) */
  transferDataset: Record<string, string>;
  /** newest modification time of the campaign's files (ms), to tell a changed campaign */
  mtimeMs: number;
}

const FrontsFileSchema = z.object({ structural: ReportInputSchema.shape.structuralFront, modular: ReportInputSchema.shape.modularFronts });
const CandidatesFileSchema = z.object({ selected: z.array(z.string()) });

function readOptional<T>(file: string, schema: z.ZodType<T>): T | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new StoreReadError(`${file}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new StoreReadError(`${file}: not JSON (${(e as Error).message})`);
  }
  const r = schema.safeParse(raw);
  if (!r.success) throw new StoreReadError(describeZodError(file, r.error));
  return r.data;
}

/** Parses a results log; errors name the file and the 1-based line. */
export function parseResultsLog(file: string, text: string): { results: ResultLine[]; lines: number } {
  const entries = text.split('\n').map((l, i) => ({ file, line: i + 1, text: l }));
  return parseResultEntries(entries.filter((e) => e.text.trim()));
}

/** Parses results-log lines (resultsLogEntries: results.jsonl and the one-file-per-line records); errors name file and line. */
export function parseResultEntries(entries: { file: string; line: number | null; text: string }[]): { results: ResultLine[]; lines: number } {
  const byKey = new Map<string, ResultLine>();
  for (const e of entries) {
    const where = e.line !== null ? `${e.file}: line ${e.line}` : e.file;
    let raw: unknown;
    try {
      raw = JSON.parse(e.text);
    } catch (err) {
      throw new StoreReadError(`${where}: not JSON (${(err as Error).message})`);
    }
    const r = ResultLineSchema.safeParse(raw);
    if (!r.success) throw new StoreReadError(describeZodError(where, r.error));
    const id = resultLineId(r.data);
    byKey.delete(id); // keep first-seen order of the last occurrence
    byKey.set(id, r.data);
  }
  return { results: [...byKey.values()], lines: entries.length };
}

export function campaignDir(artifactRoot: string, campaignId: string): string {
  return path.join(artifactRoot, 'campaigns', campaignId);
}

/** Campaign ids that have a folder in the store, newest first. */
export function listStoreCampaigns(artifactRoot: string): { campaignId: string; mtimeMs: number }[] {
  const root = path.join(artifactRoot, 'campaigns');
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return [];
  }
  return names
    .filter((n) => fs.statSync(path.join(root, n)).isDirectory())
    .map((n) => ({ campaignId: n, mtimeMs: newestMtime(path.join(root, n)) }))
    .sort((a, b) => b.mtimeMs - a.mtimeMs || a.campaignId.localeCompare(b.campaignId));
}

function newestMtime(dir: string): number {
  let t = 0;
  for (const f of ['results.d', 'results.jsonl', 'data.json', 'fronts.json', 'final.json', 'candidates.json', 'report.md']) {
    try {
      t = Math.max(t, fs.statSync(path.join(dir, f)).mtimeMs);
    } catch {
      // not written yet
    }
  }
  return t || fs.statSync(dir).mtimeMs;
}

/** Reads one campaign; null when the store has no folder for it. */
export function readCampaign(artifactRoot: string, campaignId: string): CampaignSnapshot | null {
  const dir = campaignDir(artifactRoot, campaignId);
  if (!fs.existsSync(dir)) return null;
  // results.jsonl (older campaigns, exports) merged with the one-file-per-line records of results.d/
  const { results, lines: logLines } = parseResultEntries(resultsLogEntries(dir));
  const data = readOptional(path.join(dir, 'data.json'), DataSummarySchema);
  const transferDataset: Record<string, string> = {};
  if (data) {
    const byFingerprint = new Map(data.transfer.map((d) => [d.fingerprint, d.name]));
    for (const r of results.filter((l) => l.stage === 'transfer')) {
      const rec = readOptional(path.join(artifactRoot, 'evaluations', r.key.slice(0, 2), `${r.key}.json`), EvaluationRecordSchema);
      const name = rec ? byFingerprint.get(rec.datasetFingerprint) : undefined;
      if (name) transferDataset[r.key] = name;
    }
  }
  return {
    campaignId,
    dir,
    artifactRoot,
    results,
    logLines,
    fronts: readOptional(path.join(dir, 'fronts.json'), FrontsFileSchema),
    selected: readOptional(path.join(dir, 'candidates.json'), CandidatesFileSchema)?.selected ?? null,
    finalTable: readOptional(path.join(dir, 'final.json'), ReportInputSchema.shape.finalTable),
    data,
    transferDataset,
    mtimeMs: newestMtime(dir),
  };
}
