// Reading the real CT and resampling it to 1 mm: ctground's volume/ against a plain-JS baseline
// (nifti-reader-js + a naive per-voxel trilinear loop), measured in the same run.
import { readFileSync } from 'node:fs';
import * as nifti from 'nifti-reader-js';
import { readVolume, resample, resampleToGrid, spacingGrid, indexToWorld, worldToIndex, type Geometry, type Volume } from '../src/volume/index.ts';
import { TS } from '../test/helpers/shared.ts';
import { bestOf } from './timing.ts';

/** Baseline reader: nifti-reader-js decompresses and parses; the affine comes from its header. */
function readBaseline(path: string): Volume {
  const b = readFileSync(path);
  let ab: ArrayBuffer = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  if (nifti.isCompressed(ab)) ab = nifti.decompress(ab) as ArrayBuffer;
  const h = nifti.readHeader(ab);
  const img = nifti.readImage(h, ab);
  if (h.datatypeCode !== 8) throw new Error('baseline handles int32 only');
  const a = h.affine;
  const sp = [0, 1, 2].map((c) => Math.hypot(a[0]![c]!, a[1]![c]!, a[2]![c]!));
  return {
    data: new Int32Array(img.slice(0)),
    size: [h.dims[1]!, h.dims[2]!, h.dims[3]!],
    spacing: sp as [number, number, number],
    origin: [a[0]![3]!, a[1]![3]!, a[2]![3]!],
    direction: [0, 1, 2].flatMap((r) => [0, 1, 2].map((c) => a[r]![c]! / sp[c]!)),
  };
}

/** Baseline resampler: world → index per output voxel, then an 8-neighbour blend. */
function naiveTrilinear(vol: Volume, g: Geometry): Float32Array {
  const out = new Float32Array(g.size[0] * g.size[1] * g.size[2]);
  const [nx, ny, nz] = vol.size;
  const at = (i: number, j: number, k: number) => vol.data[i + nx * (j + ny * k)]!;
  let o = 0;
  for (let k = 0; k < g.size[2]; k++) for (let j = 0; j < g.size[1]; j++) for (let i = 0; i < g.size[0]; i++, o++) {
    const q = worldToIndex(vol, indexToWorld(g, [i, j, k]));
    const x = Math.min(Math.max(q[0], 0), nx - 1), y = Math.min(Math.max(q[1], 0), ny - 1), z = Math.min(Math.max(q[2], 0), nz - 1);
    const x0 = Math.min(Math.floor(x), nx - 2), y0 = Math.min(Math.floor(y), ny - 2), z0 = Math.min(Math.floor(z), nz - 2);
    const tx = x - x0, ty = y - y0, tz = z - z0;
    let v = 0;
    for (let c = 0; c < 8; c++) {
      const w = (c & 1 ? tx : 1 - tx) * (c & 2 ? ty : 1 - ty) * (c & 4 ? tz : 1 - tz);
      if (w !== 0) v += w * at(x0 + (c & 1), y0 + ((c >> 1) & 1), z0 + ((c >> 2) & 1));
    }
    out[o] = v;
  }
  return out;
}

export async function run({ json }: { json: boolean }): Promise<Record<string, unknown>> {
  const path = TS('example_ct.nii.gz');
  // Warm both paths (WASM compile, JIT) before timing.
  const ours = await readVolume(path);
  const base = readBaseline(path);
  const readOurs = await bestOf(() => readVolume(path), 7);
  const readBase = await bestOf(() => readBaseline(path), 7);
  await readVolume(path, { niftiReader: 'itk-wasm' });
  const readItk = await bestOf(() => readVolume(path, { niftiReader: 'itk-wasm' }), 5);
  const target = spacingGrid(ours, 1);
  let outOurs = resample(ours, 1, 'linear');
  const resOurs = await bestOf(() => { outOurs = resample(ours, 1, 'linear'); }, 2);
  let outBase = naiveTrilinear(base, target);
  const resBase = await bestOf(() => { outBase = naiveTrilinear(base, target); }, 2);
  let maxDiff = 0;
  for (let i = 0; i < outOurs.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(outOurs.data[i]! - outBase[i]!));
  // Label maps go onto a CT grid with nearest neighbour on every study's path too.
  const seg = await readVolume(TS('example_seg_dicom.nii.gz'));
  const dicomGrid: Geometry = { ...seg, direction: [-1, 0, 0, 0, -1, 0, 0, 0, 1], origin: [seg.origin[0], seg.origin[1] + (seg.size[1] - 1) * seg.spacing[1], seg.origin[2]] };
  const nnOurs = await bestOf(() => resampleToGrid(seg, dicomGrid, 'nearest'), 3);
  const r = {
    data: 'example_ct.nii.gz (122×101×112, 3 mm, int32) → 1 mm: ' + target.size.join('×'),
    readOursMs: Math.round(readOurs), readBaselineMs: Math.round(readBase), readRatio: +(readBase / readOurs).toFixed(2),
    readItkWasmMs: Math.round(readItk), readItkWasmRatio: +(readItk / readOurs).toFixed(2),
    resampleOursMs: Math.round(resOurs), resampleBaselineMs: Math.round(resBase), resampleRatio: +(resBase / resOurs).toFixed(2),
    resampleMaxAbsDiffHU: +maxDiff.toFixed(4),
    labelOntoDicomGridMs: Math.round(nnOurs),
    outputVoxels: outOurs.data.length,
  };
  if (!json) {
    console.log(`data: ${r.data}`);
    console.log(`read CT     ours ${r.readOursMs} ms (checked header + built-in decoder)  nifti-reader-js ${r.readBaselineMs} ms  → baseline/ours ${r.readRatio}×`);
    console.log(`            via itk-wasm ${r.readItkWasmMs} ms  → itk-wasm/ours ${r.readItkWasmRatio}×`);
    console.log(`resample    ours ${r.resampleOursMs} ms (separable tables)  naive per-voxel trilinear ${r.resampleBaselineMs} ms  → baseline/ours ${r.resampleRatio}×  (max |diff| ${r.resampleMaxAbsDiffHU} HU)`);
    console.log(`labels      example_seg_dicom (512×512×20, LAS) onto the DICOM's LPS grid, nearest: ${r.labelOntoDicomGridMs} ms`);
  }
  return r;
}
