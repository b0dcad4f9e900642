import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, cpSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { makeToyDataset } from './train-fixture.ts';
import { freshTextEncoder } from '../src/train/index.ts';
import { buildHeadGraph, buildImageGraph, buildImageLogitsGraph, buildLogitsGraph, buildQueryGraph, buildTrainGraph, defaultConfig, inputChannels, loadGroundingModel, loadTextEncoder, positionChannels, readWeights, widenImageInput, WeightMismatch, type GroundingConfig } from '../src/model/index.ts';
import { InferenceModel, saveParams, writeSafetensors } from '../src/engine/index.ts';
import { readManifest, goldReport } from '../src/eval/index.ts';
import { denseVolume, readVolume } from '../src/volume/index.ts';
import { UserError, projectRoot } from '../src/common/index.ts';

const root = mkdtempSync(join(tmpdir(), 'ctg-load-'));
const data = join(root, 'data'), text = join(root, 'text'), good = join(root, 'good');

/** A model folder as `ctground train` writes it (untrained weights: loading does not care). */
function writeModel(dir: string, cfg: GroundingConfig, textDim: number): void {
  const { graph } = buildTrainGraph(cfg, 1, textDim, 1);
  saveParams(graph, join(dir, 'model.safetensors'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model: { ...cfg, textEncoder: text } }));
}

test.before(async () => {
  await makeToyDataset(data, { studies: 1, seed: 9 });
  freshTextEncoder(text, readManifest(data).map((s) => readFileSync(join(data, s.report), 'utf8')), 1);
  const cfg: GroundingConfig = { ...defaultConfig('full'), crop: { grid: 16, marginMm: 8, minMm: 48, maxMm: 160, windows: [[-160, 240]] }, widths: [4, 8, 8, 8], convsPerStage: [1, 1, 1, 1], normGroups: 0, attnDim: 8, lstmHidden: 16, maxAggregate: 16 };
  const enc = loadTextEncoder(text);
  const { mkdirSync } = await import('node:fs');
  mkdirSync(good, { recursive: true });
  writeModel(good, cfg, enc.hiddenSize);
});
test.after(() => rmSync(root, { recursive: true, force: true }));

test('the anomalies of one crop grounded in one batched head run give the maps each gets alone', async () => {
  const model = await loadGroundingModel(good);
  const s = readManifest(data)[0]!;
  const ct = await readVolume(join(data, s.ct)), anatomy = await readVolume(join(data, s.labels));
  const report = goldReport(data, s);
  // five anomalies of the same organ share a crop: one run of batch 6, the sixth row padding
  const a0 = report.anomalies[0]!;
  const same = [0, 1, 2, 3, 4].map((i) => ({ ...a0, id: `x${i}`, spans: a0.spans.slice(0, a0.spans.length - (i % a0.spans.length)) }));
  const together = await model.ground({ ct, anatomy, report: { ...report, anomalies: same } });
  // the three texts differ, so do their maps: a mix-up of batch rows would show
  const m0 = denseVolume(together.get('x0')!).data, m2 = denseVolume(together.get('x2')!).data;
  assert.ok(m0.some((v, i) => Math.abs(v - m2[i]!) > 1e-4), 'the test needs maps that differ');
  for (const a of same) {
    const alone = denseVolume((await model.ground({ ct, anatomy, report: { ...report, anomalies: [a] } })).get(a.id)!).data;
    const t = denseVolume(together.get(a.id)!).data;
    let worst = 0;
    for (let i = 0; i < t.length; i++) worst = Math.max(worst, Math.abs(t[i]! - alone[i]!));
    assert.ok(worst < 1e-5, `${a.id}: max difference ${worst}`);
  }
  await model.dispose();
});

