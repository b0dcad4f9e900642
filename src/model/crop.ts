import { resampleToGrid, voxelBoxToWorld, type Geometry, type Volume, type VoxelBox } from '../volume/index.ts';
import { normalizedAnatomyChannel, type PlaceRegion } from '../anatomy/index.ts';

/**
 * The anatomy-guided crop. A whole CT at a CPU-affordable spacing leaves a 1 cm lesion under one
 * cell of the encoder's 8×-pooled feature grid; a cube around the organ the report names (cut to
 * the named side or lobe where the label map has it) at a finer spacing keeps it visible. The same
 * crop is used at training and at inference, so the model never sees a different scale.
 */
export interface CropConfig {
  /** voxels per side of the network input (a multiple of 8: three 2× poolings) */
  grid: number;
  /** margin added around the organ's box on each side, mm */
  marginMm: number;
  /** clamp of the cube's side, mm */
  minMm: number;
  maxMm: number;
  /** CT windows (HU lo, hi), one input channel each, scaled to [0, 1] */
  windows: [number, number][];
  /**
   * The coarsest spacing an organ is seen at, mm. A larger organ is cut into overlapping tiles of
   * grid voxels at this spacing instead of one coarser cube (see `cropTiles`). Absent: one cube
   * per organ whatever its size (models trained before tiling).
   */
  maxSpacingMm?: number;
  /**
   * What a crop is cut around: 'organ' (default), the organ the structured report names, found on
   * the label map; 'body', everything labelled, seen through tiles — for ablation variants that
   * lack the structuring or the anatomy, which together are what finds the organ (the paper's
   * baseline sees the whole CT).
   */
  region?: CropRegion;
}

export type CropRegion = 'organ' | 'body';

export const DEFAULT_CROP: CropConfig = { grid: 32, marginMm: 10, minMm: 64, maxMm: 256, windows: [[-1000, 400], [-160, 240]], maxSpacingMm: 5 };

export type Vec3 = [number, number, number];

/** An axis-aligned world (RAS mm) box. */
export type Box = { min: Vec3; max: Vec3 };

/** World (RAS mm) box of the voxel centres where mask is set, or null for an empty mask. */
export function maskWorldBox(vol: Geometry, mask: ArrayLike<number>): Box | null {
  const [nx, ny, nz] = vol.size;
  let i0 = Infinity, j0 = Infinity, k0 = Infinity, i1 = -1, j1 = -1, k1 = -1;
  for (let k = 0, o = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, o++) {
    if (!mask[o]) continue;
    if (i < i0) i0 = i; if (i > i1) i1 = i;
    if (j < j0) j0 = j; if (j > j1) j1 = j;
    if (k < k0) k0 = k; if (k > k1) k1 = k;
  }
  return i1 < 0 ? null : indexBoxWorld(vol, [i0, j0, k0], [i1, j1, k1]);
}

/** World (RAS mm) box of the voxel centres of an index box (inclusive corners), as a `Box`. */
function indexBoxWorld(vol: Geometry, lo: readonly number[], hi: readonly number[]): Box {
  const [min, max] = voxelBoxToWorld(vol, { min: lo as Vec3, max: hi as Vec3 });
  return { min, max };
}

/** Per label value v, its voxels' index box at [6v, 6v + 6): i0 j0 k0 i1 j1 k1 (i1 = −1: absent). */
type LabelIndexBoxes = Int32Array;

// One scan of a label image serves every organ box asked of it (a study's anomalies, a training
// sample's tiles): a 512² × 300 CT is 78 M voxels to read. Label images are not modified once built.
const labelBoxCache = new WeakMap<object, LabelIndexBoxes>();

function labelIndexBoxes(labels: Volume): LabelIndexBoxes {
  const cached = labelBoxCache.get(labels.data);
  if (cached) return cached;
  const d = labels.data, [nx, ny, nz] = labels.size;
  // a uint8 map (every map anatomy/ builds) needs no pass for its largest label, and a loop of its own stays monomorphic
  let top = 255;
  if (!(d instanceof Uint8Array)) { top = 0; for (let p = 0; p < d.length; p++) if (d[p]! > top) top = d[p]!; }
  const b = new Int32Array(6 * (Math.floor(top) + 1));
  for (let v = 0; v <= top; v++) b.set([nx, ny, nz, -1, -1, -1], 6 * v);
  if (d instanceof Uint8Array) scanRunsU8(d, labels.size, b);
  else scanRuns(d, labels.size, b);
  labelBoxCache.set(labels.data, b);
  return b;
}

