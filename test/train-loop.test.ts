import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeToyDataset } from './train-fixture.ts';
import { freshTextEncoder, trainGroundingModel, makeBatch } from '../src/train/index.ts';
import { defaultConfig, loadGroundingModel, textEncoderSha256, type GroundingConfig } from '../src/model/index.ts';
import { goldReport, readManifest } from '../src/eval/index.ts';
import { readVolume } from '../src/volume/index.ts';

const tiny: Partial<GroundingConfig> = {
  crop: { grid: 16, marginMm: 8, minMm: 48, maxMm: 160, windows: [[-160, 240]] },
  widths: [4, 8, 8, 8], convsPerStage: [1, 1, 1, 1], normGroups: 0, attnDim: 8, lstmHidden: 16, maxAggregate: 16,
};

const root = mkdtempSync(join(tmpdir(), 'ctg-train-'));
const data = join(root, 'data'), text = join(root, 'text');

test.before(async () => {
  await makeToyDataset(data, { studies: 8, seed: 5, split: (i) => (i < 6 ? 'train' : 'val') });
  const reports = readManifest(data).map((s) => readFileSync(join(data, s.report), 'utf8'));
  freshTextEncoder(text, reports, 1);
});
test.after(() => rmSync(root, { recursive: true, force: true }));

