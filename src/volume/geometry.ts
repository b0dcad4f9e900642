import type { Geometry, Vec3, Volume, VoxelArray, VoxelBox, WorldBox } from './types.ts';

/** The grid of a volume, copied, so it can describe a new volume without sharing arrays. */
export function geometryOf(g: Geometry): Geometry {
  return { size: [...g.size], spacing: [...g.spacing], origin: [...g.origin], direction: [...g.direction] };
}

/** True when two grids hold the same voxel centres in the same order (spacing within 1e-4 mm, origin 1e-3 mm, direction 1e-5). */
export function sameGrid(a: Geometry, b: Geometry): boolean {
  return a.size.every((n, i) => n === b.size[i]) && a.spacing.every((v, i) => Math.abs(v - b.spacing[i]!) < 1e-4)
    && a.origin.every((v, i) => Math.abs(v - b.origin[i]!) < 1e-3) && a.direction.every((v, i) => Math.abs(v - b.direction[i]!) < 1e-5);
}

export function voxelCount(g: Pick<Geometry, 'size'>): number {
  return g.size[0] * g.size[1] * g.size[2];
}

/** The 3×3 row-major matrix M = direction · diag(spacing), so world = origin + M · index. */
export function indexToWorldMatrix(g: Geometry): number[] {
  const d = g.direction, s = g.spacing;
  return [
    d[0]! * s[0], d[1]! * s[1], d[2]! * s[2],
    d[3]! * s[0], d[4]! * s[1], d[5]! * s[2],
    d[6]! * s[0], d[7]! * s[1], d[8]! * s[2],
  ];
}

export function invert3(m: number[]): number[] {
  const [a, b, c, d, e, f, g, h, i] = m as [number, number, number, number, number, number, number, number, number];
  const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
  const det = a * A + b * B + c * C;
  if (!Number.isFinite(det) || Math.abs(det) < 1e-12) throw new Error('singular 3×3 matrix (degenerate volume geometry)');
  const r = 1 / det;
  return [
    A * r, -(b * i - c * h) * r, (b * f - c * e) * r,
    B * r, (a * i - c * g) * r, -(a * f - c * d) * r,
    C * r, -(a * h - b * g) * r, (a * e - b * d) * r,
  ];
}

export function mul3(a: number[], b: number[]): number[] {
  const out = new Array<number>(9);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) out[r * 3 + c] = a[r * 3]! * b[c]! + a[r * 3 + 1]! * b[3 + c]! + a[r * 3 + 2]! * b[6 + c]!;
  return out;
}

export function det3(m: number[]): number {
  return m[0]! * (m[4]! * m[8]! - m[5]! * m[7]!) - m[1]! * (m[3]! * m[8]! - m[5]! * m[6]!) + m[2]! * (m[3]! * m[7]! - m[4]! * m[6]!);
}

/** Voxel index (continuous; integers are voxel centres) → world RAS mm. */
export function indexToWorld(g: Geometry, index: readonly number[]): Vec3 {
  const m = indexToWorldMatrix(g), [i, j, k] = index as [number, number, number];
  return [
    g.origin[0] + m[0]! * i + m[1]! * j + m[2]! * k,
    g.origin[1] + m[3]! * i + m[4]! * j + m[5]! * k,
    g.origin[2] + m[6]! * i + m[7]! * j + m[8]! * k,
  ];
}

/** World RAS mm → continuous voxel index (round it for the nearest voxel centre). */
export function worldToIndex(g: Geometry, world: readonly number[]): Vec3 {
  const inv = invert3(indexToWorldMatrix(g));
  const x = world[0]! - g.origin[0], y = world[1]! - g.origin[1], z = world[2]! - g.origin[2];
  return [inv[0]! * x + inv[1]! * y + inv[2]! * z, inv[3]! * x + inv[4]! * y + inv[5]! * z, inv[6]! * x + inv[7]! * y + inv[8]! * z];
}

/** Linear offset of voxel (i, j, k) in `data` (x fastest). */
export function voxelOffset(g: Pick<Geometry, 'size'>, i: number, j: number, k: number): number {
  return i + g.size[0] * (j + g.size[1] * k);
}

export function voxelAt<T extends VoxelArray>(v: Volume<T>, i: number, j: number, k: number): number {
  return v.data[voxelOffset(v, i, j, k)]!;
}

