/**
 * One data-parallel training as N `smnas-trainer` processes (native/src/dist.hpp): each started by
 * trainer-process.ts's runTrainerProcess (its own process group, pid file, abort handling) with
 * torchrun's environment variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT).
 * Rank 0 alone speaks the protocol (progress, checkpoints, result); the other ranks report errors
 * only. A process that dies makes the others fail within the collective timeout (exit 6,
 * peer_lost); should one still run `straggleMs` after another failed, its group is killed here,
 * so a training never hangs. With nproc 1 this is runTrainerProcess unchanged.
 *
 * Multi-host: run one group per host with the same masterAddr/masterPort (rank 0's host), the
 * host's nodeRank and nnodes (world size nproc x nnodes); docs/runtime.md.
 */
import { freePort } from '../common/net';
import type { TrainerMessage } from '../protocol/trainer-messages';
import { TrainerExit } from '../protocol/trainer-messages';
import { runTrainerProcess, type TrainerExitInfo, type TrainerRun } from './trainer-process';

export interface TrainerGroupRun extends TrainerRun {
  /** processes on this host (1: a plain single-process run) */
  nproc: number;
  /** hosts of the training (default 1) and this host's index (rank 0 lives on host 0) */
  nnodes?: number;
  nodeRank?: number;
  /** rendezvous: rank 0's host and a free TCP port there (default 127.0.0.1 and a free port found here) */
  masterAddr?: string;
  masterPort?: number;
  /**
   * The CUDA devices of the processes, one per process ('cuda:<i>' as the worker numbers them):
   * each process sees only its own (CUDA_VISIBLE_DEVICES), so the job's device must be 'cuda:0'.
   * Absent or 'cpu': CPU processes.
   */
  devices?: string[];
  /** how long the others may outlive a failed process before they are killed (default 60 s) */
  straggleMs?: number;
  /** messages of ranks > 0 (errors only) */
  onPeerMessage?: (rank: number, m: TrainerMessage) => void;
}

export interface TrainerGroupExit extends TrainerExitInfo {
  /** every process's exit, by local rank */
  ranks: TrainerExitInfo[];
  /** the local rank whose exit `code`/`signal` report */
  failedRank: number | null;
}

export { freePort };

/** The CUDA_VISIBLE_DEVICES value for a worker-numbered device, through the worker's own mask. */
export function visibleDeviceFor(device: string, parentVisible: string | undefined): string {
  const m = /^cuda:(\d+)$/.exec(device);
  if (!m) throw new Error(`not a CUDA device: '${device}'`);
  const i = Number(m[1]);
  if (parentVisible === undefined || parentVisible.trim() === '') return String(i);
  const list = parentVisible
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (i >= list.length) throw new Error(`device ${device} is not among CUDA_VISIBLE_DEVICES=${parentVisible}`);
  return list[i];
}

/**
 * The exit that describes the group: a deterministic failure of any rank (invalid job, bad data,
 * diverged, interrupted) wins; otherwise the first rank that failed (a killed rank, not the
 * peer_lost of the ranks that noticed it); otherwise rank 0's (all ok).
 */
export function groupExit(ranks: TrainerExitInfo[], failureOrder: number[]): { exit: TrainerExitInfo; rank: number | null } {
  const deterministic: number[] = [TrainerExit.invalidJob, TrainerExit.badData, TrainerExit.diverged, TrainerExit.interrupted];
  for (const r of failureOrder) if (ranks[r].code !== null && deterministic.includes(ranks[r].code!)) return { exit: ranks[r], rank: r };
  const first = failureOrder.find((r) => ranks[r].code !== TrainerExit.peerLost) ?? failureOrder[0];
  if (first !== undefined) return { exit: ranks[first], rank: first };
  return { exit: ranks[0], rank: null };
}

