import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  connectedComponents, fallbackAnatomy, fromTotalSegmentator, insideDistance, loadOrganScheme, normalizedAnatomyChannel,
  organValue, organsForReportClass, reportClassOf,
} from '../src/anatomy/index.ts';
import { loadTaxonomy } from '../src/common/index.ts';
import { readVolume, type Volume } from '../src/volume/index.ts';
import { TS } from './helpers/shared.ts';

const grid = <T extends Volume['data']>(data: T, n: [number, number, number], sp = 1): Volume<T> => ({ data, size: n, spacing: [sp, sp, sp], origin: [0, 0, 0], direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] });

test('the scheme has about 32 organs, unique values, and report classes from the taxonomy', () => {
  const s = loadOrganScheme();
  assert.ok(s.organs.length >= 30 && s.organs.length <= 40, String(s.organs.length));
  assert.equal(new Set(s.organs.map((o) => o.value)).size, s.organs.length);
  const classes = new Set(loadTaxonomy().reportOrgans);
  for (const o of s.organs) for (const r of o.report) assert.ok(classes.has(r), `${o.name}: ${r}`);
  assert.deepEqual(organsForReportClass('lung', { primary: true }).map((v) => s.byValue.get(v)!.name).sort(),
    ['lung_lower_lobe_left', 'lung_lower_lobe_right', 'lung_middle_lobe_right', 'lung_upper_lobe_left', 'lung_upper_lobe_right']);
  assert.deepEqual(organsForReportClass('lung', { primary: true, side: 'left', lobe: 'upper' }), [organValue('lung_upper_lobe_left')]);
  assert.deepEqual(organsForReportClass('kidney', { side: 'right', primary: true }), [organValue('kidney_right')]);
  assert.equal(reportClassOf(organValue('liver')), 'liver');
});

test('every TotalSegmentator v2 label maps into the scheme, by the name TotalSegmentator gives it', () => {
  const ts = JSON.parse(readFileSync(TS('total_v2_labels.json'), 'utf8')) as { labels: Record<string, string> };
  const ours = JSON.parse(readFileSync(new URL('../data/anatomy/totalsegmentator_v2.json', import.meta.url), 'utf8')) as { labels: Record<string, { ts: string; organ: string }> };
  assert.equal(Object.keys(ts.labels).length, 117);
  for (const [v, name] of Object.entries(ts.labels)) {
    assert.equal(ours.labels[v]?.ts, name, `label ${v}`);
    assert.ok(loadOrganScheme().byName.has(ours.labels[v]!.organ));
  }
});

test('fromTotalSegmentator relabels the real segmentation voxel for voxel', async () => {
  const seg = await readVolume(TS('example_seg.nii.gz'));
  const out = fromTotalSegmentator(seg);
  const count = (d: ArrayLike<number>, vals: number[]): number => { let n = 0; for (let i = 0; i < d.length; i++) if (vals.includes(d[i]!)) n++; return n; };
  // liver = TotalSegmentator 5; left kidney = 3 plus its cyst label 23; lungs = 10..14
  assert.equal(count(out.data, [organValue('liver')]), count(seg.data, [5]));
  assert.equal(count(out.data, [organValue('kidney_left')]), count(seg.data, [3, 23]));
  assert.ok(count(seg.data, [5]) > 1000);
  assert.equal(count(out.data, organsForReportClass('lung', { primary: true })), count(seg.data, [10, 11, 12, 13, 14]));
  assert.deepEqual(out.size, seg.size);
  // With the CT, voxels TotalSegmentator leaves empty inside the body get fat/soft tissue, organs stay.
  const ct = await readVolume(TS('example_ct_sm.nii.gz'));
  const full = fromTotalSegmentator(seg, ct);
  for (let i = 0; i < seg.data.length; i++) if (seg.data[i]) assert.equal(full.data[i], out.data[i]);
  assert.ok(count(full.data, [organValue('fat')]) > 10000);
});

