import { geometryOf, indexToWorld, indexToWorldMatrix, invert3, mul3 } from './geometry.ts';
import type { Geometry, Vec3, Volume, VoxelArray } from './types.ts';

export type InterpMode = 'linear' | 'nearest';

export interface ResampleOptions {
  /**
   * Value for output voxels whose centre falls outside the input's voxel extent, or 'clamp' to
   * repeat the edge voxel. Points inside the extent but beyond the outermost voxel centres always
   * take the edge value (half a voxel of clamping, as ITK and MONAI do).
   */
  fill?: number | 'clamp';
}

/**
 * One axis of a separable resampling: output index o samples input position t = a·o + b (input
 * index units). Precomputed once per axis so the inner loops do no index arithmetic.
 */
interface AxisTable {
  i0: Int32Array;
  i1: Int32Array;
  w: Float32Array;
  /** 1 where the sample falls outside the input and takes the fill value. */
  out: Uint8Array;
}

function axisTable(n: number, m: number, a: number, b: number, mode: InterpMode, clampAll: boolean): AxisTable {
  const t = { i0: new Int32Array(m), i1: new Int32Array(m), w: new Float32Array(m), out: new Uint8Array(m) };
  // Tolerate float32 rounding in stored geometry so a grid sampled onto itself stays exact.
  const eps = 1e-4;
  for (let o = 0; o < m; o++) {
    let p = a * o + b;
    const r = Math.round(p);
    if (Math.abs(p - r) < eps) p = r;
    if (!clampAll && (p < -0.5 - eps || p > n - 0.5 + eps)) { t.out[o] = 1; continue; }
    p = Math.min(Math.max(p, 0), n - 1);
    if (mode === 'nearest') {
      const i = Math.min(n - 1, Math.floor(p + 0.5));
      t.i0[o] = i; t.i1[o] = i; t.w[o] = 0;
    } else {
      const i = Math.min(Math.floor(p), n - 1);
      const j = Math.min(i + 1, n - 1);
      t.i0[o] = i; t.i1[o] = j; t.w[o] = p - i;
    }
  }
  return t;
}

/** Linear resampling along one axis: `size` → same with size[axis] = m. */
function linearPass(src: ArrayLike<number>, size: Vec3, axis: number, tab: AxisTable, fill: number): { data: Float32Array; size: Vec3 } {
  const m = tab.i0.length;
  const outSize: Vec3 = [...size];
  outSize[axis] = m;
  const dst = new Float32Array(outSize[0] * outSize[1] * outSize[2]);
  const { i0, i1, w, out } = tab;
  if (axis === 0) {
    const n = size[0], lines = size[1] * size[2];
    for (let l = 0; l < lines; l++) {
      const s = l * n, d = l * m;
      for (let o = 0; o < m; o++) {
        if (out[o]) { dst[d + o] = fill; continue; }
        const wo = w[o]!, v0 = src[s + i0[o]!]!;
        dst[d + o] = wo === 0 ? v0 : v0 + (src[s + i1[o]!]! - v0) * wo;
      }
    }
    return { data: dst, size: outSize };
  }
  // Axes 1 and 2: each output row/plane blends two contiguous input rows/planes.
  const inner = axis === 1 ? size[0] : size[0] * size[1];
  const n = size[axis]!, outer = axis === 1 ? size[2] : 1;
  for (let q = 0; q < outer; q++) {
    const sBase = q * n * inner, dBase = q * m * inner;
    for (let o = 0; o < m; o++) {
      const d = dBase + o * inner;
      if (out[o]) { dst.fill(fill, d, d + inner); continue; }
      const r0 = sBase + i0[o]! * inner, r1 = sBase + i1[o]! * inner, wo = w[o]!;
      if (wo === 0) for (let x = 0; x < inner; x++) dst[d + x] = src[r0 + x]!;
      else for (let x = 0; x < inner; x++) { const v0 = src[r0 + x]!; dst[d + x] = v0 + (src[r1 + x]! - v0) * wo; }
    }
  }
  return { data: dst, size: outSize };
}

function sameTypeArray(like: VoxelArray, n: number): VoxelArray {
  return new (like.constructor as new (n: number) => VoxelArray)(n);
}