/**
 * Box of each label by runs of one label along a row (a label map is mostly runs): a box is updated
 * once per run, not per voxel (the per-voxel scan took 4.7 s of a 512² × 300 study's labeling).
 */
function scanRunsU8(d: Uint8Array, [nx, ny, nz]: readonly [number, number, number], b: Int32Array): void {
  for (let k = 0, p = 0; k < nz; k++) for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx;) {
      const v = d[p]!, i0 = i;
      do { i++; p++; } while (i < nx && d[p] === v);
      if (v === 0) continue;
      const o = 6 * v;
      if (i0 < b[o]!) b[o] = i0; if (i - 1 > b[o + 3]!) b[o + 3] = i - 1;
      if (j < b[o + 1]!) b[o + 1] = j; if (j > b[o + 4]!) b[o + 4] = j;
      if (k < b[o + 2]!) b[o + 2] = k; if (k > b[o + 5]!) b[o + 5] = k;
    }
  }
}

/** scanRunsU8 for any other voxel type: non-integer and non-positive values are no label. */
function scanRuns(d: Volume['data'], [nx, ny, nz]: readonly [number, number, number], b: Int32Array): void {
  for (let k = 0, p = 0; k < nz; k++) for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx;) {
      const v = d[p]!;
      const i0 = i;
      do { i++; p++; } while (i < nx && d[p] === v);
      if (v <= 0 || v !== Math.floor(v)) continue;
      const o = 6 * v;
      if (i0 < b[o]!) b[o] = i0; if (i - 1 > b[o + 3]!) b[o + 3] = i - 1;
      if (j < b[o + 1]!) b[o + 1] = j; if (j > b[o + 4]!) b[o + 4] = j;
      if (k < b[o + 2]!) b[o + 2] = k; if (k > b[o + 5]!) b[o + 5] = k;
    }
  }
}

/** The inclusive voxel box of the voxels whose label is one of `values` (all labels > 0 for 'any'), from one cached scan; null when there is none. */
export function labelsVoxelBox(labels: Volume, values: Iterable<number> | 'any'): VoxelBox | null {
  const b = labelIndexBoxes(labels), n = b.length / 6;
  const lo: Vec3 = [Infinity, Infinity, Infinity], hi: Vec3 = [-1, -1, -1];
  const take = (v: number) => {
    if (v <= 0 || v >= n || v !== Math.floor(v) || b[6 * v + 3]! < 0) return;
    for (let a = 0; a < 3; a++) { lo[a] = Math.min(lo[a]!, b[6 * v + a]!); hi[a] = Math.max(hi[a]!, b[6 * v + 3 + a]!); }
  };
  if (values === 'any') for (let v = 1; v < n; v++) take(v);
  else for (const v of values) take(v);
  return hi[0] < 0 ? null : { min: lo, max: hi };
}

/**
 * World box of the voxels whose label is one of `values` (all labels > 0 when `values` is
 * 'any'), or null when there is none: `maskWorldBox` of that mask, from one cached scan.
 */
export function labelsWorldBox(labels: Volume, values: Iterable<number> | 'any'): Box | null {
  const b = labelsVoxelBox(labels, values);
  return b ? indexBoxWorld(labels, b.min, b.max) : null;
}

/**
 * The crop cube for an organ box: axis-aligned in RAS, `grid + 2·pad` voxels per side (pad is room
 * for shift augmentation), centred on the box, side = clamp(largest extent + 2·margin).
 */
export function cropGeometry(box: Box, cfg: CropConfig, pad = 0): Geometry {
  const centre = [0, 1, 2].map((a) => (box.min[a]! + box.max[a]!) / 2) as Vec3;
  const extent = Math.max(...[0, 1, 2].map((a) => box.max[a]! - box.min[a]!)) + 2 * cfg.marginMm;
  const side = Math.min(cfg.maxMm, Math.max(cfg.minMm, extent));
  const s = side / cfg.grid;
  const n = cfg.grid + 2 * pad;
  const origin = centre.map((c) => c - ((n - 1) / 2) * s) as Vec3;
  return { size: [n, n, n], spacing: [s, s, s], origin, direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] };
}

