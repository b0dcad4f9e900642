import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { checkDataset, importLidc, lidcSplitOf, readLidcCatalog, type ManifestStudy } from '../src/data/index.ts';
import { organValue, loadOrganScheme } from '../src/anatomy/index.ts';
import { readVolume, resample, resampleToGrid } from '../src/volume/index.ts';
import { UserError } from '../src/common/index.ts';
import { run as datasetCli } from '../src/cli/commands/dataset.ts';

const shared = resolve(import.meta.dirname, '..', '..', 'shared', 'data');
const LIDC = join(shared, 'lidc-nodules'), TS = join(shared, 'totalsegmentator');
const tmp = (p: string): string => mkdtempSync(join(tmpdir(), p));

test('LIDC patients split 80/10/10 by patient: no patient in two splits, every nodule of a patient with it', () => {
  const cat = readLidcCatalog(LIDC);
  assert.equal(cat.length, 670);
  const byPatient = new Map<string, Set<string>>();
  for (const n of cat) {
    const s = lidcSplitOf(n.patient, 27);
    byPatient.set(n.patient, (byPatient.get(n.patient) ?? new Set()).add(s));
  }
  assert.equal(byPatient.size, 373);
  for (const [p, s] of byPatient) assert.equal(s.size, 1, `patient ${p} in ${[...s].join(', ')}`);
  const count = { train: 0, val: 0, test: 0 };
  for (const s of byPatient.values()) count[[...s][0] as keyof typeof count]++;
  // 373 patients drawn 80/10/10: each split within 4 standard deviations
  assert.ok(Math.abs(count.train - 298) < 32 && Math.abs(count.val - 37) < 24 && Math.abs(count.test - 37) < 24, JSON.stringify(count));
  // another seed moves patients (the seed is real)
  assert.ok(cat.some((n) => lidcSplitOf(n.patient, 27) !== lidcSplitOf(n.patient, 28)));
});

