import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boxedAt, boxedOver, boxedVolume, denseVolume, emptyBoxed, hullBox, mergeBoxedMax, type Vec3, type Volume, type VoxelBox } from '../src/volume/index.ts';
import { createRng } from '../src/common/index.ts';

const grid = (size: Vec3): Volume<Float32Array> => ({ data: new Float32Array(size[0] * size[1] * size[2]), size, spacing: [0.7, 1, 2.5], origin: [-3, 4, 10], direction: [-1, 0, 0, 0, 1, 0, 0, 0, 1] });

/** A dense volume whose nonzero values fill part of `box` (random values, so no structure is assumed). */
function blob(size: Vec3, box: VoxelBox, seed: number): Volume<Float32Array> {
  const v = grid(size), rng = createRng(seed);
  for (let k = box.min[2]; k <= box.max[2]; k++) for (let j = box.min[1]; j <= box.max[1]; j++) for (let i = box.min[0]; i <= box.max[0]; i++) {
    v.data[i + size[0] * (j + size[1] * k)] = rng.next() < 0.7 ? rng.next() : 0;
  }
  // the box's corners set, so the tight box is `box` itself
  for (const c of [box.min, box.max]) v.data[c[0] + size[0] * (c[1] + size[1] * c[2])] = 0.5;
  return v;
}

test('boxedVolume keeps the tight box of the nonzero voxels and denseVolume gives the volume back', () => {
  const size: Vec3 = [9, 7, 5], box: VoxelBox = { min: [2, 1, 1], max: [6, 5, 3] };
  const v = blob(size, box, 3);
  const b = boxedVolume(v);
  assert.deepEqual(b.box, box);
  assert.equal(b.data.length, 5 * 5 * 3);
  assert.deepEqual(b.grid, { size: v.size, spacing: v.spacing, origin: v.origin, direction: v.direction });
  assert.deepEqual(denseVolume(b).data, v.data);
  for (let k = 0; k < 5; k++) for (let j = 0; j < 7; j++) for (let i = 0; i < 9; i++) assert.equal(boxedAt(b, i, j, k), v.data[i + 9 * (j + 7 * k)]);
  const none = boxedVolume(grid(size));
  assert.equal(none.box, null);
  assert.equal(denseVolume(none).data.length, 9 * 7 * 5);
  assert.ok(denseVolume(none).data.every((x) => x === 0));
});

test('mergeBoxedMax equals the voxelwise maximum of the dense volumes: disjoint, overlapping, nested and into an empty one', () => {
  const size: Vec3 = [10, 8, 6];
  const cases: [VoxelBox, VoxelBox][] = [
    [{ min: [0, 0, 0], max: [3, 2, 2] }, { min: [6, 5, 3], max: [9, 7, 5] }],
    [{ min: [1, 1, 1], max: [6, 5, 4] }, { min: [4, 3, 2], max: [8, 7, 5] }],
    [{ min: [1, 1, 1], max: [8, 6, 4] }, { min: [3, 2, 2], max: [5, 4, 3] }],
  ];
  cases.forEach(([p, q], n) => {
    const a = blob(size, p, 10 + n), b = blob(size, q, 20 + n);
    const part = boxedVolume(b);
    const merged = mergeBoxedMax(boxedVolume(a), part.data, part.box!);
    const want = a.data.map((x, i) => Math.max(x, b.data[i]!));
    assert.deepEqual(denseVolume(merged).data, want, `case ${n}`);
    // into nothing: the part itself
    assert.deepEqual(denseVolume(mergeBoxedMax(emptyBoxed(a), part.data, part.box!)).data, b.data);
  });
});

test('hullBox holds every box and no more; boxedOver gives the dense values over a larger box', () => {
  assert.equal(hullBox(null, null), null);
  const a: VoxelBox = { min: [2, 1, 1], max: [4, 5, 2] }, b: VoxelBox = { min: [0, 3, 2], max: [3, 6, 4] };
  assert.deepEqual(hullBox(a, null, b), { min: [0, 1, 1], max: [4, 6, 4] });
  assert.deepEqual(hullBox(null, a), a);
  const size: Vec3 = [9, 7, 5], v = blob(size, a, 8), bv = boxedVolume(v);
  const over: VoxelBox = { min: [1, 0, 0], max: [7, 6, 3] }, got = boxedOver(bv, over);
  assert.equal(got.length, 7 * 7 * 4);
  // independent: the dense array read over the box, index by index
  for (let k = 0, o = 0; k <= 3; k++) for (let j = 0; j <= 6; j++) for (let i = 1; i <= 7; i++, o++) assert.equal(got[o], v.data[i + 9 * (j + 7 * k)]);
  assert.ok(boxedOver(emptyBoxed(v), over).every((x) => x === 0));
  assert.throws(() => boxedOver(bv, { min: [3, 0, 0], max: [7, 6, 3] }), /does not hold/);
});
