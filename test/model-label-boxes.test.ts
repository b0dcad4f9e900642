import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createRng, projectRoot } from '../src/common/index.ts';
import { readVolume, type Volume, type VoxelBox } from '../src/volume/index.ts';
import { labelsVoxelBox } from '../src/model/crop.ts';

/** The box of the voxels whose value is in `values` ('any': every positive whole value), voxel by voxel. */
function naiveBox(v: Volume, values: number[] | 'any'): VoxelBox | null {
  const [nx, ny, nz] = v.size;
  const lo = [Infinity, Infinity, Infinity], hi = [-1, -1, -1];
  for (let k = 0, p = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, p++) {
    const x = v.data[p]!;
    const hit = values === 'any' ? x > 0 && Number.isInteger(x) : values.includes(x);
    if (!hit) continue;
    const at = [i, j, k];
    for (let a = 0; a < 3; a++) { lo[a] = Math.min(lo[a]!, at[a]!); hi[a] = Math.max(hi[a]!, at[a]!); }
  }
  return hi[0]! < 0 ? null : { min: lo as VoxelBox['min'], max: hi as VoxelBox['max'] };
}

test('organ boxes from runs along rows equal a voxel-by-voxel scan: random uint8 and float maps, and the bundled real label map', async () => {
  const rng = createRng(31);
  for (const C of [Uint8Array, Float32Array, Int16Array] as const) {
    const size: [number, number, number] = [17, 9, 6];
    const data = new C(size[0] * size[1] * size[2]);
    // runs of random length and label, some labels absent, a few non-labels in the float map
    for (let p = 0; p < data.length;) {
      const len = 1 + rng.int(0, 6), lab = rng.int(0, 5);
      for (let q = 0; q < len && p < data.length; q++, p++) data[p] = lab;
    }
    if (C === Float32Array) { data[3] = 2.5; data[40] = -1; data[41] = 7.25; }
    const v: Volume = { data, size, spacing: [1, 1, 1], origin: [0, 0, 0], direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] };
    for (const values of [[1], [2], [3, 4], [5], [9], 'any'] as const) {
      assert.deepEqual(labelsVoxelBox(v, values === 'any' ? 'any' : values), naiveBox(v, values === 'any' ? 'any' : [...values]), `${C.name} ${String(values)}`);
    }
  }
  const real = await readVolume(join(projectRoot, 'examples', 'demo', 'labels.nii.gz'));
  const present = [...new Set(real.data)].filter((x) => x > 0);
  assert.ok(present.length > 5);
  for (const x of present) assert.deepEqual(labelsVoxelBox(real, [x]), naiveBox(real, [x]), `label ${x}`);
  assert.deepEqual(labelsVoxelBox(real, 'any'), naiveBox(real, 'any'));
});
