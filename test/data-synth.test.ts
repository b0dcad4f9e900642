import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthStudy, splitOf, studyDifficulty, studyId, type SynthStudy } from '../src/data/index.ts';
import { loadOrganScheme, totalSegmentatorLut } from '../src/anatomy/index.ts';
import { readVolume, indexToWorld } from '../src/volume/index.ts';
import { loadTaxonomy } from '../src/common/index.ts';
import { structureReport } from '../src/report/index.ts';
import { run as synthCli } from '../src/cli/commands/synth.ts';
import { TS } from './helpers/shared.ts';

// Small phantoms keep the suite fast; the generator is the same at every size.
const PH = { background: 'phantom' as const, size: 64, spacing: 6, seed: 11, splitSeed: 11 };
const N_PHANTOM = 10;
const phantoms: SynthStudy[] = [];
const reals: SynthStudy[] = [];

async function phantomStudies(): Promise<SynthStudy[]> {
  if (!phantoms.length) for (let i = 0; i < N_PHANTOM; i++) phantoms.push(await synthStudy(i, PH));
  return phantoms;
}
async function realStudies(): Promise<SynthStudy[]> {
  if (!reals.length) for (let i = 0; i < 4; i++) reals.push(await synthStudy(i, { background: 'real', size: 0, spacing: 0, seed: 5, splitSeed: 5 }, TS()));
  return reals;
}

/** Bounding-box extent of a mask along the grid axes, in mm, largest first (recomputed here). */
function extent(mask: Uint8Array, size: number[], spacing: number[]): number[] {
  const lo = [Infinity, Infinity, Infinity], hi = [-1, -1, -1];
  for (let p = 0; p < mask.length; p++) {
    if (!mask[p]) continue;
    const ijk = [p % size[0]!, Math.floor(p / size[0]!) % size[1]!, Math.floor(p / (size[0]! * size[1]!))];
    for (let a = 0; a < 3; a++) { lo[a] = Math.min(lo[a]!, ijk[a]!); hi[a] = Math.max(hi[a]!, ijk[a]!); }
  }
  return [0, 1, 2].map((a) => (hi[a]! - lo[a]! + 1) * spacing[a]!).sort((a, b) => b - a);
}

/** The numbers of a size phrase in mm ("12 mm", "2.3 cm", "12 x 9 mm"); [] for a word like "small". */
function sizeNumbers(text: string): number[] {
  const nums = [...text.matchAll(/(\d+(?:\.\d+)?)/g)].map((m) => Number(m[1]));
  return /cm/.test(text) ? nums.map((n) => n * 10) : nums;
}

test('same seed gives identical studies; another seed gives others', async () => {
  const a = await synthStudy(3, PH), b = await synthStudy(3, PH), c = await synthStudy(3, { ...PH, seed: 12 });
  assert.deepEqual(Buffer.from(a.ct.data.buffer), Buffer.from(b.ct.data.buffer));
  assert.deepEqual(Buffer.from(a.labels.data.buffer), Buffer.from(b.labels.data.buffer));
  assert.equal(a.report, b.report);
  assert.deepEqual(a.anomalies.map((x) => [x.id, x.spans, x.box]), b.anomalies.map((x) => [x.id, x.spans, x.box]));
  assert.notEqual(a.report, c.report);
  assert.notDeepEqual(Buffer.from(a.ct.data.buffer), Buffer.from(c.ct.data.buffer));
});

test('phantoms have the organs of the scheme with plausible HU', async () => {
  const s = (await phantomStudies())[0]!;
  const scheme = loadOrganScheme();
  // Median, not mean: thin organs share their edge voxels with neighbours (partial volume).
  const values = new Map<string, number[]>();
  for (let p = 0; p < s.ct.data.length; p++) {
    const o = scheme.byValue.get(s.labels.data[p]!);
    if (!o) continue;
    if (!values.has(o.name)) values.set(o.name, []);
    values.get(o.name)!.push(s.ct.data[p]!);
  }
  const hu = (n: string): number => { const v = values.get(n); assert.ok(v, `phantom lacks ${n}`); v.sort((a, b) => a - b); return v[Math.floor(v.length / 2)]!; };
  for (const n of ['lung_upper_lobe_right', 'lung_middle_lobe_right', 'lung_lower_lobe_right', 'lung_upper_lobe_left', 'lung_lower_lobe_left']) assert.ok(hu(n) < -600, `${n} ${hu(n)}`);
  assert.ok(hu('fat') < -50 && hu('fat') > -150);
  for (const n of ['liver', 'spleen', 'kidney_right', 'kidney_left', 'heart', 'aorta', 'pancreas', 'muscle']) assert.ok(hu(n) > 0 && hu(n) < 250, `${n} ${hu(n)}`);
  for (const n of ['spine', 'ribs', 'pelvis']) assert.ok(hu(n) > 150, `${n} ${hu(n)}`);
  for (const n of ['stomach', 'colon', 'small_intestine', 'bladder', 'gallbladder', 'airway', 'esophagus', 'mediastinum']) assert.ok(values.has(n), n);
});

