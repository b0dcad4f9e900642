import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng } from '../src/common/index.ts';
import { loadOrganScheme, loadPlaces, placeRegion } from '../src/anatomy/index.ts';
import { describePlace, OrganBoxes, type Canvas3, type InsertedLesion } from '../src/data/index.ts';
import { readCsvColumn, structureReport } from '../src/report/index.ts';
import { REPORTS_CSV } from './helpers/shared.ts';
import { DEFAULT_CROP, anomalyPlace, cropLabels, cropTiles, defaultConfig, namedSideLobe, organCrop, placePenalized, type CropGeometry, type GroundingAnomaly } from '../src/model/index.ts';

type V3 = [number, number, number];

// The synthetic engine names a lesion's place from where its centroid sits in its organ's box; the
// place table must point back at a region holding that centroid, or the prior would push maps away
// from the truth.
test('every place the data engine writes is a region of data/anatomy/places.json that holds the lesion', () => {
  const organs = [...new Set(loadPlaces().places.flatMap((p) => p.organs))];
  const n = 20;
  const rng = createRng(7);
  for (const target of organs) {
    const value = loadOrganScheme().byName.get(target)!.value;
    // the organ fills the whole hand-made grid: its box is [0, n − 1] mm on each axis
    const canvas: Canvas3 = { hu: new Float32Array(n ** 3), labels: new Uint8Array(n ** 3).fill(value), geom: { size: [n, n, n], spacing: [1, 1, 1], origin: [0, 0, 0], direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] } };
    const boxes = new OrganBoxes(canvas);
    let found = 0;
    for (let trial = 0; trial < 400; trial++) {
      const f = [rng.next(), rng.next(), rng.next()] as V3;
      const lesion = { target, centroid: f.map((v) => v * (n - 1)) as V3, kind: { words: 'nodule', shape: target === 'bladder' ? 'wall' : 'blob' } } as unknown as InsertedLesion;
      const place = describePlace(rng, lesion, boxes, {}, trial % 2 === 0);
      const text = place.parts.filter((p) => p.cls === 'anatomy' || p.cls === 'location').map((p) => p.text).join(' ');
      const region = placeRegion(target, text);
      if (!region) continue;
      found++;
      (['x', 'y', 'z'] as const).forEach((axis, a) => {
        const r = region[axis];
        if (r) assert.ok(f[a]! >= r[0] - 1e-9 && f[a]! <= r[1] + 1e-9, `${target}: "${text}" at ${axis} = ${f[a]!.toFixed(3)} outside [${r}]`);
      });
    }
    // the table must know the engine's words for every organ it lists
    assert.ok(found > 100, `${target}: only ${found} of 400 places matched the table`);
  }
});

test('placeRegion intersects the entries a phrase matches for its organ and matches whole words', () => {
  assert.deepEqual(placeRegion('liver', 'segment 7 of the right lobe liver'), { x: [0.45, 1], y: [0, 0.5], z: [0.5, 1] });
  assert.deepEqual(placeRegion('liver', 'segment VI liver'), { x: [0.45, 1], y: [0, 0.5], z: [0, 0.5] });
  // segment 4 lies in the left lobe's x range, not the right lobe's: a contradiction gives no region
  assert.equal(placeRegion('liver', 'segment 4 right lobe'), null);
  assert.deepEqual(placeRegion('kidney_left', 'the upper pole of the left kidney'), { z: [0.66, 1] });
  // the spleen's upper pole is drawn at another line than the kidney's
  assert.deepEqual(placeRegion('spleen', 'upper pole'), { z: [0.6, 1] });
  assert.equal(placeRegion('liver', 'upper pole'), null);
  assert.equal(placeRegion('colon', 'colonic wall'), null);
  assert.equal(placeRegion('liver', 'segment 77'), null);
});

test('a place applies only to a crop cut around its one organ', () => {
  const both: GroundingAnomaly = { ...anomaly([['location', 'upper pole'], ['anatomy', 'kidneys']]), organ: 'kidney' };
  const left: GroundingAnomaly = { ...anomaly([['location', 'upper pole'], ['location', 'left'], ['anatomy', 'kidney']]), organ: 'kidney' };
  const labels = new Float32Array(8 ** 3);
  const l = loadOrganScheme().byName.get('kidney_left')!.value, r = loadOrganScheme().byName.get('kidney_right')!.value;
  labels.forEach((_, p) => { labels[p] = p % 8 < 4 ? r : l; });
  const anatomy = { data: labels, size: [8, 8, 8] as V3, spacing: [10, 10, 10] as V3, origin: [0, 0, 0] as V3, direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] };
  const cfg = defaultConfig('full');
  assert.equal(anomalyPlace(anatomy, both, cfg), null);
  assert.deepEqual(anomalyPlace(anatomy, left, cfg), { z: [0.66, 1] });
  // a body-wide crop (the baseline's) is no organ's box
  assert.equal(anomalyPlace(anatomy, left, { ...cfg, crop: { ...cfg.crop, region: 'body' } }), null);
  // nor is the stand-in box of an organ the label map lacks
  assert.equal(anomalyPlace({ ...anatomy, data: new Float32Array(8 ** 3).fill(r) }, left, cfg), null);
});

