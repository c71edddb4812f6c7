/**
 * Runs `smnas-trainer <command> --job <file>` for the people-facing CLI (`smnas train|bench`):
 * writes the job, parses the JSON-lines stdout with parseTrainerLine, drives a progress bar from
 * `progress` messages, forwards SIGINT/SIGTERM (the trainer checkpoints and exits 5), and turns
 * the trainer's exit codes into CLI outcomes. (The campaign's activities have their own runner.)
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { UserError } from '../common/errors';
import { log } from '../common/log';
import { TRAINER_BIN } from '../common/paths';
import { ProgressBar } from '../common/progress';
import type { Job } from '../protocol/job';
import { TrainerExit, parseTrainerLine, type ResultMessage, type TrainerMessage } from '../protocol/trainer-messages';
import { runTrainerGroup } from '../activities/trainer-group';

export interface TrainerOutcome {
  exitCode: number;
  result?: ResultMessage;
  error?: Extract<TrainerMessage, { type: 'error' }>;
  messages: TrainerMessage[];
}

/**
 * Writes <outDir>/job-<command>.json and runs the trainer on it; with nproc > 1, as that many
 * processes of one data-parallel training on this host (activities/trainer-group.ts; process r
 * uses the job's CUDA device + r, or the CPU), rank 0's messages driving the progress bar.
 */
export async function runTrainerJob(job: Job, opts: { label: string; quiet?: boolean; nproc?: number }): Promise<TrainerOutcome> {
  if (!fs.existsSync(TRAINER_BIN)) {
    throw new UserError(`the native trainer is not built (${TRAINER_BIN} missing): run scripts/setup.sh`);
  }
  fs.mkdirSync(job.outDir, { recursive: true });
  const jobFile = path.join(job.outDir, `job-${job.command}.json`);
  fs.writeFileSync(jobFile, JSON.stringify(job, null, 2) + '\n');
  log.info({ jobFile, trainer: TRAINER_BIN }, 'starting the trainer');

  const bar = opts.quiet ? undefined : new ProgressBar(opts.label, 1);
  const out: TrainerOutcome = { exitCode: 0, messages: [] };
  const onMessage = (m: TrainerMessage) => {
    out.messages.push(m);
    if (m.type === 'progress') {
      const terms = Object.entries(m.losses)
        .map(([k, v]) => `${k}=${v.toFixed(3)}`)
        .join(' ');
      bar?.update(
        m.iteration,
        `ep ${m.epoch} loss ${m.loss.toFixed(3)} (${terms}) lr ${m.lr.toExponential(2)} ${m.imagesPerSec.toFixed(1)} img/s`,
        m.totalIterations,
      );
    } else if (m.type === 'checkpoint') {
      log.debug({ path: m.path, iteration: m.iteration }, 'checkpoint');
    } else if (m.type === 'result') {
      out.result = m;
    } else if (m.type === 'error') {
      out.error = m;
    } else if (m.type === 'started' && m.resumedFrom) {
      log.info(m.resumedFrom, 'resumed from checkpoint');
    }
  };
  const nproc = opts.nproc ?? 1;
  let exitCode: number;
  if (nproc > 1) {
    // SIGINT / SIGTERM: every process gets SIGTERM (rank 0 checkpoints, all exit 5)
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    log.info({ nproc }, 'data-parallel training');
    const exit = await runTrainerGroup({
      bin: TRAINER_BIN,
      command: job.command,
      jobFile,
      nproc,
      signal: stop.signal,
      killGraceMs: 60_000,
      onMessage,
      onBadLine: (line, error) => log.warn({ line: line.slice(0, 200), error }, 'unexpected trainer output'),
      onPeerMessage: (rank, m) => {
        if (m.type === 'error' && !out.error) out.error = m;
        log.warn({ rank, message: m }, 'trainer process reported');
      },
    });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    exitCode = exit.code ?? 128;
    if (exit.code !== 0 && exit.stderrTail) process.stderr.write(exit.stderrTail + '\n');
  } else {
    const child = spawn(TRAINER_BIN, [job.command, '--job', jobFile], { stdio: ['ignore', 'pipe', 'inherit'] });
    const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
    const onInt = forward('SIGTERM');
    const onTerm = forward('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    const rl = readline.createInterface({ input: child.stdout });
    rl.on('line', (line) => {
      const r = parseTrainerLine(line);
      if (!r.ok) {
        log.warn({ line: line.slice(0, 200), error: r.error }, 'unexpected trainer output');
        return;
      }
      onMessage(r.message);
    });
    exitCode = await new Promise((resolve) => child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
  if (bar && out.messages.some((m) => m.type === 'progress')) process.stderr.write('\n');
  out.exitCode = exitCode;
  if (exitCode === TrainerExit.invalidJob || exitCode === TrainerExit.badData) {
    const where = out.error?.field ? ` (${out.error.field})` : '';
    throw new UserError(`${jobFile}${where}: ${out.error?.message ?? 'rejected by the trainer'}`, exitCode);
  }
  return out;
}

/** The CLI's exit code and one-line summary for a non-ok trainer outcome, or undefined when ok. */
export function failureOf(o: TrainerOutcome): { code: number; message: string } | undefined {
  if (o.exitCode === TrainerExit.ok) return undefined;
  if (o.exitCode === TrainerExit.diverged) return { code: o.exitCode, message: `training diverged: ${o.result?.message ?? ''}` };
  if (o.exitCode === TrainerExit.peerLost)
    return { code: o.exitCode, message: `a process of the data-parallel training died; continue with --resume (${o.error?.message ?? ''})` };
  if (o.exitCode === TrainerExit.interrupted) return { code: o.exitCode, message: `interrupted; continue with --resume (${o.error?.message ?? ''})` };
  return { code: o.exitCode, message: `the trainer failed (exit ${o.exitCode}): ${o.error?.message ?? 'see the log above'}` };
}
