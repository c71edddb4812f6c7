/**
 * Fault test with the REAL native trainer on a tiny toy campaign: the GPU worker (a separate
 * `bin/smnas worker --queue gpu` process) is SIGKILLed in the middle of a training after the
 * trainer wrote a checkpoint; a new worker starts; the campaign finishes, the killed evaluation
 * resumed from its checkpoint (attempt 2, resumedFrom set), and no evaluation is lost or logged
 * twice. Skipped when the trainer is not built. Takes a minute or two on 2 cores.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { closeTestClients, ensureTestServer, startTestWorker, uniqueId, type TestWorker } from '../support/temporal-server';
import { createControlActivities } from '../../activities';
import { PROJECT_ROOT, TRAINER_BIN } from '../../common/paths';
import { makeReducedToyCampaign } from '../../protocol/campaign';
import { describeIf } from '../support/gate';
import { readResultsText } from '../../activities/artifact-store';

const maybe = describeIf(fs.existsSync(TRAINER_BIN), `fault tests with the real trainer: ${TRAINER_BIN} is not built (scripts/setup.sh builds it)`);

maybe('GPU worker SIGKILLed mid-training (real trainer)', () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-fault-'));
  const store = path.join(work, 'store');
  const workers: ChildProcess[] = [];
  let control: TestWorker | undefined;

  afterAll(async () => {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    await control?.stop();
    await closeTestClients();
    fs.rmSync(work, { recursive: true, force: true });
  });

  function startGpuWorker(address: string, queue: string): ChildProcess {
    const log = fs.openSync(path.join(work, `gpu-worker-${workers.length}.log`), 'w');
    const w = spawn(
      path.join(PROJECT_ROOT, 'bin', 'smnas'),
      ['worker', '--queue', 'gpu', '--task-queue', queue, '--gpus', 'cpu', '--address', address, '--artifacts', store],
      {
        stdio: ['ignore', log, log],
        env: { ...process.env, SMNAS_LOG_LEVEL: 'info' },
      },
    );
    workers.push(w);
    return w;
  }

  /** the run folder of a training that is in flight and has written a checkpoint */
  function trainingWithCheckpoint(): string | null {
    const runs = path.join(store, 'runs');
    if (!fs.existsSync(runs)) return null;
    for (const key of fs.readdirSync(runs)) {
      const dir = path.join(runs, key);
      const ck = path.join(dir, 'checkpoints');
      if (fs.existsSync(path.join(dir, 'trainer.pid')) && fs.existsSync(ck) && fs.readdirSync(ck).some((f) => !f.includes('tmp'))) return key;
    }
    return null;
  }

  test('the campaign finishes, the killed training resumes from its checkpoint, nothing runs twice', async () => {
    const address = await ensureTestServer();
    const tqControl = uniqueId('fault-control');
    const tqGpu = uniqueId('fault-gpu');
    control = await startTestWorker({
      taskQueue: tqControl,
      activities: createControlActivities({ artifactRoot: store, trainerBin: TRAINER_BIN, devices: ['cpu'], logger: pino({ level: 'silent' }) }),
    });
    const campaign = makeReducedToyCampaign({
      id: uniqueId('fault'),
      dataRoot: path.join(work, 'data'),
      artifactRoot: store,
      queues: { control: tqControl, gpu: tqGpu },
      maxAttempts: 3,
    });
    const first = startGpuWorker(address, tqGpu);
    const h = await control.client.workflow.start('smnasSearch', { taskQueue: tqControl, workflowId: `smnas-${campaign.id}`, args: [campaign] });

    let killedKey: string | null = null;
    const deadline = Date.now() + 240_000;
    while (!(killedKey = trainingWithCheckpoint())) {
      if (Date.now() > deadline) throw new Error('no training reached a checkpoint');
      await new Promise((r) => setTimeout(r, 100));
    }
    first.kill('SIGKILL'); // the worker only; its trainer (own process group) is orphaned
    await new Promise((r) => first.once('exit', r));
    startGpuWorker(address, tqGpu);

    const result: any = await h.result();
    expect(result.finalTable).toHaveLength(1);
    const lines = readResultsText(result.artifactDir)
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    // 2 structural + 1 modular + 1 final, each exactly once
    expect(lines.map((l) => l.stage).sort()).toEqual(['final', 'modular', 'structural', 'structural']);
    expect(new Set(lines.map((l) => l.key)).size).toBe(lines.length);
    const killed = lines.find((l) => l.key === killedKey);
    expect(killed).toBeDefined();
    expect(killed.attempts).toBeGreaterThanOrEqual(2);
    expect(killed.resumedFrom).toMatch(/checkpoint/);
    // stage one and the final table: latency of the trained weights, measured by the real trainer (measureLatency), where it ran said
    for (const l of lines.filter((x) => x.stage === 'structural' || x.stage === 'final')) {
      expect(l.latencyMs).toBeGreaterThan(0);
      expect(typeof l.latencyReliable).toBe('boolean');
      expect(l.latencyDevice).toEqual(expect.any(String));
    }
    expect(result.finalTable[0].latencyMs).toBe(lines.find((l) => l.stage === 'final').latencyMs);
    // the orphaned trainer of the killed worker did not survive the retry
    expect(fs.existsSync(path.join(store, 'runs', killedKey!, 'trainer.pid'))).toBe(false);
  }, 420_000);
});
