import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cropLabels, defaultConfig, expectedVolumeMm3, loadGroundingModel, readModelConfig, zoomTile, type GroundingAnomaly } from '../src/model/index.ts';
import { readManifest, goldReport } from '../src/eval/index.ts';
import { denseVolume, indexToWorld, readVolume, type Vec3 } from '../src/volume/index.ts';
import { projectRoot, UserError } from '../src/common/index.ts';

const root = mkdtempSync(join(tmpdir(), 'ctg-zoom-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const shipped = join(projectRoot, 'models', 'grounding-default');
const demo = join(projectRoot, 'examples', 'demo');

/** A model folder from the shipped one, its config edited; the text encoder named absolutely. */
function modelCopy(name: string, edit: (m: Record<string, unknown>) => void, files: string[] = ['model.safetensors']): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  for (const f of files) cpSync(join(shipped, f), join(dir, f));
  const raw = JSON.parse(readFileSync(join(shipped, 'config.json'), 'utf8'));
  raw.model.textEncoder = join(projectRoot, 'models', 'text-default');
  delete raw.model.zoom;
  edit(raw.model);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(raw));
  return dir;
}

/**
 * A zoom network for the mechanics: the shipped first-look weights again, seeing 2 mm tiles (a real
 * zoom network is trained on them; what is tested here is where its tile goes and what replaces what).
 */
