/**
 * writeReport (the campaign's last activity) on a realistic store (test/support/campaign-store):
 * the counts agree with the results log, stage by stage; the figures are vega renderings with one
 * mark per evaluation and a staircase per front; report.html is self-contained; a damaged results
 * log fails non-retryably naming the file and the line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createControlActivities } from '../../activities';
import type { ReportOutput } from '../../activities/types';
import { parseResultEntries, parseResultsLog } from '../../dashboard/store-reader';
import { resultsLogEntries } from '../../activities/artifact-store';
import { buildCampaignStore, C0, C1, MODULAR, STRUCTURAL } from '../support/campaign-store';
import { tmpDir } from './mock-trainer';

const work = tmpDir('smnas-report-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const acts = createControlActivities({
  artifactRoot: path.join(work, 'store'),
  trainerBin: '/nonexistent',
  devices: ['cpu'],
  logger: pino({ level: 'silent' }),
});
const run = <T>(fn: (...a: any[]) => Promise<T>, ...args: unknown[]) => new MockActivityEnvironment().run(fn as any, ...args) as Promise<T>;

/** marks of one vega symbol layer in a vega SVG: the <path> elements of its <g class="... name"> group */
function symbols(svg: string, layer: string): number {
  const start = svg.indexOf(`${layer}"`);
  if (start < 0) return 0;
  const end = svg.indexOf('</g>', start);
  return (svg.slice(start, end).match(/<path /g) ?? []).length;
}

describe('writeReport', () => {
  test('the counts agree with the results log, stage by stage, even with a line logged twice', async () => {
    const root = path.join(work, 'store');
    const c = await buildCampaignStore(root, 'counts', { duplicateLine: true });
    // what the log holds: 15 evaluations (6 + 6 + 1 + 2) in 16 lines (one retried record), stage
    // one in an appended results.jsonl of older campaigns, the rest one file per line
    const log = parseResultEntries(resultsLogEntries(c.dir));
    expect(log.lines).toBe(16);
    expect(log.results).toHaveLength(15);
    const out = await run<ReportOutput>(acts.writeReport, c.reportInput);
    // the report step exports the merged log: one line per evaluation
    expect(parseResultsLog('results.jsonl', fs.readFileSync(path.join(c.dir, 'results.jsonl'), 'utf8'))).toEqual({ results: log.results, lines: 15 });
    expect(out.files).toContain('results.jsonl');
    const md = fs.readFileSync(path.join(c.dir, 'report.md'), 'utf8');
    const per = (stage: string) => log.results.filter((r) => r.stage === stage).length;
    expect(md).toContain(
      `Evaluations: ${log.results.length} in results.jsonl (structural ${per('structural')}, modular ${per('modular')}, final ${per('final')}, transfer ${per('transfer')}); 16 lines`,
    );
    // the campaign's other stages are named as what they are, not added to the evaluations
    expect(md).toContain('Not evaluations, so not counted: 2 selected candidates, 1 backbone pretraining.');
    for (const stage of ['structural', 'modular', 'final', 'transfer']) expect(md).toMatch(new RegExp(`\\| ${stage} \\| ${per(stage)} \\| 0 \\|`));
    expect(out.files).toEqual(
      expect.arrayContaining([
        'fronts.json',
        'report.md',
        'report.html',
        'pareto-structural.svg',
        'pareto-structural.png',
        'pareto-modular.svg',
        'correlation.png',
        'gpu-hours.svg',
      ]),
    );

    // the figures: one point per evaluation of the stage, the final model on the stage-two plot, staircases
    const s1 = fs.readFileSync(path.join(c.dir, 'pareto-structural.svg'), 'utf8');
    expect(symbols(s1, 'stage_one_points_marks')).toBe(STRUCTURAL.length);
    expect(s1).toContain('latency (ms, median)');
    const s2 = fs.readFileSync(path.join(c.dir, 'pareto-modular.svg'), 'utf8');
    expect(symbols(s2, 'stage_two_points_marks')).toBe(MODULAR.length);
    expect(symbols(s2, 'stage_two_final_marks')).toBe(1);
    // one staircase per candidate (C0, C1)
    expect(s2.split('class="mark-line role-mark stage_two_front_marks"').length - 1).toBe(2);
    const png = fs.readFileSync(path.join(c.dir, 'pareto-modular.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.readUInt32BE(16)).toBeGreaterThan(400); // width, 2x the SVG's

    // report.html: vega inlined, nothing loaded from the network
    const html = fs.readFileSync(path.join(c.dir, 'report.html'), 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).not.toMatch(/https?:\/\/(cdn|unpkg|fastly)/);
    expect(html).toContain('vegaEmbed');
  });

  test('a stage-two architecture asked for by two candidates is logged once for each, and counted twice', async () => {
    const root = path.join(work, 'store');
    const c = await buildCampaignStore(root, 'shared', { upTo: 'modular' });
    const rec = c.records.find((r) => r.stage === 'modular')!;
    // the other candidate's search asks for the same architecture: the store has it, it is reused
    await run(acts.recordEvaluation, { record: rec, artifactRoot: root, reused: true, candidate: C0 === MODULAR[0][0] ? C1 : C0 });
    // a retried record activity logs nothing more
    await run(acts.recordEvaluation, { record: rec, artifactRoot: root, reused: true, candidate: C0 === MODULAR[0][0] ? C1 : C0 });
    const log = parseResultEntries(resultsLogEntries(c.dir));
    expect(log.lines).toBe(STRUCTURAL.length + MODULAR.length + 1);
    expect(log.results.filter((r) => r.key === rec.key).map((r) => [r.candidate, r.reused])).toEqual([
      [MODULAR[0][0], false],
      [C0 === MODULAR[0][0] ? C1 : C0, true],
    ]);
    await run<ReportOutput>(acts.writeReport, { ...c.reportInput, finalTable: [] });
    expect(fs.readFileSync(path.join(c.dir, 'report.md'), 'utf8')).toContain(
      `Evaluations: ${STRUCTURAL.length + MODULAR.length + 1} in results.jsonl (structural 6, modular 7, final 0, transfer 0); 1 reused`,
    );
  });

  test('a damaged results log fails the activity non-retryably, naming the file and the line', async () => {
    const root = path.join(work, 'store');
    const c = await buildCampaignStore(root, 'damaged', { upTo: 'structural' });
    const file = resultsLogEntries(c.dir)[2].file;
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"mAP":', '"mAP":"high","x":'));
    const err = await run(acts.writeReport, { ...c.reportInput, modularFronts: {}, finalTable: [] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'BadData', nonRetryable: true });
    expect((err as Error).message).toContain(`${file}: mAP`);
    // a damaged line of an older appended log is named by its line
    const legacy = path.join(c.dir, 'results.jsonl');
    fs.writeFileSync(legacy, '{"key":"k0","stage":"structural"}\n');
    const err2 = await run(acts.writeReport, { ...c.reportInput, modularFronts: {}, finalTable: [] }).catch((e: unknown) => e);
    expect((err2 as Error).message).toContain(`${legacy}: line 1:`);
  });
});
