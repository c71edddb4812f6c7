/**
 * The devices of one GPU worker: each training leases the devices it trains on (one, or N at once
 * for a data-parallel training, recipe.devices) and returns them when done, so a worker with N
 * GPUs never runs two trainings on one GPU (the worker also caps its concurrent activities to N;
 * this pool picks *which* devices). Waiters are served in arrival order: a training waiting for 4
 * devices is not overtaken forever by one-device trainings. CPU-only hosts have one slot 'cpu'.
 */
export class DevicePool {
  private readonly free: string[];
  private readonly waiters: { n: number; resolve: (devices: string[]) => void }[] = [];

  constructor(readonly devices: string[]) {
    if (devices.length === 0) throw new Error('DevicePool: a worker needs at least one device');
    this.free = [...devices];
  }

  /** Wait for a free device (immediately when the worker's concurrency matches the pool size). */
  async acquire(signal?: AbortSignal): Promise<string> {
    return (await this.acquireMany(1, signal))[0];
  }

  /** Wait until `n` devices are free together and lease them (n at most the pool's size). */
  acquireMany(n: number, signal?: AbortSignal): Promise<string[]> {
    if (!Number.isInteger(n) || n < 1 || n > this.devices.length) {
      return Promise.reject(new Error(`DevicePool: cannot lease ${n} of this worker's ${this.devices.length} devices`));
    }
    if (this.waiters.length === 0 && this.free.length >= n) return Promise.resolve(this.take(n));
    return new Promise((resolve, reject) => {
      const waiter = { n, resolve };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) {
          this.waiters.splice(i, 1);
          this.serve(); // the next waiter may fit now
        }
        reject(new Error('cancelled while waiting for a device'));
      });
    });
  }

  release(device: string): void {
    this.releaseMany([device]);
  }

  releaseMany(devices: string[]): void {
    this.free.push(...devices);
    this.serve();
  }

  get available(): number {
    return this.free.length;
  }

  private take(n: number): string[] {
    // lowest indices first, so a group gets neighbouring GPUs where it can
    this.free.sort((a, b) => this.devices.indexOf(a) - this.devices.indexOf(b));
    return this.free.splice(0, n);
  }

  private serve(): void {
    while (this.waiters.length > 0 && this.free.length >= this.waiters[0].n) {
      const w = this.waiters.shift()!;
      w.resolve(this.take(w.n));
    }
  }
}
