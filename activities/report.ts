/**
 * Report writing (control queue): the campaign's fronts, selected candidates and final table as
 * JSON, then the report of dashboard/report-files.ts (report.html with the dashboard's views,
 * paper-style figures as SVG and PNG, report.md) in the campaign's artifact folder. Every point
 * and count comes from the campaign's results log.
 */
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityDeps } from './index';
import { ArtifactStore, writeFileAtomic } from './artifact-store';
import { ReportInputSchema, type ReportInput, type ReportOutput } from './types';
import { writeCampaignReport } from '../dashboard/report-files';
import { offInfo } from '../dashboard/source';
import { readCampaign, StoreReadError } from '../dashboard/store-reader';

export const DEFAULT_WEB_UI = 'http://localhost:8233';

export function makeReportActivities(deps: ActivityDeps, store: (root?: string) => ArtifactStore) {
  async function writeReport(input: ReportInput & { artifactRoot?: string }): Promise<ReportOutput> {
    const r = ReportInputSchema.parse(input);
    const dir = r.campaignDir;
    const files: string[] = [];
    const put = (name: string, text: string) => {
      writeFileAtomic(path.join(dir, name), text);
      files.push(name);
    };
    put('fronts.json', JSON.stringify({ structural: r.structuralFront, modular: r.modularFronts }, null, 1) + '\n');
    put('candidates.json', JSON.stringify({ selected: r.selected }, null, 1) + '\n');
    put('final.json', JSON.stringify(r.finalTable, null, 1) + '\n');

    // the views, figures and counts come from what the store now holds (results log + the files above)
    const root = store(input.artifactRoot).root;
    let snapshot;
    try {
      snapshot = readCampaign(root, r.campaignId);
    } catch (e) {
      // a damaged results log cannot be fixed by retrying: name the file and line and stop
      if (e instanceof StoreReadError) throw ApplicationFailure.nonRetryable(e.message, 'BadData');
      throw e;
    }
    if (!snapshot) throw ApplicationFailure.nonRetryable(`no campaign folder for ${r.campaignId} under ${root}`, 'BadData');
    // results.jsonl: the merged one-file-per-line log as one file, for the report folder and scripts
    store(input.artifactRoot).exportResultsLog(r.campaignId);
    files.push('results.jsonl');
    const written = await writeCampaignReport(snapshot, offInfo(null), { webUi: deps.webUi ?? DEFAULT_WEB_UI, namespace: deps.namespace ?? 'default' }, dir);
    files.push(...written.files);
    deps.logger.info({ dir, files: files.length }, 'campaign report written');
    return { dir, files };
  }
  return { writeReport };
}
