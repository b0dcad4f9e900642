import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { contrastGated, cropLabels, isDensityDefined, loadGroundingModel, organDensity } from '../src/model/index.ts';
import { readManifest, goldReport } from '../src/eval/index.ts';
import { boxedVolume, denseVolume, readVolume, type Volume } from '../src/volume/index.ts';
import { createRng, projectRoot } from '../src/common/index.ts';

const grid = { size: [9, 7, 6] as [number, number, number], spacing: [1, 1, 2] as [number, number, number], origin: [0, 0, 0] as [number, number, number], direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] };

/** A hand-made CT (integer HU) and label map: label 3 and 4 voxels drawn from two HU ranges, the rest air and fat. */
function handMade(seed: number): { ct: Volume; anatomy: Volume } {
  const rng = createRng(seed), rnd = () => rng.next(), n = grid.size[0] * grid.size[1] * grid.size[2];
  const ct = new Float32Array(n), lab = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const r = rnd();
    lab[i] = r < 0.45 ? 3 : r < 0.6 ? 4 : 0;
    ct[i] = lab[i] === 3 ? Math.round(20 + 60 * rnd()) : lab[i] === 4 ? Math.round(-30 + 200 * rnd()) : Math.round(-1000 + 900 * rnd());
  }
  return { ct: { ...grid, data: ct }, anatomy: { ...grid, data: lab } };
}

/** The lower median by sorting (what a 1-HU histogram's first bin reaching half the count is). */
function lowerMedian(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.ceil(s.length / 2) - 1]!;
}

test('organDensity is the median and 1.4826 × median absolute deviation of the labelled voxels, computed by sorting', () => {
  for (const seed of [1, 2, 3]) {
    const { ct, anatomy } = handMade(seed);
    for (const labels of [[3], [4], [3, 4]]) {
      const vals = [...ct.data].filter((_, i) => labels.includes(anatomy.data[i]!));
      const m = lowerMedian(vals), mad = lowerMedian(vals.map((v) => Math.abs(v - m)));
      assert.deepEqual(organDensity(ct, anatomy, labels), { median: m, spread: Math.max(1, 1.4826 * mad) }, `seed ${seed}, labels ${labels.join(',')}`);
    }
  }
  const { ct, anatomy } = handMade(4);
  assert.equal(organDensity(ct, anatomy, [9]), null, 'no voxels of the label: no organ to contrast with');
  // cut to a box: only the labelled voxels inside it count
  const within = { min: [2, 1, 1] as [number, number, number], max: [6, 5, 3] as [number, number, number] };
  const inBox = (i: number) => { const x = i % 9, y = Math.floor(i / 9) % 7, z = Math.floor(i / 63); return x >= 2 && x <= 6 && y >= 1 && y <= 5 && z >= 1 && z <= 3; };
  const vals = [...ct.data].filter((_, i) => anatomy.data[i] === 3 && inBox(i));
  const m = lowerMedian(vals);
  assert.deepEqual(organDensity(ct, anatomy, [3], within), { median: m, spread: Math.max(1, 1.4826 * lowerMedian(vals.map((v) => Math.abs(v - m)))) });
  assert.equal(organDensity(ct, anatomy, [3], { min: [0, 0, 0], max: [0, 0, 0] }), null, 'fewer than 8 voxels in the box');
});

/**
 * The gate's rule on dense arrays: the side of the median the map's core (≥ half its peak) lies on,
 * weighted by the map; the map unchanged when nothing at 0.1 or more would be left of it.
 */
function expectedGate(map: ArrayLike<number>, hu: ArrayLike<number>, median: number, spread: number, gate: number): Float32Array {
  let peak = 0, side = 0;
  for (let i = 0; i < map.length; i++) peak = Math.max(peak, map[i]!);
  for (let i = 0; i < map.length; i++) if (map[i]! > 0 && map[i]! >= 0.5 * peak) side += map[i]! * (hu[i]! - median);
  const s = Math.sign(side);
  const out = Float32Array.from(map, (v, i) => ((s ? s * (hu[i]! - median) : Math.abs(hu[i]! - median)) >= gate * spread ? v : 0));
  return peak >= 0.1 && !out.some((v) => v >= 0.1) ? Float32Array.from(map) : out;
}

test('contrastGated keeps exactly the map voxels at least gate spreads from the organ median on its core\'s side, keeps the box, leaves the input map alone', () => {
  const { ct } = handMade(5);
  const rng = createRng(6), rnd = () => rng.next(), n = ct.data.length;
  const dense = new Float32Array(n);
  for (let k = 1; k <= 4; k++) for (let j = 2; j <= 5; j++) for (let i = 1; i <= 6; i++) dense[i + 9 * (j + 7 * k)] = 0.05 + 0.9 * rnd();
  const map = boxedVolume({ ...grid, data: dense });
  const before = Float32Array.from(map.data);
  for (const organ of [{ median: 40, spread: 25 }, { median: -500, spread: 100 }, { median: 120, spread: 30 }]) for (const gate of [0.5, 1, 2]) {
    const out = contrastGated(map, ct, organ, gate);
    assert.deepEqual(out.box, map.box);
    const got = denseVolume(out).data, want = expectedGate(dense, ct.data, organ.median, organ.spread, gate);
    for (let i = 0; i < n; i++) assert.equal(got[i], want[i], `voxel ${i} at gate ${gate}, median ${organ.median}`);
    assert.ok(got.some((v, i) => dense[i] && !v), 'the test needs voxels the gate removes');
  }
  assert.deepEqual(map.data, before);
});