/** Separable resampling of a volume whose output axes map onto its own axes one-to-one (a diagonal map). */
function separable(vol: Volume, outSize: Vec3, a: Vec3, b: Vec3, mode: InterpMode, fill: number | 'clamp'): VoxelArray {
  const clamp = fill === 'clamp', f = clamp ? 0 : fill;
  const tabs = [0, 1, 2].map((ax) => axisTable(vol.size[ax]!, outSize[ax]!, a[ax]!, b[ax]!, mode, clamp));
  if (mode === 'nearest') {
    const dst = sameTypeArray(vol.data, outSize[0] * outSize[1] * outSize[2]);
    const src = vol.data, nx = vol.size[0], nxy = vol.size[0] * vol.size[1];
    const [tx, ty, tz] = tabs as [AxisTable, AxisTable, AxisTable];
    const ox = Int32Array.from(tx.i0), oy = Int32Array.from(ty.i0, (i) => i * nx), oz = Int32Array.from(tz.i0, (i) => i * nxy);
    let d = 0;
    for (let z = 0; z < outSize[2]; z++) {
      for (let y = 0; y < outSize[1]; y++) {
        if (tz.out[z] || ty.out[y]) { dst.fill(f, d, d + outSize[0]); d += outSize[0]; continue; }
        const base = oz[z]! + oy[y]!;
        for (let x = 0; x < outSize[0]; x++, d++) dst[d] = tx.out[x] ? f : src[base + ox[x]!]!;
      }
    }
    return dst;
  }
  // Shrinking axes first keeps the intermediate volumes small.
  const order = [0, 1, 2].sort((p, q) => outSize[p]! / vol.size[p]! - outSize[q]! / vol.size[q]!);
  let cur: { data: ArrayLike<number>; size: Vec3 } = { data: vol.data, size: [...vol.size] };
  for (const ax of order) cur = linearPass(cur.data, cur.size, ax, tabs[ax]!, f);
  return cur.data as Float32Array;
}

/** General affine trilinear/nearest sampling, for grids rotated relative to each other. */
function general(vol: Volume, outSize: Vec3, A: number[], b: Vec3, mode: InterpMode, fill: number | 'clamp'): VoxelArray {
  const [nx, ny, nz] = vol.size, nxy = nx * ny, src = vol.data;
  const dst = mode === 'nearest' ? sameTypeArray(src, outSize[0] * outSize[1] * outSize[2]) : new Float32Array(outSize[0] * outSize[1] * outSize[2]);
  const clamp = fill === 'clamp', f = clamp ? 0 : fill;
  const eps = 1e-4;
  let d = 0;
  for (let z = 0; z < outSize[2]; z++) {
    for (let y = 0; y < outSize[1]; y++) {
      let px = A[1]! * y + A[2]! * z + b[0], py = A[4]! * y + A[5]! * z + b[1], pz = A[7]! * y + A[8]! * z + b[2];
      for (let x = 0; x < outSize[0]; x++, d++, px += A[0]!, py += A[3]!, pz += A[6]!) {
        if (!clamp && (px < -0.5 - eps || px > nx - 0.5 + eps || py < -0.5 - eps || py > ny - 0.5 + eps || pz < -0.5 - eps || pz > nz - 0.5 + eps)) { dst[d] = f; continue; }
        const cx = px < 0 ? 0 : px > nx - 1 ? nx - 1 : px, cy = py < 0 ? 0 : py > ny - 1 ? ny - 1 : py, cz = pz < 0 ? 0 : pz > nz - 1 ? nz - 1 : pz;
        if (mode === 'nearest') { dst[d] = src[Math.round(cx) + nx * Math.round(cy) + nxy * Math.round(cz)]!; continue; }
        const x0 = Math.min(Math.floor(cx), nx - 1), y0 = Math.min(Math.floor(cy), ny - 1), z0 = Math.min(Math.floor(cz), nz - 1);
        const x1 = Math.min(x0 + 1, nx - 1) - x0, y1 = (Math.min(y0 + 1, ny - 1) - y0) * nx, z1 = (Math.min(z0 + 1, nz - 1) - z0) * nxy;
        const wx = cx - x0, wy = cy - y0, wz = cz - z0, o = x0 + nx * y0 + nxy * z0;
        const c00 = src[o]! + (src[o + x1]! - src[o]!) * wx, c10 = src[o + y1]! + (src[o + y1 + x1]! - src[o + y1]!) * wx;
        const c01 = src[o + z1]! + (src[o + z1 + x1]! - src[o + z1]!) * wx, c11 = src[o + z1 + y1]! + (src[o + z1 + y1 + x1]! - src[o + z1 + y1]!) * wx;
        const c0 = c00 + (c10 - c00) * wy, c1 = c01 + (c11 - c01) * wy;
        dst[d] = c0 + (c1 - c0) * wz;
      }
    }
  }
  return dst;
}

