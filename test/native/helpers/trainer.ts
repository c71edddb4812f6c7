/** Test helpers that run the real native trainer binary (native/build/smnas-trainer). */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSynthClassification } from '../../../datasets/synth/classification';
import { writeSynthDetection } from '../../../datasets/synth/detection';
import { PROJECT_ROOT, TRAINER_BIN } from '../../../common/paths';
import { parseTrainerLine, type TrainerMessage } from '../../../protocol/trainer-messages';

export function requireTrainer(): string {
  if (!fs.existsSync(TRAINER_BIN)) throw new Error(`${TRAINER_BIN} is missing: build it with scripts/setup.sh (cmake -S native -B native/build)`);
  return TRAINER_BIN;
}

export interface TrainerRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  messages: TrainerMessage[];
  /** stdout lines that were not valid protocol messages (must stay empty) */
  invalid: string[];
  stderr: string;
}

/** folders made by tmpDir in this test file, removed after its last test (CI machines keep /tmp) */
const madeDirs: string[] = [];
if (typeof afterAll === 'function') afterAll(() => madeDirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

export function tmpDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `smnas-${prefix}-`));
  madeDirs.push(dir);
  return dir;
}

/** Starts the trainer on a job object; `onMessage` may kill the child. */
export function startTrainer(job: { command: string; outDir: string }, onMessage?: (m: TrainerMessage, child: ChildProcess) => void): {
  child: ChildProcess;
  done: Promise<TrainerRun>;
} {
  fs.mkdirSync(job.outDir, { recursive: true });
  const file = path.join(job.outDir, `job-${job.command}-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(file, JSON.stringify(job));
  const child = spawn(requireTrainer(), [job.command, '--job', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const run: TrainerRun = { code: null, signal: null, messages: [], invalid: [], stderr: '' };
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const r = parseTrainerLine(line);
      if (r.ok) {
        run.messages.push(r.message);
        onMessage?.(r.message, child);
      } else run.invalid.push(line);
    }
  });
  child.stderr!.on('data', (d: Buffer) => (run.stderr += d.toString()));
  const done = new Promise<TrainerRun>((resolve) =>
    child.on('close', (code, signal) => {
      run.code = code;
      run.signal = signal;
      resolve(run);
    }),
  );
  return { child, done };
}

export function runTrainer<T extends { command: string; outDir: string }>(job: T): Promise<TrainerRun> {
  return startTrainer(job).done;
}

export function resultOf(run: TrainerRun) {
  const r = run.messages.find((m) => m.type === 'result');
  if (!r || r.type !== 'result') throw new Error(`no result message (exit ${run.code}); stderr:\n${run.stderr.slice(-2000)}`);
  return r;
}

/** A generated shapes data set (COCO form), cached per (train, val, size, seed) for this test run. */
export function shapesDataset(train: number, val: number, size = 128, seed = 1): string {
  const dir = path.join(os.tmpdir(), `smnas-test-shapes-${train}-${val}-${size}-${seed}`);
  if (!fs.existsSync(path.join(dir, '.complete'))) {
    writeSynthDetection({ out: dir, format: 'coco', train, val, size, classes: 4, seed });
    fs.writeFileSync(path.join(dir, '.complete'), '');
  }
  return dir;
}

export function classFolders(train: number, val: number, size = 64, classes = 4, seed = 1): string {
  const dir = path.join(os.tmpdir(), `smnas-test-classes-${train}-${val}-${size}-${classes}-${seed}`);
  if (!fs.existsSync(path.join(dir, '.complete'))) {
    writeSynthClassification({ out: dir, train, val, size, classes, seed });
    fs.writeFileSync(path.join(dir, '.complete'), '');
  }
  return dir;
}

/** The project's evaluator argv (bin/smnas eval through the compiled dist/ when present). */
export function evaluatorArgv(): string[] {
  const dist = path.join(PROJECT_ROOT, 'dist', 'cli', 'smnas.js');
  if (fs.existsSync(dist)) return [process.execPath, dist, 'eval'];
  return [path.join(PROJECT_ROOT, 'bin', 'smnas'), 'eval'];
}
