/**
 * Fault matrix: a reduced toy campaign (the campaign of test/workflows/faults.test.ts: 2 structural
 * + 1 modular + 1 final training, REAL native trainer on CPU, generated 64x64 data) once per fault,
 * each on a fresh dev server (SQLite file) with `bin/smnas worker` processes for the control and
 * GPU queues. The fault is injected once a training has written a checkpoint. Prints a table:
 * fault, campaign outcome, evaluations recorded, lost (trainings that finished, i.e. wrote
 * metrics.json in their run folder, without a record in results.jsonl), duplicated (results.jsonl
 * lines beyond one per key), retried attempts, incidents recorded, device-seconds
 * (time some trainer held the device, sampled every 250 ms) and redone (minus the no-fault run's).
 *
 *   node dist/bench/fault-matrix.js [--faults none,trainer-sigstop,...] [--json]
 *
 * Faults: none, gpu-worker-sigkill, trainer-sigkill, trainer-sigstop, control-worker-sigkill,
 * server-restart, corrupt-checkpoint (the trainer SIGKILLed, then a byte of its newest checkpoint
 * flipped), disk-full-checkpoint (RLIMIT_FSIZE set on the running trainer with prlimit, below the
 * size of a checkpoint, so its next checkpoint write fails; the retry runs without the limit).
 * GPU worker liveness for the run: --liveness startup=120,floor=10,factor=10.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { readResultsText } from '../activities/artifact-store';
import { PROJECT_ROOT } from '../common/paths';
import { makeReducedToyCampaign } from '../protocol/campaign';
import { freePort, projectSearchAttributes, spawnDevServer, stopGroup, waitForTemporal } from '../worker/temporal-server';

const ALL = [
  'none',
  'gpu-worker-sigkill',
  'trainer-sigkill',
  'trainer-sigstop',
  'control-worker-sigkill',
  'server-restart',
  'corrupt-checkpoint',
  'disk-full-checkpoint',
  'nan-loss',
] as const;
type Fault = (typeof ALL)[number];

interface Row {
  fault: Fault;
  outcome: string;
  recorded: number;
  lost: number | null;
  duplicated: number;
  retriedAttempts: number;
  incidents: number;
  deviceSeconds: number;
  redone: number | null;
  wallSeconds: number;
  note: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function trainingWithCheckpoint(store: string): { key: string; pid: number; newest: string } | null {
  const runs = path.join(store, 'runs');
  if (!fs.existsSync(runs)) return null;
  for (const key of fs.readdirSync(runs)) {
    const dir = path.join(runs, key);
    const ck = path.join(dir, 'checkpoints');
    const pidFile = path.join(dir, 'trainer.pid');
    if (!fs.existsSync(pidFile) || !fs.existsSync(ck)) continue;
    const pts = fs
      .readdirSync(ck)
      .filter((f) => /^ckpt-\d+\.pt$/.test(f))
      .sort((a, b) => parseInt(b.slice(5), 10) - parseInt(a.slice(5), 10));
    if (pts.length === 0) continue;
    try {
      return { key, pid: (JSON.parse(fs.readFileSync(pidFile, 'utf8')) as { pid: number }).pid, newest: path.join(ck, pts[0]) };
    } catch {
      continue;
    }
  }
  return null;
}

/** keys of the trainings that ran to the end (metrics.json written) */
function finishedTrainings(store: string): string[] {
  const runs = path.join(store, 'runs');
  if (!fs.existsSync(runs)) return [];
  return fs.readdirSync(runs).filter((k) => fs.existsSync(path.join(runs, k, 'metrics.json')));
}

function anyTrainerRunning(store: string): boolean {
  const runs = path.join(store, 'runs');
  if (!fs.existsSync(runs)) return false;
  return fs.readdirSync(runs).some((k) => fs.existsSync(path.join(runs, k, 'trainer.pid')));
}