/**
 * Exact axis permutation/flip: output axis c is input axis perm[c], reversed where flip[c].
 * No interpolation, so labels and HU survive bit for bit; the geometry is updated so every voxel
 * keeps its world position.
 */
export function permuteAxes<T extends VoxelArray>(vol: Volume<T>, perm: number[], flip: boolean[]): Volume<T> {
  const size = perm.map((p) => vol.size[p]!) as Vec3;
  const inStride = [1, vol.size[0], vol.size[0] * vol.size[1]];
  // Start offset and per-output-axis step in the input array.
  let start = 0;
  const step = perm.map((p, c) => {
    if (flip[c]) { start += (vol.size[p]! - 1) * inStride[p]!; return -inStride[p]!; }
    return inStride[p]!;
  });
  const dst = sameTypeArray(vol.data, vol.data.length) as T;
  const src = vol.data;
  let d = 0;
  for (let z = 0; z < size[2]; z++) {
    for (let y = 0; y < size[1]; y++) {
      let s = start + z * step[2]! + y * step[1]!;
      for (let x = 0; x < size[0]; x++, d++, s += step[0]!) dst[d] = src[s]!;
    }
  }
  const startIndex = [0, 0, 0];
  perm.forEach((p, c) => { if (flip[c]) startIndex[p] = vol.size[p]! - 1; });
  const M = indexToWorldMatrix(vol);
  const origin = [0, 1, 2].map((r) => vol.origin[r]! + M[r * 3]! * startIndex[0]! + M[r * 3 + 1]! * startIndex[1]! + M[r * 3 + 2]! * startIndex[2]!) as Vec3;
  const direction = new Array<number>(9);
  perm.forEach((p, c) => { for (let r = 0; r < 3; r++) direction[r * 3 + c] = (flip[c] ? -1 : 1) * vol.direction[r * 3 + p]! || 0; });
  return { data: dst, size, spacing: perm.map((p) => vol.spacing[p]!) as Vec3, origin, direction };
}

/** Index map from `ref`'s grid into `vol`'s: input index = A · output index + b. */
function gridMap(vol: Geometry, ref: Geometry): { A: number[]; b: Vec3 } {
  const inv = invert3(indexToWorldMatrix(vol));
  const A = mul3(inv, indexToWorldMatrix(ref));
  const o = [ref.origin[0] - vol.origin[0], ref.origin[1] - vol.origin[1], ref.origin[2] - vol.origin[2]];
  const b = [0, 1, 2].map((r) => inv[r * 3]! * o[0]! + inv[r * 3 + 1]! * o[1]! + inv[r * 3 + 2]! * o[2]!) as Vec3;
  return { A, b };
}

/**
 * The part of `vol` that sampling it on `ref` can read: the input voxels around where ref's corner
 * centres land (an affine map keeps a box inside its corners' hull), plus one voxel for the
 * interpolation's neighbour. A crop of a large CT reads a small box of it, and every pass after
 * this one (axis permutation, the separable passes) then runs over that box, not the whole scan.
 * Edges the box shares with `vol` stay edges, so fill and clamping decide as they would on `vol`.
 */
function sourceWindow(vol: Volume, ref: Geometry): Volume {
  const { A, b } = gridMap(vol, ref);
  const lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
  for (let c = 0; c < 8; c++) {
    const o = [c & 1 ? ref.size[0] - 1 : 0, c & 2 ? ref.size[1] - 1 : 0, c & 4 ? ref.size[2] - 1 : 0];
    for (let r = 0; r < 3; r++) {
      const p = A[r * 3]! * o[0]! + A[r * 3 + 1]! * o[1]! + A[r * 3 + 2]! * o[2]! + b[r]!;
      lo[r] = Math.min(lo[r]!, p); hi[r] = Math.max(hi[r]!, p);
    }
  }
  const from = [0, 1, 2].map((r) => Math.max(0, Math.min(vol.size[r]! - 1, Math.floor(lo[r]!) - 1)));
  const to = [0, 1, 2].map((r) => Math.min(vol.size[r]! - 1, Math.max(0, Math.ceil(hi[r]!) + 1)));
  const size = [0, 1, 2].map((r) => to[r]! - from[r]! + 1) as Vec3;
  // not worth a copy unless it saves most of the reading
  if (size[0] * size[1] * size[2] * 2 > vol.size[0] * vol.size[1] * vol.size[2]) return vol;
  const data = sameTypeArray(vol.data, size[0] * size[1] * size[2]);
  const [nx, ny] = vol.size;
  for (let k = 0; k < size[2]; k++) for (let j = 0; j < size[1]; j++) {
    const src = from[0]! + nx * (from[1]! + j + ny * (from[2]! + k));
    data.set(vol.data.subarray(src, src + size[0]) as never, size[0] * (j + size[1] * k));
  }
  return { data, size, spacing: [...vol.spacing] as Vec3, origin: indexToWorld(vol, from), direction: [...vol.direction] };
}

