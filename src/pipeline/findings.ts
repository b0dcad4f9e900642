import { UserError } from '../common/index.ts';
import { boxedAt, indexToWorld, voxelBoxToWorld, type BoxedVolume, type Volume, type Vec3 } from '../volume/index.ts';

/** A voxel box, inclusive indices, and the same box as an axis-aligned RAS-mm world box. */
export interface FindingBox {
  voxel: { min: Vec3; max: Vec3 };
  /** `[[xmin,ymin,zmin],[xmax,ymax,zmax]]` in RAS mm, through the centres of the extreme voxels (volume/'s voxelBoxToWorld, as in the dataset manifest) */
  world: [Vec3, Vec3];
}

/** What the map of one anomaly says, measured on the CT's own grid. */
export interface MapSummary {
  /** highest probability anywhere, and where */
  peak: number;
  peakVoxel: Vec3;
  peakWorld: Vec3;
  /** mean probability over the voxels at or above the threshold (0 when there are none) */
  mean: number;
  /** voxels at or above the threshold */
  voxels: number;
  /** their volume, in millilitres */
  volumeMl: number;
  /** bounding box of those voxels; null when the map never reaches the threshold */
  box: FindingBox | null;
  /** the axial / coronal / sagittal slice index that carries the most probability mass */
  bestSlice: { axial: number; coronal: number; sagittal: number };
  /** the voxel where those three best slices cross: where a viewer puts its crosshair */
  focusVoxel: Vec3;
  focusWorld: Vec3;
  /** which index axis is (mostly) the world's z / y / x: how a viewer turns slices into index planes */
  axisOfWorld: { x: number; y: number; z: number };
}

/**
 * For each world axis, the index axis whose direction column points most along it. On an oblique
 * grid this is the nearest plane, which is what readers call "axial" anyway.
 */
export function dominantAxes(direction: readonly number[]): { x: number; y: number; z: number } {
  const used = new Set<number>();
  const pick = (row: number): number => {
    let best = -1, bestAbs = -1;
    for (let c = 0; c < 3; c++) {
      if (used.has(c)) continue;
      const v = Math.abs(direction[row * 3 + c]!);
      if (v > bestAbs) { bestAbs = v; best = c; }
    }
    used.add(best);
    return best;
  };
  // z first: the slice axis of a CT is the one that must not be confused with an in-plane axis
  const z = pick(2), y = pick(1), x = pick(0);
  return { x, y, z };
}

