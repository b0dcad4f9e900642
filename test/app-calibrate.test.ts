import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { makeToyDataset } from './train-fixture.ts';
import { freshTextEncoder } from '../src/train/index.ts';
import { evaluateStudies, readManifest, schemeOrganLookup, splitOf } from '../src/eval/index.ts';
import { anomalyBox, loadGroundingModel } from '../src/model/index.ts';
import { readVolume } from '../src/volume/index.ts';
import { projectRoot } from '../src/common/index.ts';

const root = mkdtempSync(join(tmpdir(), 'ctg-calibrate-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

const cli = (...args: string[]) => spawnSync(process.execPath, [join(projectRoot, 'bin', 'ctground.js'), ...args], { encoding: 'utf8', env: { ...process.env, CTGROUND_QUIET: '1' } });

test('calibrate scores every grid point on the validation split as eval does with the config edited, picks the most hits, and --write stores it', async () => {
  const data = join(root, 'data'), text = join(root, 'text'), model = join(root, 'model');
  await makeToyDataset(data, { studies: 7, seed: 12, split: (i) => (i < 4 ? 'train' : 'val'), places: true });
  freshTextEncoder(text, readManifest(data).map((s) => readFileSync(join(data, s.report), 'utf8')), 1);
  const tr = cli('train', '--data', data, '--out', model, '--steps', '6', '--grid', '16', '--widths', '4,8,8,8', '--text', text, '--lr', '3e-3');
  assert.equal(tr.status, 0, tr.stderr);
  const r = cli('calibrate', '--model', model, '--data', data, '--min-peaks', '0,0.6', '--temperatures', '1,0.3', '--size-caps', '0,2', '--place-priors', '0,6', '--typical-caps', '0,3', '--contrast-gates', '0,1', '--write');
  assert.equal(r.status, 0, r.stderr);
  const rows = r.stdout.split('\n').filter((l) => /^\| [\d.]+ \| [\d.]+ \|/.test(l)).map((l) => l.split('|').map((c) => c.trim()));
  assert.equal(rows.length, 12, r.stdout);

  // the same numbers from `eval`'s code on a copy of the model with the config edited by hand
  const studies = splitOf(readManifest(data), 'val');
  // the typical volumes, independently: per type the median of the val masks' voxel counts × 4³ mm³ (no organ:type has 5 findings here)
  const vols = new Map<string, number[]>();
  for (const s of studies) for (const a of s.anomalies) {
    const m = await readVolume(join(data, a.mask!));
    let n = 0;
    for (let i = 0; i < m.data.length; i++) if (Number(m.data[i]) > 0) n++;
    vols.set(a.type, [...(vols.get(a.type) ?? []), n * 64]);
  }
  const median = (l: number[]) => { const o = [...l].sort((x, y) => x - y), h = o.length >> 1; return o.length % 2 ? o[h]! : (o[h - 1]! + o[h]!) / 2; };
  const typicalMm3 = Object.fromEntries([...vols].map(([k, l]) => [k, median(l)]));
  const expected: { minPeak: number; temperature: number; sizeCap: number; placePrior: number; typicalSizeCap: number; contrastGate: number; hits: number; miou: number }[] = [];
  const score = async (minPeak: number, temperature: number, sizeCap: number, placePrior = 0, typicalSizeCap = 0, contrastGate = 0) => {
    const dir = join(root, `m${minPeak}-${temperature}-${sizeCap}-${placePrior}-${typicalSizeCap}-${contrastGate}`);
    cpSync(model, dir, { recursive: true });
    const cfgPath = join(dir, 'config.json'), raw = JSON.parse(readFileSync(cfgPath, 'utf8'));
    raw.model.textEncoder = text;
    writeFileSync(cfgPath, JSON.stringify({ ...raw, model: { ...raw.model, minPeak, temperature, sizeCap: sizeCap || undefined, placePrior: placePrior || undefined, typicalSizeCap: typicalSizeCap || undefined, typicalMm3: typicalSizeCap ? typicalMm3 : undefined, contrastGate: contrastGate || undefined } }));
    const m = await loadGroundingModel(dir);
    const res = await evaluateStudies(m, data, studies, { read: readVolume, organs: schemeOrganLookup, groundingBox: anomalyBox, split: 'val', quiet: true });
    await m.dispose();
    const hits = res.anomalies.filter((a) => a.score.hit).length, miou = res.anomalies.reduce((s, a) => s + a.score.miou, 0) / res.anomalies.length;
    expected.push({ minPeak, temperature, sizeCap, placePrior, typicalSizeCap, contrastGate, hits, miou });
    const cell = (v: number) => (v ? String(v) : '-');
    const row = rows.find((c) => Number(c[1]) === minPeak && Number(c[2]) === temperature && c[3] === cell(sizeCap) && c[4] === cell(placePrior) && c[5] === cell(typicalSizeCap) && c[6] === cell(contrastGate))!;
    assert.ok(row, `no row for ${minPeak}, ${temperature}, ${sizeCap}, ${placePrior}, ${typicalSizeCap}, ${contrastGate}`);
    assert.equal(row[8], `${hits}/${res.anomalies.length}`, `hits at minPeak ${minPeak}, temperature ${temperature}, cap ${sizeCap}, prior ${placePrior}, typical cap ${typicalSizeCap}, gate ${contrastGate}`);
    assert.equal(row[10], (100 * miou).toFixed(1));
  };
  for (const minPeak of [0, 0.6]) for (const temperature of [1, 0.3]) await score(minPeak, temperature, 0);
  // the minPeak rule must matter here, or the test could not tell the grid points apart
  assert.ok(new Set(expected.map((e) => e.miou.toFixed(6))).size > 1, JSON.stringify(expected));
  const first = expected.reduce((b, e) => (e.hits > b.hits || (e.hits === b.hits && e.miou > b.miou) ? e : b));
  // caps × priors are tried at the best uncapped point
  await score(first.minPeak, first.temperature, 2);
  // and the cap must change the maps here, or its row could not tell a cap ignored from a cap applied
  assert.notEqual(expected.at(-1)!.miou, first.miou, 'the size cap changed nothing on this data');
  await score(first.minPeak, first.temperature, 0, 6);
  // likewise the place prior
  assert.notEqual(expected.at(-1)!.miou, first.miou, 'the place prior changed nothing on this data');
  // and the cap for findings without a stated size (the liver's, here)
  await score(first.minPeak, first.temperature, 0, 0, 3);
  assert.notEqual(expected.at(-1)!.miou, first.miou, 'the typical-size cap changed nothing on this data');
  await score(first.minPeak, first.temperature, 2, 6, 3);
  // the contrast gate is tried at the best of the eleven points before it (its row says which: not all were scored here)
  const num = (c: string) => (c === '-' ? 0 : Number(c)), hitsOf = (c: string[]) => Number(c[8]!.split('/')[0]);
  const gatedRow = rows.find((c) => c[6] !== '-')!;
  assert.equal(rows.indexOf(gatedRow), 11, 'the gated row comes last');
  const at = rows.find((c) => c !== gatedRow && c.slice(1, 6).join() === gatedRow.slice(1, 6).join())!;
  assert.ok(rows.slice(0, 11).every((c) => hitsOf(c) < hitsOf(at) || (hitsOf(c) === hitsOf(at) && Number(c[10]) <= Number(at[10]))), 'the gate is tried at the best point');
  await score(Number(gatedRow[1]), Number(gatedRow[2]), num(gatedRow[3]!), num(gatedRow[4]!), num(gatedRow[5]!), 1);
  const gated = expected.at(-1)!;
  const plain = expected.find((e) => e !== gated && e.minPeak === gated.minPeak && e.temperature === gated.temperature && e.sizeCap === gated.sizeCap && e.placePrior === gated.placePrior && e.typicalSizeCap === gated.typicalSizeCap);
  if (plain) assert.notEqual(gated.miou, plain.miou, 'the contrast gate changed nothing on this data');
  else assert.notEqual((100 * gated.miou).toFixed(1), at[10], 'the contrast gate changed nothing on this data');
  const best = expected.reduce((b, e) => (e.hits > b.hits || (e.hits === b.hits && e.miou > b.miou) ? e : b));
  const written = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8'));
  assert.equal(written.model.minPeak, best.minPeak);
  assert.equal(written.model.temperature, best.temperature);
  assert.equal(written.model.sizeCap, best.sizeCap || undefined);
  assert.equal(written.model.placePrior, best.placePrior || undefined);
  assert.equal(written.model.typicalSizeCap, best.typicalSizeCap || undefined);
  assert.deepEqual(written.model.typicalMm3, best.typicalSizeCap ? typicalMm3 : undefined);
  assert.equal(written.model.contrastGate, best.contrastGate || undefined);
  if (best.minPeak > 0 && written.model.regionThreshold !== undefined) assert.ok(written.model.regionThreshold < best.minPeak);
  assert.match(written.calibration.command, /^ctground calibrate --model /);
  assert.equal(written.calibration.grid.length, 12);
  // and the written folder still loads
  const m = await loadGroundingModel(model);
  await m.dispose();
});

test('calibrate refuses a bad grid or a split with no studies in one line', () => {
  const bad = cli('calibrate', '--model', join(root, 'model'), '--data', join(root, 'data'), '--temperatures', '1,0');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^ctground: --temperatures must be a comma-separated list of numbers above 0, got '1,0'\n$/);
  for (const [v, msg] of [['-1', /^ctground: --kind-min must be at least 0 \(0: no per-kind calibration\), got '-1'\n$/], ['20,30', /^ctground: --kind-min must be an integer, got '20,30'\n$/]] as const) {
    const r = cli('calibrate', '--model', join(root, 'model'), '--data', join(root, 'data'), `--kind-min=${v}`);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, msg);
  }
  const none = cli('calibrate', '--model', join(root, 'model'), '--data', join(root, 'data'), '--split', 'test');
  assert.notEqual(none.status, 0);
  assert.match(none.stderr, /no studies in split 'test'/);
  assert.equal(none.stderr.split('\n').length, 2);
});

