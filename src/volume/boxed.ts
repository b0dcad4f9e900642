import type { BoxedVolume, Geometry, Vec3, Volume, VoxelBox } from './types.ts';
import { geometryOf } from './geometry.ts';
import { extractRegion, maskBoundingBox, voxelBoxSize } from './transforms.ts';

/** Whether box `outer` holds box `inner`. */
const holds = (outer: VoxelBox, inner: VoxelBox): boolean => [0, 1, 2].every((a) => outer.min[a]! <= inner.min[a]! && inner.max[a]! <= outer.max[a]!);

/** The empty (all-zero) boxed volume on a grid. */
export function emptyBoxed(grid: Geometry): BoxedVolume {
  return { grid: geometryOf(grid), box: null, data: new Float32Array(0) };
}

/** The whole-grid volume (a new array). */
export function denseVolume(b: BoxedVolume): Volume<Float32Array> {
  const [nx, ny, nz] = b.grid.size;
  return { ...geometryOf(b.grid), data: boxedOver(b, { min: [0, 0, 0], max: [nx - 1, ny - 1, nz - 1] }) };
}

/** The smallest box holding every given box (null ones are empty); null when all are. */
export function hullBox(...boxes: (VoxelBox | null)[]): VoxelBox | null {
  let hull: VoxelBox | null = null;
  for (const b of boxes) {
    if (!b) continue;
    hull = hull
      ? { min: [0, 1, 2].map((a) => Math.min(hull!.min[a]!, b.min[a]!)) as Vec3, max: [0, 1, 2].map((a) => Math.max(hull!.max[a]!, b.max[a]!)) as Vec3 }
      : { min: [...b.min], max: [...b.max] };
  }
  return hull;
}

/**
 * The values of a boxed volume over `box`, a box of its grid holding its own box: what a metric
 * needs when it only has to look where this volume or another is nonzero.
 */
export function boxedOver(b: BoxedVolume, box: VoxelBox): Float32Array {
  const [bx, by, bz] = voxelBoxSize(box);
  const out: BoxedVolume = { grid: b.grid, box, data: new Float32Array(bx * by * bz) };
  if (!b.box) return out.data;
  if (!holds(box, b.box)) throw new Error(`boxedOver: box ${JSON.stringify(box)} does not hold ${JSON.stringify(b.box)}`);
  copyInto(out, b.data, b.box, false);
  return out.data;
}

/** A whole-grid float volume kept over the box of its nonzero voxels. */
export function boxedVolume(v: Volume<Float32Array>): BoxedVolume {
  const box = maskBoundingBox(v);
  return box ? { grid: geometryOf(v), box, data: extractRegion(v, box.min, voxelBoxSize(box)).data } : emptyBoxed(v);
}

/**
 * `part` (values over `at`, a box of the same grid) merged into `into` by maximum: a new boxed
 * volume over the union of the two boxes (or `into` itself, written in place, when `at` lies in
 * its box).
 */
export function mergeBoxedMax(into: BoxedVolume, part: Float32Array, at: VoxelBox): BoxedVolume {
  const inside = into.box && holds(into.box, at);
  let out = into;
  if (!inside) {
    const box = hullBox(into.box, at)!;
    const [ux, uy, uz] = voxelBoxSize(box);
    out = { grid: into.grid, box, data: new Float32Array(ux * uy * uz) };
    if (into.box) copyInto(out, into.data, into.box, false);
  }
  copyInto(out, part, at, into.box !== null);
  return out;
}

/** Writes `values` (over box `at`) into `dst` (whose box holds `at`): by maximum, or plain copy. */
function copyInto(dst: BoxedVolume, values: Float32Array, at: VoxelBox, max: boolean): void {
  const b = dst.box!, [dx, dy] = voxelBoxSize(b), [ax, ay, az] = voxelBoxSize(at);
  for (let k = 0; k < az; k++) for (let j = 0; j < ay; j++) {
    const src = ax * (j + ay * k), o = at.min[0] - b.min[0] + dx * (at.min[1] - b.min[1] + j + dy * (at.min[2] - b.min[2] + k));
    if (!max) { dst.data.set(values.subarray(src, src + ax), o); continue; }
    for (let i = 0; i < ax; i++) if (values[src + i]! > dst.data[o + i]!) dst.data[o + i] = values[src + i]!;
  }
}

/** The value at voxel (i, j, k) of the grid. */
export function boxedAt(b: BoxedVolume, i: number, j: number, k: number): number {
  const box = b.box;
  if (!box || i < box.min[0] || j < box.min[1] || k < box.min[2] || i > box.max[0] || j > box.max[1] || k > box.max[2]) return 0;
  // read per voxel of a drawn slice: no array per call
  const bx = box.max[0] - box.min[0] + 1, by = box.max[1] - box.min[1] + 1;
  return b.data[i - box.min[0] + bx * (j - box.min[1] + by * (k - box.min[2]))]!;
}

/**
 * The NIfTI scl_slope of a probability map stored as uint8: stored value q means probability
 * q × PROBABILITY_SLOPE, to within 1/510 of the map's own value; every NIfTI reader (nibabel,
 * ITK, niivue, ours) applies the slope, so it reads probabilities, at a quarter of float32's bytes.
 */
export const PROBABILITY_SLOPE = 1 / 255;

/** The whole-grid uint8 form of a probability map in [0, 1] (round(p × 255)), filled from its box only. */
export function quantizedProbabilities(b: BoxedVolume): Volume<Uint8Array> {
  const [nx, ny, nz] = b.grid.size;
  const out = new Uint8Array(nx * ny * nz);
  forBox(b, (v, p) => { out[v] = p <= 0 ? 0 : p >= 1 ? 255 : Math.round(p * 255); });
  return { ...geometryOf(b.grid), data: out };
}

/** The whole-grid binary mask of a map at a threshold (1 where p ≥ threshold), filled from its box only. */
export function boxedMask(b: BoxedVolume, threshold: number): Volume<Uint8Array> {
  const [nx, ny, nz] = b.grid.size;
  const out = new Uint8Array(nx * ny * nz);
  forBox(b, (v, p) => { if (p >= threshold) out[v] = 1; });
  return { ...geometryOf(b.grid), data: out };
}

/** Calls f(whole-grid offset, value) for every voxel of a boxed volume's box. */
function forBox(b: BoxedVolume, f: (v: number, p: number) => void): void {
  if (!b.box) return;
  const [nx, ny] = b.grid.size, { min, max } = b.box;
  let o = 0;
  for (let k = min[2]; k <= max[2]; k++) for (let j = min[1]; j <= max[1]; j++) {
    for (let i = min[0], v = i + nx * (j + ny * k); i <= max[0]; i++, v++, o++) f(v, b.data[o]!);
  }
}
