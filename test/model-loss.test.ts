import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, InferenceModel } from '../src/engine/index.ts';
import { applyCalibration, defaultConfig, localizationLoss, mapCalibration, mapCapMm3, mapFromLogits, sizeCappedCalibration, statedDiameterMm, statedVolumeMm3, SUPPORT_LEVEL, type GroundingAnomaly, type GroundingConfig } from '../src/model/index.ts';
import { cropHits } from '../src/train/index.ts';

const cfg = (minPeak: number): GroundingConfig => ({ ...defaultConfig('full'), minPeak });

test('localizationLoss equals −Σ t̂·log softmax(z) computed by hand, per sample, averaged', async () => {
  const B = 2, n = 12;
  const z = Float32Array.from({ length: B * n }, (_, i) => Math.sin(i * 1.7) * 3);
  const t = Float32Array.from({ length: B * n }, (_, i) => (i % 5 === 0 ? 0.5 : i % 7 === 0 ? 1 : 0));
  const g = new Graph({ seed: 0 });
  const logits = g.input('z', [B, 1, 3, 2, 2]), target = g.input('t', [B, 1, 3, 2, 2]);
  const m = await InferenceModel.create(g, { loss: localizationLoss(logits, target) });
  const got = ((await m.run({ z, t })).loss as Float32Array)[0]!;
  await m.dispose();
  let want = 0;
  for (let b = 0; b < B; b++) {
    const zs = [...z.subarray(b * n, (b + 1) * n)], ts = [...t.subarray(b * n, (b + 1) * n)];
    const lse = Math.log(zs.reduce((a, v) => a + Math.exp(v), 0));
    const mass = ts.reduce((a, v) => a + v, 0);
    want += -ts.reduce((a, v, i) => a + (v / mass) * (zs[i]! - lse), 0) / B;
  }
  assert.ok(Math.abs(got - want) < 1e-4, `${got} vs ${want}`);
});

test('mapFromLogits: a faint map is lifted until its peak is minPeak, keeping its shape; a confident one is untouched', () => {
  const z = Float32Array.from([-9, -7, -6.5, -12]);
  const lifted = mapFromLogits(cfg(0.5), z);
  assert.ok(Math.abs(lifted[2]! - 0.5) < 1e-6, 'the peak becomes exactly minPeak');
  assert.ok(lifted[1]! < lifted[2]! && lifted[0]! < lifted[1]! && lifted[3]! < lifted[0]!, 'order kept');
  assert.ok(Math.abs(Math.log(lifted[1]! / (1 - lifted[1]!)) - (-7 + 6.5)) < 1e-5, 'a logit shift, not a rescale');
  const sure = Float32Array.from([2, -3]);
  const kept = mapFromLogits(cfg(0.5), sure);
  assert.ok(Math.abs(kept[0]! - 1 / (1 + Math.exp(-2))) < 1e-7);
  const off = mapFromLogits(cfg(0), z);
  assert.ok(off[2]! < 0.01, 'minPeak 0: the plain sigmoid');
});

test('mapFromLogits with a floor: values under it are 0, the rest exactly the sigmoid after the minPeak shift', () => {
  const z = Float32Array.from({ length: 200 }, (_, i) => -14 + i * 0.07);
  const floored = mapFromLogits(cfg(0.5), z, undefined, 0.01), plain = mapFromLogits(cfg(0.5), z);
  let zeros = 0;
  for (let i = 0; i < z.length; i++) {
    if (plain[i]! < 0.01) { assert.equal(floored[i], 0, `value ${plain[i]} under the floor`); zeros++; }
    else assert.equal(floored[i], plain[i]);
  }
  assert.ok(zeros > 10 && zeros < z.length - 10, `${zeros} of ${z.length} under the floor`);
});

