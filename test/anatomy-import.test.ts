import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../src/common/index.ts';
import { indexToWorld, readVolume, resample, worldToIndex, writeNifti, type Volume } from '../src/volume/index.ts';
import { organMapFor, organValue, totalSegmentatorLut } from '../src/anatomy/index.ts';
import { TS } from './helpers/shared.ts';

const BIN = join(projectRoot, 'bin', 'ctground.js');
const ctground = (...args: string[]): ReturnType<typeof spawnSync> => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
let tmp: string;
before(() => { tmp = mkdtempSync(join(tmpdir(), 'ctg-anat-')); });
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The structure names of TotalSegmentator v2's numbering, read from the shared data (not from our tables). */
const v2Names = (): Record<string, string> => (JSON.parse(readFileSync(TS('total_v2_labels.json'), 'utf8')) as { labels: Record<string, string> }).labels;

/** TotalSegmentator's output folder made from its multi-label file: one 0/1 mask per structure present. */
async function maskFolder(seg: Volume, dir: string, only?: Set<string>): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const names = v2Names();
  const present = new Set<number>();
  for (const v of seg.data) if (v) present.add(v);
  const written: string[] = [];
  for (const v of present) {
    const name = names[String(v)]!;
    if (only && !only.has(name)) continue;
    const data = new Uint8Array(seg.data.length);
    for (let p = 0; p < data.length; p++) data[p] = seg.data[p] === v ? 1 : 0;
    await writeNifti(join(dir, `${name}.nii.gz`), { ...seg, data });
    written.push(name);
  }
  return written;
}

test('folder of per-structure masks equals the multi-label file, structure by structure', async () => {
  const ct = await readVolume(TS('example_ct_sm.nii.gz'));
  const seg = await readVolume(TS('example_seg.nii.gz'));
  const dir = join(tmp, 'segmentations');
  const names = await maskFolder(seg, dir);
  // files TotalSegmentator's other tasks or the user leave there are not structures we know: ignored
  writeFileSync(join(dir, 'notes.txt'), 'not a mask');
  await writeNifti(join(dir, 'lung_vessels.nii.gz'), { ...seg, data: new Uint8Array(seg.data.length).fill(1) });
  const fromFile = await organMapFor(ct, { labels: TS('example_seg.nii.gz'), scheme: 'totalsegmentator' });
  const fromDir = await organMapFor(ct, { labels: dir });
  assert.equal(fromDir.source, 'totalsegmentator');
  assert.deepEqual(fromDir.given, fromFile.given);
  let differ = 0;
  for (let p = 0; p < ct.data.length; p++) if (fromDir.labels.data[p] !== fromFile.labels.data[p]) differ++;
  assert.equal(differ, 0);
  // each structure's own voxels carry the organ its name maps to (independently: the mask file itself)
  const lut = totalSegmentatorLut('v2');
  const valueOf = new Map(Object.entries(v2Names()).map(([k, n]) => [n, Number(k)]));
  for (const name of names) {
    const mask = await readVolume(join(dir, `${name}.nii.gz`));
    const want = lut[valueOf.get(name)!]!;
    let n = 0, ok = 0;
    for (let p = 0; p < mask.data.length; p++) if (mask.data[p]) { n++; if (fromDir.labels.data[p] === want) ok++; }
    assert.equal(ok, n, `${name}: ${ok}/${n} voxels`);
  }
});

test('a subset of masks: only those organs are given, the rest is estimated and said so', async () => {
  const ct = await readVolume(TS('example_ct_sm.nii.gz'));
  const seg = await readVolume(TS('example_seg.nii.gz'));
  const dir = join(tmp, 'subset');
  await maskFolder(seg, dir, new Set(['liver', 'spleen']));
  const m = await organMapFor(ct, { labels: dir });
  assert.deepEqual(m.given, ['liver', 'spleen']);
  // lungs are not in the folder: estimated from the CT, where TotalSegmentator has them
  assert.ok(m.estimated.some((o) => o.startsWith('lung_')), m.estimated.join(','));
  const { organOriginOf } = await import('../src/anatomy/index.ts');
  assert.equal(organOriginOf('liver', m), 'given');
  assert.equal(organOriginOf('lung', m), 'estimated');
  assert.equal(organOriginOf('kidney', m), 'estimated');
  const lungTs = new Set([10, 11, 12, 13, 14]);
  let inTs = 0, hit = 0;
  for (let p = 0; p < seg.data.length; p++) if (lungTs.has(seg.data[p]!)) { inTs++; if (m.labels.data[p]! >= organValue('lung_upper_lobe_right') && m.labels.data[p]! <= organValue('lung_lower_lobe_left')) hit++; }
  assert.ok(hit / inTs > 0.8, `estimated lung covers ${hit}/${inTs} of TotalSegmentator's lung voxels`);
});