async function runOne(fault: Fault, baseline: { keys: Set<string>; deviceSeconds: number } | null): Promise<Row & { keys: Set<string> }> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `smnas-faults-${fault}-`));
  const store = path.join(work, 'store');
  const logFile = path.join(work, 'temporal.log');
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const serverOpts = { port, uiPort: null, dbFilename: path.join(work, 'temporal.db'), searchAttributes: projectSearchAttributes() };
  let server = spawnDevServer(serverOpts, { logFile, detached: true, stopWhenPidExits: process.pid });
  const procs: ChildProcess[] = [];
  const tq = { control: `fm-control-${fault}`, gpu: `fm-gpu-${fault}` };
  const startWorker = (queue: 'control' | 'gpu') => {
    const out = fs.openSync(path.join(work, `${queue}-${procs.length}.log`), 'w');
    const extra = queue === 'gpu' ? ['--gpus', 'cpu', '--liveness', 'startup=120,floor=10,factor=10'] : [];
    // nan-loss: the first training to reach iteration 3 gets a NaN loss (native/src/train_loop.cpp)
    const faultEnv = queue === 'gpu' && fault === 'nan-loss' ? { SMNAS_FAULT_NAN_LOSS: `3:${path.join(work, 'nan-loss.marker')}` } : {};
    const p = spawn(
      path.join(PROJECT_ROOT, 'bin', 'smnas'),
      ['worker', '--queue', queue, '--task-queue', tq[queue], '--address', address, '--artifacts', store, ...extra],
      {
        stdio: ['ignore', out, out],
        env: { ...process.env, SMNAS_LOG_LEVEL: 'info', ...faultEnv },
      },
    );
    procs.push(p);
    return p;
  };
  const t0 = Date.now();
  let deviceSeconds = 0;
  const sampler = setInterval(() => {
    if (anyTrainerRunning(store)) deviceSeconds += 0.25;
  }, 250);
  let note = '';
  try {
    await waitForTemporal(address, { logFile, timeoutMs: 60_000 });
    let control = startWorker('control');
    let gpu = startWorker('gpu');
    const connection = await Connection.connect({ address });
    const client = new Client({ connection });
    const campaign = makeReducedToyCampaign({
      id: `fm-${fault}`,
      dataRoot: path.join(work, 'data'),
      artifactRoot: store,
      queues: { control: tq.control, gpu: tq.gpu },
      maxAttempts: 4,
    });
    const h = await client.workflow.start('smnasSearch', { taskQueue: tq.control, workflowId: `smnas-${campaign.id}`, args: [campaign] });
    if (fault !== 'none' && fault !== 'nan-loss') {
      let t: ReturnType<typeof trainingWithCheckpoint> = null;
      const deadline = Date.now() + 300_000;
      while (!(t = trainingWithCheckpoint(store)) && Date.now() < deadline) await sleep(100);
      if (!t) throw new Error('no training reached a checkpoint');
      switch (fault) {
        case 'gpu-worker-sigkill':
          gpu.kill('SIGKILL');
          await new Promise((r) => gpu.once('exit', r));
          gpu = startWorker('gpu');
          break;
        case 'trainer-sigkill':
          process.kill(-t.pid, 'SIGKILL');
          break;
        case 'trainer-sigstop':
          process.kill(-t.pid, 'SIGSTOP');
          break;
        case 'control-worker-sigkill':
          control.kill('SIGKILL');
          await new Promise((r) => control.once('exit', r));
          await sleep(2000);
          control = startWorker('control');
          break;
        case 'server-restart':
          await stopGroup(server.pid!, 5000);
          await sleep(2000);
          server = spawnDevServer(serverOpts, { logFile, detached: true, stopWhenPidExits: process.pid });
          await waitForTemporal(address, { logFile, timeoutMs: 60_000 });
          break;
        case 'corrupt-checkpoint': {
          process.kill(-t.pid, 'SIGKILL');
          const fd = fs.openSync(t.newest, 'r+');
          const at = Math.floor(fs.statSync(t.newest).size / 2);
          const b = Buffer.alloc(1);
          fs.readSync(fd, b, 0, 1, at);
          b[0] ^= 0x5a;
          fs.writeSync(fd, b, 0, 1, at);
          fs.closeSync(fd);
          break;
        }
        case 'disk-full-checkpoint': {
          const limit = Math.floor(fs.statSync(t.newest).size / 2);
          execFileSync('prlimit', ['--pid', String(t.pid), `--fsize=${limit}`]);
          note = `RLIMIT_FSIZE ${limit} B on trainer ${t.pid}`;
          break;
        }
      }
      note = note || `at ${path.basename(t.newest)} of ${t.key.slice(0, 8)}`;
    }
    let outcome = 'completed';
    try {
      await Promise.race([h.result(), sleep(900_000).then(() => Promise.reject(new Error('timed out after 900 s')))]);
    } catch (e) {
      outcome = `failed: ${(e as Error).message.split('\n')[0].slice(0, 80)}`;
    }
    const lines = readResultsText(path.join(store, 'campaigns', campaign.id))
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as { key: string; attempts: number; incidents?: string[]; kind: string });
    if (fault === 'nan-loss') {
      const diverged = lines.filter((l) => l.kind === 'diverged').length;
      note = fs.existsSync(path.join(work, 'nan-loss.marker'))
        ? `NaN loss injected at iteration 3 of the first training; ${diverged} record(s) of kind diverged`
        : 'the NaN loss was never injected';
    }
    const keys = new Set(lines.map((l) => l.key));
    await connection.close();
    return {
      fault,
      outcome,
      recorded: keys.size,
      lost: finishedTrainings(store).filter((k) => !keys.has(k)).length,
      duplicated: lines.length - keys.size,
      retriedAttempts: lines.reduce((s, l) => s + Math.max(0, l.attempts - 1), 0),
      incidents: lines.reduce((s, l) => s + (l.incidents?.length ?? 0), 0),
      deviceSeconds,
      redone: baseline ? deviceSeconds - baseline.deviceSeconds : null,
      wallSeconds: (Date.now() - t0) / 1000,
      note,
      keys,
    };
  } finally {
    clearInterval(sampler);
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
    await sleep(3000);
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await stopGroup(server.pid!, 5000);
    if (!process.env.FAULT_MATRIX_KEEP) fs.rmSync(work, { recursive: true, force: true });
    else console.error(`kept ${work}`);
  }
}