test('cropHits applies the accuracy rule (IoU > 0.1 at 0.1) to hand-made maps', () => {
  const n = 100;
  const target = new Float32Array(2 * n);
  for (let i = 0; i < 10; i++) target[i] = 1; // sample 0: lesion = voxels 0..9
  for (let i = 0; i < 10; i++) target[n + i] = 1; // sample 1: the same
  const z = new Float32Array(2 * n).fill(-10);
  // sample 0: 50 voxels on at 0.5, covering 5 lesion voxels → IoU 5 / 55 < 0.1: miss
  for (let i = 5; i < 55; i++) z[i] = 0;
  // sample 1: 30 voxels on, covering all 10 → IoU 10 / 30: hit
  for (let i = 0; i < 30; i++) z[n + i] = 0;
  assert.deepEqual(cropHits(cfg(0.5), z, target, n), [0, 1]);
});

test('mapFromLogits with a temperature: p = sigmoid(z / T + shift), the lift and the floor computed on the scaled logits', () => {
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  const z = Float32Array.from({ length: 120 }, (_, i) => -16 + i * 0.1);
  // a map confident enough for no lift: plain sigmoid of z / T
  const hot = Float32Array.from(z, (v) => v + 12), T = 0.5;
  const sharp = mapFromLogits({ ...cfg(0.5), temperature: T }, hot);
  for (let i = 0; i < z.length; i++) assert.ok(Math.abs(sharp[i]! - sig(hot[i]! / T)) < 1e-6);
  // a faint map: its peak is lifted to minPeak after scaling, so p = sigmoid((z − zmax) / T) · … at the peak 0.5
  const faint = mapFromLogits({ ...cfg(0.5), temperature: T }, z, undefined, 0.01);
  const zmax = z[z.length - 1]!;
  for (let i = 0; i < z.length; i++) {
    const want = sig((z[i]! - zmax) / T);
    assert.ok(want < 0.01 ? faint[i] === 0 : Math.abs(faint[i]! - want) < 1e-6, `${i}: ${faint[i]} vs ${want}`);
  }
  // sharper than T = 1: fewer values at or above 0.1 around the same peak
  const plain = mapFromLogits(cfg(0.5), z);
  const above = (m: Float32Array) => m.filter((v) => v >= 0.1).length;
  assert.ok(above(faint) < above(plain) && above(faint) > 0, `${above(faint)} vs ${above(plain)}`);
});

test('applyCalibration\'s sigmoid is within 1e-7 of Math.exp\'s over the whole logit range, and 0 exactly under the floor logit', () => {
  const z = Float32Array.from({ length: 400001 }, (_, i) => -40 + i * 2e-4);
  for (const c of [{ scale: 1, shift: 0, below: -Infinity }, { scale: 2, shift: 1.3, below: -3 }, { scale: 0.7, shift: -4.1, below: 2 }]) {
    const p = applyCalibration(z, c);
    let worst = 0;
    for (let i = 0; i < z.length; i++) {
      if (z[i]! < c.below) { assert.equal(p[i], 0); continue; }
      worst = Math.max(worst, Math.abs(p[i]! - 1 / (1 + Math.exp(-(z[i]! * c.scale + c.shift)))));
    }
    assert.ok(worst < 1e-7, `scale ${c.scale} shift ${c.shift}: worst ${worst}`);
  }
});

test('statedDiameterMm reads the sizes reports write; words without a number and unit state none', () => {
  const cases: [string, number | undefined][] = [
    ['12 mm', 12], ['1.2 cm', 12], ['4x4 mm', 4], ['28 x 20 mm', Math.sqrt(28 * 20)], ['1.2 x 0.8 cm', Math.sqrt(12 * 8)],
    ['28x20x15 mm', Math.cbrt(28 * 20 * 15)], ['3 by 2 cm', Math.sqrt(30 * 20)], ['9MM', 9],
    ['moderate', undefined], ['small', undefined], ['12', undefined], ['mm', undefined],
  ];
  for (const [text, want] of cases) {
    const got = statedDiameterMm(text);
    assert.ok(want === undefined ? got === undefined : Math.abs(got! - want) < 1e-9, `${text}: ${got} vs ${want}`);
  }
  const span = (text: string) => ({ start: 0, end: text.length, text, class: 'size' });
  const a = (type: string, size: string) => ({ id: 'a', organ: 'liver', type, certainty: 'present', spans: [span(size)] });
  assert.ok(Math.abs(statedVolumeMm3(a('cyst', '2 cm'))! - (Math.PI / 6) * 8000) < 1e-6);
  // a wall's thickness or a duct's caliber is not the finding's extent
  assert.equal(statedVolumeMm3(a('wall_thickening', '8 mm')), undefined);
  assert.equal(statedVolumeMm3(a('duct_dilation', '5 mm')), undefined);
});