test('calibrate gives a kind of finding its own contrast gate and typical cap where they ground its validation findings better, and eval of the written model scores what its row says', async () => {
  // the shipped model on the bundled real-CT study: its two inserted lesions are of two kinds the gate applies to
  const data = join(projectRoot, 'examples', 'demo'), model = join(root, 'kinds');
  cpSync(join(projectRoot, 'models', 'grounding-default'), model, { recursive: true });
  const cfgPath = join(model, 'config.json'), shipped = JSON.parse(readFileSync(cfgPath, 'utf8'));
  shipped.model.textEncoder = join(projectRoot, 'models', 'text-default');
  writeFileSync(cfgPath, JSON.stringify(shipped));
  const r = cli('calibrate', '--model', model, '--data', data, '--split', 'test', '--min-peaks', '0.5', '--temperatures', '0.5', '--size-caps', '0', '--place-priors', '0', '--typical-caps', '0', '--contrast-gates', '0.7,2', '--kind-typical-caps', '1', '--kind-min', '1', '--zoom-sizes', '0', '--write');
  assert.equal(r.status, 0, r.stderr);
  const rows = r.stdout.split('\n').filter((l) => /^\| [\d.]+ \| [\d.]+ \|/.test(l)).map((l) => l.split('|').map((c) => c.trim()));
  // the plain point, two gates, the three gates (none, 0.7, 2) at typical cap 1, and the per-kind combination
  assert.equal(rows.length, 7, r.stdout);
  assert.deepEqual(rows.slice(3, 6).map((c) => [c[5], c[6]]), [['1', '-'], ['1', '0.7'], ['1', '2']]);
  const kindRow = rows[6]!, kinds = /^([\d.]+|-) \+ (\d+) kinds$/.exec(kindRow[6]!);
  assert.ok(kinds, `the last row is the per-kind one: ${kindRow.join('|')}`);
  const hitsOf = (c: string[]) => Number(c[8]!.split('/')[0]);
  assert.ok(rows.slice(0, 6).every((c) => hitsOf(c) <= hitsOf(kindRow)), 'per-kind settings ground at least as many as any one point');
  assert.ok(kindRow.at(-2) === 'chosen' || kindRow.at(-1) === 'chosen', 'the per-kind row, at least as good, is chosen');
  // the per-kind table: each kind's own settings at least as good as the global ones for its findings
  const table = r.stdout.split('\n').filter((l) => /^\| [a-z_]+:[a-z_]+ \|/.test(l)).map((l) => l.split('|').map((c) => c.trim()));
  assert.equal(table.length, 2, r.stdout);
  for (const c of table) assert.ok(Number(c[5]) > Number(c[7]) || (Number(c[5]) === Number(c[7]) && Number(c[6]) >= Number(c[8])), c.join('|'));
  const written = JSON.parse(readFileSync(cfgPath, 'utf8'));
  const own = Object.entries(written.model.kindCalibration as Record<string, { contrastGate: number; typicalSizeCap: number }>);
  assert.equal(own.length, Number(kinds[2]));
  const cell = (v: number) => (v ? String(v) : 'none');
  for (const [kind, k] of own) {
    assert.deepEqual(table.find((c) => c[1] === kind)?.slice(3, 5), [cell(k.contrastGate), cell(k.typicalSizeCap)], kind);
    assert.ok(k.contrastGate !== (written.model.contrastGate ?? 0) || k.typicalSizeCap !== (written.model.typicalSizeCap ?? 0), `${kind} keeps the global settings: it should not be listed`);
  }
  // eval's code on the written model scores exactly the recombined row
  const m = await loadGroundingModel(model);
  const res = await evaluateStudies(m, data, splitOf(readManifest(data), 'test'), { read: readVolume, organs: schemeOrganLookup, groundingBox: anomalyBox, split: 'test', quiet: true });
  await m.dispose();
  assert.equal(kindRow[8], `${res.anomalies.filter((a) => a.score.hit).length}/${res.anomalies.length}`);
  assert.equal(kindRow[10], (100 * res.anomalies.reduce((s, a) => s + a.score.miou, 0) / res.anomalies.length).toFixed(1));
  assert.deepEqual(written.calibration.grid.at(-1).kindCalibration, written.model.kindCalibration);
});