test('v1 numbering is recognised from the CT and gives the same organs as v2', async () => {
  const ct = await readVolume(TS('example_ct_sm.nii.gz'));
  const seg = await readVolume(TS('example_seg.nii.gz'));
  // v1's table, written here from TotalSegmentator 1.x's class list for the structures this map holds
  const v1: Record<string, number> = {
    spleen: 1, kidney_right: 2, kidney_left: 3, gallbladder: 4, liver: 5, stomach: 6, aorta: 7, inferior_vena_cava: 8, portal_vein_and_splenic_vein: 9,
    pancreas: 10, adrenal_gland_right: 11, adrenal_gland_left: 12, lung_upper_lobe_left: 13, lung_lower_lobe_left: 14, lung_upper_lobe_right: 15,
    lung_middle_lobe_right: 16, lung_lower_lobe_right: 17, vertebrae_L2: 21, vertebrae_L1: 22, vertebrae_T12: 23, vertebrae_T11: 24, small_bowel: 55, duodenum: 56, colon: 57,
    autochthon_left: 100, autochthon_right: 101, iliopsoas_left: 102, iliopsoas_right: 103,
  };
  for (let i = 1; i <= 12; i++) { v1[`rib_left_${i}`] = 57 + i; v1[`rib_right_${i}`] = 69 + i; }
  const names = v2Names();
  // v2 structures v1 did not have (spinal cord, costal cartilages), and those v2 numbers above v1's
  // 104 (the right ribs), are dropped from both maps
  const toV1 = new Uint8Array(256), keepV2 = new Uint8Array(256);
  for (const [k, n] of Object.entries(names)) if (v1[n] && Number(k) <= 104) { toV1[Number(k)] = v1[n]!; keepV2[Number(k)] = Number(k); }
  const a = { ...seg, data: seg.data.map((v) => toV1[v]!) as Uint8Array };
  const b = { ...seg, data: seg.data.map((v) => keepV2[v]!) as Uint8Array };
  let max = 0;
  for (const v of b.data) max = Math.max(max, v);
  assert.ok(max <= 104, 'the v2 map must not give itself away by a value above 104');
  await writeNifti(join(tmp, 'v1.nii.gz'), a);
  await writeNifti(join(tmp, 'v2.nii.gz'), b);
  const m1 = await organMapFor(ct, { labels: join(tmp, 'v1.nii.gz'), scheme: 'totalsegmentator' });
  const m2 = await organMapFor(ct, { labels: join(tmp, 'v2.nii.gz'), scheme: 'totalsegmentator' });
  assert.match(m1.notes[0]!, /v1/);
  assert.match(m2.notes[0]!, /v2/);
  assert.deepEqual(m1.given, m2.given);
  let differ = 0;
  for (let p = 0; p < ct.data.length; p++) if (m1.labels.data[p] !== m2.labels.data[p]) differ++;
  assert.equal(differ, 0);
  // read as v2, the v1 file would put pancreas (v1 10) where v2's upper left lobe is: the choice matters
  const wrong = await organMapFor(ct, { labels: join(tmp, 'v1.nii.gz'), scheme: 'totalsegmentator', version: 'v2' });
  assert.notDeepEqual(wrong.given, m1.given);
});

