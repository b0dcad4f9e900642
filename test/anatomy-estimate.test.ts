import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../src/common/index.ts';
import { readVolume } from '../src/volume/index.ts';
import { estimateAnatomy, evaluateEstimate, loadAtlases, organValue, type EvalTarget } from '../src/anatomy/index.ts';
import { sharedPath, TS } from './helpers/shared.ts';

const BIN = join(projectRoot, 'bin', 'ctground.js');

// Measured (docs/anatomy.md, `ctground anatomy --eval`, grid sampler): A 112 slices liver 0.863,
// spleen 0.865, lungs 0.965; A slab liver 0.896, spleen 0.884, lungs 0.965; B liver 0.785,
// spleen 0.709, pancreas 0.248. The thresholds sit a little below; kidneys have no other patient's atlas.
const FLOOR: Record<string, Partial<Record<string, number>>> = {
  A112: { liver: 0.85, spleen: 0.83, lungs: 0.94 },
  Aslab: { liver: 0.87, spleen: 0.84, lungs: 0.94 },
  B: { liver: 0.73, spleen: 0.66, pancreas: 0.2 },
};

test('leave-one-patient-out organ Dice of the estimated anatomy against TotalSegmentator on the real CTs', async () => {
  const rows: EvalTarget[] = await evaluateEstimate(sharedPath('data', 'totalsegmentator'));
  assert.equal(rows.length, 3);
  const [a, slab, b] = rows as [EvalTarget, EvalTarget, EvalTarget];
  // never the target's own patient: the slab is patient A's, like example_ct
  for (const r of rows) assert.ok(!r.atlases.includes(r.patient === 'A' ? 'ts-example' : 'ts-dicom'), `${r.name}: ${r.atlases.join(',')}`);
  for (const [r, key] of [[a, 'A112'], [slab, 'Aslab'], [b, 'B']] as const) {
    for (const [organ, floor] of Object.entries(FLOOR[key]!)) {
      const d = r.dice[organ as keyof EvalTarget['dice']];
      assert.equal(typeof d, 'number', `${r.name} ${organ}: ${d}`);
      assert.ok((d as number) >= floor!, `${r.name} ${organ}: Dice ${(d as number).toFixed(3)} < ${floor}`);
    }
  }
  // no other patient has kidneys in view: said so, not scored as 0
  assert.equal(a.dice.kidney_left, 'no atlas');
  assert.equal(b.dice.kidney_left, 'absent');
});

test('an atlas registered onto its own CT gives its own organs back (geometry of the start and of elastix)', async () => {
  const atlas = (await loadAtlases()).find((x) => x.id === 'ts-dicom')!;
  // the atlas CT moved 30 mm along x and z in its header: the start and the registration must find it
  const moved = { ...atlas.ct, origin: [atlas.ct.origin[0] + 30, atlas.ct.origin[1], atlas.ct.origin[2] + 30] as [number, number, number] };
  const est = await estimateAnatomy(moved, { atlases: [atlas], fit: false });
  for (const name of ['liver', 'spleen']) {
    const v = organValue(name);
    let i = 0, x = 0, y = 0;
    for (let p = 0; p < est.data.length; p++) { const e = est.data[p] === v, t = atlas.labels.data[p] === v; if (e) x++; if (t) y++; if (e && t) i++; }
    const dice = (2 * i) / (x + y);
    assert.ok(dice > 0.85, `${name}: Dice ${dice.toFixed(3)} against the atlas's own map`);
  }
});

test('ground without an organ map says the organs are estimated and how to give TotalSegmentator\'s', () => {
  const out = mkdtempSync(join(tmpdir(), 'ctg-est-'));
  try {
    const r = spawnSync(process.execPath, [BIN, 'ground', '--ct', TS('example_ct_sm.nii.gz'), '--model', 'oracle:organ', '--out', out, '--report', '-'],
      { encoding: 'utf8', input: 'Liver: a 2 cm cyst in the liver.' });
    assert.equal(r.status, 0, String(r.stderr));
    const lines = String(r.stdout).split('\n').filter((l) => /organs estimated from the CT/.test(l));
    assert.equal(lines.length, 1, String(r.stdout));
    assert.match(lines[0]!, /--labels/);
    const f = JSON.parse(readFileSync(join(out, 'findings.json'), 'utf8')) as { anatomy: string; anomalies: { organ: string; organSource: string }[]; organs: { given: string[]; estimated: string[] } };
    assert.equal(f.anatomy, 'estimated');
    assert.deepEqual(f.organs.given, []);
    assert.ok(f.organs.estimated.includes('liver'));
    assert.ok(f.anomalies.every((x) => x.organSource === 'estimated'));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('the shipped atlases are small and real: int16 CTs with organ maps of our scheme', async () => {
  const atlases = await loadAtlases();
  assert.deepEqual(atlases.map((a) => a.patient).sort(), ['A', 'B']);
  for (const a of atlases) {
    const raw = await readVolume(join(projectRoot, 'data', 'anatomy', 'atlases', `${a.id}.ct.nii.gz`));
    assert.ok(raw.data instanceof Int16Array);
    let liver = 0;
    for (const v of a.labels.data) if (v === organValue('liver')) liver++;
    assert.ok(liver > 100, `${a.id}: ${liver} liver voxels`);
  }
});
