import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { median, projectRoot } from '../common/index.ts';

/** Margin around a lesion's voxel box whose organ voxels are its background, mm. */
export const BACKGROUND_MM = 15;

/** A lesion's mean against the organ around it: what its contrast-to-noise is made of. */
export interface LocalContrast {
  lesionMean: number;
  /** median HU of the target organ's voxels outside the lesion within BACKGROUND_MM of its box */
  background: number;
  /** robust spread of those voxels: 1.4826 × median absolute deviation, at least 1 HU */
  spread: number;
}

export interface VoxelBox { min: readonly number[]; max: readonly number[] }

/** The voxel box of a mask (null when empty). */
export function maskVoxelBox(mask: ArrayLike<number>, size: readonly number[]): VoxelBox | null {
  const [nx, ny, nz] = size as [number, number, number];
  const min = [nx, ny, nz], max = [-1, -1, -1];
  for (let k = 0, p = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, p++) {
    if (!mask[p]) continue;
    if (i < min[0]!) min[0] = i; if (i > max[0]!) max[0] = i;
    if (j < min[1]!) min[1] = j; if (j > max[1]!) max[1] = j;
    if (k < min[2]!) min[2] = k; if (k > max[2]!) max[2] = k;
  }
  return max[0]! < 0 ? null : { min, max };
}

/**
 * The lesion mean and its organ background (see LocalContrast). `box` (the mask's voxel box) saves a
 * scan of the whole volume when the caller knows it. Null for an empty mask or no organ around it.
 */
export function localContrast(ct: ArrayLike<number>, labels: ArrayLike<number>, mask: ArrayLike<number>, size: readonly number[], spacing: readonly number[], organ: number, box?: VoxelBox): LocalContrast | null {
  const b = box ?? maskVoxelBox(mask, size);
  if (!b) return null;
  const [nx, ny] = size as [number, number, number];
  const m = [0, 1, 2].map((a) => Math.ceil(BACKGROUND_MM / spacing[a]!));
  const lo = [0, 1, 2].map((a) => Math.max(0, b.min[a]! - m[a]!)), hi = [0, 1, 2].map((a) => Math.min(size[a]! - 1, b.max[a]! + m[a]!));
  const bg: number[] = [];
  let sum = 0, n = 0;
  for (let k = lo[2]!; k <= hi[2]!; k++) for (let j = lo[1]!; j <= hi[1]!; j++) for (let i = lo[0]!; i <= hi[0]!; i++) {
    const p = i + nx * (j + ny * k);
    if (mask[p]) { sum += ct[p]!; n++; } else if (labels[p] === organ) bg.push(ct[p]!);
  }
  if (n === 0 || bg.length === 0) return null;
  const background = median(bg);
  return { lesionMean: sum / n, background, spread: Math.max(1, 1.4826 * median(bg.map((v) => Math.abs(v - background)))) };
}

/**
 * Contrast-to-noise of one lesion: |lesion mean − organ background| ÷ the background's robust spread
 * (see LocalContrast). Under 1 the lesion is about as bright as the organ's own texture: no reader
 * (and no model) can be expected to see it. NaN for an empty mask or no organ around it.
 */
export function lesionCnr(ct: ArrayLike<number>, labels: ArrayLike<number>, mask: ArrayLike<number>, size: readonly number[], spacing: readonly number[], organ: number, box?: VoxelBox): number {
  const c = localContrast(ct, labels, mask, size, spacing, organ, box);
  return c ? Math.abs(c.lesionMean - c.background) / c.spread : NaN;
}

/** The generator's visibility rule (data/synth/lesions.json `visibility`, which says why). */
export interface VisibilityRule { minCnr: number; rose: number }

/** The CNR a lesion of `voxels` voxels must reach: max(minCnr, rose / sqrt(voxels)). */
export function requiredCnr(rule: VisibilityRule, voxels: number): number {
  return Math.max(rule.minCnr, rule.rose / Math.sqrt(Math.max(1, voxels)));
}

let ruleCache: VisibilityRule | undefined;
export function loadVisibilityRule(): VisibilityRule {
  ruleCache ??= (JSON.parse(readFileSync(join(projectRoot, 'data', 'synth', 'lesions.json'), 'utf8')) as { visibility: VisibilityRule }).visibility;
  return ruleCache;
}

const HU_MIN = -1024, HU_MAX = 3071;

/**
 * Makes a lesion at least `required` visible (CNR) on the finished CT (noise and blur included), keeping the
 * side of its organ it was drawn on (`sign`: +1 brighter, −1 darker): the lesion's voxels move by
 * the missing contrast, the organ voxels touching it by half (a partial-volume edge, not a step).
 * Voxels in `keep` (other lesions) are never touched. Returns the CNR before and after.
 */
export function enforceContrast(ct: Int16Array | Float32Array, labels: ArrayLike<number>, mask: ArrayLike<number>, keep: ArrayLike<number>, size: readonly number[], spacing: readonly number[], organ: number, box: VoxelBox, required: number, sign: 1 | -1): { before: number; after: number } {
  const [nx, ny] = size as [number, number, number];
  const cnr = (c: LocalContrast): number => Math.abs(c.lesionMean - c.background) / c.spread;
  let c = localContrast(ct, labels, mask, size, spacing, organ, box);
  if (!c) return { before: NaN, after: NaN };
  const before = cnr(c);
  const edge: number[] = [];
  for (let k = box.min[2]! - 1; k <= box.max[2]! + 1; k++) for (let j = box.min[1]! - 1; j <= box.max[1]! + 1; j++) for (let i = box.min[0]! - 1; i <= box.max[0]! + 1; i++) {
    if (i < 0 || j < 0 || k < 0 || i >= nx || j >= ny || k >= size[2]!) continue;
    const p = i + nx * (j + ny * k);
    if (mask[p] || keep[p] || labels[p] !== organ) continue;
    const touches = (di: number, dj: number, dk: number): boolean => {
      const a = i + di, b = j + dj, d = k + dk;
      return a >= 0 && b >= 0 && d >= 0 && a < nx && b < ny && d < size[2]! && !!mask[a + nx * (b + ny * d)];
    };
    if (touches(1, 0, 0) || touches(-1, 0, 0) || touches(0, 1, 0) || touches(0, -1, 0) || touches(0, 0, 1) || touches(0, 0, -1)) edge.push(p);
  }
  // A few rounds: the half-moved edge nudges the background median, rounding to integer HU the mean.
  for (let round = 0; round < 4 && sign * (c.lesionMean - c.background) < required * c.spread; round++) {
    const delta = c.background + sign * required * c.spread * 1.05 - c.lesionMean;
    const move = (p: number, d: number): void => {
      const v = ct[p]! + d;
      ct[p] = ct instanceof Int16Array ? Math.min(HU_MAX, Math.max(HU_MIN, Math.round(v))) : v;
    };
    for (let k = box.min[2]!; k <= box.max[2]!; k++) for (let j = box.min[1]!; j <= box.max[1]!; j++) for (let i = box.min[0]!; i <= box.max[0]!; i++) {
      const p = i + nx * (j + ny * k);
      if (mask[p]) move(p, delta);
    }
    for (const p of edge) move(p, delta / 2);
    c = localContrast(ct, labels, mask, size, spacing, organ, box)!;
  }
  return { before, after: cnr(c) };
}