/**
 * Samples `vol` on another grid by world coordinates: each output voxel takes the input's value at
 * the same RAS point. Labels go with 'nearest' (values kept exactly), CT with 'linear'.
 * Axis-aligned grids (the usual case, including flipped or permuted axes) take a separable path
 * with per-axis tables; only truly rotated grids pay for per-voxel trilinear sampling.
 */
export function resampleToGrid<T extends VoxelArray>(vol: Volume<T>, ref: Geometry, mode: 'nearest', opts?: ResampleOptions): Volume<T>;
export function resampleToGrid(vol: Volume, ref: Geometry, mode: 'linear', opts?: ResampleOptions): Volume<Float32Array>;
export function resampleToGrid(vol: Volume, ref: Geometry, mode: InterpMode, opts?: ResampleOptions): Volume;
export function resampleToGrid(vol: Volume, ref: Geometry, mode: InterpMode, opts: ResampleOptions = {}): Volume {
  const fill = opts.fill ?? 0;
  const geom = geometryOf(ref);
  vol = sourceWindow(vol, ref);
  let { A, b } = gridMap(vol, ref);
  // Which input axis each output axis moves along, if the map is a scaled signed permutation.
  const perm: number[] = [];
  for (let c = 0; c < 3; c++) {
    const col = [A[c]!, A[3 + c]!, A[6 + c]!].map(Math.abs);
    const big = col.indexOf(Math.max(...col));
    if (col.some((v, r) => r !== big && v > 1e-6 * col[big]!)) { perm.length = 0; break; }
    perm.push(big);
  }
  let src: Volume = vol;
  if (perm.length === 3 && new Set(perm).size === 3) {
    if (perm.some((p, c) => p !== c) || perm.some((p, c) => A[p * 3 + c]! < 0)) {
      src = permuteAxes(vol, perm, perm.map((p, c) => A[p * 3 + c]! < 0));
      ({ A, b } = gridMap(src, ref));
    }
    const data = separable(src, geom.size, [A[0]!, A[4]!, A[8]!], b, mode, fill);
    return { ...geom, data };
  }
  return { ...geom, data: general(vol, geom.size, A, b, mode, fill) };
}

/**
 * Resamples to a target spacing over the same field of view: same direction, size
 * round(n·old/new) per axis, and the new grid centred on the old one so neither end is cut.
 */
export function resample<T extends VoxelArray>(vol: Volume<T>, spacing: Vec3 | number, mode: 'nearest', opts?: ResampleOptions): Volume<T>;
export function resample(vol: Volume, spacing: Vec3 | number, mode: 'linear', opts?: ResampleOptions): Volume<Float32Array>;
export function resample(vol: Volume, spacing: Vec3 | number, mode: InterpMode, opts?: ResampleOptions): Volume;
export function resample(vol: Volume, spacing: Vec3 | number, mode: InterpMode, opts: ResampleOptions = {}): Volume {
  return resampleToGrid(vol, spacingGrid(vol, spacing), mode, { fill: opts.fill ?? 'clamp' });
}

/** The grid `resample` produces, without resampling anything. */
export function spacingGrid(g: Geometry, spacing: Vec3 | number): Geometry {
  const t = (typeof spacing === 'number' ? [spacing, spacing, spacing] : spacing) as Vec3;
  if (t.some((s) => !(s > 0))) throw new Error(`resample: spacing must be positive, got ${t.join(',')}`);
  const size = [0, 1, 2].map((a) => Math.max(1, Math.round((g.size[a]! * g.spacing[a]!) / t[a]!))) as Vec3;
  // Shift (in index units of the new grid, along each axis) that keeps the grid centres aligned.
  const shift = [0, 1, 2].map((a) => ((g.size[a]! - 1) * g.spacing[a]! - (size[a]! - 1) * t[a]!) / 2);
  const d = g.direction;
  const origin = [0, 1, 2].map((r) => g.origin[r]! + d[r * 3]! * shift[0]! + d[r * 3 + 1]! * shift[1]! + d[r * 3 + 2]! * shift[2]!) as Vec3;
  return { size, spacing: [...t], origin, direction: [...d] };
}

