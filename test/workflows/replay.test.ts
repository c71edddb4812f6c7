/**
 * Determinism guard: replays recorded histories of a small toy campaign (the campaign workflow, a
 * search stage and one evaluation child) against the current workflow code. A change that would
 * make running campaigns non-deterministic fails here; such changes need `patched()`.
 *
 * Replay runs in a plain node child process (see replay-histories.js for why). The fixtures were recorded with MOCKED GPU activities (test/workflows/mock-gpu.ts) and the real
 * control activities. Sets, all replayed:
 *   - toy-campaign: recorded before the `patched()` changes of session 2 (toy space revision 1,
 *     no stage history cap, full fronts in every stage report): old campaigns must still replay;
 *   - toy-campaign-v2: recorded after them (the patch markers are in its histories);
 *   - toy-campaign-v3: recorded with the campaign-count-evaluations-only patch (progress counts
 *     evaluations only);
 *   - toy-campaign-v4: recorded with the latency-trained-weights patch (a stage-one evaluation
 *     that measures latency with measureLatency and the trained weights).
 * Never re-record a set to make a failing replay pass: version the change with `patched()`, and
 * record a new set for the new code path with
 *   SMNAS_RECORD_FIXTURES=<new set name> npx jest test/workflows/replay.test.ts
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { execFileSync } from 'node:child_process';
import { TEMPORAL_BIN } from '../../common/paths';
import { closeTestClients, uniqueId, withTestWorker } from '../support/temporal-server';
import { createControlActivities } from '../../activities';
import { writeSynthDetection } from '../../datasets/synth/detection';
import { makeToyCampaign } from '../../protocol/campaign';
import { stageWorkflowId } from '../../workflows/ids';
import { getWorkflowBundle } from '../../worker/bundle';
import { MockGpu } from './mock-gpu';

const FIXTURES = path.join(__dirname, '..', 'fixtures');
const NAMES = ['campaign', 'structural-stage', 'evaluation'] as const;
const SETS = ['toy-campaign', 'toy-campaign-v2', 'toy-campaign-v3', 'toy-campaign-v4'];
const fixture = (set: string, n: string) => path.join(FIXTURES, `${set}-${n}.history.json`);

async function record(set: string): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-rec-'));
  writeSynthDetection({ out: path.join(work, 'coco'), format: 'coco', train: 4, val: 2, size: 64, classes: 2, seed: 3 });
  const tq = uniqueId('rec');
  const gpu = new MockGpu(20);
  const control = createControlActivities({
    artifactRoot: path.join(work, 'store'),
    trainerBin: '/nonexistent',
    devices: ['cpu'],
    logger: pino({ level: 'silent' }),
  });
  await withTestWorker({ taskQueue: tq, activities: { ...control, ...gpu.activities() } }, async ({ client }) => {
    const base = makeToyCampaign({ id: 'replay-fixture', dataRoot: work, artifactRoot: path.join(work, 'store') });
    const c = {
      ...base,
      data: { detection: { root: path.join(work, 'coco'), trainSplit: 'train', valSplit: 'val' }, transfer: [] },
      queues: { control: tq, gpu: tq },
      stages: {
        ...base.stages,
        structural: { maxEvaluations: 5, population: 3, recipe: 'toy-stage-one' },
        modular: { maxEvaluationsPerCandidate: 2, population: 1, recipe: 'toy-stage-two', finalists: 1 },
      },
    };
    const id = `smnas-${c.id}-${Date.now()}`;
    const h = await client.workflow.start('smnasSearch', { taskQueue: tq, workflowId: id, args: [c] });
    await h.result();
    let evaluationId = '';
    // a stage-one evaluation (it measures latency) where there is one, else any
    for await (const w of client.workflow.list({ query: `WorkflowType = 'evaluateArchitecture' AND SmnasCampaign = '${c.id}'` })) {
      if (!evaluationId || (w.workflowId.includes('/eval/structural/') && !evaluationId.includes('/eval/structural/'))) evaluationId = w.workflowId;
    }
    const ids: Record<(typeof NAMES)[number], string> = { campaign: id, 'structural-stage': stageWorkflowId(c.id, 'structural'), evaluation: evaluationId };
    fs.mkdirSync(FIXTURES, { recursive: true });
    for (const n of NAMES) {
      // the CLI's JSON form of a history (what `temporal workflow show --output json` gives users)
      const json = execFileSync(TEMPORAL_BIN, [
        'workflow',
        'show',
        '--address',
        process.env.SMNAS_TEST_TEMPORAL_ADDRESS!,
        '--workflow-id',
        ids[n],
        '--output',
        'json',
      ]);
      fs.writeFileSync(fixture(set, n), json);
    }
  });
  fs.rmSync(work, { recursive: true, force: true });
}

afterAll(closeTestClients);

test('recorded toy campaign histories replay against the current workflow code', async () => {
  const recordSet = process.env.SMNAS_RECORD_FIXTURES;
  if (recordSet) await record(recordSet);
  const sets = recordSet && !SETS.includes(recordSet) ? [...SETS, recordSet] : SETS;
  const bundle = await getWorkflowBundle();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-replay-'));
  const bundleFile = path.join(dir, 'bundle.js');
  fs.writeFileSync(bundleFile, bundle.code);
  try {
    // throws (exit 1) on a DeterminismViolationError or any other replay failure
    const files = sets.flatMap((set) => NAMES.map((n) => fixture(set, n)));
    const out = execFileSync(process.execPath, [path.join(__dirname, 'replay-histories.js'), bundleFile, ...files], { encoding: 'utf8' });
    for (const f of files) expect(out).toMatch(new RegExp(`replayed ${path.basename(f)}: \\d+ events`));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 180_000);