export async function runTrainerGroup(run: TrainerGroupRun): Promise<TrainerGroupExit> {
  const nproc = run.nproc;
  if (!Number.isInteger(nproc) || nproc < 1) throw new Error(`nproc must be a positive integer, got ${nproc}`);
  if (nproc === 1 && (run.nnodes ?? 1) === 1) {
    const exit = await runTrainerProcess(run);
    return { ...exit, ranks: [exit], failedRank: exit.code === 0 ? null : 0 };
  }
  const nnodes = run.nnodes ?? 1;
  const nodeRank = run.nodeRank ?? 0;
  const masterAddr = run.masterAddr ?? '127.0.0.1';
  const masterPort = run.masterPort ?? (await freePort(masterAddr));
  const cuda = run.devices !== undefined && run.devices.some((d) => d !== 'cpu');
  if (cuda && run.devices!.length !== nproc) throw new Error(`${nproc} processes need ${nproc} devices, got ${run.devices!.length}`);
  const parentEnv = run.env ?? process.env;
  const group = new AbortController();
  const onOuterAbort = () => group.abort();
  if (run.signal?.aborted) group.abort();
  else run.signal?.addEventListener('abort', onOuterAbort);

  const ranks: TrainerExitInfo[] = new Array(nproc);
  const failureOrder: number[] = [];
  let straggleTimer: NodeJS.Timeout | undefined;
  try {
    await Promise.all(
      Array.from({ length: nproc }, async (_, local) => {
        const rank = nodeRank * nproc + local;
        const env: NodeJS.ProcessEnv = {
          ...parentEnv,
          RANK: String(rank),
          WORLD_SIZE: String(nproc * nnodes),
          LOCAL_RANK: cuda ? '0' : String(local), // each process sees one GPU, numbered 0
          LOCAL_WORLD_SIZE: String(nproc),
          MASTER_ADDR: masterAddr,
          MASTER_PORT: String(masterPort),
        };
        if (cuda) env.CUDA_VISIBLE_DEVICES = visibleDeviceFor(run.devices![local], parentEnv.CUDA_VISIBLE_DEVICES);
        const exit = await runTrainerProcess({
          ...run,
          env,
          signal: group.signal,
          pidFile: run.pidFile ? (local === 0 ? run.pidFile : `${run.pidFile}.rank${local}`) : undefined,
          onMessage: rank === 0 ? run.onMessage : (m) => run.onPeerMessage?.(rank, m),
          onBadLine: rank === 0 ? run.onBadLine : undefined,
        });
        ranks[local] = exit;
        if (exit.code !== 0) {
          failureOrder.push(local);
          // the others notice through their collectives; kill them should they not
          if (!straggleTimer) {
            straggleTimer = setTimeout(() => group.abort(), run.straggleMs ?? 60_000);
            straggleTimer.unref();
          }
        }
      }),
    );
  } finally {
    if (straggleTimer) clearTimeout(straggleTimer);
    run.signal?.removeEventListener('abort', onOuterAbort);
  }
  const { exit, rank } = groupExit(ranks, failureOrder);
  const aborted = run.signal?.aborted ?? false;
  const stderrTail = ranks
    .map((r, i) => (r.code === 0 ? '' : `[rank ${nodeRank * nproc + i}] ${r.stderrTail.split('\n').slice(-10).join('\n')}`))
    .filter((s) => s)
    .join('\n');
  return { ...exit, aborted: aborted || exit.aborted, stderrTail: stderrTail || exit.stderrTail, ranks, failedRank: rank };
}

export interface ProcessPlan {
  /** processes (devices) of the training */
  nproc: number;
  /** images per process and iteration */
  batchSize: number;
}

/**
 * How a training that asks for `wantDevices` runs on a worker that owns `available` devices:
 * min(want, available) processes of the recipe's batch (a host never waits for more devices than
 * it has; multi-host trainings are configured outside campaigns, docs/runtime.md). A resumed
 * training keeps the global batch its checkpoints were written with (`resumeGlobalBatch`): the
 * largest process count n <= min(want, available) that divides it, each with global / n images.
 */
export function planProcesses(wantDevices: number, batchSize: number, available: number, resumeGlobalBatch?: number): ProcessPlan {
  const most = Math.max(1, Math.min(wantDevices, available));
  if (resumeGlobalBatch === undefined || resumeGlobalBatch === most * batchSize) return { nproc: most, batchSize };
  for (let n = most; n >= 1; n--) if (resumeGlobalBatch % n === 0) return { nproc: n, batchSize: resumeGlobalBatch / n };
  return { nproc: most, batchSize };
}
