/**
 * Run `smnas-trainer <command> --job <job.json>` as a child in its own process group, read its
 * JSON-lines stdout (protocol/trainer-messages.ts) and report each message. On abort (activity
 * cancelled, heartbeat lost) the whole group gets SIGTERM, then SIGKILL after a grace period, so
 * no data-loader thread or evaluator subprocess survives its training.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { parseTrainerLine, type TrainerMessage } from '../protocol/trainer-messages';

export interface TrainerRun {
  bin: string;
  command: string;
  jobFile: string;
  onMessage: (m: TrainerMessage) => void;
  /** lines on stdout that are not protocol messages (reported, never fatal) */
  onBadLine?: (line: string, error: string) => void;
  signal?: AbortSignal;
  killGraceMs?: number;
  env?: NodeJS.ProcessEnv;
  /**
   * Records the running trainer (pid, host, binary). A trainer left behind by a worker that was
   * SIGKILLed (its detached process group outlives the worker) is stopped before a new attempt
   * starts in the same folder, so two trainers never write the same checkpoints.
   */
  pidFile?: string;
  /** told when a trainer left behind by an earlier attempt was found and stopped */
  onStaleTrainerStopped?: (pid: number) => void;
}

export interface TrainerExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** the last ~40 lines of stderr, for error messages */
  stderrTail: string;
  /** true when we killed it because of the abort signal */
  aborted: boolean;
  pid: number;
}

interface PidRecord {
  pid: number;
  host: string;
  bin: string;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

/**
 * Whether any live (non-zombie) process is left in process group `pgid`. The leader can be gone
 * while a subprocess it started is still being torn down by the same SIGKILL (a CI run caught the
 * subprocess alive right after its leader exited), so shutdown waits for the whole group.
 */
function groupRunning(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return true; // no /proc: trust kill(0)
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // after "comm)": state ppid pgrp ...
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') return true;
  }
  return false;
}

/** Stop the process group of a trainer an earlier attempt on this host left running. */
export async function stopStaleTrainer(pidFile: string, graceMs: number): Promise<number | null> {
  let rec: PidRecord;
  try {
    rec = JSON.parse(fs.readFileSync(pidFile, 'utf8')) as PidRecord;
  } catch {
    return null;
  }
  if (rec.host !== os.hostname() || !isRunning(rec.pid)) return null;
  // guard against a recycled pid: the process must still be running the trainer binary
  try {
    if (!fs.readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').includes(rec.bin)) return null;
  } catch {
    /* no /proc: go by the pid */
  }
  signalGroup(rec.pid, 'SIGTERM');
  signalGroup(rec.pid, 'SIGCONT');
  const end = Date.now() + graceMs;
  while (isRunning(rec.pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  signalGroup(rec.pid, 'SIGKILL');
  // the group leader was not our child: wait until the kernel has taken it away (init reaps it)
  while (isRunning(rec.pid) && Date.now() < end + 5000) await new Promise((r) => setTimeout(r, 20));
  return rec.pid;
}

/**
 * Trainers this worker process is running (pid of each group leader -> its grace). A worker that
 * shuts down stops them all (stopAllTrainers) before it exits, whatever state their activities
 * are in; 'exit' SIGKILLs any group still left, as a last resort.
 */
const live = new Map<number, number>();
let exitHookInstalled = false;

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    /* already gone */
  }
}

/** Pids of the trainers this process runs now. */
export function liveTrainers(): number[] {
  return [...live.keys()];
}

/**
 * Stop every trainer this process started: SIGTERM (and SIGCONT, so a stopped one can act on it;
 * the trainer checkpoints on SIGTERM), wait up to each one's grace, then SIGKILL the group.
 * Resolves when all are gone. The worker calls it on shutdown, after the SDK's drain.
 */
export async function stopAllTrainers(graceMs?: number): Promise<number[]> {
  const pids = [...live.entries()];
  for (const [pid] of pids) {
    signalGroup(pid, 'SIGTERM');
    signalGroup(pid, 'SIGCONT');
  }
  const end = Date.now() + (graceMs ?? Math.max(0, ...pids.map(([, g]) => g)));
  while (pids.some(([pid]) => isRunning(pid)) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  for (const [pid] of pids) signalGroup(pid, 'SIGKILL');
  while (pids.some(([pid]) => groupRunning(pid)) && Date.now() < end + 5000) await new Promise((r) => setTimeout(r, 20));
  return pids.map(([pid]) => pid);
}

export async function runTrainerProcess(run: TrainerRun): Promise<TrainerExitInfo> {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const pid of live.keys()) signalGroup(pid, 'SIGKILL');
    });
  }
  if (run.pidFile) {
    const stale = await stopStaleTrainer(run.pidFile, run.killGraceMs ?? 10_000);
    if (stale !== null) run.onStaleTrainerStopped?.(stale);
  }
  return new Promise((resolve, reject) => {
    const child = spawn(run.bin, [run.command, '--job', run.jobFile], {
      detached: true, // own process group: kill(-pid) reaches every descendant
      stdio: ['ignore', 'pipe', 'pipe'],
      env: run.env ?? process.env,
    });
    const pid = child.pid ?? -1;
    const grace = run.killGraceMs ?? 10_000;
    if (pid > 0) live.set(pid, grace);
    if (run.pidFile && pid > 0) {
      try {
        fs.writeFileSync(run.pidFile, JSON.stringify({ pid, host: os.hostname(), bin: run.bin } satisfies PidRecord));
      } catch {
        /* the folder is the trainer's outDir and exists; a failure here only loses the guard */
      }
    }
    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;
    const stderrLines: string[] = [];

    const killGroup = (sig: NodeJS.Signals) => signalGroup(pid, sig);
    const onAbort = () => {
      if (aborted) return;
      aborted = true;
      killGroup('SIGTERM');
      killGroup('SIGCONT'); // a SIGSTOPped trainer acts on SIGTERM only once continued
      killTimer = setTimeout(() => killGroup('SIGKILL'), grace);
      killTimer.unref();
    };
    if (run.signal?.aborted) onAbort();
    else run.signal?.addEventListener('abort', onAbort);

    let buf = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const p = parseTrainerLine(line);
        if (p.ok) run.onMessage(p.message);
        else run.onBadLine?.(line, p.error);
      }
    });
    let errBuf = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      errBuf += chunk;
      const parts = errBuf.split('\n');
      errBuf = parts.pop() ?? '';
      stderrLines.push(...parts);
      if (stderrLines.length > 40) stderrLines.splice(0, stderrLines.length - 40);
    });
    child.on('error', (e) => {
      live.delete(pid);
      run.signal?.removeEventListener('abort', onAbort);
      reject(e);
    });
    child.on('close', (code, signal) => {
      live.delete(pid);
      run.signal?.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      // the leader is gone; make sure no straggler of its group lives on after an abort
      if (aborted) killGroup('SIGKILL');
      if (run.pidFile) fs.rmSync(run.pidFile, { force: true });
      if (buf.trim()) {
        const p = parseTrainerLine(buf.trim());
        if (p.ok) run.onMessage(p.message);
      }
      if (errBuf) stderrLines.push(errBuf);
      resolve({ code, signal, stderrTail: stderrLines.join('\n'), aborted, pid });
    });
  });
}
