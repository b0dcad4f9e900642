import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pasteToGrid } from '../src/model/index.ts';
import { denseVolume, resampleToGrid, type Volume } from '../src/volume/index.ts';

test('pasting a crop map onto the CT grid matches a full resampling wherever the map matters', () => {
  // crop: 8³ at 3 mm, off-origin; a blob in one corner and a faint haze below the floor elsewhere
  const crop: Volume<Float32Array> = { data: new Float32Array(512).fill(0.004), size: [8, 8, 8], spacing: [3, 3, 3], origin: [10, 4, -6], direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] };
  for (let k = 0; k < 3; k++) for (let j = 0; j < 3; j++) for (let i = 0; i < 3; i++) crop.data[i + 8 * (j + 8 * k)] = 0.9 - 0.2 * (i + j + k) / 3;
  // CT grid: 2 mm, flipped x (LPS-like index order) so the sub-box logic meets a non-identity direction
  const ct = { size: [24, 20, 16] as [number, number, number], spacing: [2, 2, 2] as [number, number, number], origin: [50, 0, -10] as [number, number, number], direction: [-1, 0, 0, 0, 1, 0, 0, 0, 1] };
  const full = resampleToGrid(crop, ct, 'linear', { fill: 0 }).data;
  const pasted = denseVolume(pasteToGrid(crop, ct, 'linear')).data;
  let inside = 0;
  for (let o = 0; o < full.length; o++) {
    if (full[o]! >= 0.01) { inside++; assert.ok(Math.abs(pasted[o]! - full[o]!) < 1e-5, `voxel ${o}: ${pasted[o]} vs ${full[o]}`); }
    else assert.ok(pasted[o]! < 0.01, `voxel ${o} should be below the floor`);
  }
  assert.ok(inside > 20, `${inside} voxels carry the blob`);
});