test('every lesion mask lies inside its target organ, and the box encloses it', async () => {
  let n = 0;
  for (const s of [...await phantomStudies(), ...await realStudies()]) {
    for (const a of s.anomalies) {
      if (!a.mask) { assert.equal(a.certainty, 'absent'); continue; }
      const v = loadOrganScheme().byName.get(a.target!)!.value;
      let count = 0;
      for (let p = 0; p < a.mask.data.length; p++) {
        if (!a.mask.data[p]) continue;
        count++;
        assert.equal(s.labels.data[p], v, `${s.id} ${a.id} (${a.kind}) leaves ${a.target}`);
        const w = indexToWorld(s.ct, [p % s.ct.size[0], Math.floor(p / s.ct.size[0]) % s.ct.size[1], Math.floor(p / (s.ct.size[0] * s.ct.size[1]))]);
        for (let ax = 0; ax < 3; ax++) assert.ok(w[ax]! >= a.box![0][ax]! && w[ax]! <= a.box![1][ax]!, `${s.id} ${a.id} outside its box`);
      }
      assert.ok(count > 0);
      n++;
    }
  }
  assert.ok(n >= 20, `only ${n} lesions checked`);
});

test('lesions in the real CT land inside the intended TotalSegmentator organ', async () => {
  // Independent of the generator's label map: look each lesion voxel up in example_seg itself.
  // example_seg labels example_ct_sm, a slab of example_ct whose header keeps the full scan's
  // origin, so the slab's place is found here from the voxels (not from the headers).
  const seg = await readVolume(TS('example_seg.nii.gz'));
  const sm = await readVolume(TS('example_ct_sm.nii.gz'));
  const full = await readVolume(TS('example_ct.nii.gz'));
  const nxy = full.size[0] * full.size[1];
  let off = -1;
  for (let k = 0; k + sm.size[2] <= full.size[2] && off < 0; k++) {
    let same = true;
    for (let p = 0; p < nxy && same; p++) same = full.data[k * nxy + p] === sm.data[p] && full.data[(k + sm.size[2] - 1) * nxy + p] === sm.data[(sm.size[2] - 1) * nxy + p];
    if (same) off = k;
  }
  assert.ok(off > 0, 'example_ct_sm is a slab of example_ct');
  const lut = totalSegmentatorLut();
  const names = loadOrganScheme().byValue;
  let checked = 0;
  for (const s of await realStudies()) {
    assert.deepEqual(s.ct.size, full.size);
    for (const a of s.anomalies) {
      if (!a.mask) continue;
      for (let p = 0; p < a.mask.data.length; p++) {
        if (!a.mask.data[p]) continue;
        const i = p % nxy % full.size[0], j = Math.floor((p % nxy) / full.size[0]), k = Math.floor(p / nxy);
        assert.ok(k >= off, `${s.id} ${a.id}: slice ${k} is outside the segmented slab`);
        const tsv = seg.data[i + full.size[0] * (j + full.size[1] * (k - off))]!;
        assert.equal(names.get(lut[tsv]!)?.name, a.target, `${s.id} ${a.id}: voxel in TotalSegmentator label ${tsv}, not ${a.target}`);
        checked++;
      }
    }
  }
  assert.ok(checked > 50);
});

test('size phrases are within 20 % of the measured lesion extent', async () => {
  let n = 0;
  for (const s of [...await phantomStudies(), ...await realStudies()]) {
    for (const a of s.anomalies) {
      for (const sp of a.spans.filter((x) => x.class === 'size')) {
        const nums = sizeNumbers(sp.text);
        if (!nums.length) continue; // "small", "moderate"
        const ext = extent(a.mask!.data, s.ct.size, s.ct.spacing);
        nums.forEach((v, k) => assert.ok(Math.abs(v - ext[k]!) <= 0.2 * ext[k]!, `${s.id} ${a.id}: "${sp.text}" vs measured ${ext.map((e) => e.toFixed(1)).join(' x ')} mm`));
        n++;
      }
    }
  }
  assert.ok(n >= 10, `only ${n} size phrases`);
});

