/**
 * Bookkeeping of the processes `bin/smnas dev` starts (the dev server and two workers): pid files
 * under <state>/run, logs under <state>/logs. `dev stop` only ever signals a pid whose command
 * line still looks like what was started, so a stale pid file never hits an unrelated process.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pidAlive, stopGroup } from './temporal-server';

export type DevProcessName = 'temporal' | 'worker-control' | 'worker-gpu';
/** stop order: workers drain first, the server last */
export const DEV_PROCESSES: DevProcessName[] = ['worker-gpu', 'worker-control', 'temporal'];

export const runDir = (stateDir: string) => path.join(stateDir, 'run');
export const logDir = (stateDir: string) => path.join(stateDir, 'logs');
export const pidFile = (stateDir: string, name: DevProcessName) => path.join(runDir(stateDir), `${name}.pid`);
export const logFile = (stateDir: string, name: DevProcessName) => path.join(logDir(stateDir), `${name}.log`);

export interface PidRecord {
  pid: number;
  /** what the process was started as, to recognise it later */
  argv: string[];
  address: string;
  startedAt: string;
}

export function writePidRecord(stateDir: string, name: DevProcessName, rec: PidRecord): void {
  fs.mkdirSync(runDir(stateDir), { recursive: true });
  const f = pidFile(stateDir, name);
  fs.writeFileSync(f + '.tmp', JSON.stringify(rec) + '\n');
  fs.renameSync(f + '.tmp', f);
}

export function readPidRecord(stateDir: string, name: DevProcessName): PidRecord | undefined {
  try {
    const rec = JSON.parse(fs.readFileSync(pidFile(stateDir, name), 'utf8')) as PidRecord;
    return typeof rec.pid === 'number' ? rec : undefined;
  } catch {
    return undefined;
  }
}

export function removePidRecord(stateDir: string, name: DevProcessName): void {
  fs.rmSync(pidFile(stateDir, name), { force: true });
}

/** The process's command line (Linux /proc), or undefined when it is gone. */
export function cmdlineOf(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return undefined;
  }
}

/** True when pid is alive and still runs what the record says was started. */
export function isRecordedProcess(rec: PidRecord): boolean {
  if (!pidAlive(rec.pid)) return false;
  const cmd = cmdlineOf(rec.pid);
  if (cmd === undefined) return true; // no /proc: trust the pid
  const marker = rec.argv.find((a) => a === 'worker' || a === 'start-dev') ?? path.basename(rec.argv[0] ?? '');
  return cmd.includes(marker);
}

/** Live processes of a detached dev stack. */
export function liveDevProcesses(stateDir: string): { name: DevProcessName; rec: PidRecord }[] {
  const out: { name: DevProcessName; rec: PidRecord }[] = [];
  for (const name of DEV_PROCESSES) {
    const rec = readPidRecord(stateDir, name);
    if (rec && isRecordedProcess(rec)) out.push({ name, rec });
  }
  return out;
}

/** Stops what `dev --detach` left running (workers first); returns the names it stopped. */
export async function stopDevProcesses(stateDir: string, graceMs = 20_000): Promise<DevProcessName[]> {
  const stopped: DevProcessName[] = [];
  for (const name of DEV_PROCESSES) {
    const rec = readPidRecord(stateDir, name);
    if (!rec) continue;
    if (isRecordedProcess(rec)) {
      await stopGroup(rec.pid, graceMs);
      stopped.push(name);
    }
    removePidRecord(stateDir, name);
  }
  return stopped;
}
