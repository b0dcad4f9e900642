import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng } from '../src/common/index.ts';
import {
  resample, resampleToGrid, spacingGrid, reorient, permuteAxes, scaleIntensity, cropOrPad, extractRegion, cropToWorldBox,
  maskBoundingBox, maskWorldBox, worldBoxToMask, voxelBoxToMask, voxelBoxToWorld, worldBoxToVoxel, indexToWorld, worldToIndex,
  orientationCode, voxelAt, type Geometry, type Vec3, type Volume,
} from '../src/volume/index.ts';

type Mat = number[];
const rotation = (ax: number, ay: number, az: number): Mat => {
  const cx = Math.cos(ax), sx = Math.sin(ax), cy = Math.cos(ay), sy = Math.sin(ay), cz = Math.cos(az), sz = Math.sin(az);
  const X = [1, 0, 0, 0, cx, -sx, 0, sx, cx], Y = [cy, 0, sy, 0, 1, 0, -sy, 0, cy], Z = [cz, -sz, 0, sz, cz, 0, 0, 0, 1];
  const mul = (a: Mat, b: Mat) => [0, 1, 2].flatMap((r) => [0, 1, 2].map((c) => a[r * 3]! * b[c]! + a[r * 3 + 1]! * b[3 + c]! + a[r * 3 + 2]! * b[6 + c]!));
  return mul(Z, mul(Y, X));
};

/** A volume whose voxel values are an affine function of world position: f(p) = g·p + c. */
function rampVolume(geom: Geometry, g: Vec3, c: number): Volume<Float32Array> {
  const [nx, ny, nz] = geom.size;
  const data = new Float32Array(nx * ny * nz);
  for (let k = 0, o = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, o++) {
    const p = indexToWorld(geom, [i, j, k]);
    data[o] = g[0] * p[0] + g[1] * p[1] + g[2] * p[2] + c;
  }
  return { ...geom, data };
}

const src: Geometry = { size: [20, 16, 12], spacing: [1.5, 2, 3], origin: [-10, 5, 30], direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] };
const G: Vec3 = [0.7, -1.3, 2.1];

/** Checks an output ramp against the analytic value at every voxel whose centre lies within the input's voxel centres. */
function assertRamp(out: Volume, input: Geometry, label: string) {
  let checked = 0, worst = 0;
  for (let k = 0, o = 0; k < out.size[2]; k++) for (let j = 0; j < out.size[1]; j++) for (let i = 0; i < out.size[0]; i++, o++) {
    const p = indexToWorld(out, [i, j, k]);
    const q = worldToIndex(input, p);
    if (q.some((x, a) => x < -1e-9 || x > input.size[a]! - 1 + 1e-9)) continue;
    const e = Math.abs(out.data[o]! - (G[0] * p[0] + G[1] * p[1] + G[2] * p[2] + 4));
    worst = Math.max(worst, e);
    checked++;
  }
  assert.ok(checked > 500, `${label}: only ${checked} voxels inside`);
  assert.ok(worst < 2e-3, `${label}: a linear ramp must stay the same ramp; worst error ${worst}`);
}

