import { loadTaxonomy } from '../common/index.ts';
import type { BoxedVolume, Volume, VoxelBox } from '../volume/index.ts';
import { labelsVoxelBox } from './crop.ts';
import { SUPPORT_LEVEL } from './graphs.ts';
import type { GroundingConfig } from './config.ts';
import { ownKindCalibration } from './size.ts';

/**
 * The contrast gate: a density-defined finding (a cyst, a nodule, a dilated duct: data/taxonomy
 * `densityDefined`) is seen because its voxels differ from its organ, so of a map's voxels only
 * those whose HU lies at least `gate` robust spreads from the organ's median, on the side of it the
 * map's core lies on, are kept. The network sees the CT at 3–4 mm and says where; the CT at its own
 * resolution says which voxels.
 */

/** Median HU of an organ's voxels and their robust spread (1.4826 × median absolute deviation, at least 1 HU). */
export interface OrganDensity { median: number; spread: number }

const LOW = -1024, BINS = 4096;

/** The bin holding the lower median of a histogram's n counts. */
function histogramMedian(hist: Uint32Array, n: number): number {
  let c = 0;
  for (let b = 0; b < hist.length; b++) { c += hist[b]!; if (2 * c >= n) return b; }
  return hist.length - 1;
}

/** How far around a map's box its organ is its background, mm: a reader compares a lesion with the tissue around it, not the whole organ. */
export const BACKGROUND_MM = 15;

/**
 * The density of the voxels labelled with any of `labels` (the anatomy on the CT's grid), from 1-HU
 * histograms over the labels' voxel box (cut to `within` when given): exact to the HU for integer
 * CTs, linear in the box, not the CT. Null for fewer than 8 voxels (no organ to contrast with).
 */
export function organDensity(ct: Volume, anatomy: Volume, labels: readonly number[], within?: VoxelBox): OrganDensity | null {
  const organ = labelsVoxelBox(anatomy, labels);
  if (!organ) return null;
  const box = within ? { min: organ.min.map((v, a) => Math.max(v, within.min[a]!)), max: organ.max.map((v, a) => Math.min(v, within.max[a]!)) } : organ;
  const want = new Set(labels), hist = new Uint32Array(BINS), [nx, ny] = ct.size, { min, max } = box;
  let n = 0;
  for (let k = min[2]; k <= max[2]; k++) for (let j = min[1]; j <= max[1]; j++) {
    const row = nx * (j + ny * k);
    for (let i = min[0]; i <= max[0]; i++) {
      if (!want.has(anatomy.data[row + i]!)) continue;
      hist[Math.min(BINS - 1, Math.max(0, Math.round(ct.data[row + i]!) - LOW))]!++;
      n++;
    }
  }
  if (n < 8) return null;
  const m = histogramMedian(hist, n), dev = new Uint32Array(BINS);
  for (let b = 0; b < BINS; b++) if (hist[b]) dev[Math.abs(b - m)]! += hist[b]!;
  return { median: m + LOW, spread: Math.max(1, 1.4826 * histogramMedian(dev, n)) };
}

/**
 * `map` with the voxels cut that are not at least `gate` spreads from the organ's median on the side
 * its core lies on (the voxels at half its peak or more, weighted by the map: a cyst's core is darker
 * than its organ, a calcification's brighter; a core exactly at the median keeps either side). The
 * type does not fix the side against every organ: fluid in a duct is darker than enhancing pancreas
 * and brighter than a fatty one. A map the gate would leave with no voxel at SUPPORT_LEVEL or more
 * comes back whole: the report says the finding is there, and the gate sharpens where the map is
 * right (like the minPeak rule, it never leaves a described finding without a region).
 */
export function contrastGated(map: BoxedVolume, ct: Volume, organ: OrganDensity, gate: number): BoxedVolume {
  if (!map.box) return map;
  const [nx, ny] = ct.size, { min, max } = map.box, data = Float32Array.from(map.data), near = gate * organ.spread;
  let peak = 0, side = 0;
  for (const v of data) if (v > peak) peak = v;
  for (let k = min[2], p = 0; k <= max[2]; k++) for (let j = min[1]; j <= max[1]; j++) {
    const row = nx * (j + ny * k);
    for (let i = min[0]; i <= max[0]; i++, p++) if (data[p]! >= 0.5 * peak) side += data[p]! * (ct.data[row + i]! - organ.median);
  }
  const sign = Math.sign(side);
  let kept = false;
  for (let k = min[2], p = 0; k <= max[2]; k++) for (let j = min[1]; j <= max[1]; j++) {
    const row = nx * (j + ny * k);
    for (let i = min[0]; i <= max[0]; i++, p++) {
      const d = ct.data[row + i]! - organ.median;
      if (data[p] && (sign ? sign * d : Math.abs(d)) < near) data[p] = 0;
      else if (data[p]! >= SUPPORT_LEVEL) kept = true;
    }
  }
  return kept || peak < SUPPORT_LEVEL ? { ...map, data } : map;
}

let densityTypes: Set<string> | undefined;
/** Whether an anomaly type is seen as a density difference from its organ (the gate applies). */
export function isDensityDefined(type: string): boolean {
  densityTypes ??= new Set(loadTaxonomy().anomalyTypes.filter((t) => t.densityDefined).map((t) => t.id));
  return densityTypes.has(type);
}

/**
 * The gate a finding of this organ class and type gets (0: none): only density-defined types are
 * gated; the kind's own gate (`kindCalibration`) where calibration chose one, else `contrastGate`.
 */
export function contrastGateFor(cfg: Pick<GroundingConfig, 'contrastGate' | 'kindCalibration'>, organ: string, type: string): number {
  if (!isDensityDefined(type)) return 0;
  return ownKindCalibration(cfg, organ, type)?.contrastGate ?? cfg.contrastGate ?? 0;
}

/** A map's voxel box grown by BACKGROUND_MM on every side (clipped later to the organ's box). */
export function backgroundBox(box: VoxelBox, spacing: readonly number[]): VoxelBox {
  const m = [0, 1, 2].map((a) => Math.ceil(BACKGROUND_MM / Math.abs(spacing[a]!)));
  return { min: box.min.map((v, a) => v - m[a]!) as VoxelBox['min'], max: box.max.map((v, a) => v + m[a]!) as VoxelBox['max'] };
}