test('spans are the report text at their offsets, with taxonomy classes', async () => {
  const tax = loadTaxonomy();
  for (const s of [...await phantomStudies(), ...await realStudies()]) {
    const ids = new Set<string>();
    for (const a of s.anomalies) {
      assert.ok(!ids.has(a.id)); ids.add(a.id);
      assert.ok(tax.reportOrgans.includes(a.organ), a.organ);
      assert.ok(tax.anomalyTypes.some((t) => t.id === a.type), a.type);
      assert.ok(a.spans.some((x) => x.class === 'anomaly'), `${s.id} ${a.id} has no anomaly phrase`);
      for (const sp of a.spans) {
        assert.equal(s.report.slice(sp.start, sp.end), sp.text);
        assert.ok(tax.phraseClasses.includes(sp.class), sp.class);
      }
    }
  }
});

test('reports carry several findings, shared sentences, negations and same-organ pairs', async () => {
  const all = [...await phantomStudies()];
  for (let i = N_PHANTOM; i < 24; i++) all.push(await synthStudy(i, PH));
  let multiSentence = 0, sameOrgan = 0, absent = 0, uncertain = 0, multi = 0;
  for (const s of all) {
    const withMask = s.anomalies.filter((a) => a.mask);
    if (withMask.length >= 2) multi++;
    absent += s.anomalies.filter((a) => a.certainty === 'absent').length;
    uncertain += s.anomalies.filter((a) => a.certainty === 'uncertain').length;
    const sentenceOf = (a: (typeof withMask)[number]): number => s.report.slice(0, a.spans.find((x) => x.class === 'anomaly')!.start).split('. ').length;
    for (let i = 0; i < withMask.length; i++) for (let j = i + 1; j < withMask.length; j++) {
      if (sentenceOf(withMask[i]!) === sentenceOf(withMask[j]!)) multiSentence++;
      if (withMask[i]!.organ === withMask[j]!.organ && withMask[i]!.target?.split('_')[0] === withMask[j]!.target?.split('_')[0]) {
        sameOrgan++;
        // a report must tell them apart by location words
        const loc = (a: (typeof withMask)[number]): string => a.spans.filter((x) => x.class === 'location' || x.class === 'anatomy').map((x) => x.text.toLowerCase()).join('|');
        assert.notEqual(loc(withMask[i]!), loc(withMask[j]!), `${s.id}: two ${withMask[i]!.organ} findings with the same location words`);
      }
    }
  }
  assert.ok(multi >= 12, `studies with >= 2 lesions: ${multi}/24`);
  assert.ok(multiSentence >= 3, `sentences with two findings: ${multiSentence}`);
  assert.ok(sameOrgan >= 3, `same-organ pairs: ${sameOrgan}`);
  assert.ok(absent >= 20 && uncertain >= 2, `absent ${absent}, uncertain ${uncertain}`);
});

test('focal lesions are small against their organ (the organ oracle must not pass for free)', async () => {
  const diffuse = new Set(loadTaxonomy().anomalyTypes.filter((t) => t.diffuse).map((t) => t.id));
  const ratios: number[] = [];
  for (const s of await phantomStudies()) for (const a of s.anomalies) {
    if (!a.mask || diffuse.has(a.type)) continue;
    const v = loadOrganScheme().byName.get(a.target!)!.value;
    let organ = 0, lesion = 0;
    for (let p = 0; p < a.mask.data.length; p++) { if (s.labels.data[p] === v) organ++; if (a.mask.data[p]) lesion++; }
    ratios.push(lesion / organ);
  }
  ratios.sort((x, y) => x - y);
  const median = ratios[Math.floor(ratios.length / 2)]!;
  const over = ratios.filter((r) => r > 0.1).length / ratios.length;
  assert.ok(median < 0.05, `median lesion/organ ${median}`);
  assert.ok(over < 0.2, `share of focal lesions over 0.1 of their organ: ${over}`);
});

test('the report structurer finds at least 90 % of the generated anomalies', async () => {
  let found = 0, total = 0;
  const missed: string[] = [];
  for (const s of await phantomStudies()) {
    const st = structureReport(s.report);
    for (const a of s.anomalies) {
      total++;
      const head = a.spans.find((x) => x.class === 'anomaly')!;
      const hit = st.anomalies.some((b) => b.organ === a.organ && b.type === a.type && b.spans.some((x) => x.class === 'anomaly' && x.start < head.end && head.start < x.end));
      if (hit) found++; else missed.push(`${a.organ}/${a.type}: ${head.text}`);
    }
  }
  assert.ok(found / total >= 0.9, `found ${found}/${total}; missed: ${missed.join('; ')}`);
});