test('linear resampling keeps a linear ramp a ramp (separable, flipped/permuted, and rotated grids)', () => {
  const ramp = rampVolume(src, G, 4);
  // Separable path: new spacing, same axes.
  const r1 = resample(ramp, [1, 1.3, 0.7], 'linear');
  assert.deepEqual(r1.size, [30, Math.round(16 * 2 / 1.3), Math.round(12 * 3 / 0.7)]);
  assertRamp(r1, src, 'resample');
  // Permuted and flipped target axes (an LPS-like grid sampling an RAS volume).
  const perm: Geometry = { size: [17, 23, 19], spacing: [1.1, 0.9, 1.7], origin: [5, 30, 55], direction: [0, -1, 0, -1, 0, 0, 0, 0, -1] };
  assertRamp(resampleToGrid(ramp, perm, 'linear'), src, 'permuted');
  // Truly rotated target grid: general trilinear path.
  const rot: Geometry = { size: [18, 18, 14], spacing: [1.2, 1.2, 1.6], origin: [-5, 10, 40], direction: rotation(0.2, -0.15, 0.4) };
  assertRamp(resampleToGrid(ramp, rot, 'linear'), src, 'rotated');
  // And a rotated source sampled onto an axis-aligned grid.
  const rotSrc: Geometry = { ...src, direction: rotation(-0.1, 0.25, 0.3) };
  assertRamp(resampleToGrid(rampVolume(rotSrc, G, 4), { size: [20, 20, 20], spacing: [1, 1, 1], origin: [-5, 5, 35], direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] }, 'linear'), rotSrc, 'rotated source');
});

test('linear resampling matches an independent per-voxel trilinear computation on random data', () => {
  const rng = createRng(11);
  const vol: Volume<Float32Array> = { ...src, data: Float32Array.from({ length: 20 * 16 * 12 }, () => rng.next() * 100 - 50) };
  const target = spacingGrid(vol, [0.9, 1.7, 2.2]);
  const out = resample(vol, [0.9, 1.7, 2.2], 'linear');
  // Naive reference: each output voxel's index position in the input, clamped, 8-neighbour blend.
  const at = (i: number, j: number, k: number) => voxelAt(vol, i, j, k);
  let worst = 0;
  for (let k = 0, o = 0; k < target.size[2]; k++) for (let j = 0; j < target.size[1]; j++) for (let i = 0; i < target.size[0]; i++, o++) {
    const q = worldToIndex(vol, indexToWorld(target, [i, j, k])).map((x, a) => Math.min(Math.max(x, 0), vol.size[a]! - 1));
    const f = q.map(Math.floor).map((x, a) => Math.min(x, vol.size[a]! - 2));
    const [tx, ty, tz] = q.map((x, a) => x - f[a]!) as Vec3;
    let v = 0;
    for (let c = 0; c < 8; c++) {
      const w = (c & 1 ? tx : 1 - tx) * (c & 2 ? ty : 1 - ty) * (c & 4 ? tz : 1 - tz);
      v += w * at(f[0]! + (c & 1), f[1]! + ((c >> 1) & 1), f[2]! + ((c >> 2) & 1));
    }
    worst = Math.max(worst, Math.abs(v - out.data[o]!));
  }
  assert.ok(worst < 1e-3, `worst ${worst}`);
});

