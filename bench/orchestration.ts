/**
 * Orchestration benchmark: the real smnasSearch workflows on a real `temporal server start-dev`
 * (in memory, default history limits), the real control activities (store look-ups and records,
 * cost model, report), and INSTANT MOCKED GPU activities (test/workflows/mock-gpu.ts, delay 0), so
 * what is measured is Temporal + workflow + store overhead, not training.
 *
 *   node dist/bench/orchestration.js --structural 200 --concurrency 50 [--candidates 4 --per-candidate 2450]
 *   node dist/bench/orchestration.js --cluster ...   # against the server of TEMPORAL_ADDRESS / TEMPORAL_TLS_*
 *                                                    # (e.g. infra/local/up.sh's env/admin.env) instead of a dev server
 *
 * Reports: wall time of the campaign; evaluations/s over the structural stage (between its first
 * and last mocked training); the mean time from one evaluation's start to the next at concurrency 1
 * (= the orchestration overhead per evaluation: child workflow, store look-up, mocked train,
 * cost, record); and the longest history of any workflow run of the campaign (the server's
 * limits: warning at 10k events, hard limit 50k).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, DefaultLogger, Worker } from '@temporalio/worker';
import { createControlActivities } from '../activities';
import { makeToyCampaign } from '../protocol/campaign';
import { getWorkflowBundle } from '../worker/bundle';
import { freePort, projectSearchAttributes, spawnDevServer, stopGroup, waitForTemporal } from '../worker/temporal-server';
import { connectOptions, resolveConnectionSettings } from '../worker/connection';
import { MockGpu } from '../test/workflows/mock-gpu';
import { readResultsText } from '../activities/artifact-store';

interface Options {
  structural: number;
  population: number;
  candidates: number;
  perCandidate: number;
  concurrency: number;
  space: 'toy' | 'paper';
  continueAsNewEvery: number;
  json: boolean;
  cluster: boolean;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      structural: { type: 'string', default: '200' },
      population: { type: 'string', default: '20' },
      candidates: { type: 'string', default: '1' },
      'per-candidate': { type: 'string', default: '4' },
      concurrency: { type: 'string', default: '50' },
      space: { type: 'string', default: 'paper' },
      'continue-as-new-every': { type: 'string', default: '500' },
      json: { type: 'boolean', default: false },
      cluster: { type: 'boolean', default: false },
    },
  });
  return {
    structural: Number(values.structural),
    population: Number(values.population),
    candidates: Number(values.candidates),
    perCandidate: Number(values['per-candidate']),
    concurrency: Number(values.concurrency),
    space: values.space === 'toy' ? 'toy' : 'paper',
    continueAsNewEvery: Number(values['continue-as-new-every']),
    json: Boolean(values.json),
    cluster: Boolean(values.cluster),
  };
}

async function main(): Promise<void> {
  const o = options();
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-bench-orch-'));
  const logFile = path.join(work, 'temporal.log');
  // --cluster: an existing cluster (TEMPORAL_* environment, mTLS included); else a fresh dev server
  const settings = o.cluster ? resolveConnectionSettings(undefined, process.env) : null;
  const port = settings ? 0 : await freePort();
  const address = settings ? settings.address : `127.0.0.1:${port}`;
  const server = settings
    ? null
    : spawnDevServer({ port, uiPort: null, searchAttributes: projectSearchAttributes() }, { logFile, detached: true, stopWhenPidExits: process.pid });
  const conn = settings ? connectOptions(settings) : { address };
  const namespace = settings?.namespace ?? 'default';
  const tq = `bench-orchestration-${Date.now().toString(36)}`;
  const campaignId = o.cluster ? `bench-${Date.now().toString(36)}` : 'bench';
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  const conns: { close(): Promise<void> }[] = [];
  try {
    if (!settings) await waitForTemporal(address, { logFile, timeoutMs: 60_000 });
    const nc = await NativeConnection.connect(conn);
    const cc = await Connection.connect(conn);
    conns.push(nc, cc);
    const client = new Client({ connection: cc, namespace });
    const gpu = new MockGpu(0);
    const store = path.join(work, 'store');
    worker = await Worker.create({
      connection: nc,
      namespace,
      taskQueue: tq,
      workflowBundle: await getWorkflowBundle(),
      maxConcurrentActivityTaskExecutions: Math.max(200, o.concurrency * 4),
      activities: {
        ...createControlActivities({ artifactRoot: store, trainerBin: '/nonexistent', devices: ['cpu'], logger: pino({ level: 'silent' }) }),
        ...gpu.activities(),
      },
    });
    running = worker.run();

    const base = makeToyCampaign({ id: campaignId, dataRoot: path.join(work, 'data'), artifactRoot: store });
    const campaign = {
      ...base,
      space: o.space,
      data: {
        detection: base.data.detection,
        transfer: [],
        synthesize: { root: path.join(work, 'data'), trainImages: 4, valImages: 2, imageSize: 64, classes: 2, seed: 1 },
      },
      queues: { control: tq, gpu: tq },
      candidates: o.candidates,
      stages: {
        ...base.stages,
        structural: { maxEvaluations: o.structural, population: Math.min(o.population, o.structural), recipe: 'toy-stage-one' },
        modular: { maxEvaluationsPerCandidate: o.perCandidate, population: Math.min(o.population, o.perCandidate), recipe: 'toy-stage-two', finalists: 1 },
      },
      budgets: { maxConcurrentTrainings: o.concurrency, continueAsNewEvery: o.continueAsNewEvery },
      timeouts: { trainingHours: 1, heartbeatSeconds: 60, maxAttempts: 3 },
    };
    const t0 = Date.now();
    const result = (await client.workflow.execute('smnasSearch', {
      taskQueue: tq,
      workflowId: `smnas-${campaignId}`,
      args: [campaign],
      workflowExecutionTimeout: '3h',
    })) as { artifactDir: string };
    const wallS = (Date.now() - t0) / 1000;

    const trains = gpu.calls.filter((c) => c.activity === 'trainDetector');
    const structural = trains.filter((c) => c.recipe === 'toy-stage-one');
    const span = (xs: { at: number }[]) => (xs.length > 1 ? (xs[xs.length - 1].at - xs[0].at) / 1000 : NaN);
    const structuralRate = (structural.length - 1) / span(structural);
    const lines = readResultsText(result.artifactDir)
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { key: string; stage: string });
    let maxHistory = 0;
    let runs = 0;
    for await (const wf of client.workflow.list({ query: `SmnasCampaign = "${campaignId}"` })) {
      runs++;
      maxHistory = Math.max(maxHistory, wf.historyLength);
    }
    const parent = await client.workflow.getHandle(`smnas-${campaignId}`).describe();
    maxHistory = Math.max(maxHistory, parent.historyLength);
    const report = {
      server: settings ? `cluster ${address}${settings.tlsCertFile ? ' (mTLS)' : ''}` : 'dev server (in memory)',
      options: o,
      wallSeconds: Number(wallS.toFixed(1)),
      evaluations: lines.length,
      uniqueKeys: new Set(lines.map((l) => l.key)).size,
      mockedTrainings: trains.length,
      structuralEvaluations: structural.length,
      structuralEvalsPerSecond: Number(structuralRate.toFixed(2)),
      /** at concurrency 1: seconds from one evaluation's training to the next, i.e. the full per-evaluation overhead */
      secondsPerEvaluation: Number((span(structural) / Math.max(1, structural.length - 1)).toFixed(3)),
      campaignEvalsPerSecond: Number((lines.length / wallS).toFixed(2)),
      workflowRunsListed: runs,
      maxHistoryEvents: maxHistory,
      parentHistoryEvents: parent.historyLength,
    };
    if (o.json) process.stdout.write(JSON.stringify(report) + '\n');
    else process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  } finally {
    worker?.shutdown();
    await running?.catch(() => undefined);
    for (const c of conns) await c.close().catch(() => undefined);
    if (server) await stopGroup(server.pid!, 5000);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`bench/orchestration: ${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