test('calibrated variants share the network\'s logits of a study object: the second grounds without a forward and gives the maps of a fresh run', async () => {
  const model = await loadGroundingModel(good);
  const s = readManifest(data)[0]!;
  const study = { ct: await readVolume(join(data, s.ct)), anatomy: await readVolume(join(data, s.labels)), report: goldReport(data, s) };
  const sharp = model.calibrated({ temperature: 0.25, minPeak: 0 });
  const zero = () => ({ text: 0, crop: 0, image: 0, head: 0, maps: 0 });
  const p1 = zero(), p2 = zero(), p3 = zero();
  const base = await model.ground(study, p1);
  const shared = await sharp.ground(study, p2);
  const fresh = await sharp.ground({ ...study }, p3);
  assert.ok(p1.image > 0 && p3.image > 0, 'a new study object runs the network');
  assert.equal(p2.image + p2.text + p2.crop + p2.head, 0, 'the same object does not');
  const id = study.report.anomalies[0]!.id;
  const dense = (m: typeof base) => denseVolume(m.get(id)!).data;
  assert.deepEqual(dense(shared), dense(fresh));
  assert.ok(dense(base).some((v, i) => Math.abs(v - dense(shared)[i]!) > 1e-4), 'the calibration changes the map');
  await model.dispose();
});

test('the head in two halves (L_t once per anomaly, logits per grid) gives the one-graph head\'s logits', async () => {
  const cfg = JSON.parse(readFileSync(join(good, 'config.json'), 'utf8')).model as GroundingConfig;
  const weights = readWeights(join(good, 'model.safetensors'));
  const d = loadTextEncoder(text).hiddenSize, B = 3, A = cfg.maxAggregate, G = cfg.crop.grid;
  const img = buildImageGraph(cfg, weights);
  const shapes = Object.fromEntries(Object.entries(img.outputs).map(([k, t]) => [k, t.shape]));
  const whole = buildHeadGraph(cfg, d, weights, shapes, B), query = buildQueryGraph(cfg, d, weights, B), logits = buildLogitsGraph(cfg, weights, shapes, B);
  const run = async (b: { graph: Parameters<typeof InferenceModel.create>[0]; output: Parameters<typeof InferenceModel.create>[1][string] }, feeds: Record<string, Float32Array | BigInt64Array>) => {
    const m = await InferenceModel.create(b.graph, { out: b.output });
    const r = (await m.run(feeds)).out as Float32Array;
    await m.dispose();
    return r;
  };
  const rows = new Float32Array(B * A * d).map((_, i) => Math.sin(0.37 * i));
  const ids = new BigInt64Array(B * A).map((_, i) => BigInt((i * 7) % A)), lengths = BigInt64Array.from([5n, 9n, 16n]);
  const keys = Object.fromEntries(Object.entries(shapes).map(([k, sh]) => [k, new Float32Array(sh.reduce((a, b) => a * b, 1)).map((_, i) => Math.cos(0.11 * i))]));
  const ref = await run(whole, { rows, ids, lengths, ...keys });
  const L = await run(query, { rows, ids, lengths });
  const two = await run(logits, { L, ...keys });
  assert.equal(two.length, B * G ** 3);
  let worst = 0;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(ref[i]! - two[i]!));
  assert.ok(worst < 1e-4, `max difference ${worst}`);
  // the three queries differ: a batch-row mix-up would show
  assert.ok(Math.abs(two[0]! - two[2 * G ** 3]!) > 1e-4);
});

test('the image encoder and the logits half as one graph give the two runs\' logits and each map\'s peak', async () => {
  const cfg = JSON.parse(readFileSync(join(good, 'config.json'), 'utf8')).model as GroundingConfig;
  const weights = readWeights(join(good, 'model.safetensors'));
  const B = 3, G = cfg.crop.grid, n = G ** 3;
  const image = new Float32Array(inputChannels(cfg) * n).map((_, i) => (Math.sin(0.7 * i) + 1) / 2);
  const position = positionChannels(G, [0.05, 0.04, 0.06], [0.1, -0.2, 0]);
  const L = new Float32Array(B * cfg.lstmHidden).map((_, i) => Math.cos(0.3 * i));
  const img = buildImageGraph(cfg, weights);
  const shapes = Object.fromEntries(Object.entries(img.outputs).map(([k, t]) => [k, t.shape]));
  const im = await InferenceModel.create(img.graph, img.outputs);
  const keys = (await im.run({ image, position })) as Record<string, Float32Array>;
  await im.dispose();
  const half = buildLogitsGraph(cfg, weights, shapes, B);
  const hm = await InferenceModel.create(half.graph, { out: half.output });
  const ref = (await hm.run({ L, ...keys })).out as Float32Array;
  await hm.dispose();
  const one = buildImageLogitsGraph(cfg, weights, B);
  const om = await InferenceModel.create(one.graph, { out: one.output, peak: one.peak });
  const got = (await om.run({ image, position, L })) as Record<string, Float32Array>;
  await om.dispose();
  assert.equal(got.out!.length, B * n);
  let worst = 0;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(ref[i]! - got.out![i]!));
  assert.ok(worst < 1e-4, `max difference ${worst}`);
  for (let b = 0; b < B; b++) {
    const want = ref.subarray(b * n, (b + 1) * n).reduce((m, v) => Math.max(m, v), -Infinity);
    assert.ok(Math.abs(got.peak![b]! - want) < 1e-4, `peak ${b}: ${got.peak![b]} vs ${want}`);
  }
  assert.ok(Math.abs(got.peak![0]! - got.peak![2]!) > 1e-5, 'the queries differ: a batch-row mix-up would show');
});