test('a small grid sampled from a large volume (inside, across its edge, clamped; flipped and rotated) matches per-voxel trilinear sampling', () => {
  const rng = createRng(23);
  const big = (direction: number[]): Volume<Float32Array> => ({ size: [40, 36, 30], spacing: [1.2, 1.5, 2], origin: [10, -20, 40], direction, data: Float32Array.from({ length: 40 * 36 * 30 }, () => rng.next() * 200 - 100) });
  // naive reference: outside the voxel extent (half a voxel beyond the edge centres) the fill, else the clamped 8-neighbour blend
  const reference = (vol: Volume<Float32Array>, t: Geometry, fill: number | 'clamp') => {
    const out = new Float32Array(t.size[0] * t.size[1] * t.size[2]);
    for (let k = 0, o = 0; k < t.size[2]; k++) for (let j = 0; j < t.size[1]; j++) for (let i = 0; i < t.size[0]; i++, o++) {
      const raw = worldToIndex(vol, indexToWorld(t, [i, j, k]));
      if (fill !== 'clamp' && raw.some((x, a) => x < -0.5 - 1e-4 || x > vol.size[a]! - 0.5 + 1e-4)) { out[o] = fill; continue; }
      const q = raw.map((x, a) => Math.min(Math.max(x, 0), vol.size[a]! - 1));
      const f = q.map(Math.floor).map((x, a) => Math.min(x, vol.size[a]! - 2));
      const [tx, ty, tz] = q.map((x, a) => x - f[a]!) as Vec3;
      let v = 0;
      for (let c = 0; c < 8; c++) v += (c & 1 ? tx : 1 - tx) * (c & 2 ? ty : 1 - ty) * (c & 4 ? tz : 1 - tz) * voxelAt(vol, f[0]! + (c & 1), f[1]! + ((c >> 1) & 1), f[2]! + ((c >> 2) & 1));
      out[o] = v;
    }
    return out;
  };
  for (const direction of [[-1, 0, 0, 0, -1, 0, 0, 0, 1], [0, 1, 0, -1, 0, 0, 0, 0, -1], rotation(0.2, -0.15, 0.3)]) {
    const vol = big(direction);
    const centre = indexToWorld(vol, [20, 18, 15]), corner = indexToWorld(vol, [0, 0, 0]);
    const grid = (at: Vec3): Geometry => ({ size: [9, 8, 7], spacing: [1.1, 0.9, 1.3], origin: at, direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] });
    for (const [t, fill] of [[grid(centre), -1000], [grid([corner[0] - 4, corner[1] - 3, corner[2] - 5]), -1000], [grid([corner[0] - 4, corner[1] - 3, corner[2] - 5]), 'clamp']] as [Geometry, number | 'clamp'][]) {
      const got = resampleToGrid(vol, t, 'linear', { fill }).data, want = reference(vol, t, fill);
      let worst = 0, filled = 0;
      for (let i = 0; i < want.length; i++) { worst = Math.max(worst, Math.abs(got[i]! - want[i]!)); if (want[i] === -1000) filled++; }
      assert.ok(worst < 1e-3, `direction ${direction.map((v) => v.toFixed(2))}, fill ${fill}: worst ${worst}`);
      if (t.origin === centre) assert.equal(filled, 0);
      else if (fill !== 'clamp') assert.ok(filled > 0 && filled < want.length, `the edge grid straddles the volume: ${filled} of ${want.length} filled`);
    }
  }
});

test('resample covers the same field of view, centred on the old one', () => {
  const v: Volume<Uint8Array> = { ...src, data: new Uint8Array(20 * 16 * 12) };
  const out = resample(v, 1, 'nearest');
  const a = voxelBoxToWorld(v), b = voxelBoxToWorld(out);
  for (let ax = 0; ax < 3; ax++) {
    const ca = (a[0][ax]! + a[1][ax]!) / 2, cb = (b[0][ax]! + b[1][ax]!) / 2;
    assert.ok(Math.abs(ca - cb) < 1e-9, 'centre kept');
    assert.equal(out.size[ax], Math.round(v.size[ax]! * v.spacing[ax]!));
  }
});

test('a one-voxel label lands at the right world point after nearest resampling', () => {
  const rng = createRng(5);
  for (let trial = 0; trial < 6; trial++) {
    const lab: Volume<Uint8Array> = { ...src, direction: trial % 2 ? [-1, 0, 0, 0, 0, 1, 0, 1, 0] : src.direction, data: new Uint8Array(20 * 16 * 12) };
    const p: Vec3 = [2 + rng.int(0, 15), 2 + rng.int(0, 11), 2 + rng.int(0, 7)];
    lab.data[p[0] + 20 * (p[1] + 16 * p[2])] = 7;
    const truth = indexToWorld(lab, p);
    const targets: Geometry[] = [
      spacingGrid(lab, 0.5),
      { size: [60, 60, 60], spacing: [0.75, 0.75, 0.75], origin: [-20, -10, 0], direction: [0, 1, 0, -1, 0, 0, 0, 0, -1] },
    ];
    // Centre the rotated grid near the label, off the voxel lattice.
    targets[1]!.origin = [truth[0] - 22.2, truth[1] + 22.7, truth[2] + 22.4];
    for (const t of targets) {
      const out = resampleToGrid(lab, t, 'nearest');
      const box = maskWorldBox(out, 7);
      assert.ok(box, 'label must survive');
      // Its voxels lie within half an input voxel of the original centre, and surround it.
      for (let a = 0; a < 3; a++) {
        const centre = (box[0][a]! + box[1][a]!) / 2;
        assert.ok(Math.abs(centre - truth[a]!) <= t.spacing[0] / 2 + 1e-6, `trial ${trial} axis ${a}: ${centre} vs ${truth[a]}`);
        assert.ok(box[0][a]! >= truth[a]! - 0.5 * 3 - 1e-6 && box[1][a]! <= truth[a]! + 0.5 * 3 + 1e-6);
      }
      for (const l of new Set(out.data)) assert.ok(l === 0 || l === 7);
    }
  }
});

