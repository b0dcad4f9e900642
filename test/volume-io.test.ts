import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import * as nifti from 'nifti-reader-js';
import { TS } from './helpers/shared.ts';
import {
  readVolume, writeNifti, writeVolume, worldBounds, orientationCode, indexToWorld, worldToIndex, resampleToGrid, voxelAt,
  maskBoundingBox, boxedVolume, boxedMask, denseVolume, quantizedProbabilities, PROBABILITY_SLOPE, type Volume,
} from '../src/volume/index.ts';

const tmp = mkdtempSync(join(tmpdir(), 'ctground-volio-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

// The DICOM series takes seconds to decode; read it once for every test that needs it.
let dicomP: Promise<Volume> | undefined;
const dicom = () => (dicomP ??= readVolume(TS('example_ct_dicom')));

const labelNames = (): Record<string, string> => JSON.parse(readFileSync(TS('total_v2_labels.json'), 'utf8')).labels;

test('example_ct.nii.gz reads as 122×101×112 at 3 mm, RAS, int32 HU', async () => {
  const v = await readVolume(TS('example_ct.nii.gz'));
  assert.deepEqual(v.size, [122, 101, 112]);
  assert.deepEqual(v.spacing, [3, 3, 3]);
  assert.equal(orientationCode(v), 'RAS');
  assert.ok(v.data instanceof Int32Array);
  // Air is present and nothing is below it: HU, not raw stored values.
  let lo = Infinity; for (const x of v.data) lo = Math.min(lo, x);
  assert.ok(lo >= -1300 && lo <= -900, `min HU ${lo}`);
  // The header's sform (nibabel: srow = [[3,0,0,-177.956],[0,3,0,11.319],[0,0,3,94.302]]) is the RAS affine.
  const buf = gunzipSync(readFileSync(TS('example_ct.nii.gz')));
  const h = nifti.readHeader(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer)!;
  for (let r = 0; r < 3; r++) {
    const w = indexToWorld(v, [7, 11, 13]);
    const expect = h.affine[r]![0]! * 7 + h.affine[r]![1]! * 11 + h.affine[r]![2]! * 13 + h.affine[r]![3]!;
    assert.ok(Math.abs(w[r]! - expect) < 1e-3, `axis ${r}: ${w[r]} vs header ${expect}`);
  }
});

test('DICOM folder reads as 512×512×20 at 0.977×0.977×2 mm and agrees with its label map in world space', async () => {
  const ct = await dicom();
  assert.deepEqual(ct.size, [512, 512, 20]);
  assert.ok(Math.abs(ct.spacing[0] - 0.9765625) < 1e-6 && Math.abs(ct.spacing[1] - 0.9765625) < 1e-6 && Math.abs(ct.spacing[2] - 2) < 1e-6);
  assert.equal(orientationCode(ct), 'LPS');
  const seg = await readVolume(TS('example_seg_dicom.nii.gz'));
  // The label map stores the rows in the opposite order (LAS): same box, different index order.
  assert.equal(orientationCode(seg), 'LAS');
  const a = worldBounds(ct), b = worldBounds(seg);
  for (let c = 0; c < 2; c++) for (let ax = 0; ax < 3; ax++) assert.ok(Math.abs(a[c]![ax]! - b[c]![ax]!) < 0.5, `bounds ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);

  // A label voxel picked in the label map lands on a voxel centre of the CT at the same world point.
  const liver = maskBoundingBox(seg, 5)!;
  const pick = [Math.round((liver.min[0] + liver.max[0]) / 2), Math.round((liver.min[1] + liver.max[1]) / 2), liver.min[2] + 3];
  const w = indexToWorld(seg, pick);
  const idx = worldToIndex(ct, w);
  for (const x of idx) assert.ok(Math.abs(x - Math.round(x)) < 1e-3, `index ${idx} is not a voxel centre`);
  assert.ok(idx[1] !== pick[1], 'the y flip must show in the index');
  const back = indexToWorld(ct, idx.map(Math.round));
  for (let ax = 0; ax < 3; ax++) assert.ok(Math.abs(back[ax]! - w[ax]!) < 1e-3);

  // And the labels fall on the right tissue: bone labels on bone HU, liver on soft tissue. Ignoring
  // the geometry (same index in both) puts them on the wrong tissue, so this check has teeth.
  const onCt = resampleToGrid(seg, ct, 'nearest');
  const names = labelNames();
  const bone = new Set(Object.entries(names).filter(([, n]) => /^vertebrae_|^rib_|^hip_|^sacrum$/.test(n)).map(([k]) => Number(k)));
  let boneHit = 0, boneN = 0, rawHit = 0, rawN = 0, liverSum = 0, liverN = 0;
  for (let i = 0; i < onCt.data.length; i++) {
    const l = onCt.data[i]!;
    if (bone.has(l)) { boneN++; if (ct.data[i]! > 150) boneHit++; }
    if (l === 5) { liverN++; liverSum += ct.data[i]!; }
    if (bone.has(seg.data[i]!)) { rawN++; if (ct.data[i]! > 150) rawHit++; }
  }
  assert.ok(boneN > 1000 && liverN > 1000);
  assert.ok(boneHit / boneN > 0.6, `bone labels on bone: ${(boneHit / boneN).toFixed(2)}`);
  assert.ok(rawHit / rawN < 0.5 * (boneHit / boneN), 'index-only mapping should land elsewhere');
  const liverHu = liverSum / liverN;
  assert.ok(liverHu > 40 && liverHu < 150, `liver mean HU ${liverHu}`);
});

test('example_seg resampled onto example_ct_sm keeps its label values', async () => {
  const ct = await readVolume(TS('example_ct_sm.nii.gz'));
  const seg = await readVolume(TS('example_seg.nii.gz'));
  const on = resampleToGrid(seg, ct, 'nearest');
  assert.ok(on.data instanceof Uint8Array);
  assert.deepEqual(on.size, ct.size);
  const inSet = new Set(seg.data), outSet = new Set(on.data);
  assert.deepEqual([...outSet].sort((x, y) => x - y), [...inSet].sort((x, y) => x - y));
  assert.ok(inSet.size > 10);
  assert.deepEqual(on.data, seg.data);
  // Also onto a 2 mm grid with flipped y: every output label exists in the input and none is invented.
  const g2 = { size: [150, 120, 40] as [number, number, number], spacing: [2, 2, 2] as [number, number, number], origin: [-170, 300, 100] as [number, number, number], direction: [1, 0, 0, 0, -1, 0, 0, 0, 1] };
  const on2 = resampleToGrid(seg, g2, 'nearest');
  for (const l of new Set(on2.data)) assert.ok(inSet.has(l), `invented label ${l}`);
  // Spot-check against the definition: output voxel = input at the nearest voxel to its world point.
  for (const p of [[10, 20, 5], [75, 60, 20], [140, 100, 30]]) {
    const src = worldToIndex(seg, indexToWorld(g2, p)).map(Math.round);
    const expect = src.every((s, a) => s >= 0 && s < seg.size[a]!) ? voxelAt(seg, src[0]!, src[1]!, src[2]!) : 0;
    assert.equal(voxelAt(on2, p[0]!, p[1]!, p[2]!), expect);
  }
});

function obliqueVolume<T extends Float32Array | Uint8Array | Uint16Array | Int16Array>(data: T): Volume<T> {
  const a = 0.3, b = -0.2;
  // Rotation about z then x, plus a flip of the third axis: a left-handed, non-trivial direction.
  const rz = [Math.cos(a), -Math.sin(a), 0, Math.sin(a), Math.cos(a), 0, 0, 0, 1];
  const rx = [1, 0, 0, 0, Math.cos(b), -Math.sin(b), 0, Math.sin(b), Math.cos(b)];
  const m = [0, 1, 2].flatMap((r) => [0, 1, 2].map((c) => rz[r * 3]! * rx[c]! + rz[r * 3 + 1]! * rx[3 + c]! + rz[r * 3 + 2]! * rx[6 + c]!));
  m[2] = -m[2]!; m[5] = -m[5]!; m[8] = -m[8]!;
  return { data, size: [5, 4, 3], spacing: [0.8, 1.25, 2.5], origin: [12.5, -40.25, 7], direction: m };
}

test('writeNifti round-trips geometry and voxels for float32, uint8, uint16, int16 (read back by itk-wasm and nifti-reader-js)', async () => {
  const makers = [Float32Array, Uint8Array, Uint16Array, Int16Array] as const;
  for (const C of makers) {
    const data = new C(60);
    for (let i = 0; i < 60; i++) data[i] = C === Float32Array ? i * 0.5 - 7.25 : C === Int16Array ? i * 37 - 1000 : (i * 7) % (C === Uint8Array ? 256 : 65536);
    const v = obliqueVolume(data);
    const path = join(tmp, `rt-${C.name}.nii.gz`);
    await writeNifti(path, v);
    for (const reader of ['auto', 'itk-wasm'] as const) {
      const back = await readVolume(path, { niftiReader: reader });
      assert.equal(back.data.constructor, C);
      assert.deepEqual(Array.from(back.data), Array.from(data));
      assert.deepEqual(back.size, v.size);
      for (const p of [[0, 0, 0], [4, 3, 2], [1.5, 2, 0.5]]) {
        const w1 = indexToWorld(v, p), w2 = indexToWorld(back, p);
        for (let a = 0; a < 3; a++) assert.ok(Math.abs(w1[a]! - w2[a]!) < 1e-4, `${reader} ${C.name} ${p}: ${w1} vs ${w2}`);
      }
    }
    // Another reader, another code path: the sform affine nifti-reader-js reports must be ours.
    const raw = gunzipSync(readFileSync(path));
    const ab = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength) as ArrayBuffer;
    assert.ok(nifti.isNIFTI1(ab));
    const h = nifti.readHeader(ab)!;
    assert.deepEqual(h.dims.slice(0, 4), [3, 5, 4, 3]);
    const w = indexToWorld(v, [4, 3, 2]);
    for (let r = 0; r < 3; r++) {
      const e = h.affine[r]![0]! * 4 + h.affine[r]![1]! * 3 + h.affine[r]![2]! * 2 + h.affine[r]![3]!;
      assert.ok(Math.abs(e - w[r]!) < 1e-4);
    }
    assert.equal(h.qform_code, 1);
    assert.equal(h.sform_code, 1);
  }
});

test('a real CT survives write → read with identical voxels and bounds', async () => {
  const v = await readVolume(TS('example_ct_sm.nii.gz'));
  const path = join(tmp, 'ct_sm_copy.nii.gz');
  await writeNifti(path, v);
  const back = await readVolume(path);
  assert.deepEqual(back.data, v.data);
  assert.equal(orientationCode(back), orientationCode(v));
  const a = worldBounds(v), b = worldBounds(back);
  for (let c = 0; c < 2; c++) for (let ax = 0; ax < 3; ax++) assert.ok(Math.abs(a[c]![ax]! - b[c]![ax]!) < 1e-3);
});

test('the built-in NIfTI decoder agrees with itk-wasm on every real file (voxels and geometry)', async () => {
  for (const f of ['example_ct_sm.nii.gz', 'example_seg.nii.gz', 'example_seg_dicom.nii.gz']) {
    const a = await readVolume(TS(f)), b = await readVolume(TS(f), { niftiReader: 'itk-wasm' });
    assert.equal(a.data.constructor, b.data.constructor, f);
    assert.deepEqual(a.data, b.data, f);
    assert.deepEqual(a.size, b.size);
    const ga = [...a.spacing, ...a.origin, ...a.direction], gb = [...b.spacing, ...b.origin, ...b.direction];
    ga.forEach((x, i) => assert.ok(Math.abs(x - gb[i]!) < 1e-5, `${f}: geometry ${ga} vs ${gb}`));
  }
});

test('qform-only files and scl_slope/scl_inter are decoded as the NIfTI standard says', async () => {
  const v = obliqueVolume(Int16Array.from({ length: 60 }, (_, i) => i * 11 - 300));
  const path = join(tmp, 'q.nii');
  await writeNifti(path, v);
  const raw = readFileSync(path);
  // sform_code 0 and a garbage sform: only the quaternion may be used.
  raw.writeInt16LE(0, 254);
  for (let o = 280; o < 328; o += 4) raw.writeFloatLE(123, o);
  const qOnly = join(tmp, 'qonly.nii');
  writeFileSync(qOnly, raw);
  for (const reader of ['auto', 'itk-wasm'] as const) {
    const back = await readVolume(qOnly, { niftiReader: reader });
    for (const p of [[0, 0, 0], [4, 3, 2]]) {
      const w1 = indexToWorld(v, p), w2 = indexToWorld(back, p);
      for (let a = 0; a < 3; a++) assert.ok(Math.abs(w1[a]! - w2[a]!) < 1e-4, `${reader} ${p}: ${w1} vs ${w2}`);
    }
  }
  // Stored values s mean s·slope + inter.
  raw.writeInt16LE(1, 254);
  raw.writeFloatLE(0.5, 112);
  raw.writeFloatLE(-1024, 116);
  const scaled = join(tmp, 'scaled.nii');
  writeFileSync(scaled, raw);
  const s = await readVolume(scaled);
  assert.ok(s.data instanceof Float32Array);
  s.data.forEach((x, i) => assert.equal(x, v.data[i]! * 0.5 - 1024));
});

test('NRRD and MetaImage: written in LPS as their headers say, read back to the same RAS geometry', async () => {
  const v = obliqueVolume(Uint16Array.from({ length: 60 }, (_, i) => i * 1000));
  const nrrd = join(tmp, 'obl.nrrd'), mha = join(tmp, 'obl.mha');
  await writeVolume(nrrd, v);
  await writeVolume(mha, v);
  // Check the NRRD header text itself: LPS origin and space directions (columns of direction·spacing).
  const head = readFileSync(nrrd).toString('latin1').split('\n\n')[0]!;
  assert.match(head, /space: left-posterior-superior/);
  const nums = (s: string) => (s.match(/-?[\d.]+(e-?\d+)?/gi) ?? []).map(Number);
  const origin = nums(/space origin: (.*)/.exec(head)![1]!);
  assert.ok(Math.abs(origin[0]! + v.origin[0]) < 1e-9 && Math.abs(origin[1]! + v.origin[1]) < 1e-9 && Math.abs(origin[2]! - v.origin[2]) < 1e-9);
  const dirs = nums(/space directions: (.*)/.exec(head)![1]!);
  for (let c = 0; c < 3; c++) for (let r = 0; r < 3; r++) {
    const ras = v.direction[r * 3 + c]! * v.spacing[c]!;
    assert.ok(Math.abs(dirs[c * 3 + r]! - (r < 2 ? -ras : ras)) < 1e-9, `space direction ${c},${r}`);
  }
  for (const f of [nrrd, mha]) {
    const back = await readVolume(f);
    assert.deepEqual(back.data, v.data);
    for (const p of [[0, 0, 0], [4, 3, 2]]) {
      const w1 = indexToWorld(v, p), w2 = indexToWorld(back, p);
      for (let a = 0; a < 3; a++) assert.ok(Math.abs(w1[a]! - w2[a]!) < 1e-6, `${f} ${p}: ${w1} vs ${w2}`);
    }
  }
});

test('a DICOM folder reached through a symlink, or holding symlinked files, reads the same voxels', async () => {
  const linked = join(tmp, 'linked-series'), files = join(tmp, 'linked-files');
  symlinkSync(TS('example_ct_dicom'), linked);
  mkdirSync(files);
  for (const n of readdirSync(TS('example_ct_dicom'))) symlinkSync(join(TS('example_ct_dicom'), n), join(files, n));
  const ref = await dicom();
  for (const dir of [linked, files]) {
    const v = await readVolume(dir);
    assert.deepEqual(v.size, ref.size);
    assert.deepEqual(v.origin, ref.origin);
    assert.ok(v.data.every((x, i) => x === ref.data[i]), dir);
  }
});

test('a probability map stored as uint8 with scl_slope 1/255 reads as probabilities (nifti-reader-js, itk-wasm, ours), each within 1/255', async () => {
  const size: [number, number, number] = [23, 17, 11];
  const map: Volume<Float32Array> = { data: new Float32Array(size[0] * size[1] * size[2]), size, spacing: [0.7, 0.7, 1.25], origin: [-8, 12, 30], direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] };
  // a box of values covering [0, 1], the rounding edges included, and zeros around it
  let s = 7;
  for (let k = 2; k < 9; k++) for (let j = 3; j < 14; j++) for (let i = 4; i < 19; i++) { s = (s * 16807) % 2147483647; map.data[i + size[0] * (j + size[1] * k)] = s / 2147483647; }
  const edges = [1, 0.5, 1 / 510, 0.5 / 255 + 1e-7, 254.5 / 255, 1e-9];
  edges.forEach((p, n) => { map.data[5 + n + size[0] * (4 + size[1] * 3)] = p; });
  const b = boxedVolume(map);
  const path = join(tmp, 'prob.nii.gz');
  await writeNifti(path, quantizedProbabilities(b), { sclSlope: PROBABILITY_SLOPE });

  const raw = gunzipSync(readFileSync(path));
  const ab = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength) as ArrayBuffer;
  const h = nifti.readHeader(ab)!;
  assert.equal(h.datatypeCode, 2, 'uint8');
  assert.ok(Math.abs(h.scl_slope - 1 / 255) < 1e-9 && h.scl_inter === 0);
  const stored = new Uint8Array(nifti.readImage(h, ab));
  let worst = 0;
  for (let v = 0; v < map.data.length; v++) worst = Math.max(worst, Math.abs(stored[v]! * h.scl_slope + h.scl_inter - map.data[v]!));
  assert.ok(worst <= 1 / 510 + 1e-6, `nifti-reader-js: stored × slope is the probability to ${worst} (≤ 1/510)`);
  assert.equal(stored[5 + size[0] * (4 + size[1] * 3)], 255, 'p = 1 is 255');
  for (const reader of ['auto', 'itk-wasm'] as const) {
    const back = await readVolume(path, { niftiReader: reader });
    let w = 0;
    for (let v = 0; v < map.data.length; v++) w = Math.max(w, Math.abs(back.data[v]! - map.data[v]!));
    assert.ok(w <= 1 / 255, `${reader}: probabilities to ${w}`);
  }
  // the mask from the box alone is the whole-grid mask
  assert.deepEqual(boxedMask(b, 0.5).data, Uint8Array.from(denseVolume(b).data, (p) => (p >= 0.5 ? 1 : 0)));
});
