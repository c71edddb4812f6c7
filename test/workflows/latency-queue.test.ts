/**
 * A campaign that requires a latency device (`latency.device`) measures latency on its own task
 * queue: on a REAL Temporal dev server with the real workflows and control activities, MOCKED GPU
 * activities (test/workflows/mock-gpu.ts) and MOCKED device probes (what `smnas-trainer env`
 * would report on a V100 / an A100 / a CPU host). A latency worker whose devices do not match
 * refuses to start; the GPU worker, which has measureLatency too, never gets the task; a matching
 * latency worker runs it, with the evaluation's trained weights, and the record carries its figure.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { closeTestClients, startTestWorker, uniqueId, withTestWorker } from '../support/temporal-server';
import { createControlActivities } from '../../activities';
import { ArtifactStore } from '../../activities/artifact-store';
import { describeCocoDir } from '../../activities/data';
import { writeSynthDetection } from '../../datasets/synth/detection';
import { latencySettings, makeToyCampaign } from '../../protocol/campaign';
import { latencyQueueName, type LatencyDeviceRequirement } from '../../protocol/latency';
import type { RuntimeEnvironment } from '../../protocol/trainer-messages';
import { checkLatencyDevices, planWorker } from '../../worker/create-worker';
import type { EvaluationInput, EvaluationSummary } from '../../workflows/evaluation';
import { MockGpu } from './mock-gpu';

jest.setTimeout(180_000);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-latq-'));
const dataRoot = path.join(work, 'coco');
beforeAll(() => writeSynthDetection({ train: 4, val: 2, size: 64, classes: 2, seed: 3, out: dataRoot, format: 'coco' }));
afterAll(async () => {
  await closeTestClients();
  fs.rmSync(work, { recursive: true, force: true });
});

/** MOCK probe: the environment `smnas-trainer env` would report for a device of this kind and model. */
const probeAs = (deviceKind: 'cpu' | 'cuda', deviceModel: string) => async (): Promise<RuntimeEnvironment> => ({
  deviceKind,
  deviceModel,
  runtime: 'libtorch mock',
  libtorch: 'mock',
  trainerVersion: 'sha256:mock',
  threads: 1,
});

const until = async (f: () => Promise<boolean>, ms = 60_000) => {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 200));
  }
};

test('a latency worker of the wrong kind never runs a campaign latency task; a matching one does', async () => {
  // a model name of its own: the queue (derived from it) is this test's alone on the shared server
  const model = `V100-${Math.random().toString(36).slice(2, 8)}`;
  const requirement: LatencyDeviceRequirement = { kind: 'cuda', model };
  const queue = latencyQueueName(requirement);
  expect(queue).toBe(`smnas-latency-cuda-${model.toLowerCase()}`);
  const host = { hostname: 'test', pid: 1, trainerVersion: 'mock' };

  // wrong workers refuse at start-up (the check createWorker runs before it connects)
  await expect(checkLatencyDevices(requirement, ['cpu'], probeAs('cpu', 'Intel Xeon Processor'))).rejects.toThrow(
    new RegExp(`do not meet the requirement cuda \\(${model}\\) of queue ${queue}: cpu is a cpu device \\(Intel Xeon Processor\\), not cuda`),
  );
  await expect(checkLatencyDevices(requirement, ['cuda:0'], probeAs('cuda', 'NVIDIA A100-SXM4-40GB'))).rejects.toThrow(
    `cuda:0 is NVIDIA A100-SXM4-40GB is not a ${model}`,
  );
  await expect(
    checkLatencyDevices(requirement, ['cuda:0', 'cuda:1'], async (d) => (d === 'cuda:0' ? probeAs('cuda', `Tesla ${model}`)() : probeAs('cuda', 'Tesla T4')())),
  ).rejects.toThrow(/cuda:1 is Tesla T4 is not a/);
  expect(() => planWorker({ queue: 'latency', latencyDevice: requirement, devices: ['cpu'] }, host)).toThrow(/no CUDA device/);
  expect(() => planWorker({ queue: 'latency', latencyDevice: requirement, devices: ['cuda:0'], taskQueue: 'smnas-gpu' }, host)).toThrow(
    /--task-queue does not apply/,
  );

  const gpu = new MockGpu();
  const tq = uniqueId('tq');
  const control = createControlActivities({
    artifactRoot: path.join(work, 'store'),
    trainerBin: '/nonexistent',
    devices: ['cpu'],
    logger: pino({ level: 'silent' }),
  });
  await withTestWorker({ taskQueue: tq, activities: { ...control, ...gpu.activities() } }, async ({ client }) => {
    const c = makeToyCampaign({ id: uniqueId('lat'), dataRoot: work, artifactRoot: path.join(work, 'store') });
    const arch = '64x64/basicblock_16_11-21-21-21/fpn(P1-P4,c=32)/rpn/2fc';
    const input: EvaluationInput = {
      campaignId: c.id,
      stage: 'structural',
      arch,
      recipe: 'toy-stage-one',
      data: describeCocoDir('detection', dataRoot, 'train', 'val'),
      seed: 0,
      cost: 'latency',
      latencyDevice: c.latencyDevice,
      bench: c.bench,
      latency: latencySettings({ ...c, latency: { device: requirement } }),
      queues: { control: tq, gpu: tq },
      timeouts: c.timeouts,
      artifactRoot: path.join(work, 'store'),
    };
    const h = await client.workflow.start('evaluateArchitecture', { taskQueue: tq, workflowId: uniqueId('eval-lat'), args: [input] });
    // trained on the GPU queue, then the latency task waits on the latency queue
    await until(async () => ((await h.describe()).raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'measureLatency'));
    await new Promise((r) => setTimeout(r, 2000));
    expect(gpu.calls.map((x) => x.activity)).toEqual(['trainDetector']); // the GPU worker never got it
    const scheduled = (await h.fetchHistory()).events!.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'measureLatency');
    expect(scheduled?.activityTaskScheduledEventAttributes?.taskQueue?.name).toBe(queue);

    // a matching latency worker: checked, planned onto the derived queue, runs the task
    const checked = await checkLatencyDevices(requirement, ['cuda:0'], probeAs('cuda', `Tesla ${model}-SXM2-16GB`));
    expect(checked['cuda:0'].deviceModel).toBe(`Tesla ${model}-SXM2-16GB`);
    const plan = planWorker({ queue: 'latency', latencyDevice: requirement, devices: ['cuda:0'] }, host);
    expect(plan.taskQueue).toBe(queue);
    const latency = new MockGpu();
    const lw = await startTestWorker({ taskQueue: plan.taskQueue, workflowsPath: false, activities: { measureLatency: latency.activities().measureLatency } });
    try {
      const r = (await h.result()) as EvaluationSummary;
      expect(latency.calls).toHaveLength(1);
      const trainedWeights = r.weights;
      expect(trainedWeights).toMatch(/^\/mock\/weights\//);
      expect(latency.calls[0]).toMatchObject({ activity: 'measureLatency', arch, weights: trainedWeights, latencyDevice: requirement });
      expect(r.latencyMs).toBeGreaterThan(0);
      const rec = new ArtifactStore(path.join(work, 'store')).readEvaluation(r.key);
      expect(rec?.latency).toMatchObject({ backend: 'native', reliable: true, weights: trainedWeights, medianMs: r.latencyMs });
      expect(gpu.calls.filter((x) => x.activity !== 'trainDetector')).toEqual([]);
    } finally {
      await lw.stop();
    }
  });
});
