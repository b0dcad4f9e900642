import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRng } from '../src/common/index.ts';
import {
  DEFAULT_CROP, anomalyBox, anomalyTiles, cropKey, cropLabels, cropTiles, maskWorldBox, defaultConfig, isTiled, mapFromLogits, organCrop, pasteToGrid, positionChannels, tileNear,
  type CropGeometry, type GroundingConfig,
} from '../src/model/index.ts';
import { freshTextEncoder, prepareSamples } from '../src/train/index.ts';
import { readManifest } from '../src/eval/index.ts';
import { denseVolume, type Volume } from '../src/volume/index.ts';
import { makeToyDataset } from './train-fixture.ts';
import { loadOrganScheme } from '../src/anatomy/index.ts';

type V3 = [number, number, number];
const cfg = DEFAULT_CROP;
const side = (cfg.grid - 1) * cfg.maxSpacingMm!;
const lo = (t: CropGeometry, a: number) => t.origin[a]!;
const hi = (t: CropGeometry, a: number) => t.origin[a]! + (t.size[a]! - 1) * t.spacing[a]!;
// a point's depth inside a tile: the least distance to its faces (negative outside)
const depth = (t: CropGeometry, p: number[]) => Math.min(...[0, 1, 2].map((a) => Math.min(p[a]! - lo(t, a), hi(t, a) - p[a]!)));

test('a small organ keeps its one cube; a large one is tiled at maxSpacingMm and every point of it lies well inside some tile', () => {
  const small = { min: [0, 0, 0] as V3, max: [100, 80, 60] as V3 };
  assert.equal(isTiled(small, cfg), false);
  assert.deepEqual(cropTiles(small, cfg), [organCrop(small, cfg)]);
  // one cube: side = largest extent + 2 margins = 120 mm over 32 voxels
  assert.deepEqual(organCrop(small, cfg).spacing, [3.75, 3.75, 3.75]);

  // a liver-sized box, off-origin, taller than maxMm allows one cube to see at 5 mm
  const big = { min: [-130, 40, 900] as V3, max: [90, 190, 1200] as V3 };
  assert.ok(isTiled(big, cfg));
  const tiles = cropTiles(big, cfg);
  assert.deepEqual(tiles.map((t) => t.size.length), tiles.map(() => 3));
  for (const t of tiles) { assert.deepEqual(t.spacing, [5, 5, 5]); assert.deepEqual(t.size, [cfg.grid, cfg.grid, cfg.grid]); }
  // per axis: 220 + 20 → 2 tiles, 150 + 20 → 2, 300 + 20 → 3
  assert.equal(tiles.length, 2 * 2 * 3);
  const rng = createRng(7);
  for (let q = 0; q < 2000; q++) {
    const p = [0, 1, 2].map((a) => rng.uniform(big.min[a]!, big.max[a]!));
    const best = Math.max(...tiles.map((t) => depth(t, p)));
    // inside some tile, and an eighth of a tile deep unless the point is near the box's faces
    assert.ok(best >= 0, `point ${p} outside every tile`);
    const nearFace = [0, 1, 2].some((a) => p[a]! - big.min[a]! < side / 8 || big.max[a]! - p[a]! < side / 8);
    if (!nearFace) assert.ok(best >= side / 8 - 1e-6, `point ${p} only ${best.toFixed(1)} mm inside its best tile`);
  }
});

test('each tile keeps its place in the organ box: position features equal 2·(w − centre)/extent, computed from world coordinates', () => {
  const box = { min: [-130, 40, 900] as V3, max: [90, 190, 1200] as V3 };
  const tiles = cropTiles(box, cfg);
  const G = cfg.grid, n = G ** 3;
  for (const t of [tiles[0]!, tiles[tiles.length - 1]!, tiles[5]!]) {
    const pos = positionChannels(G, t.positionScale, t.positionOffset);
    for (let o = 0; o < n; o += 97) {
      const idx = [o % G, Math.floor(o / G) % G, Math.floor(o / (G * G))];
      for (let a = 0; a < 3; a++) {
        const w = t.origin[a]! + idx[a]! * t.spacing[a]!;
        const u = Math.max(-2, Math.min(2, (2 * (w - (box.min[a]! + box.max[a]!) / 2)) / (box.max[a]! - box.min[a]!)));
        assert.ok(Math.abs(pos[a * 5 * n + o]! - u / 2) < 1e-4, `axis ${a}: ${pos[a * 5 * n + o]} vs ${u / 2}`);
      }
    }
  }
});

