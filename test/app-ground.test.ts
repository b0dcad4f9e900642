import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { readImageNode } from '@itk-wasm/image-io';
import { projectRoot } from '../src/common/index.ts';
import { gunzipSync } from 'node:zlib';
import * as nifti from 'nifti-reader-js';
import { boxedVolume, denseVolume, readVolume, type Vec3 } from '../src/volume/index.ts';
import { DEFAULT_MODEL_DIR, type FindingsFile } from '../src/pipeline/index.ts';
import type { GroundingModel } from '../src/model/index.ts';
import { TS } from './helpers/shared.ts';

const BIN = join(projectRoot, 'bin', 'ctground.js');
const DEMO = join(projectRoot, 'examples', 'demo');
let tmp: string;
before(() => { tmp = mkdtempSync(join(tmpdir(), 'ctg-ground-')); });
after(() => rmSync(tmp, { recursive: true, force: true }));

const ctground = (...args: string[]): ReturnType<typeof spawnSync> => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });

/** IoU of (map ≥ t) with a gold mask, computed here rather than through eval/. */
function iou(map: ArrayLike<number>, gold: ArrayLike<number>, t: number): number {
  let inter = 0, union = 0;
  for (let i = 0; i < map.length; i++) {
    const p = map[i]! >= t, g = gold[i]! > 0;
    if (p && g) inter++;
    if (p || g) union++;
  }
  return union ? inter / union : 0;
}

test('ground: writes findings, maps, labels and overview; another reader (itk-wasm) puts the maps where the CT is', async () => {
  const out = join(tmp, 'oracle');
  const r = ctground('ground', '--ct', TS('example_ct_sm.nii.gz'), '--labels', TS('example_seg.nii.gz'), '--model', 'oracle:organ-side', '--out', out,
    '--report', join(DEMO, 'report.txt'));
  assert.equal(r.status, 0, String(r.stderr));
  assert.match(String(r.stdout), /^id +organ +type +certainty/m);
  const f = JSON.parse(readFileSync(join(out, 'findings.json'), 'utf8')) as FindingsFile;
  assert.ok(f.anomalies.length >= 2);
  const liver = f.anomalies.find((a) => a.organ === 'liver')!;
  assert.ok(liver && liver.box && liver.volumeMl > 0);
  assert.ok(liver.spans.length > 0 && liver.phrase.includes('liver'));

  // itk-wasm reads both in its own LPS frame: same grid, so every voxel means the same place
  const ctItk = (await readImageNode(TS('example_ct_sm.nii.gz'))) as any;
  const mapItk = (await readImageNode(join(out, liver.map))) as any;
  assert.deepEqual([...mapItk.size], [...ctItk.size]);
  for (let a = 0; a < 3; a++) {
    assert.ok(Math.abs(mapItk.origin[a] - ctItk.origin[a]) < 1e-3, `origin ${mapItk.origin} vs ${ctItk.origin}`);
    assert.ok(Math.abs(mapItk.spacing[a] - ctItk.spacing[a]) < 1e-5);
  }
  for (let e = 0; e < 9; e++) assert.ok(Math.abs(mapItk.direction[e] - ctItk.direction[e]) < 1e-6);
  // the reported box in world mm, converted to LPS, lies on the voxels itk-wasm says carry the map
  const [nx, ny] = mapItk.size as number[];
  const v = liver.peakVoxel;
  assert.ok(mapItk.data[v[0] + nx * (v[1] + ny * v[2])] >= 0.5);
  const lps = [0, 1, 2].map((a) => mapItk.origin[a] + [0, 1, 2].reduce((s, c) => s + mapItk.direction[a * 3 + c] * mapItk.spacing[c] * v[c]!, 0));
  const ras: Vec3 = [-lps[0]!, -lps[1]!, lps[2]!];
  for (let a = 0; a < 3; a++) assert.ok(Math.abs(ras[a]! - liver.peakWorld[a]!) < 0.01, `peak ${liver.peakWorld} vs itk ${ras}`);

  const labels = await readVolume(join(out, 'labels.nii.gz'));
  assert.ok(labels.data.some((x) => x === liver.label));
  const png = PNG.sync.read(readFileSync(join(out, 'overview.png')));
  assert.ok(png.width >= 256 && png.height >= 256);
});

