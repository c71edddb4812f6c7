/**
 * Multi-host training inside a campaign, on this machine: two GPU workers (separate
 * `bin/smnas worker --queue gpu --node K` processes, each with its own device, the REAL native
 * trainer) stand for two hosts; the campaign's `multiHost` makes its final training run on both at
 * once (trainDetector on node 0's queue, joinTraining on node 1's), meeting on loopback (Gloo).
 * The reduced toy campaign of the fault tests; about a minute and a half on 2 cores.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { closeTestClients, ensureTestServer, startTestWorker, uniqueId, type TestWorker } from '../support/temporal-server';
import { createControlActivities } from '../../activities';
import { ArtifactStore } from '../../activities/artifact-store';
import { freePort } from '../../common/net';
import { PROJECT_ROOT, TRAINER_BIN } from '../../common/paths';
import { makeReducedToyCampaign, type Campaign } from '../../protocol/campaign';
import { smnasSearch } from '../../workflows';
import { describeIf } from '../support/gate';

const maybe = describeIf(fs.existsSync(TRAINER_BIN), `multi-host test with the real trainer: ${TRAINER_BIN} is not built (scripts/setup.sh builds it)`);

maybe('a campaign whose final training spans two hosts (two GPU worker processes, real trainer)', () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-multihost-'));
  const store = path.join(work, 'store');
  const workers: ChildProcess[] = [];
  let control: TestWorker | undefined;

  afterAll(async () => {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 2000));
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    await control?.stop();
    await closeTestClients();
    fs.rmSync(work, { recursive: true, force: true });
  });

  function startNodeWorker(address: string, queue: string, node: number): void {
    const log = fs.openSync(path.join(work, `gpu-node${node}.log`), 'w');
    workers.push(
      spawn(
        path.join(PROJECT_ROOT, 'bin', 'smnas'),
        [
          'worker',
          '--queue',
          'gpu',
          '--task-queue',
          queue,
          '--node',
          String(node),
          '--gpus',
          'cpu',
          '--trainer-threads',
          '1',
          '--address',
          address,
          '--artifacts',
          store,
        ],
        { stdio: ['ignore', log, log], env: { ...process.env, SMNAS_LOG_LEVEL: 'info' } },
      ),
    );
  }

  test('the final training runs as one 2-process training across both workers; the campaign completes, each evaluation recorded once', async () => {
    const address = await ensureTestServer();
    const tqControl = uniqueId('mh-control');
    const tqGpu = uniqueId('mh-gpu');
    control = await startTestWorker({
      taskQueue: tqControl,
      activities: createControlActivities({ artifactRoot: store, trainerBin: TRAINER_BIN, devices: ['cpu'], logger: pino({ level: 'silent' }) }),
    });
    const base = makeReducedToyCampaign({
      id: uniqueId('mh'),
      dataRoot: path.join(work, 'data'),
      artifactRoot: store,
      queues: { control: tqControl, gpu: tqGpu },
      maxAttempts: 3,
    });
    const campaign: Campaign = { ...base, multiHost: { nodes: 2, masterAddr: '127.0.0.1', masterPort: await freePort(), ports: 1, stages: ['final'] } };
    startNodeWorker(address, tqGpu, 0);
    startNodeWorker(address, tqGpu, 1);
    const h = await control.client.workflow.start(smnasSearch, { taskQueue: tqControl, workflowId: `smnas-${campaign.id}`, args: [campaign] });
    const result = await h.result();
    expect(result.finalTable).toHaveLength(1);
    expect(result.finalTable[0].finalMap).toEqual(expect.any(Number));

    const st = new ArtifactStore(store);
    const log = st.readResultsLog<{ key: string; stage: string; kind: string; attempts: number; gpuSeconds: number; wallSeconds: number }>(campaign.id);
    expect(log.map((l) => l.stage).sort()).toEqual(['final', 'modular', 'structural', 'structural']);
    const final = log.find((l) => l.stage === 'final')!;
    expect(final.kind).toBe('ok');
    // node 0 trained with rank 0 of a world of 2; node 1 ran rank 1 in the same run folder
    const runDir = st.runDir(final.key);
    const job0 = JSON.parse(fs.readFileSync(path.join(runDir, `job-train-attempt${final.attempts}.json`), 'utf8'));
    const job1 = JSON.parse(fs.readFileSync(path.join(runDir, `job-train-node1-attempt${final.attempts}.json`), 'utf8'));
    expect(job0.distributed).toMatchObject({ worldSize: 2 });
    expect(job1.distributed).toMatchObject({ worldSize: 2 });
    expect(job1.arch).toBe(job0.arch);
    // two processes' worth of device time
    expect(final.gpuSeconds).toBeCloseTo(final.wallSeconds * 2, 5);
    // the search stages' trainings stayed on one host: no node job files in their run folders
    for (const l of log.filter((x) => x.stage !== 'final')) {
      expect(fs.readdirSync(st.runDir(l.key)).filter((f) => f.includes('-node'))).toEqual([]);
    }
    // node 1's worker ran joinTraining, and it says so in its log
    expect(fs.readFileSync(path.join(work, 'gpu-node1.log'), 'utf8')).toMatch(/"node":1/);
  }, 600_000);
});
