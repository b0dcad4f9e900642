import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng, loadTaxonomy, Progress, selectKth } from '../src/common/index.ts';

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