test('a training tile near a lesion always holds it, and is not always centred on it', () => {
  const box = { min: [-130, 40, 900] as V3, max: [90, 190, 1200] as V3 };
  const rng = createRng(3);
  let offCentre = 0;
  for (let q = 0; q < 500; q++) {
    const p = [0, 1, 2].map((a) => rng.uniform(box.min[a]!, box.max[a]!)) as V3;
    const t = tileNear(box, cfg, p, [rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1)], 4);
    assert.ok(depth(t, p) >= 4 * cfg.maxSpacingMm!, `lesion at ${p} not inside its padded tile`);
    const centre = [0, 1, 2].map((a) => (lo(t, a) + hi(t, a)) / 2);
    if (Math.hypot(...[0, 1, 2].map((a) => centre[a]! - p[a]!)) > 10) offCentre++;
  }
  assert.ok(offCentre > 250, `${offCentre} of 500 tiles off the lesion's centre`);
});

test('tiles of one map: pasting merges by maximum, and the minPeak lift follows the whole map\'s peak, not each tile\'s', () => {
  const geom = { size: [4, 4, 4] as V3, spacing: [2, 2, 2] as V3, direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] };
  const ct = { ...geom, size: [6, 4, 4] as V3, origin: [0, 0, 0] as V3 };
  const a: Volume<Float32Array> = { ...geom, origin: [0, 0, 0], data: new Float32Array(64).fill(0.2) };
  const b: Volume<Float32Array> = { ...geom, origin: [4, 0, 0], data: new Float32Array(64).fill(0.6) };
  const merged = denseVolume(pasteToGrid(b, ct, 'nearest', pasteToGrid(a, ct, 'nearest'))).data;
  for (let k = 0; k < 4; k++) for (let j = 0; j < 4; j++) for (let i = 0; i < 6; i++) {
    // x = 0, 1 only in a; 2, 3 in both; 4, 5 only in b
    assert.equal(merged[i + 6 * (j + 4 * k)], i < 2 ? Math.fround(0.2) : Math.fround(0.6));
  }
  const c: GroundingConfig = { ...defaultConfig('full'), minPeak: 0.5 };
  const faint = new Float32Array(8).fill(-6);
  // alone, the faint tile is lifted to 0.5; as part of a map that peaks at logit 2 elsewhere it stays faint
  assert.ok(Math.abs(Math.max(...mapFromLogits(c, faint)) - 0.5) < 1e-6);
  assert.ok(Math.max(...mapFromLogits(c, faint, undefined, 0, 2)) < 0.01);
  // a map whose peak (over all tiles) is faint is lifted by the same shift in every tile
  const lifted = mapFromLogits(c, faint, undefined, 0, -4);
  assert.ok(Math.abs(lifted[0]! - 1 / (1 + Math.exp(2))) < 1e-6);
});

