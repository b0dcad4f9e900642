import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import { summarizeMap, labelMapOf, maskOf, dominantAxes, renderOverview, wrapText } from '../src/pipeline/index.ts';
import { boxedVolume, type Volume, type Vec3 } from '../src/volume/index.ts';

function grid(size: Vec3, spacing: Vec3, origin: Vec3, direction = [1, 0, 0, 0, 1, 0, 0, 0, 1]): Volume<Float32Array> {
  return { data: new Float32Array(size[0] * size[1] * size[2]), size, spacing, origin, direction };
}
const at = (v: Volume, i: number, j: number, k: number): number => i + v.size[0] * (j + v.size[1] * k);

test('summarizeMap: box, volume in ml, peak and mean of a hand-made cuboid', () => {
  const m = grid([20, 16, 12], [0.8, 0.8, 2.5], [-10, 5, 100]);
  // cuboid i 3..7, j 4..9, k 2..5 at 0.6, one voxel inside at 0.9, one stray voxel at 0.3 (below threshold)
  for (let k = 2; k <= 5; k++) for (let j = 4; j <= 9; j++) for (let i = 3; i <= 7; i++) m.data[at(m, i, j, k)] = 0.6;
  m.data[at(m, 5, 6, 3)] = 0.9;
  m.data[at(m, 15, 1, 10)] = 0.3;
  const s = summarizeMap(boxedVolume(m), 0.5);
  const n = 5 * 6 * 4;
  assert.equal(s.voxels, n);
  assert.ok(Math.abs(s.volumeMl - (n * 0.8 * 0.8 * 2.5) / 1000) < 1e-9);
  assert.ok(Math.abs(s.mean - (0.6 * (n - 1) + 0.9) / n) < 1e-6);
  assert.ok(Math.abs(s.peak - 0.9) < 1e-6);
  assert.deepEqual(s.peakVoxel, [5, 6, 3]);
  assert.deepEqual(s.box!.voxel, { min: [3, 4, 2], max: [7, 9, 5] });
  // identity direction: world = origin + spacing * index, box through voxel centres
  const w = s.box!.world;
  for (let a = 0; a < 3; a++) {
    assert.ok(Math.abs(w[0][a]! - (m.origin[a]! + m.spacing[a]! * [3, 4, 2][a]!)) < 1e-9);
    assert.ok(Math.abs(w[1][a]! - (m.origin[a]! + m.spacing[a]! * [7, 9, 5][a]!)) < 1e-9);
  }
  assert.ok(Math.abs(s.peakWorld[2] - (100 + 3 * 2.5)) < 1e-9);
  // the heaviest axial slice is the one holding the 0.9 voxel
  assert.equal(s.bestSlice.axial, 3);
  assert.deepEqual(s.focusVoxel, [5, 6, 3]);
  assert.equal(summarizeMap(boxedVolume(m), 0.95).box, null);
  assert.equal(summarizeMap(boxedVolume(m), 0.95).voxels, 0);
});

test('summarizeMap: a permuted, flipped grid still names the axial slice along world z', () => {
  // index axis 0 runs along world −z (slices), axis 1 along +x, axis 2 along −y: like a sagittal-first scan
  const dir = [0, 1, 0, 0, 0, -1, -1, 0, 0];
  const m = grid([10, 8, 6], [3, 1, 2], [0, 0, 0], dir);
  assert.deepEqual(dominantAxes(dir), { x: 1, y: 2, z: 0 });
  for (let k = 1; k <= 2; k++) for (let j = 2; j <= 4; j++) m.data[at(m, 7, j, k)] = j === 3 && k === 2 ? 1 : 0.6;
  const s = summarizeMap(boxedVolume(m), 0.5);
  assert.equal(s.bestSlice.axial, 7);
  assert.equal(s.bestSlice.sagittal, 3);
  assert.equal(s.bestSlice.coronal, 2);
  // world box computed by hand: x = j*1 in [2,4]; y = −k*2 in [−4,−2]; z = −i*3 = −21
  const [lo, hi] = s.box!.world;
  assert.deepEqual(lo.map((v) => Math.round(v * 1e6) / 1e6), [2, -4, -21]);
  assert.deepEqual(hi.map((v) => Math.round(v * 1e6) / 1e6), [4, -2, -21]);
  assert.ok(Math.abs(s.volumeMl - (6 * 3 * 1 * 2) / 1000) < 1e-12);
});

