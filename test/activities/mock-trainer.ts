/**
 * A MOCK of the native trainer for activity unit tests (never used outside tests): a small node
 * script that reads `--job <file>` and writes protocol lines (protocol/trainer-messages.ts)
 * according to a behaviour fixed when the script is written. It exercises the activity's process
 * handling, heartbeats and error mapping, not training.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export type MockBehaviour = 'ok' | 'diverged' | 'invalid-job' | 'bad-data' | 'crash' | 'hang' | 'bench' | 'progress-forever';

export function writeMockTrainer(dir: string, behaviour: MockBehaviour): string {
  const file = path.join(dir, `mock-trainer-${behaviour}.js`);
  const script = `#!${process.execPath}
// MOCK trainer (test/activities/mock-trainer.ts), behaviour: ${behaviour}
const fs = require('fs'), path = require('path'), cp = require('child_process');
const job = JSON.parse(fs.readFileSync(process.argv[process.argv.indexOf('--job') + 1], 'utf8'));
const out = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
// a process of a data-parallel group (activities/trainer-group.ts): record what it was given
if (process.env.RANK !== undefined) {
  fs.mkdirSync(job.outDir, { recursive: true });
  const e = process.env;
  fs.appendFileSync(path.join(job.outDir, 'ranks.jsonl'), JSON.stringify({ RANK: e.RANK, WORLD_SIZE: e.WORLD_SIZE, LOCAL_RANK: e.LOCAL_RANK, MASTER_ADDR: e.MASTER_ADDR, MASTER_PORT: e.MASTER_PORT, CUDA_VISIBLE_DEVICES: e.CUDA_VISIBLE_DEVICES }) + '\\n');
}
const ckdir = path.join(job.outDir, 'checkpoints');
let resumedFrom = null;
if (job.resume && fs.existsSync(ckdir)) {
  const last = fs.readdirSync(ckdir).sort().pop();
  if (last) resumedFrom = { path: path.join(ckdir, last), epoch: 1, iteration: 2 };
}
out({ type: 'started', command: process.argv[2], arch: job.arch, device: job.device, torchVersion: 'mock', threads: 1, resumedFrom });
const behaviour = ${JSON.stringify(behaviour)};
const stats = { AP: 0.42, AP50: 0.6, AP75: 0.4, APs: 0.1, APm: 0.3, APl: 0.5, AR1: 0.3, AR10: 0.4, AR100: 0.45, ARs: 0.1, ARm: 0.3, ARl: 0.5 };
if (behaviour === 'invalid-job') { out({ type: 'error', kind: 'invalid_job', message: 'recipe.epochs must be positive', field: 'recipe.epochs' }); process.exit(2); }
if (behaviour === 'bad-data') { out({ type: 'error', kind: 'bad_data', message: 'instances_train.json: annotation 7 has a negative width' }); process.exit(3); }
const start = resumedFrom ? 3 : 1;
for (let it = start; it <= (behaviour === 'progress-forever' ? 2 : 4); it++) {
  out({ type: 'progress', epoch: it <= 2 ? 1 : 2, iteration: it, totalIterations: 4, lr: 0.01, loss: 2 / it, losses: { cls: 1 / it, bbox: 1 / it }, imagesPerSec: 10 });
  if (it === 2) {
    fs.mkdirSync(ckdir, { recursive: true });
    const p = path.join(ckdir, 'ckpt-000002.pt');
    fs.writeFileSync(p, 'mock');
    out({ type: 'checkpoint', path: p, epoch: 1, iteration: 2 });
  }
}
if (behaviour === 'progress-forever') {
  // keeps training (a progress line every 100 ms) until stopped from outside, e.g. by SIGSTOP
  fs.writeFileSync(path.join(job.outDir, 'pids.json'), JSON.stringify([process.pid]));
  let it = 3;
  setInterval(() => out({ type: 'progress', epoch: 2, iteration: it++, totalIterations: 1000000, lr: 0.01, loss: 1, losses: { cls: 1 }, imagesPerSec: 10 }), 100);
  return;
}
if (behaviour === 'crash') { process.stderr.write('mock: simulated crash\\n'); process.exit(1); }
if (behaviour === 'hang') {
  // a grandchild in the same process group, like a data-loader or evaluator subprocess
  const g = cp.spawn('sleep', ['300'], { stdio: 'ignore' });
  fs.writeFileSync(path.join(job.outDir, 'pids.json'), JSON.stringify([process.pid, g.pid]));
  setInterval(() => {}, 1000);
  return;
}
if (behaviour === 'diverged') { out({ type: 'result', kind: 'diverged', command: 'train', wallSeconds: 1.5, message: 'loss is NaN at iteration 3' }); process.exit(4); }
if (behaviour === 'bench') {
  out({ type: 'result', kind: 'ok', command: 'bench', wallSeconds: 0.5, bench: { device: job.device, warmup: 1, iterations: 3, medianMs: 12.5, meanMs: 13, p10Ms: 12, p90Ms: 14, stdMs: 0.5, peakMemoryMB: 100 } });
  process.exit(0);
}
out({ type: 'metrics', split: 'val', stats });
const weights = path.join(job.outDir, 'final.pt');
fs.writeFileSync(weights, 'mock');
out({ type: 'result', kind: 'ok', command: 'train', wallSeconds: 2.5, weights, metrics: { stats } });
`;
  fs.writeFileSync(file, script, { mode: 0o755 });
  return file;
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** true when the process no longer runs (gone, or a zombie waiting for a reaper) */
export function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}
