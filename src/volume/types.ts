/** Voxel storage types ctground reads and writes. */
export type VoxelArray = Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array;

export type Vec3 = [number, number, number];

/**
 * A 3D image on a world grid. Geometry is a full affine, not just spacing:
 *   world = origin + direction · diag(spacing) · index
 * with `world` in **RAS millimetres** (NIfTI's frame; ITK's LPS is converted at the I/O boundary),
 * `index` = (i, j, k) voxel centres, i fastest in `data` (offset = i + nx·(j + ny·k)).
 * `direction` is 3×3 row-major; its column c is the unit world direction of index axis c.
 */
export interface Volume<T extends VoxelArray = VoxelArray> {
  data: T;
  size: Vec3;
  spacing: Vec3;
  origin: Vec3;
  direction: number[];
}

/** A volume's grid without its voxels: what resampling onto "the CT's grid" needs. */
export type Geometry = Pick<Volume, 'size' | 'spacing' | 'origin' | 'direction'>;

/** Axis-aligned world box `[[xmin,ymin,zmin],[xmax,ymax,zmax]]` in RAS mm. */
export type WorldBox = [Vec3, Vec3];

/** Inclusive voxel index box. */
export interface VoxelBox {
  min: Vec3;
  max: Vec3;
}

/**
 * A float volume on `grid` stored over an inclusive voxel box of it alone, 0 everywhere else: a
 * grounding map covers a finding, not the CT (ten full-grid maps of a 512²×400 CT take 4 GB).
 * `data` is box-sized, i fastest; `box` null: 0 everywhere (and `data` empty).
 */
export interface BoxedVolume {
  grid: Geometry;
  box: VoxelBox | null;
  data: Float32Array;
}