function zoomNetwork(dir: string): void {
  const raw = JSON.parse(readFileSync(join(shipped, 'config.json'), 'utf8'));
  raw.model.crop.maxSpacingMm = 2;
  delete raw.model.zoom;
  mkdirSync(dir, { recursive: true });
  cpSync(join(shipped, 'model.safetensors'), join(dir, 'model.safetensors'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(raw));
}

const anomaly = (type: string, organ: string, size?: string): GroundingAnomaly => ({
  id: 'a1', organ, type, certainty: 'definite', spans: size ? [{ class: 'size', text: size, start: 0, end: size.length }] : [],
});

test('expectedVolumeMm3 is the stated size where it measures the finding, else the kind\'s typical volume, else its type\'s', () => {
  const cfg = { typicalMm3: { 'pancreas:duct_dilation': 576, cyst: 1800, 'kidney:cyst': 900 } };
  // a 10 mm cyst: the sphere of 10 mm
  assert.ok(Math.abs(expectedVolumeMm3(cfg, anomaly('cyst', 'liver', '10 mm'))! - (Math.PI / 6) * 1000) < 1e-9);
  assert.equal(expectedVolumeMm3(cfg, anomaly('cyst', 'kidney')), 900);
  assert.equal(expectedVolumeMm3(cfg, anomaly('cyst', 'liver')), 1800);
  // a duct's stated caliber is not its extent
  assert.equal(expectedVolumeMm3(cfg, anomaly('duct_dilation', 'pancreas', '4 mm')), 576);
  assert.equal(expectedVolumeMm3(cfg, anomaly('mass', 'liver')), undefined);
  assert.equal(expectedVolumeMm3({}, anomaly('cyst', 'liver')), undefined);
});

test('zoomTile is a tile of the zoom spacing centred at the point, kept where training tiles sit; a small organ keeps its cube', async () => {
  const s = readManifest(demo)[0]!;
  const anatomy = await readVolume(join(demo, s.labels));
  const duct = goldReport(demo, s).anomalies.find((a) => a.type === 'duct_dilation')!;
  // the pancreas box from the voxel centres, by a plain scan
  const labels = new Set(cropLabels(duct)), lo: Vec3 = [Infinity, Infinity, Infinity], hi: Vec3 = [-Infinity, -Infinity, -Infinity];
  const [nx, ny, nz] = anatomy.size;
  for (let k = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
    if (!labels.has(Number(anatomy.data[i + nx * (j + ny * k)]))) continue;
    const w = indexToWorld(anatomy, [i, j, k]);
    for (let a = 0; a < 3; a++) { lo[a] = Math.min(lo[a]!, w[a]!); hi[a] = Math.max(hi[a]!, w[a]!); }
  }
  const cfg = defaultConfig('full');
  cfg.crop.maxSpacingMm = 2;
  const side = 32 * 2, centre = [0, 1, 2].map((a) => (lo[a]! + hi[a]!) / 2);
  const room = [0, 1, 2].map((a) => Math.max(0, Math.min(1.5 * cfg.crop.maxMm, hi[a]! - lo[a]! + 2 * cfg.crop.marginMm) - side) / 2);
  assert.ok(room.some((r) => r > 0), 'the pancreas is larger than one 2 mm tile');
  for (const point of [centre, [lo[0]! + 5, centre[1]!, hi[2]!], [lo[0]! - 300, hi[1]! + 300, centre[2]!]] as Vec3[]) {
    const t = zoomTile(anatomy, duct, cfg, point);
    assert.deepEqual(t.size, [32, 32, 32]);
    assert.deepEqual(t.spacing, [2, 2, 2]);
    for (let a = 0; a < 3; a++) {
      const want = Math.min(centre[a]! + room[a]!, Math.max(centre[a]! - room[a]!, point[a]!));
      assert.ok(Math.abs(t.origin[a]! + 15.5 * 2 - want) < 1e-6, `axis ${a}: tile centre ${t.origin[a]! + 31} for ${want}`);
    }
  }
  // at a spacing whose one cube covers the organ, the cube (as in training), wherever the point
  cfg.crop.maxSpacingMm = 8;
  const cube = zoomTile(anatomy, duct, cfg, [lo[0]! - 300, 0, 0]);
  for (let a = 0; a < 3; a++) assert.ok(Math.abs(cube.origin[a]! + ((cube.size[a]! - 1) / 2) * cube.spacing[a]! - centre[a]!) < 1e-6);
});

test('the zoom stage replaces the maps of findings expected to be small by its network\'s map on a tile at the first look\'s peak, and leaves the others alone', async () => {
  const s = readManifest(demo)[0]!;
  const study = { ct: await readVolume(join(demo, s.ct)), anatomy: await readVolume(join(demo, s.labels)), report: goldReport(demo, s) };
  const cfg = JSON.parse(readFileSync(join(shipped, 'config.json'), 'utf8')).model;
  const volumes = study.report.anomalies.map((a) => expectedVolumeMm3(cfg, a)!);
  assert.ok(volumes.every((v) => v > 0) && volumes[0] !== volumes[1], `two findings of different expected sizes: ${volumes.join(', ')}`);
  const cut = (volumes[0]! + volumes[1]!) / 2;
  const plainDir = modelCopy('plain', () => {});
  const zoomDir = modelCopy('zoomed', (m) => { m.zoom = { model: 'zoom', maxMm3: cut }; });
  zoomNetwork(join(zoomDir, 'zoom'));
  const plain = await loadGroundingModel(plainDir), zoomed = await loadGroundingModel(zoomDir);
  try {
    const before = await plain.ground(study), after = await zoomed.ground(study);
    // at size 0 the zoom network is loaded and unused: the first look's maps, exactly
    const off = await zoomed.calibrated({ zoom: { model: 'zoom', maxMm3: 0 } }).ground(study);
    // at a size over both, both zoomed
    const all = await zoomed.calibrated({ zoom: { model: 'zoom', maxMm3: 1e9 } }).ground(study);
    // the tile as the fixture's zoom network is configured
    const zcfg = readModelConfig(join(zoomDir, 'zoom'));
    for (const [k, a] of study.report.anomalies.entries()) {
      const b = denseVolume(before.get(a.id)!).data as Float32Array, z = denseVolume(after.get(a.id)!).data as Float32Array;
      assert.deepEqual(denseVolume(off.get(a.id)!).data, b, `${a.id} with zoom size 0`);
      if (volumes[k]! > cut) assert.deepEqual(z, b, `${a.id} (${volumes[k]} mm³) is not zoomed`);
      else assert.deepEqual(z, denseVolume(all.get(a.id)!).data, `${a.id} (${volumes[k]} mm³) is zoomed`);
      const zz = denseVolume(all.get(a.id)!).data as Float32Array;
      assert.notDeepEqual(zz, b, `${a.id} zoomed changes its map`);
      // every voxel of the zoomed map lies in the tile zoomTile gives at the first map's peak on the
      // CT grid (within a first-look voxel, 4 mm, of its peak on the crop grid) plus a voxel of interpolation
      const [nx, ny] = study.ct.size, lo: Vec3 = [Infinity, Infinity, Infinity], hi: Vec3 = [-Infinity, -Infinity, -Infinity];
      let peak = -1, at: Vec3 = [0, 0, 0];
      for (let i = 0; i < zz.length; i++) {
        const w = indexToWorld(study.ct, [i % nx, Math.floor(i / nx) % ny, Math.floor(i / (nx * ny))]);
        if (b[i]! > peak) { peak = b[i]!; at = w; }
        if (zz[i]! <= 0) continue;
        for (let c = 0; c < 3; c++) { lo[c] = Math.min(lo[c]!, w[c]!); hi[c] = Math.max(hi[c]!, w[c]!); }
      }
      assert.ok(hi[0] >= lo[0], 'the zoomed map is not empty');
      const tile = zoomTile(study.anatomy, a, zcfg, at), slack = 4 + study.ct.spacing[0]!;
      for (let c = 0; c < 3; c++) {
        assert.ok(lo[c]! >= tile.origin[c]! - slack && hi[c]! <= tile.origin[c]! + 62 + slack, `${a.id} axis ${c}: the zoomed map [${lo[c]}, ${hi[c]}] is not in the tile at the first look's peak [${tile.origin[c]}, ${tile.origin[c]! + 62}]`);
      }
    }
  } finally {
    await plain.dispose();
    await zoomed.dispose();
  }
  // a model without a zoom network cannot be calibrated to use one
  const m = await loadGroundingModel(plainDir);
  assert.throws(() => m.calibrated({ zoom: { model: 'zoom', maxMm3: 100 } }), /zoom needs the model's zoom network/);
  await m.dispose();
});

test('a zoom network that is missing, reads another text encoder, or has a zoom of its own is refused in one line naming the file', async () => {
  const missing = modelCopy('missing', (m) => { m.zoom = { model: 'nowhere', maxMm3: 100 }; });
  await assert.rejects(loadGroundingModel(missing), (e: Error) => e instanceof UserError && /nowhere: zoom network folder not found/.test(e.message) && !e.message.includes('\n'));
  const other = modelCopy('other-text', (m) => { m.zoom = { model: 'zoom', maxMm3: 100 }; });
  zoomNetwork(join(other, 'zoom'));
  const zc = join(other, 'zoom', 'config.json'), raw = JSON.parse(readFileSync(zc, 'utf8'));
  writeFileSync(zc, JSON.stringify({ ...raw, model: { ...raw.model, textEncoderSha256: '0'.repeat(64) } }));
  await assert.rejects(loadGroundingModel(other), (e: Error) => e instanceof UserError && e.message.includes(zc) && /another text encoder/.test(e.message));
  writeFileSync(zc, JSON.stringify({ ...raw, model: { ...raw.model, zoom: { model: '.', maxMm3: 1 } } }));
  await assert.rejects(loadGroundingModel(other), (e: Error) => e instanceof UserError && e.message.includes(zc) && /cannot have a zoom stage of its own/.test(e.message));
  const bad = modelCopy('bad-zoom', (m) => { m.zoom = { model: 'zoom', maxMm3: -1 }; });
  await assert.rejects(loadGroundingModel(bad), /zoom must be \{ model: a folder, maxMm3: a volume of at least 0 \}/);
});