test('splits are stable per id, near 80/10/10, and independent of difficulty', () => {
  const counts = { train: 0, val: 0, test: 0 };
  const testDifficulty = { easy: 0, medium: 0, hard: 0 };
  for (let i = 0; i < 600; i++) {
    const sp = splitOf(studyId(i), 4);
    counts[sp]++;
    if (sp === 'test') testDifficulty[studyDifficulty(i, 4)]++;
  }
  // every difficulty in the test split, roughly in the generator's 25/35/40 mix
  assert.ok(testDifficulty.easy >= 5 && testDifficulty.medium >= 5 && testDifficulty.hard >= 5, JSON.stringify(testDifficulty));
  assert.equal(splitOf(studyId(17), 4), splitOf(studyId(17), 4));
  assert.ok(counts.train > 420 && counts.train < 540 && counts.val > 30 && counts.test > 30, JSON.stringify(counts));
});

test('ctground synth writes a dataset, resumes, and is byte-identical per seed', async () => {
  const a = mkdtempSync(join(tmpdir(), 'synth-a-')), b = mkdtempSync(join(tmpdir(), 'synth-b-'));
  try {
    const args = ['--cases', '2', '--seed', '21', '--size', '48', '--spacing', '8'];
    assert.equal(await synthCli(['--out', a, ...args]), 0);
    const first = readFileSync(join(a, 'manifest.jsonl'), 'utf8').trim().split('\n');
    assert.equal(first.length, 2);
    const ct0 = join(a, JSON.parse(first[0]!).ct as string);
    const mtime = statSync(ct0).mtimeMs;
    // More cases into the same folder: the first two are kept, not regenerated.
    assert.equal(await synthCli(['--out', a, ...args.map((x) => (x === '2' ? '3' : x))]), 0);
    assert.equal(statSync(ct0).mtimeMs, mtime);
    const second = readFileSync(join(a, 'manifest.jsonl'), 'utf8').trim().split('\n');
    assert.deepEqual(second.slice(0, 2), first);
    assert.equal(second.length, 3);
    // A fresh folder with the same options holds the same bytes.
    assert.equal(await synthCli(['--out', b, ...args.map((x) => (x === '2' ? '3' : x))]), 0);
    assert.equal(readFileSync(join(b, 'manifest.jsonl'), 'utf8'), readFileSync(join(a, 'manifest.jsonl'), 'utf8'));
    for (const line of second) {
      const r = JSON.parse(line) as { ct: string; labels: string; report: string; anomalies: { mask?: string }[] };
      for (const f of [r.ct, r.labels, r.report, ...r.anomalies.flatMap((x) => (x.mask ? [x.mask] : []))]) {
        assert.ok(existsSync(join(a, f)), f);
        assert.deepEqual(readFileSync(join(a, f)), readFileSync(join(b, f)), f);
      }
    }
    // Other options into the same folder are refused with one line naming the file.
    await assert.rejects(synthCli(['--out', a, '--cases', '3', '--seed', '22', '--size', '48', '--spacing', '8']), (e: Error) => e.name === 'UserError' && /synth\.json: .*seed=21/.test(e.message) && !e.message.includes('\n'));
  } finally {
    rmSync(a, { recursive: true, force: true });
    rmSync(b, { recursive: true, force: true });
  }
});

test('ctground synth refuses bad options with one line', async () => {
  const bad = async (args: string[], re: RegExp): Promise<void> => {
    await assert.rejects(synthCli(args), (e: Error) => e.name === 'UserError' && re.test(e.message) && !e.message.includes('\n'));
  };
  await bad(['--out', '/tmp/x', '--cases', '2', '--seed', '1', '--background', 'mars'], /--background must be phantom or real, got 'mars'/);
  await bad(['--out', '/tmp/x', '--cases', '2'], /missing required option --seed/);
  await bad(['--out', '/tmp/x', '--cases', '0', '--seed', '1'], /--cases must be at least 1/);
  await bad(['--out', '/tmp/x', '--cases', '2', '--seed', '1', '--size', '8'], /--size must be between 32 and 512/);
  await bad(['--out', '/tmp/x', '--cases', '2', '--seed', '1', '--background', 'real', '--real-dir', '/nonexistent'], /\/nonexistent: no example_ct\.nii\.gz/);
});
