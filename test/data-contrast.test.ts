import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lesionCnr } from '../src/data/index.ts';

test('lesion contrast-to-noise: lesion mean against the median and robust spread of the organ voxels within 15 mm, on a hand-made volume', () => {
  // 20×20×20 at 2 mm; organ (label 5) fills x < 16, checkerboard 30/50 HU; a 2×2×2 lesion at 130 HU
  const n = 20, size = [n, n, n], spacing = [2, 2, 2];
  const ct = new Float32Array(n ** 3).fill(-100), labels = new Uint8Array(n ** 3), mask = new Uint8Array(n ** 3);
  for (let k = 0, p = 0; k < n; k++) for (let j = 0; j < n; j++) for (let i = 0; i < n; i++, p++) {
    if (i < 16) { labels[p] = 5; ct[p] = (i + j + k) % 2 ? 30 : 50; }
    if (i >= 9 && i <= 10 && j >= 9 && j <= 10 && k >= 9 && k <= 10) { mask[p] = 1; ct[p] = 130; }
  }
  // far from the lesion (more than 15 mm = 8 voxels beyond its box) the organ is odd: it must not count
  for (let k = 0; k < n; k++) for (let j = 0; j < n; j++) ct[0 + n * (j + n * k)] = 1000;
  // the background box is voxels 1..18 per axis: organ voxels there, lesion excluded
  const bg: number[] = [];
  for (let k = 1; k <= 18; k++) for (let j = 1; j <= 18; j++) for (let i = 1; i <= 18; i++) {
    const p = i + n * (j + n * k);
    if (labels[p] === 5 && !mask[p]) bg.push(ct[p]!);
  }
  const sorted = [...bg].sort((a, b) => a - b);
  const med = (s: number[]) => (s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2);
  const m = med(sorted), mad = med(bg.map((v) => Math.abs(v - m)).sort((a, b) => a - b));
  assert.ok(m === 30 || m === 40 || m === 50);
  const expected = Math.abs(130 - m) / Math.max(1, 1.4826 * mad);
  assert.ok(Math.abs(lesionCnr(ct, labels, mask, size, spacing, 5) - expected) < 1e-9);
  assert.ok(expected > 4, `a clearly bright lesion: ${expected}`);
  // a lesion as bright as its organ scores under 1; an empty mask or an absent organ gives NaN
  const faint = Float32Array.from(ct, (v, p) => (mask[p] ? 40 : v));
  assert.ok(lesionCnr(faint, labels, mask, size, spacing, 5) < 1);
  assert.ok(Number.isNaN(lesionCnr(ct, labels, new Uint8Array(n ** 3), size, spacing, 5)));
  assert.ok(Number.isNaN(lesionCnr(ct, labels, mask, size, spacing, 7)));
});