async function main() {
  const { values } = parseArgs({ options: { faults: { type: 'string', default: ALL.join(',') }, json: { type: 'boolean', default: false } } });
  const faults = values.faults!.split(',').map((f) => f.trim()) as Fault[];
  for (const f of faults) if (!ALL.includes(f)) throw new Error(`--faults: unknown fault '${f}' (${ALL.join(', ')})`);
  const rows: Row[] = [];
  let baseline: { keys: Set<string>; deviceSeconds: number } | null = null;
  for (const f of faults.includes('none') ? ['none' as Fault, ...faults.filter((x) => x !== 'none')] : faults) {
    const r = await runOne(f, baseline);
    if (f === 'none') baseline = { keys: r.keys, deviceSeconds: r.deviceSeconds };
    const { keys: _k, ...row } = r;
    rows.push(row);
    console.error(JSON.stringify(row));
  }
  if (values.json) {
    console.log(JSON.stringify(rows, null, 1));
    return;
  }
  console.log(
    '| fault | campaign outcome | evaluations recorded | lost | duplicated | retried attempts | incidents recorded | device-s | redone device-s | wall s | note |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const n = (x: number | null, d = 0) => (x === null ? 'n/a' : x.toFixed(d));
    console.log(
      `| ${r.fault} | ${r.outcome} | ${r.recorded} | ${n(r.lost)} | ${r.duplicated} | ${r.retriedAttempts} | ${r.incidents} | ${n(r.deviceSeconds, 1)} | ${n(r.redone, 1)} | ${r.wallSeconds.toFixed(0)} | ${r.note} |`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