/** Scales HU into [0, 1] over a window (values outside clamp). */
function windowed(src: Float32Array, lo: number, hi: number, out: Float32Array): Float32Array {
  const inv = 1 / (hi - lo);
  for (let i = 0; i < src.length; i++) {
    const v = (src[i]! - lo) * inv;
    out[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return out;
}

/**
 * The network's input channels on a crop grid: one per CT window, then (when `anatomy` is asked
 * for) the normalized label channel. Channel-major, each channel grid³ values.
 */
export function cropChannels(ct: Volume, labels: Volume, geom: Geometry, cfg: CropConfig, withAnatomy: boolean): Float32Array {
  // Outside the scan is air: -1000 HU, label 0.
  const hu = resampleToGrid(ct, geom, 'linear', { fill: -1000 }).data;
  const n = hu.length;
  const chans = cfg.windows.length + (withAnatomy ? 1 : 0);
  const out = new Float32Array(chans * n);
  // each channel written in place: a crop per grid per study, so no temporaries
  cfg.windows.forEach(([lo, hi], c) => windowed(hu, lo, hi, out.subarray(c * n, (c + 1) * n)));
  if (withAnatomy) normalizedAnatomyChannel(resampleToGrid(labels, geom, 'nearest', { fill: 0 }), out.subarray(cfg.windows.length * n));
  return out;
}

/** A crop grid that also knows where it sits relative to the organ box it was cut around. */
export interface CropGeometry extends Geometry {
  /**
   * per axis, the change of the organ-relative coordinate u per crop voxel: u = −1 and +1 at the
   * box's faces, 0 at its centre
   */
  positionScale: Vec3;
  /** per axis, the index of the grid's first voxel minus the box centre's (fractional) index */
  positionOffset: Vec3;
}

function withPosition(box: Box, geom: Geometry): CropGeometry {
  const offset = [0, 1, 2].map((a) => (geom.origin[a]! - (box.min[a]! + box.max[a]!) / 2) / geom.spacing[a]!) as Vec3;
  return { ...geom, positionScale: positionScale(box, geom), positionOffset: offset };
}

/** The one cube around an organ box (`cropGeometry`) with its position in the box. */
export function organCrop(box: Box, cfg: CropConfig, pad = 0): CropGeometry {
  return withPosition(box, cropGeometry(box, cfg, pad));
}

/** True when an organ box is seen as tiles (its cube would be coarser than cfg.maxSpacingMm). */
export function isTiled(box: Box, cfg: CropConfig): boolean {
  return cfg.maxSpacingMm !== undefined && cropGeometry(box, cfg).spacing[0] > cfg.maxSpacingMm + 1e-9;
}

/**
 * Where tiles may sit along each axis: per axis the centre range [lo, hi] of a tile of side
 * grid·maxSpacingMm over the box plus margin, capped at 1.5·maxMm (a body-wide box would
 * otherwise give dozens of tiles).
 */
function tileRange(box: Box, cfg: CropConfig): { side: number; lo: Vec3; hi: Vec3 } {
  const side = cfg.grid * cfg.maxSpacingMm!;
  const lo = [0, 0, 0] as Vec3, hi = [0, 0, 0] as Vec3;
  for (let a = 0; a < 3; a++) {
    const c = (box.min[a]! + box.max[a]!) / 2;
    const reach = Math.min(1.5 * cfg.maxMm, box.max[a]! - box.min[a]! + 2 * cfg.marginMm);
    const room = Math.max(0, reach - side) / 2;
    lo[a] = c - room; hi[a] = c + room;
  }
  return { side, lo, hi };
}

function tileAtCentre(box: Box, cfg: CropConfig, centre: Vec3, pad: number): CropGeometry {
  const s = cfg.maxSpacingMm!, n = cfg.grid + 2 * pad;
  const origin = centre.map((c) => c - ((n - 1) / 2) * s) as Vec3;
  return withPosition(box, { size: [n, n, n], spacing: [s, s, s], origin, direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] });
}

/**
 * The grids an organ is seen through. A box whose cube fits cfg.maxSpacingMm gives that one cube;
 * a larger one gives tiles of grid voxels at maxSpacingMm, evenly spread over the box (plus
 * margin) with at least a quarter tile of overlap, so a lesion up to that size lies whole in one.
 * Each tile keeps its place in the organ box (positionOffset): the position term still says where
 * in the organ a voxel is.
 */
export function cropTiles(box: Box, cfg: CropConfig, pad = 0): CropGeometry[] {
  if (!isTiled(box, cfg)) return [organCrop(box, cfg, pad)];
  const { side, lo, hi } = tileRange(box, cfg);
  const centres = [0, 1, 2].map((a) => {
    const span = hi[a]! - lo[a]!;
    const k = span <= 1e-6 ? 1 : Math.ceil(span / (0.75 * side)) + 1;
    return Array.from({ length: k }, (_, i) => (k === 1 ? (lo[a]! + hi[a]!) / 2 : lo[a]! + (span * i) / (k - 1)));
  });
  const tiles: CropGeometry[] = [];
  for (const z of centres[2]!) for (const y of centres[1]!) for (const x of centres[0]!) tiles.push(tileAtCentre(box, cfg, [x, y, z], pad));
  return tiles;
}

/**
 * A training tile of a tiled organ: centred at `point` moved by `jitter` (each in [−1, 1]) quarter
 * tiles, kept inside the range inference tiles span, so the lesion at `point` lies inside and
 * not always at the centre.
 */
export function tileNear(box: Box, cfg: CropConfig, point: Vec3, jitter: Vec3, pad = 0): CropGeometry {
  const { side, lo, hi } = tileRange(box, cfg);
  const centre = [0, 1, 2].map((a) => Math.min(hi[a]!, Math.max(lo[a]!, point[a]! + (jitter[a]! * side) / 4))) as Vec3;
  return tileAtCentre(box, cfg, centre, pad);
}

/** Features per voxel of the position term: per axis u/2, sin and cos of πu/2 and of πu. */
export const POSITION_FEATURES = 15;

/** The positionScale of a crop cut by `cropGeometry` around `box`. */
export function positionScale(box: Box, crop: Geometry): Vec3 {
  // a box one voxel thin along an axis would blow u up; a voxel's width is its least extent
  return [0, 1, 2].map((a) => (2 * crop.spacing[a]!) / Math.max(box.max[a]! - box.min[a]!, crop.spacing[a]!)) as Vec3;
}

/**
 * The organ-relative position features of a G³ window of a crop, channel-major (15, G, G, G).
 * `offset` is, per axis, the index of the window's first voxel minus the organ box centre's index
 * (a crop's `positionOffset`; a training cut at shift s adds s). u is clamped to [−2, 2]: beyond
 * that the crop's margin is all that is left.
 * `into` (15·G³ values, e.g. one sample's part of a batch) is written instead of a new array.
 */
export function positionChannels(G: number, scale: Vec3, offset: Vec3, into?: Float32Array): Float32Array {
  const n = G * G * G, out = into ?? new Float32Array(POSITION_FEATURES * n);
  const feats = (u: number) => [u / 2, Math.sin((Math.PI * u) / 2), Math.cos((Math.PI * u) / 2), Math.sin(Math.PI * u), Math.cos(Math.PI * u)];
  // per axis, the five features at each of the G positions along it
  const table = [0, 1, 2].map((a) => Array.from({ length: G }, (_, i) => feats(Math.max(-2, Math.min(2, (i + offset[a]!) * scale[a]!)))));
  // runs of equal values, written by set/fill: a per-voxel loop over 15 channels is ~4× slower
  for (let q = 0; q < 5; q++) {
    const col = table.map((t) => Float32Array.from(t, (f) => f[q]!));
    const bx = q * n, by = (5 + q) * n, bz = (10 + q) * n;
    for (let k = 0; k < G; k++) {
      out.fill(col[2]![k]!, bz + k * G * G, bz + (k + 1) * G * G);
      for (let j = 0; j < G; j++) {
        const row = G * (j + G * k);
        out.set(col[0]!, bx + row);
        out.fill(col[1]![j]!, by + row, by + row + G);
      }
    }
  }
  return out;
}

/**
 * A map's logits on one crop with the place prior: voxels beyond `region` (fractions of the organ
 * box the crop was cut around; the crop's positionScale/positionOffset say where each voxel is in
 * it) lose `penalty` × min(1, distance past the region's nearest face / margin), distance in box
 * fractions, largest over the axes. Returns new logits and their peak.
 */
export function placePenalized(logits: Float32Array, crop: CropGeometry, region: PlaceRegion, penalty: number, margin: number): { logits: Float32Array; peak: number } {
  const [nx, ny, nz] = crop.size;
  // per axis, each index's share of the penalty (the farthest axis decides)
  const axisCost = (['x', 'y', 'z'] as const).map((name, a) => Float32Array.from({ length: crop.size[a]! }, (_, i) => {
    const r = region[name];
    if (!r) return 0;
    const f = ((i + crop.positionOffset[a]!) * crop.positionScale[a]! + 1) / 2;
    return penalty * Math.min(1, Math.max(0, r[0] - f, f - r[1]) / margin);
  }));
  const [cx, cy, cz] = axisCost as [Float32Array, Float32Array, Float32Array];
  const out = new Float32Array(logits.length);
  let peak = -Infinity;
  for (let k = 0, p = 0; k < nz; k++) for (let j = 0; j < ny; j++) {
    const cjk = Math.max(cy[j]!, cz[k]!);
    for (let i = 0; i < nx; i++, p++) {
      const z = logits[p]! - Math.max(cjk, cx[i]!);
      out[p] = z;
      if (z > peak) peak = z;
    }
  }
  return { logits: out, peak };
}