test('import-lidc transplants real nodules into the real lung bases: HU kept, background untouched past the rim, lobe and size words from the label map and the ratings', async () => {
  const out = tmp('lidc-');
  const outTrain = tmp('lidc-train-');
  try {
    const r = await importLidc({ lidcDir: LIDC, realDir: TS, out, seed: 5, splitSeed: 27, splits: ['val'], findings: 1, spacing: 1.5, limit: 3 });
    const rt = await importLidc({ lidcDir: LIDC, realDir: TS, out: outTrain, seed: 5, splitSeed: 27, splits: ['train'], findings: 1, spacing: 1.5, limit: 3 });
    assert.ok(r.records.length >= 2, `${r.skipped.join('; ')}`);
    assert.deepEqual((await checkDataset(out)).problems, []);
    const patients = (rs: ManifestStudy[]) => new Set(rs.flatMap((s) => s.anomalies.map((a) => (a as { source?: { patient: string } }).source?.patient).filter(Boolean)));
    const pv = patients(r.records), pt = patients(rt.records);
    for (const p of pv) assert.ok(!pt.has(p), `patient ${p} in val and train`);
    for (const s of r.records) assert.equal(s.split, 'val');

    // the background on its own, resampled the same way, to see what the transplant changed
    const ctSm = await readVolume(join(TS, 'example_ct_sm.nii.gz'));
    const bgCt = resample(ctSm, 1.5, 'linear');
    const seg = resampleToGrid(await readVolume(join(TS, 'example_seg.nii.gz')), bgCt, 'nearest', { fill: 0 });
    const lungTs = new Set([10, 11, 12, 13, 14]);
    const cat = new Map(readLidcCatalog(LIDC).map((n) => [n.name, n]));
    for (const s of r.records) {
      const ct = await readVolume(join(out, s.ct));
      const labels = await readVolume(join(out, s.labels));
      const text = readFileSync(join(out, s.report), 'utf8');
      assert.deepEqual(ct.size, bgCt.size);
      assert.ok(ct.spacing.every((v) => Math.abs(v - 1.5) < 1e-6));
      const a = s.anomalies.find((x) => x.mask)!;
      for (const sp of s.anomalies.flatMap((x) => x.spans)) assert.equal(text.slice(sp.start, sp.end), sp.text);
      const src = (a as { source?: { patient: string; nodule: number } }).source!;
      const n = cat.get(`${src.patient}_R_${src.nodule}`)!;
      const mask = await readVolume(join(out, a.mask!));
      // the lobe the location words name holds most of the lesion, by the study's own label map
      const loc = a.spans.filter((x) => x.class === 'location').map((x) => x.text).join(' ');
      const side = /right/.test(loc) ? 'right' : 'left', lobe = /upper/.test(loc) ? 'upper' : /middle/.test(loc) ? 'middle' : 'lower';
      const named = organValue(`lung_${lobe}_lobe_${side}`);
      const votes = new Map<number, number>();
      let inMask = 0, sumHu = 0;
      for (let i = 0; i < mask.data.length; i++) if (mask.data[i]) { votes.set(labels.data[i]!, (votes.get(labels.data[i]!) ?? 0) + 1); inMask++; sumHu += ct.data[i]!; }
      const top = [...votes].sort((x, y) => y[1] - x[1])[0]![0];
      assert.equal(loadOrganScheme().byValue.get(top)!.name, loadOrganScheme().byValue.get(named)!.name, `${s.id}: "${loc}"`);
      // the stated size is the rated diameter
      const size = a.spans.find((x) => x.class === 'size')!.text;
      assert.ok(size === `${Math.round(n.diameterMm)} mm` || size === `${(n.diameterMm / 10).toFixed(1)} cm`, `${size} vs ${n.diameterMm}`);
      // the nodule keeps its HU: mean inside the transplanted mask against the source crop's own mask
      const img = await readVolume(join(LIDC, 'image', `${n.name}.nii.gz`)), msk = await readVolume(join(LIDC, 'mask', `${n.name}.nii.gz`));
      let sn = 0, ss = 0;
      for (let i = 0; i < msk.data.length; i++) if (msk.data[i]) { sn++; ss += img.data[i]!; }
      assert.ok(Math.abs(sumHu / inMask - ss / sn) < 80, `${s.id}: mean HU ${sumHu / inMask} vs source ${ss / sn}`);
      // outside the lungs, and farther than the rim and blend (3 + 3 mm) plus a voxel from the mask, the background is untouched
      const [nx, ny] = ct.size;
      const pts: number[][] = [];
      for (let i = 0; i < mask.data.length; i++) if (mask.data[i]) pts.push([i % nx, Math.floor(i / nx) % ny, Math.floor(i / (nx * ny))]);
      let changedFar = 0, changedOutside = 0, changedNear = 0;
      for (let i = 0; i < ct.data.length; i++) {
        const diff = Math.abs(ct.data[i]! - Math.max(-1024, Math.min(3071, Math.round(bgCt.data[i]!))));
        if (!diff) continue;
        if (!lungTs.has(seg.data[i]!)) { changedOutside++; continue; }
        const p = [i % nx, Math.floor(i / nx) % ny, Math.floor(i / (nx * ny))];
        const d = Math.sqrt(Math.min(...pts.map((q) => (p[0]! - q[0]!) ** 2 + (p[1]! - q[1]!) ** 2 + (p[2]! - q[2]!) ** 2))) * 1.5;
        if (d > 6 + 1.5 * Math.sqrt(3)) changedFar++; else changedNear++;
      }
      assert.equal(changedOutside, 0, `${s.id}: voxels outside the lungs changed`);
      assert.equal(changedFar, 0, `${s.id}: voxels past the rim changed`);
      assert.ok(changedNear >= inMask, `${s.id}: the rim was pasted too`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
    rmSync(outTrain, { recursive: true, force: true });
  }
});

test('two nodules in one study go to two lobes and the report tells them apart by their lobe words', async () => {
  const out = tmp('lidc-pair-');
  try {
    const r = await importLidc({ lidcDir: LIDC, realDir: TS, out, seed: 9, splitSeed: 27, splits: ['test'], findings: 2, spacing: 1.5, limit: 2 });
    assert.ok(r.records.length >= 1, r.skipped.join('; '));
    for (const s of r.records) {
      const found = s.anomalies.filter((a) => a.mask);
      assert.equal(found.length, 2);
      const words = found.map((a) => a.spans.filter((x) => x.class === 'location').map((x) => x.text).join(' '));
      assert.notEqual(words[0], words[1]);
      const targets = found.map((a) => a.synth!.target);
      assert.notEqual(targets[0], targets[1]);
      const m1 = await readVolume(join(out, found[0]!.mask!)), m2 = await readVolume(join(out, found[1]!.mask!));
      for (let i = 0; i < m1.data.length; i++) assert.ok(!(m1.data[i] && m2.data[i]), 'the two nodules overlap');
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('import-lidc: a broken nodule table or a bad flag is one line, exit 2, nothing written', async () => {
  const bad = tmp('lidc-bad-');
  try {
    mkdirSync(join(bad, 'image')); mkdirSync(join(bad, 'mask'));
    writeFileSync(join(bad, 'nodules.csv'), 'patient_id,nodule_id\nLIDC-IDRI-0001,1\n');
    assert.throws(() => readLidcCatalog(bad), (e: unknown) => e instanceof UserError && /nodules\.csv: no column 'diameter_mm'/.test(e.message) && !e.message.includes('\n'));
    const out = join(bad, 'out');
    await assert.rejects(datasetCli(['import-lidc', '--out', out, '--seed', '1', '--splits', 'test', '--lidc-dir', bad, '--real-dir', TS]), (e: unknown) => e instanceof UserError && e.exitCode === 2 && /no column/.test(e.message));
    await assert.rejects(datasetCli(['import-lidc', '--out', out, '--seed', '1', '--splits', 'holdout']), (e: unknown) => e instanceof UserError && /--splits takes train, val and test/.test(e.message));
    await assert.rejects(datasetCli(['import-lidc', '--out', out, '--seed', '1', '--splits', 'test', '--findings', '3']), (e: unknown) => e instanceof UserError && /--findings must be 1 or 2/.test(e.message));
    assert.ok(!existsSync(join(out, 'manifest.jsonl')));
  } finally {
    rmSync(bad, { recursive: true, force: true });
  }
});
