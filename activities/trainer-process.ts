/**
 * Run `smnas-trainer <command> --job <job.json>` as a child in its own process group, read its
 * JSON-lines stdout (protocol/trainer-messages.ts) and report each message. On abort (activity
 * cancelled, heartbeat lost) the whole group gets SIGTERM, then SIGKILL after a grace period, so
 * no data-loader thread or evaluator subprocess survives its training.
 */
import { spawn } from 'node:child_process';
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

export function runTrainerProcess(run: TrainerRun): Promise<TrainerExitInfo> {
  return new Promise((resolve, reject) => {
    const child = spawn(run.bin, [run.command, '--job', run.jobFile], {
      detached: true, // own process group: kill(-pid) reaches every descendant
      stdio: ['ignore', 'pipe', 'pipe'],
      env: run.env ?? process.env,
    });
    const pid = child.pid ?? -1;
    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;
    const stderrLines: string[] = [];

    const killGroup = (sig: NodeJS.Signals) => {
      try {
        process.kill(-pid, sig);
      } catch {
        /* already gone */
      }
    };
    const onAbort = () => {
      if (aborted) return;
      aborted = true;
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), run.killGraceMs ?? 10_000);
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
      run.signal?.removeEventListener('abort', onAbort);
      reject(e);
    });
    child.on('close', (code, signal) => {
      run.signal?.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      // the leader is gone; make sure no straggler of its group lives on after an abort
      if (aborted) killGroup('SIGKILL');
      if (buf.trim()) {
        const p = parseTrainerLine(buf.trim());
        if (p.ok) run.onMessage(p.message);
      }
      if (errBuf) stderrLines.push(errBuf);
      resolve({ code, signal, stderrTail: stderrLines.join('\n'), aborted, pid });
    });
  });
}