test('labelMapOf: one value per anomaly, the higher probability wins where maps overlap', () => {
  const a = grid([4, 1, 1], [1, 1, 1], [0, 0, 0]), b = grid([4, 1, 1], [1, 1, 1], [0, 0, 0]);
  a.data.set([0.9, 0.7, 0.2, 0]);
  b.data.set([0.6, 0.8, 0.6, 0.1]);
  const l = labelMapOf([boxedVolume(a), boxedVolume(b)], 0.5, a);
  assert.deepEqual([...l.data], [1, 2, 2, 0]);
  assert.deepEqual([...maskOf(b, 0.5).data], [1, 1, 1, 0]);
  assert.deepEqual(l.origin, a.origin);
});

test('renderOverview: the map shows red, the box yellow, on the best slice in radiological orientation', () => {
  const ct = grid([32, 32, 4], [1, 1, 1], [0, 0, 0]);
  ct.data.fill(40);
  const map = grid([32, 32, 4], [1, 1, 1], [0, 0, 0]);
  // a blob on the patient's left (RAS: low x), anterior (high y), slice 2
  for (let j = 24; j <= 27; j++) for (let i = 4; i <= 7; i++) map.data[at(map, i, j, 2)] = 1;
  const s = summarizeMap(boxedVolume(map), 0.5);
  const png = PNG.sync.read(renderOverview(ct, [{ title: 'a1 liver mass', caption: 'a 4 cm mass in the right lobe', map: boxedVolume(map), summary: s }]));
  const px = (x: number, y: number): number[] => { const o = (y * png.width + x) * 4; return [png.data[o]!, png.data[o + 1]!, png.data[o + 2]!]; };
  const scale = 256 / 32;
  // radiological display: the patient's right (high x) on the image's left, anterior (high y) at the top
  const col = (i: number): number => 4 + Math.floor((31 - i + 0.5) * scale);
  const row = (j: number): number => 4 + Math.floor((31 - j + 0.5) * scale);
  const inside = px(col(5.5), row(25.5));
  assert.ok(inside[0]! > inside[1]! + 60, `overlay pixel should be red, got ${inside}`);
  const outside = px(col(20), row(10));
  assert.ok(Math.abs(outside[0]! - outside[1]!) < 3, `background should be grey, got ${outside}`);
  let yellow = 0;
  for (let y = 0; y < png.height; y++) for (let x = 0; x < png.width; x++) { const p = px(x, y); if (p[0]! > 240 && p[1]! > 200 && p[2]! < 40) yellow++; }
  assert.ok(yellow > 4 * 4 * scale, `expected a yellow box outline and title, found ${yellow} yellow pixels`);
  assert.deepEqual(wrapText('one two three four', 9), ['one two', 'three', 'four']);
});

test('renderOverview: negated findings are listed as text under the tiles, with no tile of their own', () => {
  const ct = grid([32, 32, 4], [1, 1, 1], [0, 0, 0]);
  ct.data.fill(40);
  const map = grid([32, 32, 4], [1, 1, 1], [0, 0, 0]);
  for (let j = 24; j <= 27; j++) for (let i = 4; i <= 7; i++) map.data[at(map, i, j, 2)] = 1;
  const item = { title: 'a1 liver mass', caption: 'a 4 cm mass', map: boxedVolume(map), summary: summarizeMap(boxedVolume(map), 0.5) };
  const plain = PNG.sync.read(renderOverview(ct, [item]));
  const listed = PNG.sync.read(renderOverview(ct, [item], { negated: ['a2 aorta aneurysm: absent', 'a3 pleura effusion: absent'] }));
  assert.equal(listed.width, plain.width, 'no extra tile');
  assert.ok(listed.height >= plain.height + 3 * 14, `a header and two lines below the tiles (${plain.height} → ${listed.height})`);
  // the tiles are drawn the same; the added band holds light text on the dark background
  assert.ok(plain.data.equals(listed.data.subarray(0, plain.data.length)));
  let text = 0;
  for (let o = plain.data.length; o < listed.data.length; o += 4) if (listed.data[o + 2]! > 150) text++;
  assert.ok(text > 100, `text pixels under the tiles: ${text}`);
});