test('the place penalty of each crop voxel equals one computed from its world position in the organ box', () => {
  const rng = createRng(3);
  const box = { min: [-30, 10, 100] as V3, max: [50, 70, 180] as V3 };
  const big = { min: [-150, -120, -200] as V3, max: [150, 110, 200] as V3 };
  const region = { x: [0.45, 1] as [number, number], z: [0.2, 0.5] as [number, number] };
  const penalty = 6, margin = 0.1;
  const crops: [typeof box, CropGeometry][] = [[box, organCrop(box, DEFAULT_CROP)], ...cropTiles(big, DEFAULT_CROP).slice(0, 3).map((t) => [big, t] as [typeof box, CropGeometry])];
  for (const [b, crop] of crops) {
    const n = crop.size[0] * crop.size[1] * crop.size[2];
    const logits = Float32Array.from({ length: n }, () => 4 * rng.next() - 2);
    const got = placePenalized(logits, crop, region, penalty, margin);
    let peak = -Infinity, outside = 0;
    for (let k = 0, p = 0; k < crop.size[2]; k++) for (let j = 0; j < crop.size[1]; j++) for (let i = 0; i < crop.size[0]; i++, p++) {
      const w = [i, j, k].map((v, a) => crop.origin[a]! + v * crop.spacing[a]!);
      const f = w.map((v, a) => (v - b.min[a]!) / (b.max[a]! - b.min[a]!));
      const past = Math.max(0, region.x[0] - f[0]!, f[0]! - region.x[1], region.z[0] - f[2]!, f[2]! - region.z[1]);
      const want = logits[p]! - penalty * Math.min(1, past / margin);
      assert.ok(Math.abs(got.logits[p]! - want) < 1e-4, `voxel ${i},${j},${k}: ${got.logits[p]} vs ${want}`);
      if (past > 0) outside++;
      peak = Math.max(peak, want);
    }
    assert.ok(Math.abs(got.peak - peak) < 1e-4);
    assert.ok(outside > 0, 'each crop must reach past the region, or the test checks nothing');
  }
});

const anomaly = (texts: [string, string][]): GroundingAnomaly => ({
  id: 'a1', organ: 'lung', type: 'nodule', certainty: 'positive',
  spans: texts.map(([cls, text]) => ({ class: cls, text, start: 0, end: text.length })),
});

test('a segment word does not override the lobe a phrase names', () => {
  assert.equal(namedSideLobe(anomaly([['location', 'superior segment'], ['location', 'right lower lobe']])).lobe, 'lower');
  assert.equal(namedSideLobe(anomaly([['location', 'superior segment'], ['location', 'lower lobe'], ['location', 'left']])).lobe, 'lower');
  assert.equal(namedSideLobe(anomaly([['location', 'apical segment'], ['location', 'right upper lobe']])).lobe, 'upper');
  assert.equal(namedSideLobe(anomaly([['location', 'upper zone'], ['location', 'right']])).lobe, 'upper');
});

// Real wording: the 1,564 CT-RATE reports name lung segments and kidney poles in many orders
// ("superior segment right lung lower lobe", "the left lower lobe superior segment"). Each such
// finding must land in its lobe's crop with the segment's region.
test('on the real CT-RATE reports, named lung segments and kidney poles give their lobe or kidney and its region', () => {
  const { texts } = readCsvColumn(REPORTS_CSV(), 'Findings_EN');
  // `lobe`: only phrases that name a lobe (a segment alone leaves the lobe to the structurer's guess)
  const checks: { words: RegExp; organs: string[]; region: string; lobe: boolean }[] = [
    // (the lingula's superior segment is in the upper lobe: only "… lower lobe" phrases here)
    { words: /\bsuperior segment\b.*\blower lobe\b|\blower lobe\b.*\bsuperior segment\b/, organs: ['lung_lower_lobe_right', 'lung_lower_lobe_left'], region: '{"z":[0.7,1]}', lobe: true },
    { words: /\bapicoposterior segment\b/, organs: ['lung_upper_lobe_left'], region: '{"z":[0.62,1]}', lobe: true },
    { words: /\bposterior segment\b.*\bupper lobe\b|\bupper lobe\b.*\bposterior segment\b/, organs: ['lung_upper_lobe_right', 'lung_upper_lobe_left'], region: '{"y":[0,0.5],"z":[0,0.62]}', lobe: true },
    { words: /\bupper pole\b/, organs: ['kidney_right', 'kidney_left'], region: '{"z":[0.66,1]}', lobe: false },
  ];
  const seen = checks.map(() => 0);
  for (const t of texts) {
    for (const a of structureReport(t).anomalies as unknown as GroundingAnomaly[]) {
      if (a.certainty === 'absent') continue;
      const text = a.spans.filter((s) => s.class === 'anatomy' || s.class === 'location').map((s) => s.text).join(' ').toLowerCase();
      // a phrase that names several lobes, segments or both sides holds several places (the structurer did not split it): not this test's case
      if (new Set(text.match(/\b(upper|middle|lower) lobe\b/g) ?? []).size > 1 || (text.match(/\bsegment\b/g) ?? []).length > 1 || (/\bright\b/.test(text) && /\bleft\b/.test(text))) continue;
      const labels = cropLabels(a);
      if (labels.length !== 1) continue;
      const organ = loadOrganScheme().byValue.get(labels[0]!)!.name;
      checks.forEach((c, k) => {
        // lung segments where the phrase names a lobe; a pole only for a kidney finding
        if (!c.words.test(text) || (c.lobe ? !/\blobe\b/.test(text) : a.organ !== 'kidney')) return;
        seen[k]!++;
        assert.ok(c.organs.includes(organ), `"${text}" cut around ${organ}`);
        const region = placeRegion(organ, text);
        assert.ok(region, `"${text}" (${organ}) names no region`);
        assert.equal(JSON.stringify(region), c.region, `"${text}"`);
      });
    }
  }
  // each case must occur in the real reports, or the test checks nothing
  seen.forEach((n, k) => assert.ok(n >= 10, `${checks[k]!.words}: ${n} findings`));
});
