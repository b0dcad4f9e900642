/** How far back the rate looks: the last WINDOW_ITEMS updates, at most WINDOW_MS old (the start counts as one). */
const WINDOW_ITEMS = 20;
const WINDOW_MS = 60_000;

/**
 * A one-line progress bar on stderr with rate and ETA. On a non-TTY (CI, a log file) it prints a
 * plain line every few seconds instead of redrawing. The rate is measured over a moving window of
 * recent updates, from when the work began (`since`, default: construction), so a slow start or a
 * change of pace is not averaged in forever and one finished item reads as its own time, not as
 * thousands per second; below one a second it is given as seconds per item.
 */
export class Progress {
  private readonly start: number;
  private lastPrint = 0;
  private readonly tty = Boolean(process.stderr.isTTY);
  /** (time, done) of recent updates, oldest first */
  private readonly samples: [number, number][];

  /** what was already done when this run started (a resumed run): not part of this run's rate */
  private readonly initial: number;

  constructor(private readonly label: string, private readonly total: number, private readonly unit = 'it', private done = 0, opts: { since?: number } = {}) {
    this.initial = done;
    this.start = opts.since ?? Date.now();
    this.samples = [[this.start, done]];
  }

  tick(n = 1, extra = ''): void {
    this.done += n;
    this.sample();
    this.render(extra);
  }

  set(done: number, extra = ''): void {
    this.done = done;
    this.sample();
    this.render(extra);
  }

  private sample(): void {
    const now = Date.now();
    this.samples.push([now, this.done]);
    // keep the window's oldest sample as its left end: a window always spans at least one update
    while (this.samples.length > WINDOW_ITEMS + 1 || (this.samples.length > 2 && now - this.samples[1]![0] > WINDOW_MS)) this.samples.shift();
  }

  /** Items per second: over the moving window while running, over the whole run at the end. */
  rate(overall = false): number {
    const now = Date.now();
    const [t0, d0] = overall ? [this.start, this.initial] : this.samples[0]!;
    const secs = (now - t0) / 1000;
    return secs > 0 ? (this.done - d0) / secs : 0;
  }

  finish(extra = ''): void {
    this.render(extra, true);
    if (this.tty) process.stderr.write('\n');
  }

  private render(extra: string, force = false): void {
    const now = Date.now();
    if (!force && now - this.lastPrint < (this.tty ? 100 : 5000)) return;
    this.lastPrint = now;
    const finished = force && this.done >= this.total;
    const rate = this.rate(finished);
    const left = finished ? 0 : rate > 0 ? (this.total - this.done) / rate : NaN;
    const frac = this.total > 0 ? Math.min(1, this.done / this.total) : 0;
    const width = 24;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    const line = `${this.label} [${bar}] ${this.done}/${this.total} ${formatRate(rate, this.unit)} ${finished ? 'in' : 'ETA'} ${formatSeconds(finished ? (now - this.start) / 1000 : left)}${extra ? ' ' + extra : ''}`;
    if (this.tty) process.stderr.write(`\r${line}\x1b[K`);
    else process.stderr.write(line + '\n');
  }
}

/** `12.3 studies/s`, or below one a second `9.5 s/study` (the unit's singular). */
export function formatRate(perSec: number, unit: string): string {
  if (!(perSec > 0)) return `-- ${unit}/s`;
  if (perSec >= 1) return `${perSec.toFixed(2)} ${unit}/s`;
  const one = unit.endsWith('ies') ? `${unit.slice(0, -3)}y` : unit.length > 1 && unit.endsWith('s') ? unit.slice(0, -1) : unit;
  return `${(1 / perSec).toFixed(1)} s/${one}`;
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const m = Math.floor(s / 60), sec = Math.floor(s % 60);
  return m >= 60 ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m` : `${m}:${String(sec).padStart(2, '0')}`;
}