test('calibrate tries which findings a zoom network grounds, scores each size as eval does, and --write keeps the network in the model folder', async () => {
  const data = join(projectRoot, 'examples', 'demo'), model = join(root, 'zoomed'), zoomNet = join(root, 'zoom-net');
  cpSync(join(projectRoot, 'models', 'grounding-default'), model, { recursive: true });
  const cfgPath = join(model, 'config.json'), shipped = JSON.parse(readFileSync(cfgPath, 'utf8'));
  shipped.model.textEncoder = join(projectRoot, 'models', 'text-default');
  delete shipped.model.zoom;
  writeFileSync(cfgPath, JSON.stringify(shipped));
  // a zoom network for the mechanics: the same weights seeing 2 mm tiles
  cpSync(join(projectRoot, 'models', 'grounding-default', 'model.safetensors'), join(zoomNet, 'model.safetensors'));
  writeFileSync(join(zoomNet, 'config.json'), JSON.stringify({ model: { ...shipped.model, crop: { ...shipped.model.crop, maxSpacingMm: 2 } } }));
  const refused = cli('calibrate', '--model', model, '--data', data, '--split', 'test', '--zoom-sizes', '100');
  assert.equal(refused.status, 2, refused.stderr);
  assert.match(refused.stderr, /^ctground: --zoom-sizes: .* has no zoom network \(give one with --zoom-model DIR\)\n$/);
  const r = cli('calibrate', '--model', model, '--data', data, '--split', 'test', '--min-peaks', '0.5', '--temperatures', '0.5', '--size-caps', '0', '--place-priors', '0', '--typical-caps', '4', '--contrast-gates', '0', '--zoom-model', zoomNet, '--zoom-sizes', '0,1000000000', '--write');
  assert.equal(r.status, 0, r.stderr);
  const rows = r.stdout.split('\n').filter((l) => /^\| [\d.]+ \| [\d.]+ \|/.test(l)).map((l) => l.split('|').map((c) => c.trim()));
  // the plain point, the typical cap, and the zoom size at the better of the two
  assert.equal(rows.length, 3, r.stdout);
  assert.deepEqual(rows.map((c) => c[7]), ['-', '-', '1000000000']);
  const written = JSON.parse(readFileSync(cfgPath, 'utf8'));
  const chosen = rows.find((c) => c.at(-2) === 'chosen' || c.at(-1) === 'chosen')!;
  assert.deepEqual(written.model.zoom, { model: 'zoom', maxMm3: chosen[7] === '-' ? 0 : 1e9 });
  assert.deepEqual(readFileSync(join(model, 'zoom', 'model.safetensors')), readFileSync(join(zoomNet, 'model.safetensors')));
  // the copy names the first look's text encoder from where it lies, so it loads on its own too
  const copied = JSON.parse(readFileSync(join(model, 'zoom', 'config.json'), 'utf8'));
  assert.equal(join(model, 'zoom', copied.model.textEncoder), join(projectRoot, 'models', 'text-default'));
  await (await loadGroundingModel(join(model, 'zoom'))).dispose();
  // eval's code on the written model at the zoom row's size scores what the row says
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
  cfg.model.zoom.maxMm3 = 1e9;
  if (rows[2]![5] === '-') delete cfg.model.typicalSizeCap; else cfg.model.typicalSizeCap = Number(rows[2]![5]);
  assert.ok(cfg.model.typicalMm3, 'a model with a zoom network keeps the typical volumes its sizes are compared with');
  writeFileSync(cfgPath, JSON.stringify(cfg));
  const m = await loadGroundingModel(model);
  const res = await evaluateStudies(m, data, splitOf(readManifest(data), 'test'), { read: readVolume, organs: schemeOrganLookup, groundingBox: anomalyBox, split: 'test', quiet: true });
  await m.dispose();
  assert.equal(rows[2]![8], `${res.anomalies.filter((a) => a.score.hit).length}/${res.anomalies.length}`);
  assert.equal(rows[2]![10], (100 * res.anomalies.reduce((s, a) => s + a.score.miou, 0) / res.anomalies.length).toFixed(1));
});
