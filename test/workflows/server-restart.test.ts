/**
 * Fault test: the Temporal dev server is stopped in the middle of a campaign and started again on
 * the same SQLite file; the workers and the client reconnect and the campaign finishes with every
 * evaluation logged exactly once. Uses its own dev server (the shared test server must stay up)
 * and MOCKED GPU activities (the server is the point here; test/workflows/faults.test.ts kills a
 * worker with the real trainer).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createControlActivities } from '../../activities';
import { makeToyCampaign } from '../../protocol/campaign';
import { getWorkflowBundle } from '../../worker/bundle';
import { freePort, projectSearchAttributes, spawnDevServer, stopGroup, waitForTemporal } from '../../worker/temporal-server';
import { MockGpu } from './mock-gpu';
import { readResultsText } from '../../activities/artifact-store';

jest.setTimeout(240_000);

test('a campaign survives a dev-server restart on the same database file', async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-restart-'));
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const db = path.join(work, 'temporal.sqlite');
  const logFile = path.join(work, 'temporal.log');
  const start = async () => {
    const srv = spawnDevServer(
      { port, uiPort: null, dbFilename: db, searchAttributes: projectSearchAttributes() },
      { logFile, detached: true, stopWhenPidExits: process.pid },
    );
    await waitForTemporal(address, { logFile, timeoutMs: 60_000 });
    return srv;
  };
  let server = await start();
  const connection = await NativeConnection.connect({ address });
  const clientConnection = await Connection.connect({ address });
  const client = new Client({ connection: clientConnection });
  const gpu = new MockGpu(1500);
  const tq = 'restart-test';
  const worker = await Worker.create({
    connection,
    taskQueue: tq,
    workflowBundle: await getWorkflowBundle(undefined, process.env.SMNAS_TEST_TEMPORAL_DIR),
    activities: {
      ...createControlActivities({ artifactRoot: path.join(work, 'store'), trainerBin: '/nonexistent', devices: ['cpu'], logger: pino({ level: 'silent' }) }),
      ...gpu.activities(),
    },
  });
  const running = worker.run();
  try {
    const base = makeToyCampaign({ id: 'restart', dataRoot: path.join(work, 'data'), artifactRoot: path.join(work, 'store') });
    const c = {
      ...base,
      data: {
        detection: base.data.detection,
        transfer: [],
        synthesize: { root: path.join(work, 'data'), trainImages: 4, valImages: 2, imageSize: 64, classes: 2, seed: 2 },
      },
      queues: { control: tq, gpu: tq },
      candidates: 1,
      stages: {
        ...base.stages,
        structural: { maxEvaluations: 6, population: 3, recipe: 'toy-stage-one' },
        modular: { maxEvaluationsPerCandidate: 2, population: 1, recipe: 'toy-stage-two', finalists: 1 },
      },
      timeouts: { trainingHours: 1, heartbeatSeconds: 10, maxAttempts: 5 },
    };
    const h = await client.workflow.start('smnasSearch', { taskQueue: tq, workflowId: 'smnas-restart', args: [c] });
    const deadline = Date.now() + 120_000;
    while (gpu.calls.filter((x) => x.activity === 'trainDetector').length < 3) {
      if (Date.now() > deadline) throw new Error('campaign made no progress');
      await new Promise((r) => setTimeout(r, 100));
    }
    await stopGroup(server.pid!, 5000); // the server goes away mid-stage, trainings in flight
    await new Promise((r) => setTimeout(r, 2000));
    server = await start(); // same port, same database file
    const result: any = await h.result();
    const lines = readResultsText(result.artifactDir)
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.stage === 'structural')).toHaveLength(6);
    expect(new Set(lines.map((l) => l.key)).size).toBe(lines.length);
    expect(result.finalTable).toHaveLength(1);
  } finally {
    worker.shutdown();
    await running.catch(() => undefined);
    await connection.close().catch(() => undefined);
    await clientConnection.close().catch(() => undefined);
    await stopGroup(server.pid!, 5000);
    fs.rmSync(work, { recursive: true, force: true });
  }
});
