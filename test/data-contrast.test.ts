import { test } from 'node:test';
import assert from 'node:assert/strict';
import { enforceContrast, lesionCnr, localContrast, maskVoxelBox } from '../src/data/index.ts';

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

test('enforceContrast lifts a faint lesion to the minimum CNR on its drawn side, with a half-moved edge, leaving other lesions and far voxels alone', () => {
  // 24³ at 2 mm; organ (label 3) everywhere but the last 4 x-columns, a hashed texture of ±20 HU around 60
  const n = 24, size = [n, n, n], spacing = [2, 2, 2];
  const ct = new Int16Array(n ** 3), labels = new Uint8Array(n ** 3), mask = new Uint8Array(n ** 3), other = new Uint8Array(n ** 3);
  const at = (i: number, j: number, k: number) => i + n * (j + n * k);
  for (let k = 0; k < n; k++) for (let j = 0; j < n; j++) for (let i = 0; i < n; i++) {
    const p = at(i, j, k);
    labels[p] = i < 20 ? 3 : 0;
    ct[p] = i < 20 ? 60 + ((Math.imul(p, 2654435761) >>> 0) % 41) - 20 : -100;
  }
  // a 3×3×3 lesion drawn 2 HU darker than the organ: invisible
  for (let k = 10; k <= 12; k++) for (let j = 10; j <= 12; j++) for (let i = 10; i <= 12; i++) { mask[at(i, j, k)] = 1; ct[at(i, j, k)] = 58; }
  // another lesion touching it on the +x side must keep its voxels
  for (let j = 10; j <= 12; j++) for (let k = 10; k <= 12; k++) { other[at(13, j, k)] = 1; ct[at(13, j, k)] = 200; }
  const keep = Uint8Array.from(mask, (v, p) => v | other[p]!);
  const box = maskVoxelBox(mask, size)!;
  assert.deepEqual(box, { min: [10, 10, 10], max: [12, 12, 12] });
  const before = Int16Array.from(ct);
  assert.ok(lesionCnr(ct, labels, mask, size, spacing, 3) < 1);
  const r = enforceContrast(ct, labels, mask, keep, size, spacing, 3, box, 2, -1);
  const after = lesionCnr(ct, labels, mask, size, spacing, 3);
  assert.ok(Math.abs(r.after - after) < 1e-9 && after >= 2 && after < 2.5, `CNR ${r.before} → ${after}`);
  // darker, as drawn: the lesion's mean is below the organ background
  const c = localContrast(ct, labels, mask, size, spacing, 3)!;
  assert.ok(c.lesionMean < c.background - 2 * c.spread);
  // every lesion voxel moved by the same amount (up to rounding); the 6-neighbour edge by about half of it
  const moved = [...mask.keys()].filter((p) => mask[p]).map((p) => ct[p]! - before[p]!);
  assert.ok(Math.max(...moved) - Math.min(...moved) <= 4 && moved[0]! < -10);
  const edge = ct[at(9, 11, 11)]! - before[at(9, 11, 11)]!;
  assert.ok(Math.abs(edge - moved[0]! / 2) <= 4, `edge moved ${edge}, lesion ${moved[0]}`);
  // the other lesion, a diagonal neighbour (not 6-connected) and far voxels are untouched
  for (const p of [at(13, 11, 11), at(9, 9, 9), at(2, 2, 2), at(22, 11, 11)]) assert.equal(ct[p], before[p]);
  // an already visible lesion is left as it is
  const again = Int16Array.from(ct);
  const r2 = enforceContrast(ct, labels, mask, keep, size, spacing, 3, box, 2, -1);
  assert.equal(r2.before, r2.after);
  assert.deepEqual(ct, again);
});