test('training samples of a tiled organ: the tile around the lesion holds it; validation takes the inference tile nearest the lesion', async () => {
  const root = mkdtempSync(join(tmpdir(), 'ctg-tiles-'));
  try {
    const data = join(root, 'data'), text = join(root, 'text');
    await makeToyDataset(data, { studies: 4, seed: 9 });
    const studies = readManifest(data);
    freshTextEncoder(text, studies.map((s) => readFileSync(join(data, s.report), 'utf8')), 1);
    const { loadTextEncoder } = await import('../src/model/index.ts');
    const enc = loadTextEncoder(text);
    // 16 voxels at 3 mm: the toy liver (80 mm) and kidneys (48 mm tall) are tiled
    const c: GroundingConfig = { ...defaultConfig('full'), crop: { grid: 16, marginMm: 8, minMm: 48, maxMm: 160, windows: [[-160, 240]], maxSpacingMm: 3 }, maxAggregate: 16 };
    const anomalies = studies.reduce((k, s) => k + s.anomalies.length, 0);
    const train = await prepareSamples(data, studies, c, enc, 2, 'train', true, createRng(1));
    const val = await prepareSamples(data, studies, c, enc, 2, 'val', true, null);
    assert.equal(val.samples.length, anomalies);
    const mass = (t: Uint8Array) => t.reduce((a, v) => a + v, 0);
    for (const s of val.samples) assert.ok(mass(s.target) > 0, `validation tile of ${s.study}/${s.id} misses the lesion`);
    // the first sample of each anomaly is the tile around it; tiles sit off the box centre
    const seen = new Set<string>();
    for (const s of train.samples) {
      const key = `${s.study}/${s.id}`;
      if (!seen.has(key)) { seen.add(key); assert.ok(mass(s.target) > 0, `tile around ${key} misses the lesion`); }
    }
    assert.equal(seen.size, anomalies);
    assert.ok(train.samples.length > anomalies, 'tiles away from the lesion are learned from too');
    assert.ok(train.samples.some((s) => s.positionOffset.some((v) => Math.abs(v + (16 + 4 - 1) / 2) > 0.5)), 'some tile is off the organ box centre');
    await enc.dispose();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('organ boxes from one scan of the label map equal the box of each organ\'s mask, on a flipped grid, for sides, the body and a missing organ', () => {
  const size: V3 = [30, 26, 22], n = size[0] * size[1] * size[2];
  const scheme = loadOrganScheme();
  const v = (name: string) => scheme.byName.get(name)!.value;
  const labels: Volume<Uint8Array> = { data: new Uint8Array(n), size, spacing: [2, 3, 4], origin: [5, -7, 11], direction: [-1, 0, 0, 0, 0, 1, 0, -1, 0] };
  const rng = createRng(31);
  const blob = (value: number) => {
    const c = [rng.int(4, 25), rng.int(4, 21), rng.int(4, 17)], r = [rng.int(1, 4), rng.int(1, 4), rng.int(1, 4)];
    for (let k = c[2]! - r[2]!; k <= c[2]! + r[2]!; k++) for (let j = c[1]! - r[1]!; j <= c[1]! + r[1]!; j++) for (let i = c[0]! - r[0]!; i <= c[0]! + r[0]!; i++) labels.data[i + size[0] * (j + size[1] * k)] = value;
  };
  for (const name of ['liver', 'kidney_left', 'kidney_right', 'spleen', 'liver']) blob(v(name));
  const maskBoxOf = (values: number[]) => maskWorldBox(labels, Uint8Array.from(labels.data, (x) => (values.includes(x) ? 1 : 0)));
  const a = (organ: string, words: string[] = []) => ({ id: 'a', organ, type: 'mass', certainty: 'present', spans: words.map((t) => ({ start: 0, end: t.length, text: t, class: 'location' })) });
  for (const anomaly of [a('liver'), a('kidney'), a('kidney', ['left']), a('kidney', ['right']), a('spleen')]) {
    const got = anomalyBox(labels, anomaly), want = maskBoxOf(cropLabels(anomaly))!;
    assert.ok(got.organFound);
    assert.deepEqual([got.min, got.max], [want.min, want.max], `${anomaly.organ} ${anomaly.spans.map((s) => s.text)}`);
  }
  const body = maskBoxOf([...new Set(labels.data)].filter((x) => x > 0))!;
  for (const got of [anomalyBox(labels, a('pancreas')), anomalyBox(labels, a('liver'), 'body')]) {
    assert.equal(got.organFound, false);
    assert.deepEqual([got.min, got.max], [body.min, body.max]);
  }
});

test('an anomaly whose organ the label map lacks is seen through one cube of the body, not dozens of body tiles', () => {
  // 100×80×60 voxels at 4 mm, all fat; a liver block of 200×120×100 mm in it
  const size: V3 = [100, 80, 60], n = size[0] * size[1] * size[2];
  const scheme = loadOrganScheme();
  const fat = scheme.byName.get('fat')!.value, liver = scheme.byName.get('liver')!.value;
  const labels: Volume<Uint8Array> = { data: new Uint8Array(n).fill(fat), size, spacing: [4, 4, 4], origin: [0, 0, 0], direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] };
  for (let k = 10; k < 35; k++) for (let j = 20; j < 50; j++) for (let i = 20; i < 70; i++) labels.data[i + size[0] * (j + size[1] * k)] = liver;
  const anomaly = { id: 'a', organ: 'liver', type: 'mass', certainty: 'present', spans: [] };
  const full = defaultConfig('full');
  assert.ok(anomalyBox(labels, anomaly).organFound);
  assert.ok(anomalyTiles(labels, anomaly, full).length > 1, 'the liver itself is tiled');
  const noLiver: Volume<Uint8Array> = { ...labels, data: Uint8Array.from(labels.data, (v) => (v === liver ? fat : v)) };
  const box = anomalyBox(noLiver, anomaly);
  assert.equal(box.organFound, false);
  assert.ok(isTiled(box, cfg), 'the body box would be tiled');
  const grids = anomalyTiles(noLiver, anomaly, full);
  assert.equal(grids.length, 1);
  assert.deepEqual(grids[0]!.spacing, organCrop(box, cfg).spacing);
});

test('crop region body: every anomaly, whatever its organ, is grounded on tiles of everything labelled and shares one crop key', () => {
  // 100×80×60 voxels at 4 mm: fat from x = 5 to 94; a liver block and a kidney block inside
  const size: V3 = [100, 80, 60], n = size[0] * size[1] * size[2];
  const scheme = loadOrganScheme();
  const fat = scheme.byName.get('fat')!.value, liver = scheme.byName.get('liver')!.value, kidney = scheme.byName.get('kidney_right')!.value;
  const labels: Volume<Uint8Array> = { data: new Uint8Array(n), size, spacing: [4, 4, 4], origin: [0, 0, 0], direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] };
  for (let k = 0; k < 60; k++) for (let j = 0; j < 80; j++) for (let i = 5; i < 95; i++) {
    const p = i + size[0] * (j + size[1] * k);
    labels.data[p] = i < 40 && j < 40 && k < 30 ? liver : i > 60 && j > 40 && k > 30 ? kidney : fat;
  }
  const a = (organ: string) => ({ id: organ, organ, type: 'mass', certainty: 'present', spans: [] });
  const body: GroundingConfig = { ...defaultConfig('baseline'), crop: { ...DEFAULT_CROP, region: 'body' } };
  // the body box by hand: voxel centres x 5..94, y 0..79, z 0..59 at 4 mm
  const box = anomalyBox(labels, a('liver'), 'body');
  assert.deepEqual([box.min, box.max], [[20, 0, 0], [376, 316, 236]]);
  assert.equal(cropKey(a('liver'), 'body'), cropKey(a('kidney'), 'body'));
  assert.notEqual(cropKey(a('liver')), cropKey(a('kidney')));
  const tiles = anomalyTiles(labels, a('kidney'), body);
  assert.deepEqual(tiles, anomalyTiles(labels, a('liver'), body));
  assert.deepEqual(tiles, cropTiles(box, body.crop));
  assert.ok(tiles.length > 1 && tiles.every((t) => Math.abs(t.spacing[0] - 5) < 1e-9), `${tiles.length} tiles at 5 mm`);
  // the organ region still cuts around the organ
  const organTiles = anomalyTiles(labels, a('kidney'), defaultConfig('full'));
  assert.ok(organTiles.length < tiles.length);
});
