import { test } from 'node:test';
import assert from 'node:assert/strict';
import { oracleGrounder, namedPlace, iouAt, type OrganLookup } from '../src/eval/index.ts';
import type { GroundingAnomaly } from '../src/model/index.ts';
import { denseVolume, type Volume } from '../src/volume/index.ts';

// A 20×10×10 grid at 2 mm, identity direction, origin 0: RAS x grows toward the patient's right.
const size: [number, number, number] = [20, 10, 10];
const n = size[0] * size[1] * size[2];
const geom = { size, spacing: [2, 2, 2] as [number, number, number], origin: [0, 0, 0] as [number, number, number], direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] };
const at = (i: number, j: number, k: number) => i + size[0] * (j + size[1] * k);

function labelVolume(): Volume<Uint8Array> {
  const data = new Uint8Array(n);
  for (let k = 0; k < 5; k++) for (let j = 0; j < 5; j++) {
    for (let i = 13; i < 18; i++) data[at(i, j, k)] = 1; // kidney_right (high x)
    for (let i = 2; i < 7; i++) data[at(i, j, k)] = 2; // kidney_left
  }
  for (let k = 5; k < 10; k++) for (let j = 0; j < 10; j++) for (let i = 0; i < 20; i++) data[at(i, j, k)] = 3; // one lung label
  return { data, ...geom };
}

const organs: OrganLookup = (cls) =>
  cls === 'kidney' ? [{ value: 1, name: 'kidney_right' }, { value: 2, name: 'kidney_left' }] : cls === 'lung' ? [{ value: 3, name: 'lung' }] : [];

const anomaly = (id: string, organ: string, place: string): GroundingAnomaly => ({
  id, organ, type: 'nodule', certainty: 'present',
  spans: [{ start: 0, end: place.length, text: place, class: 'anatomy' }, { start: 0, end: 6, text: 'nodule', class: 'anomaly' }],
});

const study = (anomalies: GroundingAnomaly[]) => {
  const anatomy = labelVolume();
  return { ct: { ...anatomy, data: new Float32Array(n) }, anatomy, report: { text: '', anomalies } };
};

test('namedPlace reads side and lobe from anatomy/location phrases only', () => {
  assert.deepEqual(namedPlace(anomaly('a', 'lung', 'left upper lobe')), { side: 'left', lobe: 'upper' });
  assert.deepEqual(namedPlace(anomaly('a', 'lung', 'both lungs')), { side: undefined, lobe: undefined });
});

test('organ oracle returns the whole organ; organ-side picks the side label', async () => {
  const s = study([anomaly('k', 'kidney', 'right kidney')]);
  const whole = denseVolume((await oracleGrounder('organ', { organs }).ground(s)).get('k')!);
  const side = denseVolume((await oracleGrounder('organ-side', { organs }).ground(s)).get('k')!);
  const right = new Uint8Array(n);
  for (let i = 0; i < n; i++) right[i] = s.anatomy.data[i] === 1 ? 1 : 0;
  assert.equal(whole.data.reduce((a, b) => a + b, 0), 2 * 125);
  assert.equal(iouAt(side.data, right, 0.5), 1);
  assert.equal(iouAt(whole.data, right, 0.5), 0.5);
});

test('organ-side halves a single-label organ at its centroid when the report names side and lobe', async () => {
  const s = study([anomaly('l', 'lung', 'left upper lobe')]);
  const m = denseVolume((await oracleGrounder('organ-side', { organs }).ground(s)).get('l')!);
  // lung centroid: x = 19 mm, z = 14 mm; left = x ≤ 19 (i ≤ 9), upper = z ≥ 14 (k ≥ 7, ties kept)
  let count = 0;
  for (let k = 0; k < 10; k++) for (let j = 0; j < 10; j++) for (let i = 0; i < 20; i++) {
    const inside = m.data[at(i, j, k)] === 1;
    if (inside) count++;
    assert.equal(inside, k >= 7 && i <= 9, `voxel ${i},${j},${k}`);
  }
  assert.equal(count, 10 * 10 * 3);
});

test('prior oracle puts a ball of the given volume at the region centre', async () => {
  const s = study([anomaly('k', 'kidney', 'right kidney')]);
  // radius 4.5 mm on a 2 mm grid centred on voxel (15, 2, 2): offsets with d² ≤ 5.06 voxels²
  const volume = (4 / 3) * Math.PI * 4.5 ** 3;
  const m = denseVolume((await oracleGrounder('prior', { organs, priorVolumeMm3: volume }).ground(s)).get('k')!);
  let expected = 0;
  for (let dz = -3; dz <= 3; dz++) for (let dy = -3; dy <= 3; dy++) for (let dx = -3; dx <= 3; dx++) if (4 * (dx * dx + dy * dy + dz * dz) <= 4.5 ** 2) expected++;
  assert.equal(expected, 57);
  assert.equal(m.data.reduce((a, b) => a + b, 0), expected);
  assert.equal(m.data[at(15, 2, 2)], 1);
  assert.equal(m.data[at(13, 2, 2)], 1);
  assert.equal(m.data[at(12, 2, 2)], 0);
});
