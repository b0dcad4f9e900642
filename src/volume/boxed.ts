import type { BoxedVolume, Geometry, Vec3, Volume, VoxelBox } from './types.ts';

const boxSize = (b: VoxelBox): Vec3 => [0, 1, 2].map((a) => b.max[a]! - b.min[a]! + 1) as Vec3;

function gridOf(g: Geometry): Geometry {
  return { size: [...g.size], spacing: [...g.spacing], origin: [...g.origin], direction: [...g.direction] };
}

/** The empty (all-zero) boxed volume on a grid. */
export function emptyBoxed(grid: Geometry): BoxedVolume {
  return { grid: gridOf(grid), box: null, data: new Float32Array(0) };
}

/** The whole-grid volume (a new array). */
export function denseVolume(b: BoxedVolume): Volume<Float32Array> {
  const [nx, ny, nz] = b.grid.size;
  const out = new Float32Array(nx * ny * nz);
  if (b.box) {
    const [bx, by, bz] = boxSize(b.box), [i0, j0, k0] = b.box.min;
    for (let k = 0; k < bz; k++) for (let j = 0; j < by; j++) {
      const src = bx * (j + by * k);
      out.set(b.data.subarray(src, src + bx), i0 + nx * (j0 + j + ny * (k0 + k)));
    }
  }
  return { ...gridOf(b.grid), data: out };
}

/** A whole-grid float volume kept over the box of its nonzero voxels. */
export function boxedVolume(v: Volume<Float32Array>): BoxedVolume {
  const [nx, ny, nz] = v.size;
  const min: Vec3 = [nx, ny, nz], max: Vec3 = [-1, -1, -1];
  for (let k = 0, o = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, o++) {
    if (v.data[o] === 0) continue;
    if (i < min[0]) min[0] = i; if (i > max[0]) max[0] = i;
    if (j < min[1]) min[1] = j; if (j > max[1]) max[1] = j;
    if (k < min[2]) min[2] = k; if (k > max[2]) max[2] = k;
  }
  if (max[0] < 0) return emptyBoxed(v);
  const box = { min, max }, [bx, by, bz] = boxSize(box);
  const data = new Float32Array(bx * by * bz);
  for (let k = 0; k < bz; k++) for (let j = 0; j < by; j++) {
    const src = min[0] + nx * (min[1] + j + ny * (min[2] + k));
    data.set(v.data.subarray(src, src + bx), bx * (j + by * k));
  }
  return { grid: gridOf(v), box, data };
}

/**
 * `part` (values over `at`, a box of the same grid) merged into `into` by maximum: a new boxed
 * volume over the union of the two boxes (or `into` itself, written in place, when `at` lies in
 * its box).
 */
export function mergeBoxedMax(into: BoxedVolume, part: Float32Array, at: VoxelBox): BoxedVolume {
  const inside = into.box && [0, 1, 2].every((a) => into.box!.min[a]! <= at.min[a]! && at.max[a]! <= into.box!.max[a]!);
  let out = into;
  if (!inside) {
    const box: VoxelBox = into.box
      ? { min: [0, 1, 2].map((a) => Math.min(into.box!.min[a]!, at.min[a]!)) as Vec3, max: [0, 1, 2].map((a) => Math.max(into.box!.max[a]!, at.max[a]!)) as Vec3 }
      : { min: [...at.min], max: [...at.max] };
    const [ux, uy, uz] = boxSize(box);
    out = { grid: into.grid, box, data: new Float32Array(ux * uy * uz) };
    if (into.box) copyInto(out, into.data, into.box, false);
  }
  copyInto(out, part, at, into.box !== null);
  return out;
}

/** Writes `values` (over box `at`) into `dst` (whose box holds `at`): by maximum, or plain copy. */
function copyInto(dst: BoxedVolume, values: Float32Array, at: VoxelBox, max: boolean): void {
  const b = dst.box!, [dx, dy] = boxSize(b), [ax, ay, az] = boxSize(at);
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