test('fill value outside the input extent; clamp within half a voxel', () => {
  const v: Volume<Float32Array> = { ...src, data: new Float32Array(20 * 16 * 12).fill(5) };
  const wider: Geometry = { size: [40, 30, 30], spacing: [1.5, 2, 3], origin: [-40, -20, 0], direction: src.direction };
  const out = resampleToGrid(v, wider, 'linear', { fill: -1024 });
  const inBox = worldBoxToMask(wider, [[-10.75, 4, 28.5], [19.75, 36, 64.5]]);
  for (let i = 0; i < out.data.length; i++) assert.equal(out.data[i], inBox.data[i] ? 5 : -1024);
});

test('reorient is exact: every voxel keeps its value at its world point', () => {
  const rng = createRng(3);
  const dirs = [[1, 0, 0, 0, 1, 0, 0, 0, 1], [-1, 0, 0, 0, -1, 0, 0, 0, 1], [0, 0, -1, 1, 0, 0, 0, -1, 0], [0, 1, 0, 0, 0, 1, 1, 0, 0]];
  for (const d of dirs) {
    const v: Volume<Int16Array> = { ...src, direction: d, data: Int16Array.from({ length: 20 * 16 * 12 }, () => rng.int(0, 3999) - 1024) };
    for (const code of ['RAS', 'LPS', 'SAL']) {
      const r = reorient(v, code);
      assert.equal(orientationCode(r), code);
      assert.ok(r.data instanceof Int16Array);
      for (let n = 0; n < 200; n++) {
        const p: Vec3 = [rng.int(0, 19), rng.int(0, 15), rng.int(0, 11)];
        const q = worldToIndex(r, indexToWorld(v, p));
        const qi = q.map(Math.round) as Vec3;
        q.forEach((x, a) => assert.ok(Math.abs(x - qi[a]!) < 1e-9));
        assert.equal(voxelAt(r, ...qi), voxelAt(v, ...p));
      }
    }
  }
  assert.throws(() => reorient({ ...src, data: new Uint8Array(3840) }, 'RRS'));
});

test('permuteAxes then its inverse gives back the volume', () => {
  const rng = createRng(9);
  const v: Volume<Uint16Array> = { ...src, data: Uint16Array.from({ length: 3840 }, () => rng.int(0, 59999)) };
  const p = permuteAxes(v, [2, 0, 1], [true, false, true]);
  assert.deepEqual(p.size, [12, 20, 16]);
  // Inverse permutation: output axis c of the second step is axis inv[c] of p.
  const back = permuteAxes(p, [1, 2, 0], [false, true, true]);
  assert.deepEqual(back.size, v.size);
  assert.deepEqual(back.data, v.data);
  for (let a = 0; a < 3; a++) assert.ok(Math.abs(back.origin[a]! - v.origin[a]!) < 1e-9);
  back.direction.forEach((x, i) => assert.ok(Math.abs(x - v.direction[i]!) < 1e-12));
});

