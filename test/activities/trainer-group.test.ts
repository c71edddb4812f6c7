/**
 * The pure parts of data-parallel launching (activities/trainer-group.ts) and the device pool's
 * multi-device leases (activities/device-pool.ts).
 */
import { DevicePool } from '../../activities/device-pool';
import { groupExit, planProcesses, visibleDeviceFor } from '../../activities/trainer-group';
import type { TrainerExitInfo } from '../../activities/trainer-process';

const exit = (code: number | null, signal: NodeJS.Signals | null = null): TrainerExitInfo => ({ code, signal, stderrTail: '', aborted: false, pid: 1 });

describe('planProcesses', () => {
  it('runs min(recipe devices, worker devices) processes of the recipe batch', () => {
    expect(planProcesses(8, 4, 8)).toEqual({ nproc: 8, batchSize: 4 });
    expect(planProcesses(8, 4, 2)).toEqual({ nproc: 2, batchSize: 4 });
    expect(planProcesses(1, 4, 8)).toEqual({ nproc: 1, batchSize: 4 });
  });
  it('a resumed training keeps its global batch with the largest process count that divides it', () => {
    expect(planProcesses(8, 4, 8, 32)).toEqual({ nproc: 8, batchSize: 4 });
    expect(planProcesses(8, 4, 2, 32)).toEqual({ nproc: 2, batchSize: 16 });
    expect(planProcesses(8, 4, 3, 32)).toEqual({ nproc: 2, batchSize: 16 });
    expect(planProcesses(2, 8, 4, 16)).toEqual({ nproc: 2, batchSize: 8 });
    expect(planProcesses(4, 3, 4, 7)).toEqual({ nproc: 1, batchSize: 7 });
  });
});

describe('groupExit', () => {
  it('reports the killed rank, not the peer_lost of the rank that noticed', () => {
    const ranks = [exit(6), exit(null, 'SIGKILL')];
    expect(groupExit(ranks, [1, 0])).toMatchObject({ rank: 1, exit: { signal: 'SIGKILL' } });
    expect(groupExit(ranks, [0, 1])).toMatchObject({ rank: 1 });
  });
  it('a deterministic failure (invalid job, diverged) of any rank wins', () => {
    expect(groupExit([exit(6), exit(2)], [0, 1])).toMatchObject({ rank: 1, exit: { code: 2 } });
    expect(groupExit([exit(4), exit(6)], [1, 0])).toMatchObject({ rank: 0, exit: { code: 4 } });
  });
  it('all ok: rank 0, no failed rank', () => {
    expect(groupExit([exit(0), exit(0)], [])).toMatchObject({ rank: null, exit: { code: 0 } });
  });
});

describe('visibleDeviceFor', () => {
  it('maps the worker numbering through its own CUDA_VISIBLE_DEVICES', () => {
    expect(visibleDeviceFor('cuda:1', undefined)).toBe('1');
    expect(visibleDeviceFor('cuda:1', '4,6,7')).toBe('6');
    expect(() => visibleDeviceFor('cuda:3', '4,6')).toThrow(/not among CUDA_VISIBLE_DEVICES=4,6/);
    expect(() => visibleDeviceFor('cpu', undefined)).toThrow(/not a CUDA device/);
  });
});

describe('DevicePool.acquireMany', () => {
  it('leases n devices together; waiters are served in arrival order', async () => {
    const pool = new DevicePool(['cuda:0', 'cuda:1', 'cuda:2', 'cuda:3']);
    const a = await pool.acquireMany(3);
    expect(a).toEqual(['cuda:0', 'cuda:1', 'cuda:2']);
    const order: string[] = [];
    const big = pool.acquireMany(2).then((d) => order.push(`big:${d.join(',')}`));
    const small = pool.acquire().then((d) => order.push(`small:${d}`));
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([]); // one free, but the 2-device waiter came first
    pool.releaseMany([a[0]]);
    await Promise.all([big]);
    pool.releaseMany(a.slice(1));
    await Promise.all([small]);
    expect(order).toEqual(['big:cuda:0,cuda:3', 'small:cuda:1']);
    expect(pool.available).toBe(1);
  });
  it('refuses more devices than the worker has, and a cancelled waiter lets the next one in', async () => {
    const pool = new DevicePool(['cuda:0', 'cuda:1']);
    await expect(pool.acquireMany(3)).rejects.toThrow(/cannot lease 3 of this worker's 2 devices/);
    const held = await pool.acquire();
    const ctl = new AbortController();
    const big = pool.acquireMany(2, ctl.signal);
    const small = pool.acquire();
    ctl.abort();
    await expect(big).rejects.toThrow(/cancelled/);
    expect(await small).toBe('cuda:1');
    pool.release(held);
    expect(pool.available).toBe(1);
  });
});
