/**
 * A small, realistic artifact store of a finished toy campaign for the report and dashboard tests:
 * evaluation records (EvaluationRecordSchema) and results-log lines written by the real
 * recordEvaluation activity, data.json as prepareData writes it (DataSummarySchema), and the
 * report input the campaign workflow hands writeReport. Architectures are those of a real toy
 * campaign (2026-11-30); metrics are fixed numbers of the same magnitude.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import { ArtifactStore, readResultsText, writeFileAtomic } from '../../activities/artifact-store';
import { makeStoreActivities } from '../../activities/store-activities';
import { DataSummarySchema, EvaluationRecordSchema, type DataSummary, type EvaluationRecord, type ReportInput } from '../../activities/types';
import type { ActivityDeps } from '../../activities/index';

export const C0 = '128x96/Xbottleneck_16_111-2111-21111111111111111111111-211/fpn(P1-P2,c=32)/rpn/2fc';
export const C1 = '128x128/basicblock_16_111-2111-211111-211/fpn(P2-P6,c=32)/rpn/cascade(n=3)';
const E0 = '128x128/basicblock_16_1-121-1111111122-111/fpn(P2-P6,c=64)/rpn/cascade(n=3)';

/** [arch, mAP, latency ms] of stage one */
export const STRUCTURAL: [string, number, number][] = [
  ['128x96/Xbottleneck_16_111-2111-21111111111111111111111-211/fpn(P2-P4,c=32)/rpn/2fc', 0.0983, 14.06],
  ['64x64/Xbottleneck_16_111-2111-211111-211/fpn(P1-P3,c=32)/rpn/cascade(n=3)', 0.0672, 9.1],
  [C1, 0.1616, 11.19],
  ['128x128/basicblock_16_111-2111-211111-211/fpn(P1-P1,c=32)/rpn/2fc', 0.1134, 12.4],
  ['128x96/Xbottleneck_16_111-2111-21111111111111111111111-211/fpn(P2-P4,c=32)/rpn/cascade(n=2)', 0.0696, 15.2],
  [C0, 0.1288, 6.67],
];
/** [candidate, arch, mAP, GFLOPs] of stage two */
export const MODULAR: [string, string, number, number][] = [
  [C1, E0, 0.104, 1.349],
  [C0, '128x96/Xbottleneck_16_1-111-1111121112-1111112111/fpn(P1-P2,c=32)/rpn/2fc', 0.0941, 0.254],
  [C1, '128x128/basicblock_8_12111111-11-11112-1111121/fpn(P2-P6,c=64)/rpn/cascade(n=3)', 0.0541, 1.328],
  [C0, '128x96/Xbottleneck_16_11111-11211111-111111122-1/fpn(P1-P2,c=64)/rpn/2fc', 0.1028, 0.545],
  [C1, '128x128/basicblock_16_1-121-1111111122-1111/fpn(P2-P6,c=64)/rpn/cascade(n=3)', 0.0499, 1.41],
  [C0, '128x96/Xbottleneck_16_1-111-1111121111-1211112111/fpn(P1-P2,c=32)/rpn/2fc', 0.0941, 0.2541],
];
export const FINAL_MAP = 0.3063;
export const TRANSFER: Record<string, number> = { voc: 0.2721, bdd: 0.2326 };

const fp = (s: string) => Buffer.from(s).toString('hex').padEnd(64, '0').slice(0, 64);

export interface FixtureCampaign {
  root: string;
  campaignId: string;
  dir: string;
  reportInput: ReportInput & { artifactRoot: string };
  /** records in the order they were logged */
  records: EvaluationRecord[];
}

/**
 * Writes the campaign under `root`. `upTo` stops after a stage (a running campaign: no report
 * input files); `duplicateLine` appends one line again (a record retried between the append and its marker).
 */