test('a CT window added to a trained model starts at zero weight: the widened encoder gives the old keys whatever the new channel holds', async () => {
  const cfg = JSON.parse(readFileSync(join(good, 'config.json'), 'utf8')).model as GroundingConfig;
  const weights = readWeights(join(good, 'model.safetensors'));
  const wide: GroundingConfig = { ...cfg, crop: { ...cfg.crop, windows: [...cfg.crop.windows, [-200, 1200]] } };
  const G = cfg.crop.grid, n = G ** 3;
  const keysOf = async (c: GroundingConfig, w: typeof weights, image: Float32Array) => {
    const img = buildImageGraph(c, w);
    const m = await InferenceModel.create(img.graph, img.outputs);
    const r = await m.run({ image, position: positionChannels(G, [0.05, 0.04, 0.06], [0.1, -0.2, 0]) });
    await m.dispose();
    return r as Record<string, Float32Array>;
  };
  // old input: [window, anatomy]; widened: [window, new window, anatomy] (the anatomy channel stays last)
  const win = new Float32Array(n).map((_, i) => 0.5 + 0.5 * Math.sin(0.013 * i)), anat = new Float32Array(n).map((_, i) => ((i >> 5) % 3) / 2);
  const extra = new Float32Array(n).map((_, i) => 0.5 + 0.5 * Math.cos(0.029 * i));
  const old = await keysOf(cfg, weights, Float32Array.from([...win, ...anat]));
  const widened = widenImageInput(weights, cfg, wide);
  assert.equal(widened.get('img.s0.c0.w')!.length, weights.get('img.s0.c0.w')!.length * 3 / 2);
  const got = await keysOf(wide, widened, Float32Array.from([...win, ...extra, ...anat]));
  for (const k of Object.keys(old)) {
    let worst = 0, scale = 0;
    for (let i = 0; i < old[k]!.length; i++) { worst = Math.max(worst, Math.abs(old[k]![i]! - got[k]![i]!)); scale = Math.max(scale, Math.abs(old[k]![i]!)); }
    assert.ok(scale > 0.01 && worst < 1e-5, `${k}: max difference ${worst} (values up to ${scale})`);
  }
  // and once the new weights move, the new channel counts: the test above could not pass by ignoring it
  const moved = new Map(widened).set('img.s0.c0.w', widened.get('img.s0.c0.w')!.map((v, i) => v + 0.05 * Math.sin(i)));
  const differs = await keysOf(wide, moved, Float32Array.from([...win, ...extra, ...anat]));
  assert.ok(differs.keys!.some((v, i) => Math.abs(v - old.keys![i]!) > 1e-4));
  // windows that do not start with the model's are refused
  assert.throws(() => widenImageInput(weights, cfg, { ...cfg, crop: { ...cfg.crop, windows: [[-200, 1200], ...cfg.crop.windows] } }), WeightMismatch);
});

function broken(name: string, edit: (dir: string) => void): string {
  const dir = join(root, name);
  cpSync(good, dir, { recursive: true });
  edit(dir);
  return dir;
}

async function rejects(dir: string, pattern: RegExp): Promise<void> {
  await assert.rejects(loadGroundingModel(dir), (e: unknown) => e instanceof UserError && pattern.test(e.message) && !e.message.includes('\n'));
}