test('sizeCappedCalibration: a map whose support exceeds sizeCap × the stated volume is sharpened to hold it, the peak kept; a small one is left alone', () => {
  // a broad blob on a 20³ grid of 2 mm voxels (8 mm³ each), peak 1.5 at the centre
  const N = 20, z = new Float32Array(N ** 3);
  for (let k = 0, o = 0; k < N; k++) for (let j = 0; j < N; j++) for (let i = 0; i < N; i++, o++) z[o] = 1.5 - 0.02 * ((i - 10) ** 2 + (j - 10) ** 2 + (k - 10) ** 2);
  const c = { ...defaultConfig('full'), minPeak: 0.5, temperature: 0.5, sizeCap: 3 };
  const peak = 1.5, tiles = [z];
  const support = (m: Float32Array) => m.filter((v) => v >= SUPPORT_LEVEL).length;
  const base = mapFromLogits(c, z);
  const stated = 100; // mm³: the cap holds 300 mm³ = 37 voxels
  const capped = applyCalibration(z, sizeCappedCalibration(c, tiles, 8, peak, 3 * stated));
  assert.ok(support(base) > 200, `the test needs a broad map (${support(base)} voxels)`);
  const keep = Math.floor((3 * stated) / 8);
  // ties of the radial blob: the support is the shells up to the cut, at least `keep` voxels and not a whole next shell more
  assert.ok(support(capped) >= keep && support(capped) <= keep + 30, `${support(capped)} voxels vs cap ${keep}`);
  assert.ok(Math.abs(Math.max(...capped) - Math.max(...base)) < 1e-6, 'the peak keeps its probability');
  // the order of voxels is kept (a monotone map of the same logits; far tails may both underflow to 0)
  for (let i = 1; i < z.length; i += 7) assert.ok(Math.sign(capped[i]! - capped[i - 1]!) * Math.sign(base[i]! - base[i - 1]!) >= 0, `voxel ${i}`);
  // a large bound or none: exactly the plain calibration
  for (const cap of [3e6, undefined]) assert.deepEqual(sizeCappedCalibration(c, tiles, 8, peak, cap), mapCalibration(c, peak));
});

test('mapCapMm3: sizeCap × a stated size; without one, typicalSizeCap × the typical volume of the organ and type, else of the type', () => {
  const a = (organ: string, type: string, size?: string): GroundingAnomaly => ({ id: 'a', organ, type, certainty: 'present', spans: size ? [{ class: 'size', text: size, start: 0, end: size.length }] : [] });
  const typicalMm3 = { 'liver:cyst': 900, cyst: 500, duct_dilation: 300 };
  const c = { ...defaultConfig('full'), sizeCap: 2, typicalSizeCap: 3, typicalMm3 };
  const twoCm = (Math.PI / 6) * 8000;
  assert.ok(Math.abs(mapCapMm3(c, a('liver', 'cyst', '2 cm'))! - 2 * twoCm) < 1e-6);
  assert.equal(mapCapMm3(c, a('liver', 'cyst')), 3 * 900);
  assert.equal(mapCapMm3(c, a('kidney', 'cyst')), 3 * 500);
  // a duct's stated caliber is not its size: the typical volume bounds it
  assert.equal(mapCapMm3(c, a('pancreas', 'duct_dilation', '5 mm')), 3 * 300);
  assert.equal(mapCapMm3(c, a('liver', 'mass')), undefined);
  // a stated size without sizeCap bounds nothing (the typical cap is for findings with no stated size)
  assert.equal(mapCapMm3({ ...c, sizeCap: undefined }, a('liver', 'cyst', '2 cm')), undefined);
  assert.equal(mapCapMm3({ ...c, typicalSizeCap: undefined }, a('liver', 'cyst')), undefined);
});
