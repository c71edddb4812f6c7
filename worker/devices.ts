/**
 * Which devices a GPU worker owns: `--gpus 0,1` (or SMNAS_GPUS), else the GPUs CUDA_VISIBLE_DEVICES
 * names, else those `nvidia-smi -L` lists, else none: a CPU-only host, which counts as one slot.
 */
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import { UserError } from '../common/errors';

/**
 * Intra-op threads of each trainer a GPU worker runs: the CPUs this process may use divided by the
 * devices it serves (one training per device runs at once), at least 1, so trainings side by side
 * on a multi-GPU host do not oversubscribe its cores. `--trainer-threads N` / SMNAS_TRAINER_THREADS
 * override it (e.g. a Kubernetes CPU limit that the affinity mask does not show). Pure.
 */
export function trainerThreads(cpus: number, devices: number, override?: string, source = '--trainer-threads'): number {
  if (override !== undefined) {
    if (!/^\d+$/.test(override.trim()) || Number(override) < 1) throw new UserError(`${source}: expected a positive number of threads, got '${override}'`);
    return Number(override);
  }
  return Math.max(1, Math.floor(cpus / Math.max(1, devices)));
}

/** trainerThreads for this host: os.availableParallelism() (the CPU affinity mask), flag, then SMNAS_TRAINER_THREADS. */
export function resolveTrainerThreads(flag: string | undefined, env: NodeJS.ProcessEnv, devices: number): number {
  if (flag !== undefined) return trainerThreads(os.availableParallelism(), devices, flag, '--trainer-threads');
  if (env.SMNAS_TRAINER_THREADS !== undefined) return trainerThreads(os.availableParallelism(), devices, env.SMNAS_TRAINER_THREADS, 'SMNAS_TRAINER_THREADS');
  return trainerThreads(os.availableParallelism(), devices);
}

/** Pure: "0,1" -> ['cuda:0','cuda:1']; "" / "cpu" / "none" -> ['cpu']. */
export function parseGpuList(spec: string, source = '--gpus'): string[] {
  const s = spec.trim();
  if (s === '' || s === 'cpu' || s === 'none') return ['cpu'];
  const parts = s.split(',').map((p) => p.trim());
  const out: string[] = [];
  for (const p of parts) {
    if (!/^\d+$/.test(p)) throw new UserError(`${source}: '${p}' is not a GPU index (expected e.g. 0,1 or 'cpu')`);
    const d = `cuda:${Number(p)}`;
    if (out.includes(d)) throw new UserError(`${source}: GPU ${p} is listed twice`);
    out.push(d);
  }
  return out;
}

/** Counts GPUs with nvidia-smi; 0 when it is missing or fails (a CPU-only host). */
export function detectGpuCount(): number {
  try {
    const out = execFileSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
    return out.split('\n').filter((l) => /^GPU \d+/.test(l)).length;
  } catch {
    return 0;
  }
}

/** Device list for this worker from the flag, then the environment, then detection. */
export function resolveDevices(flag: string | undefined, env: NodeJS.ProcessEnv, detect: () => number = detectGpuCount): string[] {
  if (flag !== undefined) return parseGpuList(flag, '--gpus');
  if (env.SMNAS_GPUS !== undefined) return parseGpuList(env.SMNAS_GPUS, 'SMNAS_GPUS');
  if (env.CUDA_VISIBLE_DEVICES !== undefined) {
    // the trainer sees the visible GPUs renumbered from 0
    const n = env.CUDA_VISIBLE_DEVICES.split(',').filter((x) => x.trim() !== '' && x.trim() !== '-1').length;
    return n === 0 ? ['cpu'] : Array.from({ length: n }, (_, i) => `cuda:${i}`);
  }
  const n = detect();
  return n === 0 ? ['cpu'] : Array.from({ length: n }, (_, i) => `cuda:${i}`);
}