export function insideGrid(g: Pick<Geometry, 'size'>, index: readonly number[]): boolean {
  return index.every((x, a) => x >= 0 && x <= g.size[a]! - 1);
}

const POS = ['R', 'A', 'S'], NEG = ['L', 'P', 'I'];

/**
 * Orientation code in the nibabel/ITK-SNAP sense: letter c names the world direction index axis c
 * increases towards (closest world axis), e.g. 'RAS' for NIfTI-canonical, 'LPS' for a typical
 * DICOM series.
 */
export function orientationCode(g: Pick<Geometry, 'direction'>): string {
  return axisMapping(g).map(({ world, sign }) => (sign > 0 ? POS : NEG)[world]).join('');
}

/**
 * For each index axis, the world axis it is closest to and the sign. Assigned greedily by the
 * largest cosine first so that an oblique scan still gets a permutation (no axis used twice).
 */
export function axisMapping(g: Pick<Geometry, 'direction'>): { world: number; sign: 1 | -1 }[] {
  const d = g.direction;
  const cand: { a: number; w: number; v: number }[] = [];
  for (let a = 0; a < 3; a++) for (let w = 0; w < 3; w++) cand.push({ a, w, v: d[w * 3 + a]! });
  cand.sort((p, q) => Math.abs(q.v) - Math.abs(p.v));
  const out: { world: number; sign: 1 | -1 }[] = [];
  const usedA = new Set<number>(), usedW = new Set<number>();
  for (const c of cand) {
    if (usedA.has(c.a) || usedW.has(c.w)) continue;
    usedA.add(c.a); usedW.add(c.w);
    out[c.a] = { world: c.w, sign: c.v < 0 ? -1 : 1 };
  }
  return out;
}

/** World box of the voxel centres of an inclusive voxel box (or the whole grid). */
export function voxelBoxToWorld(g: Geometry, box: VoxelBox = { min: [0, 0, 0], max: [g.size[0] - 1, g.size[1] - 1, g.size[2] - 1] }): WorldBox {
  const lo: Vec3 = [Infinity, Infinity, Infinity], hi: Vec3 = [-Infinity, -Infinity, -Infinity];
  for (let c = 0; c < 8; c++) {
    const p = indexToWorld(g, [c & 1 ? box.max[0] : box.min[0], c & 2 ? box.max[1] : box.min[1], c & 4 ? box.max[2] : box.min[2]]);
    for (let a = 0; a < 3; a++) { lo[a] = Math.min(lo[a]!, p[a]!); hi[a] = Math.max(hi[a]!, p[a]!); }
  }
  return [lo, hi];
}

/** `bounds` as `ctground info` reports it: the world box of all voxel centres, RAS mm. */
export function worldBounds(g: Geometry): WorldBox {
  return voxelBoxToWorld(g);
}

/**
 * The voxel box whose centres cover a world box (inclusive, clamped to the grid); null when the
 * box misses the grid entirely. Voxels are taken when their centre lies inside the box, with a
 * tolerance of 1e-6 mm so a box built from voxel centres maps back to the same voxels.
 */
export function worldBoxToVoxel(g: Geometry, box: WorldBox): VoxelBox | null {
  const lo: Vec3 = [Infinity, Infinity, Infinity], hi: Vec3 = [-Infinity, -Infinity, -Infinity];
  for (let c = 0; c < 8; c++) {
    const p = worldToIndex(g, [c & 1 ? box[1][0] : box[0][0], c & 2 ? box[1][1] : box[0][1], c & 4 ? box[1][2] : box[0][2]]);
    for (let a = 0; a < 3; a++) { lo[a] = Math.min(lo[a]!, p[a]!); hi[a] = Math.max(hi[a]!, p[a]!); }
  }
  const min: Vec3 = [0, 0, 0], max: Vec3 = [0, 0, 0];
  for (let a = 0; a < 3; a++) {
    min[a] = Math.max(0, Math.ceil(lo[a]! - 1e-6 / g.spacing[a]!));
    max[a] = Math.min(g.size[a]! - 1, Math.floor(hi[a]! + 1e-6 / g.spacing[a]!));
    if (min[a]! > max[a]!) return null;
  }
  return { min, max };
}