test('scaleIntensity clips the HU window and maps it linearly to [0, 1]', () => {
  const data = Int16Array.from([-2000, -1000, -500, 0, 200, 400, 1000]);
  const v: Volume<Int16Array> = { data, size: [7, 1, 1], spacing: [1, 1, 1], origin: [0, 0, 0], direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] };
  const s = scaleIntensity(v, -1000, 400);
  const expect = Array.from(data, (x) => Math.min(1, Math.max(0, (x + 1000) / 1400)));
  s.data.forEach((x, i) => assert.ok(Math.abs(x - expect[i]!) < 1e-6));
  assert.throws(() => scaleIntensity(v, 5, 5));
});

test('cropOrPad and extractRegion keep world positions; pads with fill', () => {
  const rng = createRng(2);
  const v: Volume<Int16Array> = { ...src, direction: [0, 1, 0, -1, 0, 0, 0, 0, 1], data: Int16Array.from({ length: 3840 }, () => rng.int(0, 999)) };
  const c = cropOrPad(v, [15, 20, 12], -1);
  assert.deepEqual(c.size, [15, 20, 12]);
  let pads = 0;
  for (let k = 0; k < 12; k++) for (let j = 0; j < 20; j++) for (let i = 0; i < 15; i++) {
    const q = worldToIndex(v, indexToWorld(c, [i, j, k])).map((x) => Math.round(x)) as Vec3;
    const inside = q.every((x, a) => x >= 0 && x < v.size[a]!);
    assert.equal(voxelAt(c, i, j, k), inside ? voxelAt(v, ...q) : -1);
    if (!inside) pads++;
  }
  assert.equal(pads, 15 * 4 * 12); // 16 → 20 rows: 2 padded on each side
  // x: 20 → 15 crops floor(5/2) = 2 at the start.
  assert.equal(voxelAt(c, 0, 2, 0), voxelAt(v, 2, 0, 0));
  const r = extractRegion(v, [-3, 4, 11], [5, 2, 3], 9);
  assert.equal(voxelAt(r, 0, 0, 0), 9);
  assert.equal(voxelAt(r, 3, 1, 0), voxelAt(v, 0, 5, 11));
  assert.equal(voxelAt(r, 3, 1, 1), 9);
});

test('mask → voxel box → world box → mask round-trips; cropToWorldBox keeps exactly the box', () => {
  const g: Geometry = { size: [20, 16, 12], spacing: [1.5, 2, 3], origin: [10, -5, 30], direction: [-1, 0, 0, 0, -1, 0, 0, 0, 1] };
  const box = { min: [3, 4, 2] as Vec3, max: [9, 12, 6] as Vec3 };
  const mask = voxelBoxToMask(g, box);
  assert.deepEqual(maskBoundingBox(mask), box);
  let count = 0; for (const x of mask.data) count += x;
  assert.equal(count, 7 * 9 * 5);
  const wb = maskWorldBox(mask)!;
  // The LPS grid maps index max to world min on x and y.
  assert.deepEqual(wb[0], [10 - 9 * 1.5, -5 - 12 * 2, 30 + 2 * 3]);
  assert.deepEqual(worldBoxToVoxel(g, wb), box);
  assert.deepEqual(worldBoxToMask(g, wb).data, mask.data);
  const vol: Volume<Uint8Array> = { ...g, data: mask.data };
  const cropped = cropToWorldBox(vol, wb);
  assert.deepEqual(cropped.size, [7, 9, 5]);
  assert.ok(cropped.data.every((x) => x === 1));
  assert.deepEqual(maskWorldBox(cropped), wb);
  const grown = cropToWorldBox(vol, wb, 3);
  assert.deepEqual(grown.size, [7 + 4, 9 + 2, 5 + 2]);
  assert.equal(maskBoundingBox({ ...g, data: new Uint8Array(3840) }), null);
  assert.equal(worldBoxToVoxel(g, [[500, 500, 500], [600, 600, 600]]), null);
  assert.throws(() => cropToWorldBox(vol, [[500, 500, 500], [600, 600, 600]]));
});
