import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng, loadTaxonomy, Progress, selectKth } from '../src/common/index.ts';
import { formatRate } from '../src/common/progress.ts';

test('rng: same seed same stream, forks independent', () => {
  const a = createRng(7), b = createRng(7);
  const xs = Array.from({ length: 5 }, () => a.next());
  assert.deepEqual(xs, Array.from({ length: 5 }, () => b.next()));
  assert.notDeepEqual(xs, Array.from({ length: 5 }, () => createRng(8).next()));
  const f1 = createRng(7).fork('x').next(), f2 = createRng(7).fork('y').next();
  assert.notEqual(f1, f2);
  let s = 0, s2 = 0; const r = createRng(1); const n = 20000;
  for (let i = 0; i < n; i++) { const v = r.normal(); s += v; s2 += v * v; }
  assert.ok(Math.abs(s / n) < 0.03 && Math.abs(s2 / n - 1) < 0.05);
});

test('taxonomy: 25 report organs and 9 phrase classes as in the paper', () => {
  const t = loadTaxonomy();
  assert.equal(t.reportOrgans.length, 25);
  assert.equal(t.phraseClasses.length, 9);
  assert.equal(new Set(t.anomalyTypes.map((a) => a.id)).size, t.anomalyTypes.length);
});

test('a resumed progress bar rates only this run: 10 steps after resuming at 900 are not 910', async () => {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  (process.stderr as unknown as { write: (s: string) => boolean }).write = (s: string) => (lines.push(String(s)), true);
  try {
    const p = new Progress('train', 1000, 'steps', 900);
    await new Promise((r) => setTimeout(r, 250));
    p.tick(10);
    p.finish();
  } finally {
    (process.stderr as unknown as { write: typeof write }).write = write;
  }
  const m = /910\/1000 ([\d.]+) steps\/s ETA (\S+)/.exec(lines.join(''));
  assert.ok(m, lines.join(''));
  const rate = Number(m[1]);
  // 10 steps in ≥ 0.25 s: at most 40/s; counting the 900 resumed steps would give thousands
  assert.ok(rate > 0 && rate <= 40, `rate ${rate}`);
  assert.notEqual(m[2], '0:00');
});

test('selectKth gives the sorted array\'s k-th value, with ties and at both ends', () => {
  const rng = createRng(3);
  for (const n of [1, 2, 7, 100, 1001]) {
    const a = Float32Array.from({ length: n }, () => Math.round(rng.next() * 20) / 4);
    const sorted = Float32Array.from(a).sort();
    for (const k of new Set([0, n - 1, n >> 1, rng.int(0, n - 1)])) assert.equal(selectKth(Float32Array.from(a), k), sorted[k], `n ${n} k ${k}`);
  }
  assert.throws(() => selectKth(new Float32Array(3), 3), RangeError);
});

/** The lines a Progress writes while `f` runs, with Date.now() driven by the test (ms). */
function progressLines(f: (clock: { ms: number }) => void): string[] {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  const realNow = Date.now;
  const clock = { ms: 1_000_000 };
  Date.now = () => clock.ms;
  (process.stderr as unknown as { write: (s: string) => boolean }).write = (s: string) => (lines.push(String(s)), true);
  try {
    f(clock);
  } finally {
    (process.stderr as unknown as { write: typeof write }).write = write;
    Date.now = realNow;
  }
  return lines.join('').split(/[\r\n]/).filter(Boolean);
}

test('progress: one study that took 9.5 s since the run began reads 9.5 s/study, not thousands a second', () => {
  const lines = progressLines((clock) => {
    const since = clock.ms;
    clock.ms += 9_500;
    // the bar is made when the first study reports, as label does; its rate counts from the run's start
    const p = new Progress('label', 1, 'studies', 0, { since });
    p.tick();
    p.finish();
  });
  const last = lines.at(-1)!;
  assert.match(last, /1\/1 9\.5 s\/study in 0:09$/, last);
  assert.equal(formatRate(1000, 'studies'), '1000.00 studies/s');
  assert.equal(formatRate(0.25, 'steps'), '4.0 s/step');
});

test('progress: rate and ETA come from a moving window: after a slow start, the recent pace', () => {
  const lines = progressLines((clock) => {
    const p = new Progress('eval', 100, 'studies');
    // 5 studies at 10 s each, then 30 at 1 s each: the window (20 updates) sees only the fast ones
    for (let i = 0; i < 5; i++) { clock.ms += 10_000; p.tick(); }
    for (let i = 0; i < 30; i++) { clock.ms += 1_000; p.tick(); }
  });
  const m = /35\/100 ([\d.]+) studies\/s ETA (\d+):(\d+)/.exec(lines.at(-1)!);
  assert.ok(m, lines.at(-1));
  // over the whole run it would be 35 / 80 s = 0.44/s and ETA 2:28; the window says 1/s and 65 s
  assert.equal(Number(m[1]), 1);
  assert.equal(Number(m[2]) * 60 + Number(m[3]), 65);
});