test('contrastGated: a map whose core is brighter than the organ loses the dark voxels too, however far from the median', () => {
  const hu = new Float32Array([100, 110, 95, -100, 70, 45, 0, 0]);
  const ct = { size: [8, 1, 1] as [number, number, number], spacing: [1, 1, 1] as [number, number, number], origin: [0, 0, 0] as [number, number, number], direction: [1, 0, 0, 0, 1, 0, 0, 0, 1], data: hu };
  const map = boxedVolume({ ...ct, data: new Float32Array([0.9, 0.8, 0.7, 0.3, 0.3, 0.3, 0, 0]) });
  const got = denseVolume(contrastGated(map, ct, { median: 40, spread: 10 }, 1)).data;
  // core (≥ 0.45): HU 100, 110, 95, all above 40; -100 is far but on the other side, 45 too near
  assert.deepEqual([...got], [0.9, 0.8, 0.7, 0, 0.3, 0, 0, 0].map((v) => Math.fround(v)));
});

test('contrastGated gives back the whole map when it would leave nothing at 0.1 or more: a described finding keeps a region', () => {
  const hu = new Float32Array([38, 42, 41, 39, 120, 0, 0, 0]);
  const ct = { size: [8, 1, 1] as [number, number, number], spacing: [1, 1, 1] as [number, number, number], origin: [0, 0, 0] as [number, number, number], direction: [1, 0, 0, 0, 1, 0, 0, 0, 1], data: hu };
  // every voxel of the map at 0.1 or more is within a spread of the median; the far one (120) holds 0.05 only
  const map = boxedVolume({ ...ct, data: new Float32Array([0.6, 0.9, 0.5, 0.2, 0.05, 0, 0, 0]) });
  assert.deepEqual([...denseVolume(contrastGated(map, ct, { median: 40, spread: 10 }, 1)).data], [...denseVolume(map).data]);
  // with that voxel at 0.1 the gate keeps it alone
  const map2 = boxedVolume({ ...ct, data: new Float32Array([0.6, 0.9, 0.5, 0.2, 0.1, 0, 0, 0]) });
  assert.deepEqual([...denseVolume(contrastGated(map2, ct, { median: 40, spread: 10 }, 1)).data], [0, 0, 0, 0, Math.fround(0.1), 0, 0, 0]);
});

test('the gate applies to density-defined findings only (data/taxonomy)', () => {
  for (const t of ['cyst', 'nodule', 'duct_dilation', 'low_density_area']) assert.ok(isDensityDefined(t), t);
  for (const t of ['aneurysm', 'wall_thickening', 'atrophy', 'no_such_type']) assert.ok(!isDensityDefined(t), t);
});

test('a model calibrated with a contrast gate grounds the bundled study with the gated maps of the ungated model', async () => {
  const dir = join(projectRoot, 'examples', 'demo'), s = readManifest(dir)[0]!;
  const study = { ct: await readVolume(join(dir, s.ct)), anatomy: await readVolume(join(dir, s.labels)), report: goldReport(dir, s) };
  const model = await loadGroundingModel(join(projectRoot, 'models', 'grounding-default'));
  const plain = model.calibrated({ contrastGate: undefined }), gated = model.calibrated({ contrastGate: 1 });
  const a = await plain.ground(study), b = await gated.ground(study);
  let changed = 0;
  for (const an of study.report.anomalies) {
    const x = denseVolume(a.get(an.id)!).data, y = denseVolume(b.get(an.id)!).data;
    if (!isDensityDefined(an.type)) { assert.deepEqual(y, x, an.id); continue; }
    // independently of the grounder: the median and spread, by sorting, of the organ's voxels within 15 mm of the map's box
    const labels = cropLabels(an), box = a.get(an.id)!.box!, [nx, ny] = study.ct.size;
    const pad = study.ct.spacing.map((sp) => Math.ceil(15 / sp));
    const near = (i: number) => { const c = [i % nx, Math.floor(i / nx) % ny, Math.floor(i / (nx * ny))]; return c.every((v, ax) => v >= box.min[ax]! - pad[ax]! && v <= box.max[ax]! + pad[ax]!); };
    let vals = [...study.ct.data].filter((_, i) => labels.includes(study.anatomy.data[i]!) && near(i)).map(Math.round);
    if (vals.length < 8) vals = [...study.ct.data].filter((_, i) => labels.includes(study.anatomy.data[i]!)).map(Math.round);
    const m = lowerMedian(vals), spread = Math.max(1, 1.4826 * lowerMedian(vals.map((v) => Math.abs(v - m))));
    const want = expectedGate(x, study.ct.data, m, spread, 1);
    for (let i = 0; i < x.length; i++) {
      assert.equal(y[i], want[i]);
      if (x[i] && !want[i]) changed++;
    }
  }
  assert.ok(changed > 0, 'the gate removed nothing on the bundled study');
  await model.dispose();
});