export async function buildCampaignStore(
  root: string,
  campaignId: string,
  o: {
    upTo?: 'structural' | 'modular' | 'transfer';
    duplicateLine?: boolean;
    /** false: stage-two lines without their candidate, as logs written before it was logged */ logCandidates?: boolean;
  } = {},
): Promise<FixtureCampaign> {
  const store = new ArtifactStore(root);
  const deps = { artifactRoot: root, trainerBin: '/nonexistent', devices: ['cpu'], logger: pino({ level: 'silent' }) } as ActivityDeps;
  const { recordEvaluation } = makeStoreActivities(deps, (r?: string) => new ArtifactStore(r ?? root));
  const dir = store.campaignDir(campaignId);
  const transfer = Object.keys(TRANSFER).map((name) => ({
    name,
    root: path.join(root, 'datasets', name),
    trainSplit: 'train',
    valSplit: 'val',
    numClasses: 3,
    trainImages: 48,
    valImages: 16,
    fingerprint: fp(`${name}-set`),
  }));
  const data: DataSummary = DataSummarySchema.parse({
    detection: {
      name: 'detection',
      root: path.join(root, 'toy'),
      trainSplit: 'train',
      valSplit: 'val',
      numClasses: 3,
      trainImages: 48,
      valImages: 16,
      fingerprint: fp('toy-set'),
    },
    transfer,
    classification: { root: path.join(root, 'cls'), classes: 3, trainImages: 300, fingerprint: fp('cls') },
    campaignDir: dir,
    generated: true,
  });
  writeFileAtomic(path.join(dir, 'data.json'), JSON.stringify(data, null, 1) + '\n');

  const records: EvaluationRecord[] = [];
  let n = 0;
  const record = async (
    stage: EvaluationRecord['stage'],
    arch: string,
    mAP: number,
    cost: { gflops?: number; latencyMs?: number },
    fingerprint: string,
    candidate?: string,
  ) => {
    n++;
    const key = fp(`${stage}-${arch}-${fingerprint}`).slice(0, 56) + String(n).padStart(8, '0');
    const stats = {
      AP: mAP,
      AP50: Math.min(1, mAP * 2.1),
      AP75: mAP * 0.8,
      APs: mAP * 0.1,
      APm: mAP * 1.5,
      APl: -1,
      AR1: mAP,
      AR10: mAP * 1.4,
      AR100: mAP * 1.5,
      ARs: 0.03,
      ARm: 0.37,
      ARl: -1,
    };
    const rec = EvaluationRecordSchema.parse({
      key,
      campaignId,
      stage,
      arch,
      recipe: `toy-${stage}`,
      recipeHash: 'a1b2c3d4e5f60718',
      datasetFingerprint: fingerprint,
      train: {
        kind: 'ok',
        mAP,
        stats,
        weights: path.join(root, 'runs', key, 'weights'),
        outDir: path.join(root, 'runs', key),
        wallSeconds: 30 + n,
        gpuSeconds: 30 + n,
        device: 'cpu',
        attempt: 1,
        resumedFrom: null,
        message: null,
      },
      cost: cost.gflops !== undefined ? { gflops: cost.gflops, backboneGflops: cost.gflops * 0.6, mparams: 1.2 + n / 10, mmac: null } : null,
      latency:
        cost.latencyMs !== undefined
          ? {
              device: 'cpu',
              warmup: 1,
              iterations: 3,
              medianMs: cost.latencyMs,
              meanMs: cost.latencyMs,
              p10Ms: cost.latencyMs * 0.98,
              p90Ms: cost.latencyMs * 1.02,
              stdMs: cost.latencyMs * 0.01,
              peakMemoryMB: 180,
            }
          : null,
      finishedAt: new Date(Date.UTC(2026, 10, 30, 1, 5, n)).toISOString(),
    });
    await recordEvaluation({ record: rec, artifactRoot: root, ...(candidate && o.logCandidates !== false ? { candidate } : {}) });
    records.push(rec);
    return rec;
  };
  const det = data.detection.fingerprint;
  for (const [arch, mAP, ms] of STRUCTURAL) await record('structural', arch, mAP, { latencyMs: ms }, det);
  if (o.duplicateLine) {
    // stage one as a campaign from before one-file-per-line logged it: an appended results.jsonl in
    // which a retried record activity logged its line twice; the later stages add record files
    const text = readResultsText(dir);
    fs.rmSync(path.join(dir, 'results.d'), { recursive: true, force: true });
    fs.writeFileSync(path.join(dir, 'results.jsonl'), text + text.split('\n')[0] + '\n');
  }
  if (o.upTo !== 'structural') {
    for (const [cand, arch, mAP, g] of MODULAR) await record('modular', arch, mAP, { gflops: g }, det, cand);
  }
  if (o.upTo === undefined || o.upTo === 'transfer') {
    await record('final', E0, FINAL_MAP, { gflops: 1.349, latencyMs: 23.29 }, det);
    for (const t of transfer) await record('transfer', E0, TRANSFER[t.name], {}, t.fingerprint);
  }
  const pt = (arch: string, mAP: number, cost: number) => ({
    arch,
    mAP,
    cost,
    key: records.find((r) => r.arch === arch && r.stage !== 'final' && r.stage !== 'transfer')?.key ?? '',
  });
  const reportInput = {
    campaignId,
    campaignDir: dir,
    artifactRoot: root,
    structuralFront: [pt(C0, 0.1288, 6.67), pt(C1, 0.1616, 11.19)],
    modularFronts:
      o.upTo === 'structural'
        ? ({} as ReportInput['modularFronts'])
        : {
            [C1]: [pt(MODULAR[2][1], 0.0541, 1.328), pt(E0, 0.104, 1.349)],
            [C0]: [pt(MODULAR[1][1], 0.0941, 0.254), pt(MODULAR[3][1], 0.1028, 0.545)],
          },
    selected: [C0, C1],
    finalTable: [
      { arch: E0, pretrainTop1: 1, finalMap: FINAL_MAP, gflops: 1.349, latencyMs: 23.29, transfer: TRANSFER, weights: path.join(root, 'runs', 'x', 'weights') },
    ],
  };
  return { root, campaignId, dir, reportInput, records };
}

/** fronts.json, candidates.json and final.json as writeReport writes them before the report itself */
export function writeReportInputFiles(c: FixtureCampaign): FixtureCampaign {
  const r = c.reportInput;
  writeFileAtomic(path.join(c.dir, 'fronts.json'), JSON.stringify({ structural: r.structuralFront, modular: r.modularFronts }, null, 1) + '\n');
  writeFileAtomic(path.join(c.dir, 'candidates.json'), JSON.stringify({ selected: r.selected }, null, 1) + '\n');
  writeFileAtomic(path.join(c.dir, 'final.json'), JSON.stringify(r.finalTable, null, 1) + '\n');
  return c;
}
