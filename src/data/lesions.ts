import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot, type Rng } from '../common/index.ts';
import { insideDistance, loadOrganScheme, organValue } from '../anatomy/index.ts';
import type { Geometry } from '../volume/index.ts';
import { randomBumps } from './shapes.ts';
import { localContrast } from './visibility.ts';

export type LesionShape = 'blob' | 'wall' | 'dependent' | 'diffuse' | 'scale' | 'aneurysm';

/** Shapes that change a whole organ (or segment): no organ around them to contrast with. */
export const WHOLE_ORGAN: ReadonlySet<LesionShape> = new Set(['diffuse', 'scale', 'aneurysm']);

/** One kind of finding the generator can insert (data/synth/lesions.json). */
export interface LesionKind {
  id: string;
  organ: string;
  type: string;
  targets: string[];
  shape: LesionShape;
  size?: [number, number];
  hu?: [number, number];
  huShift?: [number, number];
  margin?: number;
  bumps?: number;
  axes?: [number, number];
  thickness?: [number, number];
  extent?: [number, number];
  depth?: [number, number];
  scale?: [number, number];
  radius?: [number, number];
  bullae?: boolean;
  weight: number;
  words: string;
}

let kindsCache: LesionKind[] | undefined;
export function loadLesionKinds(): LesionKind[] {
  if (kindsCache) return kindsCache;
  const raw = JSON.parse(readFileSync(join(projectRoot, 'data', 'synth', 'lesions.json'), 'utf8')) as { kinds: LesionKind[] };
  const names = loadOrganScheme().organs.map((o) => o.name);
  for (const k of raw.kinds) k.targets = k.targets.flatMap((t) => (t.endsWith('*') ? names.filter((n) => n.startsWith(t.slice(0, -1))) : [t]));
  kindsCache = raw.kinds;
  return kindsCache;
}

/** The image being edited: HU, organ labels, and the grid. */
export interface Canvas3 {
  hu: Float32Array;
  labels: Uint8Array;
  geom: Geometry;
  /** voxels per label value (filled on first use; labels do not change once lesions go in) */
  counts?: Int32Array;
}

export function labelCounts(c: Canvas3): Int32Array {
  if (!c.counts) {
    c.counts = new Int32Array(256);
    for (let p = 0; p < c.labels.length; p++) c.counts[c.labels[p]!]++;
  }
  return c.counts;
}

export interface InsertedLesion {
  kind: LesionKind;
  /** the scheme organ the lesion lies in (the one holding most of it) */
  target: string;
  mask: Uint8Array;
  voxels: number;
  /** voxels of the target organ */
  organVoxels: number;
  /** voxel bounding box */
  min: [number, number, number];
  max: [number, number, number];
  /** centroid, world RAS mm */
  centroid: [number, number, number];
  /** extent along the three grid axes in mm, largest first (what the report's size phrase states) */
  extentMm: [number, number, number];
  /** the side of its organ the lesion was drawn on, before blur and noise: +1 brighter, −1 darker (1 for WHOLE_ORGAN shapes) */
  contrastSign: 1 | -1;
}

function matrix(g: Geometry): number[] {
  const d = g.direction, s = g.spacing;
  return [d[0]! * s[0], d[1]! * s[1], d[2]! * s[2], d[3]! * s[0], d[4]! * s[1], d[5]! * s[2], d[6]! * s[0], d[7]! * s[1], d[8]! * s[2]];
}

/** The voxel bounding box of the voxels carrying one of `values`. */
function labelBounds(labels: Uint8Array, size: readonly number[], value: number): { min: number[]; max: number[]; count: number } | null {
  const [nx, ny, nz] = size as [number, number, number];
  const min = [Infinity, Infinity, Infinity], max = [-1, -1, -1];
  let count = 0;
  for (let k = 0, p = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, p++) {
    if (labels[p] !== value) continue;
    count++;
    if (i < min[0]!) min[0] = i; if (i > max[0]!) max[0] = i;
    if (j < min[1]!) min[1] = j; if (j > max[1]!) max[1] = j;
    if (k < min[2]!) min[2] = k; if (k > max[2]!) max[2] = k;
  }
  return count ? { min, max, count } : null;
}