test('ground: bad input is one line on stderr with exit 2 and no stack', () => {
  const empty = join(tmp, 'empty.txt');
  writeFileSync(empty, '   \n');
  const cases: [string[], RegExp][] = [
    [['--ct', TS('example_ct_sm.nii.gz'), '--report', empty, '--model', 'oracle:organ', '--out', join(tmp, 'x')], /empty\.txt: report is empty/],
    [['--ct', TS('example_ct_sm.nii.gz'), '--labels', TS('example_seg_dicom.nii.gz'), '--report', join(DEMO, 'report.txt'), '--model', 'oracle:organ', '--out', join(tmp, 'x')], /example_seg_dicom\.nii\.gz: label map's world box .* misses the CT's/],
    [['--ct', join(tmp, 'missing.nii.gz'), '--report', join(DEMO, 'report.txt'), '--model', 'oracle:organ', '--out', join(tmp, 'x')], /missing\.nii\.gz: /],
    [['--ct', TS('example_ct_sm.nii.gz'), '--report', join(DEMO, 'report.txt'), '--model', join(tmp, 'nomodel'), '--out', join(tmp, 'x')], /nomodel: .*not found/],
    [['--ct', TS('example_ct_sm.nii.gz'), '--report', join(DEMO, 'report.txt'), '--threshold', '2', '--out', join(tmp, 'x')], /--threshold must be in/],
  ];
  for (const [args, re] of cases) {
    const r = ctground('ground', ...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    const err = String(r.stderr).trim();
    assert.equal(err.split('\n').length, 1, err);
    assert.match(err, re);
  }
  assert.ok(!existsSync(join(tmp, 'x', 'findings.json')));
});

// The shipped model (tenth-session weights, the eleventh session's contrast gate, the thirteenth
// session's zoom network for findings expected at most 600 mm³) finds the hypodense liver area (IoU
// 0.11) and the dilated pancreatic duct (7 voxels, IoU 0.21; the first look alone gave 0.07), as
// `npm run demo` prints them; on the real CT's validation studies it finds 3 of 10 ducts. One study
// is a small sample, and the liver area passes by a hair: a model change that loses either fails here.
test('ground: the shipped model finds each lesion inserted into the real CT (IoU > 0.1 at threshold 0.1)', {
  skip: !existsSync(DEFAULT_MODEL_DIR) && `no trained model in ${DEFAULT_MODEL_DIR}`,
}, async () => {
  const out = join(tmp, 'model');
  const rec = JSON.parse(readFileSync(join(DEMO, 'manifest.jsonl'), 'utf8').split('\n')[0]!) as { anomalies: { id: string; organ: string; type: string; mask?: string }[] };
  const r = ctground('ground', '--ct', join(DEMO, 'ct.nii.gz'), '--anatomy', join(DEMO, 'labels.nii.gz'), '--report', join(DEMO, 'report.txt'), '--out', out);
  assert.equal(r.status, 0, String(r.stderr));
  const f = JSON.parse(readFileSync(join(out, 'findings.json'), 'utf8')) as FindingsFile;
  const gold = rec.anomalies.filter((a) => a.mask);
  assert.ok(gold.length >= 2);
  for (const g of gold) {
    const mask = await readVolume(join(DEMO, g.mask!));
    // the finding of the same organ and type as the inserted lesion
    const match = f.anomalies.filter((a) => a.organ === g.organ && a.type === g.type);
    assert.ok(match.length > 0, `no finding for ${g.organ} ${g.type}`);
    let best = 0;
    for (const m of match) if (m.map) best = Math.max(best, iou((await readVolume(join(out, m.map))).data, mask.data, 0.1));
    assert.ok(best > 0.1, `${g.organ} ${g.type}: IoU ${best.toFixed(3)} at threshold 0.1`);
  }
});

test('ground: a label map of the same voxels in another axis order (LAS map, LPS DICOM series) is reordered exactly', async () => {
  const { groundStudy, loadGrounder } = await import('../src/pipeline/index.ts');
  const { organValue } = await import('../src/anatomy/index.ts');
  const r = await groundStudy({ ct: TS('example_ct_dicom'), totalSegmentator: TS('example_seg_dicom.nii.gz'), report: 'Liver: a 2 cm cyst in the liver.' }, await loadGrounder('oracle:organ'));
  assert.equal(r.anatomySource, 'totalsegmentator');
  // independent check of the reordering: the voxels labelled liver must be liver on the CT (HU ~ 40–110)
  const liver = organValue('liver');
  const meanHu = (labels: ArrayLike<number>): number => {
    let s = 0, n = 0;
    for (let i = 0; i < labels.length; i++) if (labels[i] === liver) { s += Number(r.ct.data[i]); n++; }
    return s / n;
  };
  const hu = meanHu(r.anatomy.data);
  assert.ok(hu > 30 && hu < 130, `liver mean HU ${hu.toFixed(0)}`);
  // taken index for index without reordering, the same labels would sit on other tissue
  const { fromTotalSegmentator } = await import('../src/anatomy/index.ts');
  const raw = fromTotalSegmentator(await readVolume(TS('example_seg_dicom.nii.gz')));
  assert.ok(Math.abs(meanHu(raw.data) - hu) > 20, `unreordered mean HU ${meanHu(raw.data).toFixed(0)} vs ${hu.toFixed(0)}`);
  const f = r.findings.find((x) => x.organ === 'liver')!;
  assert.ok(f.box && f.volumeMl > 100);
});

test('ground: regions are cut at the model\'s own threshold unless the user gives one', async () => {
  const { groundStudy } = await import('../src/pipeline/index.ts');
  // a grounder whose maps are 0.3 in a small cube and 0 elsewhere, and which says its maps are cut at 0.2
  const cube = (ct: { size: number[] }) => {
    const [nx, ny, nz] = ct.size as [number, number, number];
    const d = new Float32Array(nx * ny * nz);
    for (let k = 10; k < 14; k++) for (let j = 40; j < 44; j++) for (let i = 50; i < 54; i++) d[i + nx * (j + ny * k)] = 0.3;
    return d;
  };
  // typed as the interface, so a change of what `ground` returns fails the type check here too
  const grounder: GroundingModel = {
    name: 'cube', threshold: 0.2,
    ground: async (s) => new Map(s.report.anomalies.map((a) => [a.id, boxedVolume({ ...s.ct, data: cube(s.ct) })])),
  };
  const study = { ct: TS('example_ct_sm.nii.gz'), totalSegmentator: TS('example_seg.nii.gz'), report: 'Liver: a 2 cm cyst in the liver.' };
  const own = await groundStudy(study, grounder);
  assert.equal(own.threshold, 0.2);
  const f = own.findings.find((x) => x.organ === 'liver')!;
  assert.ok(f.box, 'at the model\'s 0.2 the 0.3 cube is a region');
  assert.equal(f.voxels, 64);
  const strict = await groundStudy(study, grounder, { threshold: 0.5 });
  assert.equal(strict.findings.find((x) => x.organ === 'liver')!.box, null, 'the user\'s 0.5 wins');
  const plain = await groundStudy(study, { name: 'cube', ground: grounder.ground });
  assert.equal(plain.threshold, 0.5, 'a model that says nothing: 0.5');
});

test('ground: a negated finding is listed with its certainty and no location; its map is written only with keepNegatedMaps', async () => {
  const { groundStudy, writeGroundingOutputs, findingsTable } = await import('../src/pipeline/index.ts');
  // every anomaly, the negated one too, gets a map that clearly has a region: the pipeline, not the network, must drop it
  const grounder: GroundingModel = {
    name: 'cube', threshold: 0.5,
    ground: async (s) => new Map(s.report.anomalies.map((a) => {
      const [nx, ny, nz] = s.ct.size as [number, number, number];
      const d = new Float32Array(nx * ny * nz);
      for (let k = 10; k < 14; k++) for (let j = 40; j < 44; j++) for (let i = 50; i < 54; i++) d[i + nx * (j + ny * k)] = 0.9;
      return [a.id, boxedVolume({ ...s.ct, data: d })];
    })),
  };
  const r = await groundStudy({ ct: TS('example_ct_sm.nii.gz'), totalSegmentator: TS('example_seg.nii.gz'), report: 'Liver: a 2 cm cyst in the liver. There is no aortic aneurysm.' }, grounder);
  const neg = r.findings.find((f) => f.certainty === 'absent');
  const pos = r.findings.find((f) => f.certainty === 'present');
  assert.ok(neg && pos, `one negated and one present finding: ${r.findings.map((f) => `${f.organ} ${f.certainty}`).join(', ')}`);

  const table = findingsTable(r.findings).split('\n');
  const row = table.find((l) => l.startsWith(neg.id + ' '))!;
  assert.match(row, /absent/);
  assert.match(row, /\(negated: no location\)/);
  assert.doesNotMatch(row, /0\.90|\[\d/, 'no peak and no box on the negated row');
  assert.match(table.find((l) => l.startsWith(pos.id + ' '))!, /0\.90 .*\[/);

  const out = join(tmp, 'negated');
  const file = await writeGroundingOutputs(out, r);
  const onDisk = JSON.parse(readFileSync(join(out, 'findings.json'), 'utf8')) as FindingsFile;
  assert.deepEqual(onDisk, JSON.parse(JSON.stringify(file)));
  const n = onDisk.anomalies.find((a) => a.id === neg.id)!;
  assert.equal(n.certainty, 'absent');
  assert.equal(n.map, null);
  assert.equal(n.box, null);
  for (const k of ['peak', 'mean', 'volumeMl', 'voxels', 'peakVoxel', 'focusWorld', 'bestSlice']) assert.ok(!(k in n), `no ${k} on a negated finding`);
  assert.ok(!existsSync(join(out, 'maps', `${neg.id}.nii.gz`)));
  assert.ok(existsSync(join(out, pos.map)));
  // the map file is uint8 with scl_slope 1/255: another reader (nifti-reader-js) gets the probabilities back, to 1/255
  const raw = gunzipSync(readFileSync(join(out, pos.map)));
  const ab = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength) as ArrayBuffer;
  const h = nifti.readHeader(ab)!;
  assert.equal(h.datatypeCode, 2);
  const stored = new Uint8Array(nifti.readImage(h, ab)), want = denseVolume(r.maps.get(pos.id)!).data;
  assert.equal(stored.length, want.length);
  let worst = 0;
  for (let v = 0; v < want.length; v++) worst = Math.max(worst, Math.abs(stored[v]! * h.scl_slope + h.scl_inter - want[v]!));
  assert.ok(worst <= 1 / 255, `map file vs the map: ${worst}`);
  const labels = await readVolume(join(out, 'labels.nii.gz'));
  assert.ok(labels.data.some((x) => x === pos.label));
  assert.ok(!labels.data.some((x) => x === neg.label), 'no label value for the negated finding');

  const kept = join(tmp, 'negated-kept');
  await writeGroundingOutputs(kept, r, { keepNegatedMaps: true, overview: false });
  const k = (JSON.parse(readFileSync(join(kept, 'findings.json'), 'utf8')) as FindingsFile).anomalies.find((a) => a.id === neg.id)!;
  assert.equal(k.certainty, 'absent');
  assert.ok(k.map && existsSync(join(kept, k.map)), 'the map is kept when asked');
  assert.ok(!(await readVolume(join(kept, 'labels.nii.gz'))).data.some((x) => x === neg.label), 'still no label value');
});