/** Summarises one probability map at a threshold. One pass over the voxels of its box. */
export function summarizeMap(map: BoxedVolume, threshold: number): MapSummary {
  const grid = map.grid, [nx, ny, nz] = grid.size;
  const data = map.data;
  const axes = dominantAxes(grid.direction);
  const mass = [new Float64Array(nx), new Float64Array(ny), new Float64Array(nz)];
  let peak = 0, peakVoxel: Vec3 = [0, 0, 0], sum = 0, count = 0;
  const min: Vec3 = [Infinity, Infinity, Infinity], max: Vec3 = [-Infinity, -Infinity, -Infinity];
  const b = map.box ?? { min: [0, 0, 0], max: [-1, -1, -1] };
  let o = 0;
  for (let k = b.min[2]; k <= b.max[2]; k++) {
    for (let j = b.min[1]; j <= b.max[1]; j++) {
      for (let i = b.min[0]; i <= b.max[0]; i++, o++) {
        const p = data[o]!;
        // the first voxel of the highest value; a map 0 everywhere peaks at voxel 0
        if (p > peak) { peak = p; peakVoxel = [i, j, k]; }
        if (p > 0) { mass[0]![i] += p; mass[1]![j] += p; mass[2]![k] += p; }
        if (p >= threshold) {
          sum += p; count++;
          if (i < min[0]) min[0] = i; if (i > max[0]) max[0] = i;
          if (j < min[1]) min[1] = j; if (j > max[1]) max[1] = j;
          if (k < min[2]) min[2] = k; if (k > max[2]) max[2] = k;
        }
      }
    }
  }
  // slices without any mass fall back to the peak's slice, so a flat map still has a sensible view
  const argmax = (m: Float64Array, fallback: number): number => {
    let best = fallback, bv = 0;
    for (let t = 0; t < m.length; t++) if (m[t]! > bv) { bv = m[t]!; best = t; }
    return best;
  };
  const bestIdx = [argmax(mass[0]!, peakVoxel[0]), argmax(mass[1]!, peakVoxel[1]), argmax(mass[2]!, peakVoxel[2])];
  const voxelMl = (Math.abs(grid.spacing[0] * grid.spacing[1] * grid.spacing[2]) * Math.abs(det3(grid.direction))) / 1000;
  return {
    peak,
    peakVoxel,
    peakWorld: indexToWorld(grid, peakVoxel),
    mean: count ? sum / count : 0,
    voxels: count,
    volumeMl: count * voxelMl,
    box: count ? { voxel: { min, max }, world: voxelBoxToWorld(grid, { min, max }) } : null,
    bestSlice: { axial: bestIdx[axes.z]!, coronal: bestIdx[axes.y]!, sagittal: bestIdx[axes.x]! },
    focusVoxel: bestIdx as Vec3,
    focusWorld: indexToWorld(grid, bestIdx),
    axisOfWorld: axes,
  };
}

function det3(m: readonly number[]): number {
  return m[0]! * (m[4]! * m[8]! - m[5]! * m[7]!) - m[1]! * (m[3]! * m[8]! - m[5]! * m[6]!) + m[2]! * (m[3]! * m[7]! - m[4]! * m[6]!);
}

/**
 * One label map for all anomalies: voxel = 1 + index of the anomaly whose map is highest there
 * among those at or above the threshold, 0 elsewhere. Highest-wins keeps overlapping findings
 * (a nodule inside a consolidation) from silently erasing each other by list order. A null map
 * (a negated finding) keeps its value unused. 256 anomalies or more: the map is uint16.
 */
export function labelMapOf(maps: (BoxedVolume | null)[], threshold: number, like: Volume): Volume<Uint8Array | Uint16Array> {
  // uint8 while the values fit (what every viewer expects), uint16 from the 256th anomaly on
  if (maps.length > 65535) throw new UserError(`report: ${maps.length} anomalies, more than one label map can number (65535)`);
  const [nx, ny, nz] = like.size;
  const out = maps.length > 255 ? new Uint16Array(nx * ny * nz) : new Uint8Array(nx * ny * nz);
  maps.forEach((m, a) => {
    if (!m?.box) return;
    const d = m.data, { min, max } = m.box;
    for (let k = min[2], o = 0; k <= max[2]; k++) for (let j = min[1]; j <= max[1]; j++) {
      for (let i = min[0], v = i + nx * (j + ny * k); i <= max[0]; i++, v++, o++) {
        const p = d[o]!;
        if (p < threshold) continue;
        // where another finding holds the voxel, its own map says how high (no whole-grid array of the best so far)
        const held = out[v]!;
        if (held === 0 || p > boxedAt(maps[held - 1]!, i, j, k)) out[v] = a + 1;
      }
    }
  });
  return { data: out, size: [...like.size], spacing: [...like.spacing], origin: [...like.origin], direction: [...like.direction] };
}

/** The binary mask of one map at the threshold, on the map's grid. */
export function maskOf(map: Volume<Float32Array>, threshold: number): Volume<Uint8Array> {
  const out = new Uint8Array(map.data.length);
  for (let v = 0; v < out.length; v++) out[v] = map.data[v]! >= threshold ? 1 : 0;
  return { data: out, size: [...map.size], spacing: [...map.spacing], origin: [...map.origin], direction: [...map.direction] };
}