/** Summarises a finished mask: target organ, bounds, centroid, extent. */
export function describeMask(c: Canvas3, kind: LesionKind, mask: Uint8Array): InsertedLesion | null {
  const [nx, ny] = c.geom.size;
  const min: [number, number, number] = [Infinity, Infinity, Infinity], max: [number, number, number] = [-1, -1, -1];
  const byLabel = new Map<number, number>();
  let n = 0, si = 0, sj = 0, sk = 0;
  const nz = c.geom.size[2];
  for (let k = 0, p = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, p++) {
    if (!mask[p]) continue;
    n++;
    si += i; sj += j; sk += k;
    if (i < min[0]) min[0] = i; if (i > max[0]) max[0] = i;
    if (j < min[1]) min[1] = j; if (j > max[1]) max[1] = j;
    if (k < min[2]) min[2] = k; if (k > max[2]) max[2] = k;
    const l = c.labels[p]!;
    byLabel.set(l, (byLabel.get(l) ?? 0) + 1);
  }
  if (!n) return null;
  let best = 0, bc = -1;
  for (const [l, cnt] of byLabel) if (cnt > bc) { bc = cnt; best = l; }
  const organVoxels = labelCounts(c)[best]!;
  const m = matrix(c.geom), o = c.geom.origin;
  const ci = si / n, cj = sj / n, ck = sk / n;
  const centroid: [number, number, number] = [0, 1, 2].map((r) => o[r]! + m[r * 3]! * ci + m[r * 3 + 1]! * cj + m[r * 3 + 2]! * ck) as [number, number, number];
  const ext = [0, 1, 2].map((a) => (max[a]! - min[a]! + 1) * c.geom.spacing[a]!).sort((a, b) => b - a) as [number, number, number];
  const drawn = WHOLE_ORGAN.has(kind.shape) ? null : localContrast(c.hu, c.labels, mask, c.geom.size, c.geom.spacing, best, { min, max });
  const contrastSign = drawn && drawn.lesionMean < drawn.background ? -1 : 1;
  return { kind, target: loadOrganScheme().byValue.get(best)?.name ?? 'unknown', mask, voxels: n, organVoxels, min, max, centroid, extentMm: ext, contrastSign };
}

interface Crop { i0: number; j0: number; k0: number; sx: number; sy: number; sz: number; dist: Float32Array }

/** The organ's distance-to-boundary map on its bounding box (cheap: only the organ's box). */
function organDistance(c: Canvas3, value: number): Crop | null {
  const b = labelBounds(c.labels, c.geom.size, value);
  if (!b) return null;
  const [nx, ny] = c.geom.size;
  const i0 = b.min[0]!, j0 = b.min[1]!, k0 = b.min[2]!;
  const sx = b.max[0]! - i0 + 1, sy = b.max[1]! - j0 + 1, sz = b.max[2]! - k0 + 1;
  const sub = new Uint8Array(sx * sy * sz);
  for (let k = 0; k < sz; k++) for (let j = 0; j < sy; j++) for (let i = 0; i < sx; i++) {
    sub[i + sx * (j + sy * k)] = c.labels[i + i0 + nx * (j + j0 + ny * (k + k0))] === value ? 1 : 0;
  }
  return { i0, j0, k0, sx, sy, sz, dist: insideDistance(sub, [sx, sy, sz], c.geom.spacing) };
}

function pickVoxel(rng: Rng, crop: Crop, ok: (d: number) => boolean): [number, number, number] | null {
  const cand: number[] = [];
  for (let q = 0; q < crop.dist.length; q++) if (crop.dist[q]! > 0 && ok(crop.dist[q]!)) cand.push(q);
  if (!cand.length) return null;
  const q = rng.pick(cand);
  const i = q % crop.sx, j = Math.floor(q / crop.sx) % crop.sy, k = Math.floor(q / (crop.sx * crop.sy));
  return [i + crop.i0, j + crop.j0, k + crop.k0];
}

export interface InsertOptions {
  /** voxels already taken by other lesions */
  taken: Uint8Array;
  /** the target organ to use (else one of the kind's targets present in the image, at random) */
  target?: string;
  /** the phantom's aneurysm segment, for kind 'aneurysm' */
  aneurysmMask?: Uint8Array;
}

/**
 * Inserts one lesion of `kind` into the canvas (HU changed in place) and returns its mask, which
 * lies entirely inside one target organ, or null when the image has no room for it.
 */
export function insertLesion(rng: Rng, c: Canvas3, kind: LesionKind, opts: InsertOptions): InsertedLesion | null {
  const counts = labelCounts(c);
  const present = kind.targets.filter((t) => counts[organValue(t)]! > 0);
  if (opts.target && !present.includes(opts.target)) return null;
  const targets = opts.target ? [opts.target] : rng.shuffle([...present]);
  const n = c.labels.length;
  for (const target of targets.slice(0, 3)) {
    const value = organValue(target);
    const mask = new Uint8Array(n);
    let ok = false;
    switch (kind.shape) {
      case 'blob': ok = blob(rng, c, kind, value, mask, opts.taken); break;
      case 'wall': ok = wall(rng, c, kind, value, mask, opts.taken); break;
      case 'dependent': ok = dependent(rng, c, kind, value, mask, opts.taken); break;
      case 'diffuse': case 'scale': ok = diffuse(rng, c, kind, [value], mask); break;
      case 'aneurysm':
        if (opts.aneurysmMask) { for (let p = 0; p < n; p++) mask[p] = opts.aneurysmMask[p] && c.labels[p] === value ? 1 : 0; ok = mask.some((v) => v); }
        break;
    }
    if (!ok) continue;
    for (let p = 0; p < n; p++) if (mask[p]) opts.taken[p] = 1;
    const d = describeMask(c, kind, mask);
    if (d) return d;
  }
  return null;
}

