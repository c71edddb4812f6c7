/**
 * The campaign view (dashboard/model.ts) and the chart specs on a fixture store: every logged
 * evaluation is a point, stage-two points find their candidate (from fronts.json, or from the
 * structure stage two keeps when the campaign has not written it yet), fronts are the search
 * library's, counts are the log's, links name the evaluation's workflow.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { campaignCharts, withData } from '../../dashboard/charts';
import { buildCampaignView, frontIndices } from '../../dashboard/model';
import { reportMarkdown } from '../../dashboard/report-files';
import { offInfo } from '../../dashboard/source';
import { readCampaign } from '../../dashboard/store-reader';
import { naiveNonDominatedSort } from '../../search/pareto';
import { evaluationWorkflowId } from '../../workflows/ids';
import { tmpDir } from '../activities/mock-trainer';
import { buildCampaignStore, C0, C1, MODULAR, STRUCTURAL, writeReportInputFiles } from '../support/campaign-store';

const work = tmpDir('smnas-dash-model-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const opts = { webUi: 'http://ui:8233/', namespace: 'ns' };

test('a running campaign (no fronts.json yet, a log without candidates): points, candidates by structure, fronts, counts, links', async () => {
  const root = path.join(work, 'a');
  await buildCampaignStore(root, 'live', { upTo: 'modular', logCandidates: false });
  const snap = readCampaign(root, 'live')!;
  expect(snap.fronts).toBeNull();
  // what Temporal's candidates query would say while stage two runs
  const cand = (arch: string) => ({ arch, mAP: 0.1, cost: 1, costKind: 'latencyMs' as const, key: 'k', reused: false });
  const v = buildCampaignView(snap, { ...offInfo(null), state: 'ok', status: 'RUNNING', candidates: { selected: [cand(C0), cand(C1)], finalists: [] } }, opts);
  expect(v.points).toHaveLength(STRUCTURAL.length + MODULAR.length);
  expect(v.counts).toMatchObject({ logLines: 12, evaluations: 12, byStage: { structural: 6, modular: 6, final: 0, transfer: 0 } });
  for (const [c, arch] of MODULAR) {
    const p = v.points.find((x) => x.arch === arch && x.stage === 'modular')!;
    expect(p.candidateArch).toBe(c);
    expect(p.group).toBe(c === C0 ? 'C0' : 'C1');
    expect(p.workflowId).toBe(evaluationWorkflowId('live', 'modular', arch, c));
  }
  // fronts: the search library's rank 0 per group, checked against its O(N^2) reference
  for (const g of ['stage one', 'C0', 'C1']) {
    const members = v.points.filter((p) => p.group === g);
    const ref = naiveNonDominatedSort(members.map((p) => ({ cost: p.cost!, score: p.mapPct! })))
      .fronts[0].map((i) => members[i].key)
      .sort();
    expect(
      members
        .filter((p) => p.front)
        .map((p) => p.key)
        .sort(),
    ).toEqual(ref);
    expect(v.fronts.filter((f) => f.group === g)).toHaveLength(ref.length);
  }
  const p0 = v.points[0];
  expect(p0.workflowUrl).toBe(
    `http://ui:8233/namespaces/ns/workflows?query=${encodeURIComponent(`WorkflowId="${evaluationWorkflowId('live', 'structural', p0.arch)}"`)}`,
  );
  expect(p0.recordPath).toBe(`evaluations/${p0.key.slice(0, 2)}/${p0.key}.json`);
  // Fig. 5 factors parsed from the notation
  expect(v.points.find((p) => p.arch === C1)).toMatchObject({ input: '128x128', neck: 'fpn P2-P6', head: 'cascade (3)', backbone: 'basicblock-16 L16' });
  // stage rows: search stages from the log, planned unknown without Temporal's progress
  expect(v.stages.find((s) => s.stage === 'modular')).toMatchObject({ done: 6, unit: 'evaluations', planned: null });
});

test('stage-two lines name their candidate: no structure or fronts needed', async () => {
  const root = path.join(work, 'c');
  await buildCampaignStore(root, 'logged', { upTo: 'modular' });
  const snap = readCampaign(root, 'logged')!;
  expect(snap.results.filter((r) => r.stage === 'modular').map((r) => r.candidate)).toEqual(MODULAR.map(([c]) => c));
  // no candidates.json and no Temporal: the candidates are unknown, each point still knows its own
  const v = buildCampaignView(snap, offInfo(null), opts);
  for (const [c, arch] of MODULAR) expect(v.points.find((p) => p.arch === arch)!.candidateArch).toBe(c);
});

test('frontIndices is the search library front; an empty group has none', () => {
  expect(frontIndices([])).toEqual([]);
  expect(
    frontIndices([
      { cost: 1, score: 1 },
      { cost: 2, score: 0.5 },
      { cost: 3, score: 2 },
    ]).sort(),
  ).toEqual([0, 2]);
});

test('chart specs read named datasets; filled with the view they carry every point once', async () => {
  const root = path.join(work, 'b');
  writeReportInputFiles(await buildCampaignStore(root, 'done'));
  const v = buildCampaignView(readCampaign(root, 'done')!, offInfo(null), opts);
  const specs = campaignCharts(v);
  expect(Object.keys(specs)).toEqual(['stage-one', 'stage-two', 'correlation', 'gpu-hours']);
  expect(JSON.stringify(specs)).not.toContain('"values"'); // no inline data in the specs themselves
  const filled = withData(specs['stage-one'], v) as { datasets: { points: unknown[] } };
  expect(filled.datasets.points).toHaveLength(15);
  // legend: stage one only on the stage-one plot; the candidates and the final models on the stage-two plot
  const scaleOf = (s: unknown) => JSON.stringify(s).match(/"domain":(\[[^\]]*\])/)![1];
  expect(JSON.parse(scaleOf(specs['stage-one']))).toEqual(['stage one']);
  expect(JSON.parse(scaleOf(specs['stage-two']))).toEqual(['C0', 'C1', 'final']);
});

test('report.md says where latency was measured and marks figures of the latency protocol recorded as unreliable', async () => {
  const root = path.join(work, 'lat');
  await buildCampaignStore(root, 'lat', { upTo: 'modular' });
  // what recordEvaluation logs for figures of the latency protocol: every stage-one figure from an
  // EPYC, all too noisy (the results log is one file per line, results.d/, activities/artifact-store.ts)
  const recordsDir = path.join(root, 'campaigns', 'lat', 'results.d');
  const files = fs.readdirSync(recordsDir).filter((f) => f.endsWith('.json'));
  expect(files.length).toBeGreaterThan(0);
  for (const f of files) {
    const l = JSON.parse(fs.readFileSync(path.join(recordsDir, f), 'utf8'));
    if (l.stage === 'structural')
      fs.writeFileSync(
        path.join(recordsDir, f),
        JSON.stringify({ ...l, latencyReliable: false, latencyReason: 'noisy host: ...', latencyDevice: 'AMD EPYC 7B13' }) + '\n',
      );
  }
  const v = buildCampaignView(readCampaign(root, 'lat')!, { ...offInfo(null), state: 'ok', status: 'RUNNING' }, opts);
  expect(v.points.filter((p) => p.stage === 'structural').every((p) => p.latencyReliable === false && p.latencyDevice === 'AMD EPYC 7B13')).toBe(true);
  const md = reportMarkdown(v);
  const n = v.points.filter((p) => p.stage === 'structural').length;
  expect(md).toContain(`measured on AMD EPYC 7B13; ${n} figure(s) unreliable (every measurement too noisy), marked.`);
  const frontRows = md.split('\n').filter((l) => v.points.some((p) => p.stage === 'structural' && p.front && l.startsWith(`| ${p.arch} |`)));
  expect(frontRows.length).toBeGreaterThan(0);
  for (const r of frontRows) expect(r).toMatch(/\(unreliable: noisy host\) \|$/);
  // a campaign without such figures: no note, no marks (the older benchmark's figures)
  const plain = buildCampaignView(readCampaign(path.join(work, 'a'), 'live')!, { ...offInfo(null), state: 'ok', status: 'RUNNING' }, opts);
  expect(reportMarkdown(plain)).not.toMatch(/unreliable|measured on/);
});
