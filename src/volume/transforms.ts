import { axisMapping, geometryOf, indexToWorld, voxelBoxToWorld, worldBoxToVoxel } from './geometry.ts';
import { permuteAxes } from './resample.ts';
import type { Geometry, Vec3, Volume, VoxelArray, VoxelBox, WorldBox } from './types.ts';

const LETTERS: Record<string, { world: number; sign: 1 | -1 }> = {
  R: { world: 0, sign: 1 }, L: { world: 0, sign: -1 }, A: { world: 1, sign: 1 }, P: { world: 1, sign: -1 }, S: { world: 2, sign: 1 }, I: { world: 2, sign: -1 },
};

/**
 * Reorients to a canonical axis order (default RAS: i → right, j → anterior, k → superior) by
 * exact axis permutation and flips; the voxels keep their values and world positions. For an
 * oblique scan each axis goes to its closest world axis, and the small rotation stays in `direction`.
 */
export function reorient<T extends VoxelArray>(vol: Volume<T>, code = 'RAS'): Volume<T> {
  const want = [...code.toUpperCase()].map((ch) => LETTERS[ch]);
  if (want.length !== 3 || want.some((w) => !w) || new Set(want.map((w) => w!.world)).size !== 3) throw new Error(`reorient: bad orientation code '${code}'`);
  const have = axisMapping(vol);
  const perm = want.map((w) => have.findIndex((h) => h.world === w!.world));
  const flip = want.map((w, c) => have[perm[c]!]!.sign !== w!.sign);
  if (perm.every((p, c) => p === c) && !flip.some(Boolean)) return vol;
  return permuteAxes(vol, perm, flip);
}

/** Smallest and largest voxel value (NaN skipped). */
export function valueRange(vol: Volume): [number, number] {
  let lo = Infinity, hi = -Infinity;
  const d = vol.data;
  for (let i = 0; i < d.length; i++) { const v = d[i]!; if (v < lo) lo = v; if (v > hi) hi = v; }
  return [lo, hi];
}

/** HU window → [0, 1]: clip to [lo, hi] and scale linearly (the paper's CT intensity normalisation). */
export function scaleIntensity(vol: Volume, lo: number, hi: number): Volume<Float32Array> {
  if (!(hi > lo)) throw new Error(`scaleIntensity: need lo < hi, got ${lo}, ${hi}`);
  const src = vol.data, out = new Float32Array(src.length), s = 1 / (hi - lo);
  for (let i = 0; i < src.length; i++) { const v = src[i]!; out[i] = v <= lo ? 0 : v >= hi ? 1 : (v - lo) * s; }
  return { ...geometryOf(vol), data: out };
}

/** Voxels per axis of an inclusive voxel box. */
export const voxelBoxSize = (b: VoxelBox): Vec3 => [0, 1, 2].map((a) => b.max[a]! - b.min[a]! + 1) as Vec3;

/**
 * The sub-grid starting at voxel `start` with `size` voxels, which may reach outside the volume
 * (those voxels take `fill`). Geometry follows, so world positions are unchanged.
 */
export function extractRegion<T extends VoxelArray>(vol: Volume<T>, start: Vec3, size: Vec3, fill = 0): Volume<T> {
  if (size.some((s) => !(s >= 1) || !Number.isInteger(s)) || start.some((s) => !Number.isInteger(s))) throw new Error(`extractRegion: bad region start ${start} size ${size}`);
  const out = new (vol.data.constructor as new (n: number) => T)(size[0] * size[1] * size[2]);
  if (fill !== 0) out.fill(fill);
  const [nx, ny, nz] = vol.size;
  const x0 = Math.max(0, start[0]), x1 = Math.min(nx, start[0] + size[0]);
  if (x1 > x0) {
    for (let z = 0; z < size[2]; z++) {
      const sz = start[2] + z;
      if (sz < 0 || sz >= nz) continue;
      for (let y = 0; y < size[1]; y++) {
        const sy = start[1] + y;
        if (sy < 0 || sy >= ny) continue;
        const s = x0 + nx * (sy + ny * sz), d = x0 - start[0] + size[0] * (y + size[1] * z);
        out.set(vol.data.subarray(s, s + x1 - x0) as never, d);
      }
    }
  }
  return { data: out, size: [...size], spacing: [...vol.spacing], origin: indexToWorld(vol, start), direction: [...vol.direction] };
}