function blob(rng: Rng, c: Canvas3, kind: LesionKind, value: number, mask: Uint8Array, taken: Uint8Array): boolean {
  const crop = organDistance(c, value);
  if (!crop) return false;
  const [lo, hi] = kind.size!;
  const margin = kind.margin ?? 0.15;
  const [nx, ny] = c.geom.size;
  const m = matrix(c.geom);
  const minSp = Math.min(...c.geom.spacing);
  for (let attempt = 0; attempt < 6; attempt++) {
    // Shrink towards the smallest size after failures: small organs take only small lesions.
    const d = attempt < 3 ? rng.uniform(lo, hi) : lo + (hi - lo) * rng.uniform(0, 0.3) * (6 - attempt) / 3;
    const a0 = d / 2;
    const [alo, ahi] = kind.axes ?? [0.75, 1];
    const axes = [a0, a0 * rng.uniform(alo, ahi), a0 * rng.uniform(alo, ahi)];
    const rmin = Math.min(...axes);
    const center = pickVoxel(rng, crop, (dd) => dd >= rmin * 0.85 + minSp * 0.5);
    if (!center) continue;
    const bumps = randomBumps(() => rng.next(), kind.bumps ?? 0.08);
    const yaw = rng.uniform(0, Math.PI), pitch = rng.uniform(0, Math.PI);
    const cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch);
    const R = a0 * (1 + margin) * 1.4;
    const rv = Math.ceil(R / minSp);
    const target = kind.hu ? rng.uniform(kind.hu[0], kind.hu[1]) : 0;
    const shift = kind.huShift ? rng.uniform(kind.huShift[0], kind.huShift[1]) : 0;
    const chP: number[] = [], chF: number[] = [];
    let clash = false, count = 0;
    for (let dk = -rv; dk <= rv && !clash; dk++) for (let dj = -rv; dj <= rv && !clash; dj++) for (let di = -rv; di <= rv; di++) {
      const i = center[0] + di, j = center[1] + dj, k = center[2] + dk;
      if (i < 0 || j < 0 || k < 0 || i >= nx || j >= ny || k >= c.geom.size[2]) continue;
      const p = i + nx * (j + ny * k);
      if (c.labels[p] !== value) continue;
      const x = m[0]! * di + m[1]! * dj + m[2]! * dk, y = m[3]! * di + m[4]! * dj + m[5]! * dk, z = m[6]! * di + m[7]! * dj + m[8]! * dk;
      const x1 = cy * x + sy * y, y1 = -sy * x + cy * y;
      const y2 = cp * y1 + sp * z, z2 = -sp * y1 + cp * z;
      const qx = x1 / axes[0]!, qy = y2 / axes[1]!, qz = z2 / axes[2]!;
      let q = Math.sqrt(qx * qx + qy * qy + qz * qz);
      if (q > 0) {
        let b = 0;
        const waves = bumps.waves;
        for (let wi = 0; wi < waves.length; wi++) {
          const w = waves[wi]!;
          b += w.amp * Math.sin((w.k[0] * qx + w.k[1] * qy + w.k[2] * qz) / q + w.phase);
        }
        q /= 1 + b;
      }
      const f = Math.max(0, Math.min(1, 0.5 + (1 - q) / (2 * Math.max(margin, 1e-3))));
      if (f <= 0) continue;
      if (q <= 1) {
        if (taken[p]) { clash = true; break; }
        mask[p] = 1; count++;
      }
      chP.push(p); chF.push(f);
    }
    if (clash || count === 0) { mask.fill(0); continue; }
    for (let q = 0; q < chP.length; q++) {
      const p = chP[q]!, f = chF[q]!;
      if (taken[p]) continue;
      c.hu[p] = kind.hu ? c.hu[p]! * (1 - f) + (target + rng.normal(0, 6)) * f : c.hu[p]! + shift * f;
    }
    return true;
  }
  return false;
}

