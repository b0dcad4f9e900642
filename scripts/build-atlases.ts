// Builds the anatomy atlases shipped in data/anatomy/atlases/ from the real CTs and TotalSegmentator
// maps in ../shared/data/totalsegmentator (Apache-2.0). Run: node --import tsx scripts/build-atlases.ts
// Each atlas is a CT (int16 HU) and its organ map in our scheme (uint8), both at ATLAS_MM, plus an
// entry in atlases.json naming its patient, so leave-one-patient-out evaluation can exclude it.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../src/common/index.ts';
import { readVolume, resample, resampleToGrid, writeNifti, type Volume } from '../src/volume/index.ts';
import { organValue, totalSegmentatorLut } from '../src/anatomy/index.ts';

const ATLAS_MM = 4;
const TS = (...p: string[]): string => join(projectRoot, '..', 'shared', 'data', 'totalsegmentator', ...p);
const OUT = join(projectRoot, 'data', 'anatomy', 'atlases');
mkdirSync(OUT, { recursive: true });
const lut = totalSegmentatorLut('v2');

const int16 = (v: Volume): Volume<Int16Array> => ({ ...v, data: Int16Array.from(v.data, (x) => Math.max(-1024, Math.min(3071, Math.round(x)))) });

async function save(id: string, ct: Volume, labels: Volume<Uint8Array>): Promise<{ size: number[]; organs: string[] }> {
  const g = resample(ct, ATLAS_MM, 'linear');
  const l = resampleToGrid(labels, g, 'nearest', { fill: 0 });
  await writeNifti(join(OUT, `${id}.ct.nii.gz`), int16(g));
  await writeNifti(join(OUT, `${id}.labels.nii.gz`), l);
  const seen = new Set<number>();
  for (const v of l.data) if (v) seen.add(v);
  const names = JSON.parse(readFileSync(join(projectRoot, 'data', 'anatomy', 'organs.json'), 'utf8')).organs as { value: number; name: string }[];
  return { size: [...g.size], organs: names.filter((o) => seen.has(o.value)).map((o) => o.name) };
}

// Patient A: example_ct (abdomen-pelvis, 112 slices). Its whole-volume reference masks give liver,
// spleen, kidneys and pancreas everywhere; the 30-slice slab's 117-label map (example_seg) gives the
// rest for the slab's slices. The slab is example_ct's slices 82–111 (checked voxel for voxel: equal
// HU), though its header puts it at slice 0, so its labels are placed by index, not by world.
const ct = await readVolume(TS('example_ct.nii.gz'));
const seg = await readVolume(TS('example_seg.nii.gz'));
const SLAB_K0 = 82;
const [nx, ny] = ct.size;
const lab = new Uint8Array(ct.data.length);
for (let p = 0; p < seg.data.length; p++) lab[p + SLAB_K0 * nx * ny] = lut[seg.data[p]!]!;
for (const o of ['liver', 'spleen', 'kidney_left', 'kidney_right', 'pancreas']) {
  const m = await readVolume(TS('example_ct_ref', `${o}.nii.gz`));
  const v = organValue(o);
  // the reference mask decides its own organ everywhere: its voxels are the organ, others are not
  for (let p = 0; p < lab.length; p++) { if (m.data[p]) lab[p] = v; else if (lab[p] === v) lab[p] = 0; }
}
const a = await save('ts-example', ct, { ...ct, data: lab });

// Patient B: the 20-slice DICOM series (upper abdomen, 0.98 mm) with its 117-label map.
const dct = await readVolume(TS('example_ct_dicom'));
const dseg = resampleToGrid(await readVolume(TS('example_seg_dicom.nii.gz')), dct, 'nearest');
const b = await save('ts-dicom', dct, { ...dct, data: Uint8Array.from(dseg.data, (v) => lut[v]!) });

writeFileSync(join(OUT, 'atlases.json'), JSON.stringify({
  description: `Anatomy atlases: real CTs with TotalSegmentator's organ maps (Apache-2.0, from the TotalSegmentator test files in ../shared/data/totalsegmentator), resampled to ${ATLAS_MM} mm; built by scripts/build-atlases.ts. 'patient' groups atlases of one person (leave-one-patient-out).`,
  atlases: [
    { id: 'ts-example', patient: 'A', source: 'example_ct.nii.gz + example_ct_ref/ + example_seg.nii.gz (slab = slices 82-111)', region: 'abdomen-pelvis', size: a.size, organs: a.organs },
    { id: 'ts-dicom', patient: 'B', source: 'example_ct_dicom/ + example_seg_dicom.nii.gz', region: 'upper abdomen (40 mm)', size: b.size, organs: b.organs },
  ],
}, null, 1) + '\n');
console.log('ts-example', a, '\nts-dicom', b);