test('a --fast-style 3 mm map lands on the right world points of the 0.98 mm DICOM CT', async () => {
  const ct = await readVolume(TS('example_ct_dicom'));
  const full = await readVolume(TS('example_seg_dicom.nii.gz'));
  const fast = resample(full, 3, 'nearest');
  await writeNifti(join(tmp, 'fast.nii.gz'), fast);
  const m = await organMapFor(ct, { labels: join(tmp, 'fast.nii.gz'), scheme: 'totalsegmentator' });
  assert.ok(m.notes.some((n) => /resampled/.test(n)), m.notes.join('; '));
  // independently: the 3 mm map's value at each CT voxel's world point, by its own inverse affine
  const lut = totalSegmentatorLut('v2');
  const [nx, ny, nz] = ct.size;
  let checked = 0, agree = 0;
  for (let k = 0; k < nz; k += 3) for (let j = 0; j < ny; j += 17) for (let i = 0; i < nx; i += 13) {
    const idx = worldToIndex(fast, indexToWorld(ct, [i, j, k])).map(Math.round);
    if (idx.some((v, a) => v < 0 || v >= fast.size[a]!)) continue;
    const v = lut[fast.data[idx[0]! + fast.size[0] * (idx[1]! + fast.size[1] * idx[2]!)]!]!;
    if (!v) continue;
    checked++;
    if (m.labels.data[i + nx * (j + ny * k)] === v) agree++;
  }
  assert.ok(checked > 500, `checked ${checked}`);
  // ties at exact half-voxel positions may round the other way; nothing else may differ
  assert.ok(agree / checked > 0.98, `${agree}/${checked}`);
  // and against the full-resolution map: the liver is where TotalSegmentator put it, up to 3 mm steps
  const exact = await organMapFor(ct, { labels: TS('example_seg_dicom.nii.gz'), scheme: 'totalsegmentator' });
  const liver = organValue('liver');
  let inter = 0, sa = 0, sb = 0;
  for (let p = 0; p < ct.data.length; p++) {
    const x = m.labels.data[p] === liver, y = exact.labels.data[p] === liver;
    if (x) sa++; if (y) sb++; if (x && y) inter++;
  }
  const dice = (2 * inter) / (sa + sb);
  assert.ok(dice > 0.93, `liver Dice of the 3 mm map against the full one ${dice.toFixed(3)}`);
});

test('bad maps: another scan, a folder with no known structure, an unreadable mask — one line, exit 2, nothing written', async () => {
  const out = join(tmp, 'bad.nii.gz');
  const empty = join(tmp, 'nostructures');
  mkdirSync(empty);
  await writeNifti(join(empty, 'lung_vessels.nii.gz'), await readVolume(TS('example_seg.nii.gz')));
  const broken = join(tmp, 'broken');
  mkdirSync(broken);
  await maskFolder(await readVolume(TS('example_seg.nii.gz')), broken, new Set(['spleen']));
  writeFileSync(join(broken, 'liver.nii.gz'), Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3]));
  const cases: [string, string, RegExp][] = [
    [TS('example_ct_dicom'), TS('example_seg.nii.gz'), /example_seg\.nii\.gz: label map's world box .* misses the CT's/],
    [TS('example_ct_sm.nii.gz'), empty, /nostructures: no structure ctground has an organ for/],
    [TS('example_ct_sm.nii.gz'), broken, /broken\/liver\.nii\.gz: /],
  ];
  for (const [ct, labels, want] of cases) {
    const r = ctground('anatomy', '--ct', ct, '--labels', labels, '--out', out);
    assert.equal(r.status, 2, String(r.stderr));
    const lines = String(r.stderr).trim().split('\n');
    assert.equal(lines.length, 1, String(r.stderr));
    assert.match(lines[0]!, /^ctground: /);
    assert.match(lines[0]!, want);
    assert.ok(!existsSync(out));
  }
});

test('ctground anatomy writes the map ground uses, with volumes and where each organ came from', async () => {
  const out = join(tmp, 'organs.nii.gz');
  const r = ctground('anatomy', '--ct', TS('example_ct_sm.nii.gz'), '--labels', TS('example_seg.nii.gz'), '--out', out, '--json');
  assert.equal(r.status, 0, String(r.stderr));
  const j = JSON.parse(String(r.stdout)) as { organs: { organ: string; ml: number; origin: string }[]; source: string };
  assert.equal(j.source, 'totalsegmentator');
  const written = await readVolume(out);
  const liver = j.organs.find((o) => o.organ === 'liver')!;
  assert.equal(liver.origin, 'given');
  // the volume printed is the written map's, counted here
  let n = 0;
  for (const v of written.data) if (v === organValue('liver')) n++;
  assert.ok(Math.abs(liver.ml - (n * 27) / 1000) < 0.06, `${liver.ml} ml vs ${(n * 27) / 1000}`);
  // the same map ground grounds in
  const { groundStudy, loadGrounder } = await import('../src/pipeline/index.ts');
  const g = await groundStudy({ ct: TS('example_ct_sm.nii.gz'), totalSegmentator: TS('example_seg.nii.gz'), report: 'Liver: a 2 cm cyst in the liver. Lungs: a nodule in the right lower lobe.' }, await loadGrounder('oracle:organ'));
  let differ = 0;
  for (let p = 0; p < written.data.length; p++) if (written.data[p] !== g.anatomy.data[p]) differ++;
  assert.equal(differ, 0);
  assert.ok(g.findings.every((f) => f.organSource === 'given'), g.findings.map((f) => `${f.organ}:${f.organSource}`).join(' '));
});
