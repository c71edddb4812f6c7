/**
 * A terminal progress bar on stderr (like tqdm / mmcv's ProgressBar). When stderr is not a TTY it
 * prints a line at most every `minIntervalMs`, so logs of CI and scripts stay readable.
 */
export class ProgressBar {
  private lastDraw = 0;
  private readonly tty = Boolean(process.stderr.isTTY);
  private readonly started = Date.now();

  constructor(
    private readonly label: string,
    private total: number,
    private readonly minIntervalMs = 2000,
  ) {}

  update(done: number, extra = '', total = this.total): void {
    this.total = total;
    const now = Date.now();
    const finished = done >= this.total;
    if (!finished && now - this.lastDraw < (this.tty ? 100 : this.minIntervalMs)) return;
    this.lastDraw = now;
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 0;
    const width = 30;
    const filled = Math.round(frac * width);
    const elapsed = (now - this.started) / 1000;
    const eta = frac > 0 ? elapsed * (1 / frac - 1) : NaN;
    const line =
      `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.total} ` +
      `${(frac * 100).toFixed(0)}% ${fmtSeconds(elapsed)}<${Number.isFinite(eta) ? fmtSeconds(eta) : '?'} ${extra}`;
    if (this.tty) process.stderr.write(`\r\x1b[2K${line}`);
    else process.stderr.write(line + '\n');
  }

  done(extra = ''): void {
    this.update(this.total, extra);
    if (this.tty) process.stderr.write('\n');
  }
}

export function fmtSeconds(s: number): string {
  const m = Math.floor(s / 60);
  const sec = Math.floor(s % 60);
  return m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}