test('a short training run lowers the loss on a small synthetic set, keeps the best checkpoint and resumes', async () => {
  const out = join(root, 'model');
  const opts = { data, variant: 'full' as const, out, steps: 100, seed: 2, batch: 2, lr: 3e-3, resume: false, textDir: text, config: tiny, validateEvery: 50, quiet: true };
  const r = await trainGroundingModel(opts);
  const first = r.log[0]!, last = r.log[r.log.length - 1]!;
  assert.ok(last.loss < first.loss - 0.05, `loss ${first.loss.toFixed(3)} → ${last.loss.toFixed(3)}`);
  // the kept checkpoint is the one with most validation hits, ties going to the higher soft Dice
  const top = Math.max(...r.log.map((e) => e.valHit ?? -1));
  assert.equal(r.bestValHit, top);
  assert.equal(r.bestValDice, Math.max(...r.log.filter((e) => e.valHit === top).map((e) => e.valDice ?? -1)));
  for (const f of ['config.json', 'model.safetensors', 'loss.svg', 'train-log.jsonl', 'checkpoint/last.safetensors']) assert.ok(existsSync(join(out, f)), f);
  assert.match(readFileSync(join(out, 'loss.svg'), 'utf8'), /^<svg[^>]*>[\s\S]*<path d="M/);
  // resuming to a later step continues from 100 instead of starting over
  const resumed = await trainGroundingModel({ ...opts, steps: 110, resume: true });
  assert.equal(resumed.log[resumed.log.length - 1]!.step, 110);
  assert.equal(resumed.log.filter((e) => e.step === 100).length, 1);
});

test('--init starts from a trained model and several data folders pool their training anomalies', async () => {
  const first = join(root, 'init-a'), second = join(root, 'init-b');
  const base = { variant: 'full' as const, steps: 20, seed: 3, batch: 2, lr: 3e-3, resume: false, textDir: text, config: tiny, validateEvery: 20, quiet: true };
  const a = await trainGroundingModel({ ...base, data, out: first });
  // zero steps of training on top of --init must reproduce the initial model's validation exactly
  const same = await trainGroundingModel({ ...base, data, out: join(root, 'init-same'), init: first, steps: 1, lr: 0 });
  assert.ok(Math.abs(same.bestValDice - a.bestValDice) < 1e-6, `${same.bestValDice} vs ${a.bestValDice}`);
  const b = await trainGroundingModel({ ...base, data: [data, data], out: second, init: first });
  assert.equal(b.samples, 2 * a.samples);
  assert.equal(b.anomalies, 2 * a.anomalies);
  const cfg = JSON.parse(readFileSync(join(second, 'config.json'), 'utf8')) as { model: { textEncoderSha256: string }; training: { init: string; data: string[] } };
  assert.equal(cfg.model.textEncoderSha256, textEncoderSha256(text));
  assert.equal(cfg.training.init, first);
  assert.deepEqual(cfg.training.data, [data, data]);
});

test('--max-spacing tiles the organs of an --init model: recorded in its config, and grounding gives one CT-grid map per anomaly lifted to minPeak over all its tiles', async () => {
  const base = { variant: 'full' as const, steps: 10, seed: 4, batch: 2, lr: 3e-3, resume: false, textDir: text, config: tiny, validateEvery: 10, quiet: true, data };
  const plain = join(root, 'tile-init'), tiled = join(root, 'tiled');
  await trainGroundingModel({ ...base, out: plain });
  const r = await trainGroundingModel({ ...base, out: tiled, init: plain, maxSpacingMm: 3 });
  // every anomaly of the (untiled) first run is learned again, some also from a tile away from it
  const first = JSON.parse(readFileSync(join(plain, 'config.json'), 'utf8')) as { training: { trainAnomalies: number } };
  assert.equal(r.anomalies, first.training.trainAnomalies);
  assert.ok(r.samples > r.anomalies, `${r.samples} samples for ${r.anomalies} anomalies`);
  const saved = JSON.parse(readFileSync(join(tiled, 'config.json'), 'utf8')) as { model: GroundingConfig; training: { trainAnomalies: number; trainSamples: number } };
  assert.equal(saved.training.trainSamples, r.samples);
  assert.equal(saved.model.crop.maxSpacingMm, 3);
  assert.equal(saved.model.crop.grid, tiny.crop!.grid);
  const model = await loadGroundingModel(tiled);
  const s = readManifest(data)[0]!;
  const ct = await readVolume(join(data, s.ct));
  const maps = await model.ground({ ct, anatomy: await readVolume(join(data, s.labels)), report: goldReport(data, s) });
  assert.equal(maps.size, s.anomalies.length);
  for (const m of maps.values()) {
    assert.deepEqual(m.grid.size, ct.size);
    assert.ok(Math.max(...m.data) >= saved.model.minPeak - 0.02, `peak ${Math.max(...m.data)} under minPeak ${saved.model.minPeak}`);
  }
  await model.dispose();
});

test('transvg3d trains on boxes (L1 + GIoU), lowers its loss, and the saved model grounds every anomaly as a box map', async () => {
  const out = join(root, 'tvg');
  const r = await trainGroundingModel({ data, variant: 'transvg3d', out, steps: 60, seed: 2, batch: 2, lr: 3e-3, resume: false, textDir: text, config: tiny, validateEvery: 30, quiet: true });
  const first = r.log[0]!, last = r.log[r.log.length - 1]!;
  assert.ok(last.loss < first.loss, `loss ${first.loss.toFixed(3)} → ${last.loss.toFixed(3)}`);
  assert.ok(Number.isFinite(r.bestValDice), 'validation box IoU');
  const { loadGroundingModel } = await import('../src/model/index.ts');
  const { goldReport } = await import('../src/eval/index.ts');
  const { readVolume } = await import('../src/volume/index.ts');
  const model = await loadGroundingModel(out);
  const s = readManifest(data)[0]!;
  const maps = await model.ground({ ct: await readVolume(join(data, s.ct)), anatomy: await readVolume(join(data, s.labels)), report: goldReport(data, s) });
  assert.equal(maps.size, s.anomalies.length);
  for (const m of maps.values()) assert.ok(m.data.every((v) => v === 0 || v === 1), 'a box model paints 0/1 boxes');
  await model.dispose();
});

test('batches never flip left and right: a lesion on the low-x side stays there under augmentation', async () => {
  const cfg = { ...defaultConfig('full'), ...tiny };
  const G = cfg.crop.grid, pad = 4, P = G + 2 * pad, A = cfg.maxAggregate, d = 8;
  const target = new Uint8Array(P ** 3), image = new Uint8Array(2 * P ** 3);
  // lesion: stored x in [pad, pad + 3] (the first four columns of the centred cut), image marks it too
  for (let k = 0; k < P; k++) for (let j = 0; j < P; j++) for (let i = pad; i < pad + 4; i++) { target[i + P * (j + P * k)] = 255; image[i + P * (j + P * k)] = 200; }
  const sample = { study: 's', id: 'a', image, target, text: { rows: new Float32Array(A * d), seq: [{ token: 0 }], length: 1 }, positionScale: [0.1, 0.1, 0.1] as [number, number, number], positionOffset: [-(P - 1) / 2, -(P - 1) / 2, -(P - 1) / 2] as [number, number, number] };
  const { createRng } = await import('../src/common/index.ts');
  for (let t = 0; t < 30; t++) {
    const b = makeBatch({ samples: [sample], pad, channels: 2 }, [sample], cfg, d, createRng(t));
    for (let o = 0; o < G ** 3; o++) {
      const x = o % G;
      if (b.targets[o]! > 0) assert.ok(x < 4 + pad, `lesion voxel at x=${x} after augmentation ${t}`);
      // the CT channel moves with the mask: same shift, no mirror
      assert.equal(b.feeds.image![o]! > 0.5, b.targets[o]! > 0);
    }
  }
});

test('the position features move with the augmentation shift: u is the stored voxel\'s offset from the organ box centre times the scale', async () => {
  const cfg = { ...defaultConfig('full'), ...tiny };
  assert.ok(cfg.positional, 'the full variant uses the position term');
  const G = cfg.crop.grid, pad = 4, P = G + 2 * pad, A = cfg.maxAggregate, d = 8, n = G ** 3;
  // the target stores each voxel's own stored index along one axis, so the cut tells where it came from
  const scale: [number, number, number] = [0.07, 0.11, 0.05];
  // a tile off the box centre: its first stored voxel sits this many voxels from the centre
  const offset: [number, number, number] = [-(P - 1) / 2 + 5, -(P - 1) / 2 - 2, 3.5];
  const { createRng } = await import('../src/common/index.ts');
  for (let axis = 0; axis < 3; axis++) {
    const target = new Uint8Array(P ** 3);
    for (let k = 0, o = 0; k < P; k++) for (let j = 0; j < P; j++) for (let i = 0; i < P; i++, o++) target[o] = [i, j, k][axis]!;
    const sample = { study: 's', id: 'a', image: new Uint8Array(2 * P ** 3), target, text: { rows: new Float32Array(A * d), seq: [{ token: 0 }], length: 1 }, positionScale: scale, positionOffset: offset };
    for (let t = 0; t < 5; t++) {
      const b = makeBatch({ samples: [sample], pad, channels: 2 }, [sample], cfg, d, createRng(100 + t));
      const pos = b.feeds.position as Float32Array;
      assert.equal(pos.length, 15 * n);
      for (let o = 0; o < n; o += 7) {
        const stored = Math.round(b.targets[o]! * 255);
        const u = Math.max(-2, Math.min(2, (stored + offset[axis]!) * scale[axis]!));
        assert.ok(Math.abs(pos[axis * 5 * n + o]! - u / 2) < 1e-5, `axis ${axis}: u/2 ${pos[axis * 5 * n + o]} vs ${u / 2}`);
        assert.ok(Math.abs(pos[(axis * 5 + 3) * n + o]! - Math.sin(Math.PI * u)) < 1e-5);
      }
    }
  }
});
