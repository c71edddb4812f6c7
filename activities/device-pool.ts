/**
 * The devices of one GPU worker: each training leases one device and returns it when done, so a
 * worker with N GPUs runs at most N trainings and never two on one GPU (the worker also caps its
 * concurrent activities to N; this pool picks *which* device). CPU-only hosts have one slot 'cpu'.
 */
export class DevicePool {
  private readonly free: string[];
  private readonly waiters: ((device: string) => void)[] = [];

  constructor(readonly devices: string[]) {
    if (devices.length === 0) throw new Error('DevicePool: a worker needs at least one device');
    this.free = [...devices];
  }

  /** Wait for a free device (immediately when the worker's concurrency matches the pool size). */
  acquire(signal?: AbortSignal): Promise<string> {
    const d = this.free.shift();
    if (d !== undefined) return Promise.resolve(d);
    return new Promise((resolve, reject) => {
      const waiter = (device: string) => resolve(device);
      this.waiters.push(waiter);
      signal?.addEventListener('abort', () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error('cancelled while waiting for a device'));
      });
    });
  }

  release(device: string): void {
    const w = this.waiters.shift();
    if (w) w(device);
    else this.free.push(device);
  }

  get available(): number {
    return this.free.length;
  }
}
