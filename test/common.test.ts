import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng, loadTaxonomy } from '../src/common/index.ts';

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