/**
 * Centre crop and/or pad to `size` (MONAI's ResizeWithPadOrCrop): a cropped axis drops
 * floor(excess/2) voxels at the start, a padded axis gets floor(missing/2) `fill` voxels there.
 */
export function cropOrPad<T extends VoxelArray>(vol: Volume<T>, size: Vec3, fill = 0): Volume<T> {
  const start = [0, 1, 2].map((a) => {
    const d = vol.size[a]! - size[a]!;
    return d >= 0 ? Math.floor(d / 2) : -Math.floor(-d / 2);
  }) as Vec3;
  return extractRegion(vol, start, size, fill);
}

/**
 * Crops to the voxels whose centres lie in a world box grown by `margin` mm on every side
 * (clamped to the volume). Throws when the box misses the volume.
 */
export function cropToWorldBox<T extends VoxelArray>(vol: Volume<T>, box: WorldBox, margin = 0): Volume<T> {
  const grown: WorldBox = [box[0].map((v) => v - margin) as Vec3, box[1].map((v) => v + margin) as Vec3];
  const vb = worldBoxToVoxel(vol, grown);
  if (!vb) throw new Error(`cropToWorldBox: box ${JSON.stringify(grown)} does not intersect the volume`);
  return extractRegion(vol, vb.min, voxelBoxSize(vb));
}

/** Inclusive voxel box of the non-zero voxels (or of voxels equal to `label`); null when there are none. */
export function maskBoundingBox(mask: Volume, label?: number): VoxelBox | null {
  const [nx, ny, nz] = mask.size, d = mask.data;
  const min: Vec3 = [nx, ny, nz], max: Vec3 = [-1, -1, -1];
  let o = 0;
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++, o++) {
        const v = d[o]!;
        if (label === undefined ? v === 0 : v !== label) continue;
        if (x < min[0]) min[0] = x; if (x > max[0]) max[0] = x;
        if (y < min[1]) min[1] = y; if (y > max[1]) max[1] = y;
        if (z < min[2]) min[2] = z; if (z > max[2]) max[2] = z;
      }
    }
  }
  return max[0] < 0 ? null : { min, max };
}

/** World box (RAS mm) of the centres of the mask's voxels; null for an empty mask. */
export function maskWorldBox(mask: Volume, label?: number): WorldBox | null {
  const b = maskBoundingBox(mask, label);
  return b ? voxelBoxToWorld(mask, b) : null;
}

/** A uint8 mask on `grid` with 1 at every voxel whose centre lies inside the world box. */
export function worldBoxToMask(grid: Geometry, box: WorldBox): Volume<Uint8Array> {
  const g = geometryOf(grid);
  const data = new Uint8Array(g.size[0] * g.size[1] * g.size[2]);
  const vb = worldBoxToVoxel(g, box);
  if (vb) {
    const tol = 1e-6;
    for (let z = vb.min[2]; z <= vb.max[2]; z++) {
      for (let y = vb.min[1]; y <= vb.max[1]; y++) {
        for (let x = vb.min[0]; x <= vb.max[0]; x++) {
          // Exact test per voxel: on an oblique grid the index box over-covers the world box.
          const p = indexToWorld(g, [x, y, z]);
          if (p.every((v, a) => v >= box[0][a]! - tol && v <= box[1][a]! + tol)) data[x + g.size[0] * (y + g.size[1] * z)] = 1;
        }
      }
    }
  }
  return { ...g, data };
}

/** A voxel box as a uint8 mask on `grid`. */
export function voxelBoxToMask(grid: Geometry, box: VoxelBox): Volume<Uint8Array> {
  const g = geometryOf(grid);
  const data = new Uint8Array(g.size[0] * g.size[1] * g.size[2]);
  for (let z = Math.max(0, box.min[2]); z <= Math.min(g.size[2] - 1, box.max[2]); z++) {
    for (let y = Math.max(0, box.min[1]); y <= Math.min(g.size[1] - 1, box.max[1]); y++) {
      const row = g.size[0] * (y + g.size[1] * z);
      data.fill(1, row + Math.max(0, box.min[0]), row + Math.min(g.size[0] - 1, box.max[0]) + 1);
    }
  }
  return { ...g, data };
}