test('fallbackAnatomy on a hand-made body: outside air, two lungs by side, airway, bone, fat, soft tissue', () => {
  const n = 40, d = new Int16Array(n * n * n).fill(-1000);
  const at = (i: number, j: number, k: number): number => i + n * (j + n * k);
  for (let k = 0; k < n; k++) for (let j = 4; j < 36; j++) for (let i = 2; i < 38; i++) {
    let v = 40;
    if (j < 8 || j > 32 || i < 5 || i > 34) v = -100; // subcutaneous fat
    if (i >= 8 && i < 16 && j >= 12 && j < 28) v = -850; // lung at low i = patient left (RAS: x grows to the right)
    if (i >= 24 && i < 32 && j >= 12 && j < 28) v = -850; // lung at high i = patient right
    if (i >= 18 && i < 22 && j >= 8 && j < 12) v = 700; // bone, posterior midline
    if (i >= 19 && i < 22 && j >= 20 && j < 23) v = -1000; // trachea: thin air tube on the midline
    if (i >= 32 && i < 35 && j >= 29 && j < 32 && k >= 5 && k < 8) v = -1000; // a gas bubble off the midline
    d[at(i, j, k)] = v;
  }
  const lab = fallbackAnatomy(grid(d, [n, n, n], 2)).data;
  const name = (i: number, j: number, k: number): string => loadOrganScheme().byValue.get(lab[at(i, j, k)]!)?.name ?? 'none';
  assert.equal(name(0, 0, 20), 'none');
  assert.match(name(28, 20, 20), /^lung_.*_right$/);
  assert.match(name(10, 20, 20), /^lung_.*_left$/);
  assert.equal(name(20, 9, 20), 'spine');
  assert.equal(name(3, 20, 20), 'fat');
  assert.equal(name(20, 17, 20), 'soft_tissue');
  assert.equal(name(20, 21, 20), 'airway');
  assert.equal(name(33, 30, 6), 'soft_tissue');
});

test('fallbackAnatomy agrees with TotalSegmentator on the real CT for lungs and body', async () => {
  const ct = await readVolume(TS('example_ct_sm.nii.gz'));
  const seg = await readVolume(TS('example_seg.nii.gz'));
  const fb = fallbackAnatomy(ct).data;
  const lungs = new Set(organsForReportClass('lung', { primary: true }));
  let tsLung = 0, both = 0, organs = 0, inBody = 0;
  for (let i = 0; i < seg.data.length; i++) {
    const v = seg.data[i]!;
    if (v >= 10 && v <= 14) { tsLung++; if (lungs.has(fb[i]!)) both++; }
    if (v) { organs++; if (fb[i]) inBody++; }
  }
  assert.ok(both / tsLung > 0.7, `lung agreement ${both}/${tsLung}`);
  assert.ok(inBody / organs > 0.98, `organs inside the fallback body ${inBody}/${organs}`);
});

test('normalizedAnatomyChannel maps labels to [0, 1] by the largest value', () => {
  const max = loadOrganScheme().maxValue;
  const ch = normalizedAnatomyChannel(grid(new Uint8Array([0, 1, max, 16, 255]), [5, 1, 1]));
  assert.deepEqual([...ch].map((x) => Math.round(x * 1e6) / 1e6), [0, Math.round(1e6 / max) / 1e6, 1, Math.round((16 / max) * 1e6) / 1e6, 1]);
});

test('connected components and inside distance on hand-made masks', () => {
  const n = 12, m = new Uint8Array(n * n * n);
  const at = (i: number, j: number, k: number): number => i + n * (j + n * k);
  for (let k = 1; k < 4; k++) for (let j = 1; j < 4; j++) for (let i = 1; i < 4; i++) m[at(i, j, k)] = 1; // 27
  for (let k = 6; k < 11; k++) for (let j = 6; j < 11; j++) for (let i = 6; i < 11; i++) m[at(i, j, k)] = 1; // 125
  const cc = connectedComponents(m, [n, n, n]);
  assert.deepEqual(cc.sizes.slice(1).sort((a, b) => a - b), [27, 125]);
  // Brute-force distance to the nearest outside voxel centre, with anisotropic spacing.
  const sp = [1, 1.5, 2];
  const dist = insideDistance(m, [n, n, n], sp);
  for (const [i, j, k] of [[8, 8, 8], [6, 8, 8], [2, 2, 2], [9, 7, 8]] as const) {
    let best = Infinity;
    for (let kk = -1; kk <= n; kk++) for (let jj = -1; jj <= n; jj++) for (let ii = -1; ii <= n; ii++) {
      const inside = ii >= 0 && jj >= 0 && kk >= 0 && ii < n && jj < n && kk < n && m[at(ii, jj, kk)];
      if (!inside) best = Math.min(best, Math.hypot((ii - i) * sp[0]!, (jj - j) * sp[1]!, (kk - k) * sp[2]!));
    }
    const got = dist[at(i, j, k)]!;
    assert.ok(Math.abs(got - best) <= 0.1 * best + 1e-6, `(${i},${j},${k}): ${got} vs ${best}`);
  }
  assert.equal(dist[at(0, 0, 0)], 0);
});
