import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { checkDataset, importRexGrounding, importStudy, synthStudy, writeManifest, writeStudy, type ManifestStudy } from '../src/data/index.ts';
import { readVolume, writeNifti, type Volume } from '../src/volume/index.ts';
import { run as datasetCli } from '../src/cli/commands/dataset.ts';

const tmp = (p: string): string => mkdtempSync(join(tmpdir(), p));
const nonzero = (d: ArrayLike<number>): number => { let n = 0; for (let i = 0; i < d.length; i++) if (d[i]) n++; return n; };
const vol = <T extends Volume['data']>(data: T, n: [number, number, number], origin: [number, number, number] = [0, 0, 0]): Volume<T> =>
  ({ data, size: n, spacing: [2, 2, 2], origin, direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] });

async function goodDataset(): Promise<string> {
  const dir = tmp('ds-good-');
  const recs: ManifestStudy[] = [];
  for (let i = 0; i < 2; i++) recs.push(await writeStudy(dir, await synthStudy(i, { background: 'phantom', size: 40, spacing: 9, seed: 2, splitSeed: 2 }), 'phantom'));
  writeManifest(dir, recs);
  return dir;
}

test('dataset check passes a good dataset and names each kind of broken one in one line', async () => {
  const good = await goodDataset();
  const bad = tmp('ds-bad-');
  try {
    const ok = await checkDataset(good);
    assert.deepEqual(ok.problems, []);
    assert.equal(ok.studies, 2);
    cpSync(good, bad, { recursive: true });
    const lines = readFileSync(join(bad, 'manifest.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ManifestStudy);
    const s0 = lines[0]!, s1 = lines[1]!;
    // 1. a missing mask file
    const withMask = s0.anomalies.find((a) => a.mask)!;
    unlinkSync(join(bad, withMask.mask!));
    // 2. a span moved off its text
    const a1 = s1.anomalies[0]!;
    a1.spans[0] = { ...a1.spans[0]!, start: a1.spans[0]!.start + 1, end: a1.spans[0]!.end + 1 };
    // 3. a label map on another grid
    const lab = await readVolume(join(bad, s1.labels));
    await writeNifti(join(bad, s1.labels), { ...lab, origin: [lab.origin[0] + 10, lab.origin[1], lab.origin[2]] });
    // 4. an unknown anomaly type
    s0.anomalies[0]!.type = 'alien';
    writeFileSync(join(bad, 'manifest.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n{not json\n');
    const r = await checkDataset(bad);
    const has = (re: RegExp): boolean => r.problems.some((p) => re.test(p));
    assert.ok(has(new RegExp(`${withMask.mask!.replace(/[.]/g, '\\.')}: mask of anomaly ${withMask.id} of study ${s0.id} is missing`)), r.problems.join('\n'));
    assert.ok(has(/anomaly a1: span \[\d+, \d+\) says '.*' but the report has '.*' there/), r.problems.join('\n'));
    assert.ok(has(/labels\.nii\.gz: label map of study synth-00001: origin .* differs from the CT's/), r.problems.join('\n'));
    assert.ok(has(/type 'alien' is not an anomaly type/));
    assert.ok(has(/manifest\.jsonl:3: not valid JSON/));
    for (const p of r.problems) assert.ok(!p.includes('\n'));
    // The command: one line per problem, exit 1; a good dataset exits 0.
    const log = console.log; const out: string[] = [];
    console.log = (s: string) => { out.push(s); };
    try {
      assert.equal(await datasetCli(['check', bad]), 1);
      assert.equal(await datasetCli(['check', good]), 0);
    } finally { console.log = log; }
    assert.equal(out.length, r.problems.length + 2);
    assert.match(out.at(-1)!, /OK, 2 studies/);
  } finally {
    rmSync(good, { recursive: true, force: true });
    rmSync(bad, { recursive: true, force: true });
  }
});

test('dataset import: CT + multi-label mask + findings JSON becomes a checked study', async () => {
  const dir = tmp('ds-imp-');
  try {
    const n: [number, number, number] = [20, 20, 20];
    const ct = new Int16Array(8000).fill(40), mask = new Uint8Array(8000);
    for (let k = 2; k < 5; k++) for (let j = 2; j < 5; j++) for (let i = 2; i < 5; i++) mask[i + 20 * (j + 20 * k)] = 1; // 27 voxels
    for (let k = 10; k < 12; k++) for (let j = 10; j < 14; j++) for (let i = 10; i < 15; i++) mask[i + 20 * (j + 20 * k)] = 2; // 40 voxels
    await writeNifti(join(dir, 'ct.nii.gz'), vol(ct, n));
    await writeNifti(join(dir, 'mask.nii.gz'), vol(mask, n));
    const report = 'A 6 mm nodule in the liver. A cyst in the right kidney. No pleural effusion.';
    writeFileSync(join(dir, 'f.json'), JSON.stringify({ report, anomalies: [
      { organ: 'liver', type: 'nodule', phrase: 'nodule' },
      { organ: 'kidney', type: 'cyst', phrase: 'cyst', label: 2 },
      { organ: 'chest', type: 'effusion', certainty: 'absent', phrase: 'effusion' },
    ] }));
    const out = join(dir, 'ds');
    const rec = await importStudy({ ct: join(dir, 'ct.nii.gz'), mask: join(dir, 'mask.nii.gz'), findings: join(dir, 'f.json'), out, split: 'val' });
    assert.equal(rec.id, 'ct');
    assert.deepEqual(rec.anomalies.map((a) => a.spans[0]!.text), ['nodule', 'cyst', 'effusion']);
    const count = async (f: string): Promise<number> => nonzero((await readVolume(join(out, f))).data);
    assert.equal(await count(rec.anomalies[0]!.mask!), 27);
    assert.equal(await count(rec.anomalies[1]!.mask!), 40);
    assert.equal(rec.anomalies[2]!.mask, undefined);
    // box of the 27-voxel cube: voxels 2..4 at 2 mm → 3..10 mm (voxel edges)
    assert.deepEqual(rec.anomalies[0]!.box, [[3, 3, 3], [9, 9, 9]]);
    assert.deepEqual((await checkDataset(out)).problems, []);
    // A phrase that is not in the report is refused with the file named.
    writeFileSync(join(dir, 'g.json'), JSON.stringify({ report, anomalies: [{ organ: 'liver', type: 'mass', phrase: 'tumour' }] }));
    await assert.rejects(importStudy({ ct: join(dir, 'ct.nii.gz'), findings: join(dir, 'g.json'), out }), /g\.json: anomaly a1: phrase 'tumour' is not in the report/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

/** A 4-D NIfTI-1 (uint8) written byte by byte, independent of the reader under test. */
function nifti4d(dims: number[], data: Uint8Array): Buffer {
  const h = Buffer.alloc(352);
  h.writeInt32LE(348, 0);
  h.writeInt16LE(dims.length, 40);
  dims.forEach((d, i) => h.writeInt16LE(d, 42 + 2 * i));
  for (let i = dims.length; i < 7; i++) h.writeInt16LE(1, 42 + 2 * i);
  h.writeInt16LE(2, 70); h.writeInt16LE(8, 72);
  for (let i = 0; i < 8; i++) h.writeFloatLE(1, 76 + 4 * i);
  h.writeFloatLE(352, 108); h.writeFloatLE(1, 112);
  h.write('n+1\0', 344, 'latin1');
  return gzipSync(Buffer.concat([h, Buffer.from(data)]));
}

test('dataset import-rexgrounding reads the published layout: dataset.json, (F,H,W,D) masks, CT-RATE volumes', async () => {
  const src = tmp('rex-');
  try {
    const n: [number, number, number] = [16, 12, 10];
    const nv = 16 * 12 * 10;
    mkdirSync(join(src, 'ct', 'train_fixed', 'train_1', 'train_1_a'), { recursive: true });
    await writeNifti(join(src, 'ct', 'train_fixed', 'train_1', 'train_1_a', 'train_1_a_1.nii.gz'), vol(new Int16Array(nv).fill(-800), n));
    const F = 2, m = new Uint8Array(F * nv);
    // finding 0: voxel (3,4,5); finding 1: the 2x2x1 block at (8..9, 6..7, 2)
    m[0 + F * (3 + 16 * (4 + 12 * 5))] = 1;
    for (const [i, j] of [[8, 6], [9, 6], [8, 7], [9, 7]] as const) m[1 + F * (i + 16 * (j + 12 * 2))] = 1;
    mkdirSync(join(src, 'segmentations'));
    writeFileSync(join(src, 'segmentations', 'train_1_a_1.nii.gz'), nifti4d([F, ...n], m));
    writeFileSync(join(src, 'dataset.json'), JSON.stringify({
      train: [{ name: 'train_1_a_1.nii.gz', findings: { 0: 'A 4 mm nodule in the right upper lobe', 1: 'Consolidation in the left lower lobe.' }, shape: n, categories: { 0: '1a', 1: '2b' } }],
      val: [{ name: 'valid_9_a_1.nii.gz', findings: { 0: 'Pleural effusion.' } }],
    }));
    const out = join(src, 'ds');
    const r = await importRexGrounding(src, out, { ctDir: join(src, 'ct') });
    assert.equal(r.imported, 1);
    assert.ok(r.skipped.some((s) => /valid_9_a_1/.test(s)));
    const rec = JSON.parse(readFileSync(join(out, 'manifest.jsonl'), 'utf8').trim()) as ManifestStudy;
    assert.equal(rec.split, 'train');
    const report = readFileSync(join(out, rec.report), 'utf8');
    assert.equal(report, 'A 4 mm nodule in the right upper lobe. Consolidation in the left lower lobe.');
    assert.deepEqual(rec.anomalies.map((a) => [a.organ, a.type]), [['lung', 'nodule'], ['lung', 'consolidation']]);
    const m0 = await readVolume(join(out, rec.anomalies[0]!.mask!)), m1 = await readVolume(join(out, rec.anomalies[1]!.mask!));
    assert.equal(m0.data[3 + 16 * (4 + 12 * 5)], 1);
    assert.equal(nonzero(m0.data), 1);
    assert.equal(nonzero(m1.data), 4);
    assert.equal(m1.data[9 + 16 * (7 + 12 * 2)], 1);
    assert.deepEqual((await checkDataset(out)).problems, []);
  } finally { rmSync(src, { recursive: true, force: true }); }
});

test('synth --stats --contrast: every generated lesion with organ around it is scored, per kind, from the volumes', async () => {
  const dir = await goodDataset();
  try {
    const { lesionContrast, lesionCnr, formatContrast, loadLesionKinds, loadVisibilityRule, requiredCnr } = await import('../src/data/index.ts');
    const shapeOf = new Map(loadLesionKinds().map((k) => [k.id, k.shape]));
    let focal = 0;
    const { loadOrganScheme } = await import('../src/anatomy/index.ts');
    const value = (n: string) => loadOrganScheme().byName.get(n)?.value;
    const rows = await lesionContrast(dir, undefined, readVolume, value);
    // independent tally: each masked generated lesion scored one by one
    const expected = new Map<string, number[]>();
    for (const line of readFileSync(join(dir, 'manifest.jsonl'), 'utf8').trim().split('\n')) {
      const s = JSON.parse(line) as ManifestStudy;
      const ct = await readVolume(join(dir, s.ct)), labels = await readVolume(join(dir, s.labels));
      for (const a of s.anomalies) {
        if (!a.mask || !a.synth) continue;
        const c = lesionCnr(ct.data, labels.data, (await readVolume(join(dir, a.mask))).data, ct.size, ct.spacing, value(a.synth.target)!);
        if (Number.isFinite(c)) expected.set(a.synth.kind, [...(expected.get(a.synth.kind) ?? []), c]);
        // the generator's visibility rule, checked on the written files: focal lesions at least max(minCnr, rose/√voxels)
        const need = requiredCnr(loadVisibilityRule(), a.synth.lesionVoxels);
        assert.ok(need >= loadVisibilityRule().minCnr && need === Math.max(2, 5 / Math.sqrt(a.synth.lesionVoxels)));
        if (['blob', 'wall', 'dependent'].includes(shapeOf.get(a.synth.kind)!)) { focal++; assert.ok(c >= need, `${a.synth.kind} in ${s.id}: CNR ${c} < ${need}`); }
      }
    }
    assert.ok(expected.size > 0 && focal > 0);
    assert.deepEqual(new Map(rows.map((r) => [r.kind, r.n])), new Map([...expected].map(([k, v]) => [k, v.length])));
    for (const r of rows) {
      const cs = [...expected.get(r.kind)!].sort((x, y) => x - y), h = cs.length >> 1;
      assert.equal(r.belowOne, cs.filter((c) => c < 1).length);
      assert.ok(Math.abs(r.medianCnr - (cs.length % 2 ? cs[h]! : (cs[h - 1]! + cs[h]!) / 2)) < 1e-12, `${r.kind} median`);
    }
    assert.match(formatContrast(rows), new RegExp(`under 1 .*: ${rows.reduce((a, r) => a + r.belowOne, 0)} of ${rows.reduce((a, r) => a + r.n, 0)} lesions`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