function wall(rng: Rng, c: Canvas3, kind: LesionKind, value: number, mask: Uint8Array, taken: Uint8Array): boolean {
  const crop = organDistance(c, value);
  if (!crop) return false;
  const minSp = Math.min(...c.geom.spacing);
  const [nx, ny] = c.geom.size;
  const m = matrix(c.geom);
  for (let attempt = 0; attempt < 4; attempt++) {
    const thick = Math.max(minSp * 1.01, rng.uniform(kind.thickness![0], kind.thickness![1]));
    const extent = rng.uniform(kind.extent![0], kind.extent![1]);
    const center = pickVoxel(rng, crop, (d) => d <= minSp * 1.01);
    if (!center) return false;
    const hu = rng.uniform(kind.hu![0], kind.hu![1]);
    let count = 0, clash = false;
    const sel: number[] = [];
    for (let k = 0; k < crop.sz; k++) for (let j = 0; j < crop.sy; j++) for (let i = 0; i < crop.sx; i++) {
      const d = crop.dist[i + crop.sx * (j + crop.sy * k)]!;
      if (d <= 0 || d > thick) continue;
      const gi = i + crop.i0, gj = j + crop.j0, gk = k + crop.k0;
      const di = gi - center[0], dj = gj - center[1], dk = gk - center[2];
      const x = m[0]! * di + m[1]! * dj + m[2]! * dk, y = m[3]! * di + m[4]! * dj + m[5]! * dk, z = m[6]! * di + m[7]! * dj + m[8]! * dk;
      if (x * x + y * y + z * z > (extent / 2) ** 2) continue;
      const p = gi + nx * (gj + ny * gk);
      if (taken[p]) { clash = true; break; }
      sel.push(p); count++;
    }
    if (clash || count < 2) continue;
    for (const p of sel) { mask[p] = 1; c.hu[p] = hu + rng.normal(0, 5); }
    return true;
  }
  return false;
}

function zAxis(g: Geometry): number {
  let best = 0, bv = -1;
  for (let a = 0; a < 3; a++) { const v = Math.abs(g.direction[6 + a]!); if (v > bv) { bv = v; best = a; } }
  return best;
}

function dependent(rng: Rng, c: Canvas3, kind: LesionKind, value: number, mask: Uint8Array, taken: Uint8Array): boolean {
  const [nx, ny, nz] = c.geom.size;
  const m = matrix(c.geom), o = c.geom.origin;
  const za = zAxis(c.geom);
  const nSlices = c.geom.size[za]!;
  // Per slice along the body axis, the most posterior (smallest world y) point of the organ.
  const yMin = new Float64Array(nSlices).fill(Infinity);
  let zlo = Infinity, zhi = -Infinity;
  const worldY = (i: number, j: number, k: number): number => o[1]! + m[3]! * i + m[4]! * j + m[5]! * k;
  const worldZ = (i: number, j: number, k: number): number => o[2]! + m[6]! * i + m[7]! * j + m[8]! * k;
  for (let k = 0, p = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, p++) {
    if (c.labels[p] !== value) continue;
    const s = za === 0 ? i : za === 1 ? j : k;
    const y = worldY(i, j, k), z = worldZ(i, j, k);
    if (y < yMin[s]!) yMin[s] = y;
    if (z < zlo) zlo = z;
    if (z > zhi) zhi = z;
  }
  if (!Number.isFinite(zlo)) return false;
  const depth = rng.uniform(kind.depth![0], kind.depth![1]);
  const top = zlo + (zhi - zlo) * rng.uniform(0.35, 0.6);
  const hu = rng.uniform(kind.hu![0], kind.hu![1]);
  let count = 0;
  for (let k = 0, p = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, p++) {
    if (c.labels[p] !== value || taken[p]) continue;
    const z = worldZ(i, j, k);
    if (z > top) continue;
    // Thickest at the base, thinning upwards: the meniscus of a layering fluid.
    const d = depth * (0.4 + 0.6 * (top - z) / Math.max(1, top - zlo));
    if (worldY(i, j, k) - yMin[za === 0 ? i : za === 1 ? j : k]! > d) continue;
    mask[p] = 1; count++;
    c.hu[p] = hu + rng.normal(0, 4);
  }
  return count > 0;
}

function diffuse(rng: Rng, c: Canvas3, kind: LesionKind, values: number[], mask: Uint8Array): boolean {
  const set = new Set(values);
  const shift = kind.huShift ? rng.uniform(kind.huShift[0], kind.huShift[1]) : 0;
  let count = 0;
  for (let p = 0; p < mask.length; p++) {
    if (!set.has(c.labels[p]!)) continue;
    mask[p] = 1; count++;
    if (shift) c.hu[p] = c.hu[p]! + shift;
    if (kind.bullae && rng.next() < 0.03) c.hu[p] = -990;
  }
  return count > 0;
}