test('a model folder grounds every anomaly on the CT grid', async () => {
  const model = await loadGroundingModel(good);
  const s = readManifest(data)[0]!;
  const ct = await readVolume(join(data, s.ct)), anatomy = await readVolume(join(data, s.labels));
  const maps = await model.ground({ ct, anatomy, report: goldReport(data, s) });
  assert.deepEqual([...maps.keys()].sort(), s.anomalies.map((a) => a.id).sort());
  for (const m of maps.values()) {
    assert.deepEqual(m.grid.size, ct.size);
    assert.deepEqual(m.grid.origin, ct.origin);
    assert.ok(m.data.every((v) => v >= 0 && v <= 1));
    // the box lies on the CT grid and holds every value
    if (m.box) for (let a = 0; a < 3; a++) assert.ok(m.box.min[a]! >= 0 && m.box.max[a]! < ct.size[a]!);
    assert.equal(m.data.length, m.box ? m.box.max.reduce((p, v, a) => p * (v - m.box!.min[a]! + 1), 1) : 0);
  }
  await model.dispose();
});

test('missing or corrupt files give one-line errors that name the file', async () => {
  await rejects(join(root, 'nowhere'), /nowhere: model folder not found/);
  await rejects(broken('noconfig', (d) => unlinkSync(join(d, 'config.json'))), /config\.json: missing/);
  await rejects(broken('badjson', (d) => writeFileSync(join(d, 'config.json'), '{"model": ')), /config\.json: corrupt/);
  await rejects(broken('badvariant', (d) => {
    const c = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
    c.model.variant = 'bogus';
    writeFileSync(join(d, 'config.json'), JSON.stringify(c));
  }), /config\.json: unknown variant 'bogus'/);
  await rejects(broken('noweights', (d) => unlinkSync(join(d, 'model.safetensors'))), /model\.safetensors: missing/);
  await rejects(broken('truncated', (d) => {
    const b = readFileSync(join(d, 'model.safetensors'));
    writeFileSync(join(d, 'model.safetensors'), b.subarray(0, Math.floor(b.length / 2)));
  }), /model\.safetensors: corrupt/);
  await rejects(broken('lacking', (d) => {
    writeSafetensors(join(d, 'model.safetensors'), new Map([['img.s0.c0.w', { data: new Float32Array(4), shape: [4] }]]));
  }), /model\.safetensors: parameter '[^']+' (is missing|has)/);
  await rejects(broken('notext', (d) => {
    const c = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
    c.model.textEncoder = join(root, 'no-text');
    writeFileSync(join(d, 'config.json'), JSON.stringify(c));
  }), /no-text.*missing/);
  // a region threshold at or above minPeak could leave a described (lifted) finding with no region
  await rejects(broken('cutabovepeak', (d) => {
    const c = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
    c.model.minPeak = 0.5; c.model.regionThreshold = 0.5;
    writeFileSync(join(d, 'config.json'), JSON.stringify(c));
  }), /config\.json: regionThreshold 0\.5 must be below minPeak 0\.5/);
  // a kind's own settings must name an organ and a type, each a number of at least 0
  await rejects(broken('kindgate', (d) => {
    const c = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
    c.model.kindCalibration = { 'pancreas:duct_dilation': { contrastGate: -1, typicalSizeCap: 2 } };
    writeFileSync(join(d, 'config.json'), JSON.stringify(c));
  }), /config\.json: kindCalibration must map "organ:type" to \{ contrastGate, typicalSizeCap \}, each at least 0/);
  // a text encoder other than the recorded one would feed the head token states it never learned
  await rejects(broken('othertext', (d) => {
    const c = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
    c.model.textEncoderSha256 = '0'.repeat(64);
    writeFileSync(join(d, 'config.json'), JSON.stringify(c));
  }), /config\.json: the text encoder at .* is not the one this model was trained with/);
});

test('the CLI reports a bad model folder in one line with exit code 2', () => {
  const dir = broken('cli', (d) => unlinkSync(join(d, 'model.safetensors')));
  const r = spawnSync(process.execPath, [join(projectRoot, 'bin', 'ctground.js'), 'eval', '--model', dir, '--data', data, '--split', 'train'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr.trim(), /^ctground: .*model\.safetensors: missing/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});
