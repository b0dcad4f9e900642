/**
 * A one-line progress bar on stderr with rate and ETA. On a non-TTY (CI, a log file) it prints a
 * plain line every few seconds instead of redrawing.
 */
export class Progress {
  private readonly start = Date.now();
  private lastPrint = 0;
  private readonly tty = Boolean(process.stderr.isTTY);

  /** what was already done when this run started (a resumed run): not part of this run's rate */
  private readonly initial: number;

  constructor(private readonly label: string, private readonly total: number, private readonly unit = 'it', private done = 0) {
    this.initial = done;
  }

  tick(n = 1, extra = ''): void {
    this.done += n;
    this.render(extra);
  }

  set(done: number, extra = ''): void {
    this.done = done;
    this.render(extra);
  }

  finish(extra = ''): void {
    this.render(extra, true);
    if (this.tty) process.stderr.write('\n');
  }

  private render(extra: string, force = false): void {
    const now = Date.now();
    if (!force && now - this.lastPrint < (this.tty ? 100 : 5000)) return;
    this.lastPrint = now;
    const secs = (now - this.start) / 1000;
    const rate = secs > 0 ? (this.done - this.initial) / secs : 0;
    const left = rate > 0 ? (this.total - this.done) / rate : NaN;
    const frac = this.total > 0 ? Math.min(1, this.done / this.total) : 0;
    const width = 24;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    const line = `${this.label} [${bar}] ${this.done}/${this.total} ${rate.toFixed(2)} ${this.unit}/s ETA ${formatSeconds(left)}${extra ? ' ' + extra : ''}`;
    if (this.tty) process.stderr.write(`\r${line}\x1b[K`);
    else process.stderr.write(line + '\n');
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const m = Math.floor(s / 60), sec = Math.floor(s % 60);
  return m >= 60 ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m` : `${m}:${String(sec).padStart(2, '0')}`;
}
