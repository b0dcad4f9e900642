import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRng } from '../src/common/index.ts';
import { Graph, InferenceModel, Trainer, adam, ops } from '../src/engine/index.ts';
import { buildTextEncoder, buildMlmHead, encoderTensorShapes, paperConfig, loadTextEncoderFolder, ReportTextEncoder, tokenWindows, type TextEncoderConfig, type TextEncoderWeights } from '../src/model/text/index.ts';
import { referenceBert, writeTinyHfBert, tinyConfig } from './text-reference.ts';

const tiny: TextEncoderConfig = { vocabSize: 12, hiddenSize: 8, numLayers: 2, numHeads: 2, intermediateSize: 16, maxPositions: 10, typeVocabSize: 2, layerNormEps: 1e-12, dropout: 0, lowercase: true };

function randomWeights(c: TextEncoderConfig, seed: number): TextEncoderWeights {
  const rng = createRng(seed);
  const w: TextEncoderWeights = new Map();
  for (const [name, shape] of encoderTensorShapes(c)) w.set(name, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal(0, 0.5)));
  return w;
}

test('text encoder: forward equals an independent float64 BERT (padding masked, HF layout weights)', async () => {
  const w = randomWeights(tiny, 1);
  const B = 2, T = 6;
  const ids = [2, 5, 6, 7, 3, 0, 2, 8, 9, 10, 11, 3];
  const mask = [1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1];
  const g = new Graph();
  const idT = g.input('ids', [B, T], 'int64');
  const mT = g.input('mask', [B, T]);
  const { hidden } = buildTextEncoder(g, tiny, idT, mT, { weights: w });
  const m = await InferenceModel.create(g, { hidden });
  const out = (await m.run({ ids, mask })).hidden as Float32Array;
  const ref = referenceBert(tiny, w, ids, mask, B, T);
  let maxErr = 0;
  for (let i = 0; i < ref.length; i++) maxErr = Math.max(maxErr, Math.abs(out[i]! - ref[i]!));
  assert.ok(maxErr < 1e-4, `max abs error ${maxErr}`);
  // a padded position must not influence real ones: change the pad token id, real rows stay put
  const ids2 = ids.slice(); ids2[5] = 11;
  const out2 = (await m.run({ ids: ids2, mask })).hidden as Float32Array;
  for (let i = 0; i < 5 * 8; i++) assert.ok(Math.abs(out2[i]! - out[i]!) < 1e-5);
  await m.dispose();
});

test('text encoder: a HuggingFace-layout folder runs through ReportTextEncoder like the reference', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctg-hfrun-'));
  try {
    const w = writeTinyHfBert(dir, { prefix: 'bert.' });
    const enc = new ReportTextEncoder(loadTextEncoderFolder(dir), { threads: 1 });
    const text = 'No lesion in the liver.  Lesions';
    const r = await enc.characterEmbeddings(text);
    assert.deepEqual(r.tokens.map((t) => t.text), ['no', 'lesion', 'in', 'the', 'liver', '.', 'lesion', '##s']);
    const ids = [2, ...r.tokens.map((t) => t.id), 3];
    const ref = referenceBert(tiny, w, ids, ids.map(() => 1), 1, ids.length);
    const H = 8;
    for (let j = 0; j < text.length; j++) {
      const k = r.charToken[j]!;
      if (/\s/.test(text[j]!)) { assert.equal(k, -1); assert.ok(r.data.subarray(j * H, j * H + H).every((v) => v === 0)); continue; }
      assert.ok(k >= 0 && r.tokens[k]!.start <= j && j < r.tokens[k]!.end);
      for (let d = 0; d < H; d++) assert.ok(Math.abs(r.data[j * H + d]! - ref[(k + 1) * H + d]!) < 1e-4, `char ${j} dim ${d}`);
    }
    await enc.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('text encoder: frozen first K layers get no update, the rest and the MLM head do', async () => {
  const c = { ...tiny, numLayers: 3, dropout: 0.1 };
  const g = new Graph({ seed: 4 });
  const B = 2, T = 6, P = 2;
  const ids = g.input('ids', [B, T], 'int64');
  const mask = g.input('mask', [B, T]);
  const pos = g.input('pos', [B * P], 'int64');
  const labels = g.input('labels', [B * P], 'int64');
  const wts = g.input('w', [B * P]);
  const enc = buildTextEncoder(g, c, ids, mask, { frozenLayers: 2 });
  const logits = buildMlmHead(g, c, enc.hidden, pos, g.params.get('bert.embeddings.word_embeddings.weight')!.tensor);
  const loss = ops.maskedCrossEntropy(logits, labels, wts);
  const before = new Map([...g.params].map(([n, p]) => [n, p.value.slice()]));
  const tr = await Trainer.create(g, { loss, optimizer: adam(1e-2) });
  await tr.step({ ids: [2, 5, 4, 7, 3, 0, 2, 4, 9, 10, 11, 3], mask: [1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1], pos: [2, 3, 7, 8], labels: [6, 7, 8, 9], w: [1, 1, 1, 0] });
  for (const [n, p] of g.params) {
    const changed = p.value.some((v, i) => v !== before.get(n)![i]);
    const frozen = n.startsWith('bert.embeddings.') || /^bert\.encoder\.layer\.[01]\./.test(n);
    assert.equal(changed, !frozen, `${n} changed=${changed}`);
  }
  await tr.dispose();
});

test('text encoder: the paper size (12 layers, 768 hidden, 12 heads) builds', () => {
  const c = paperConfig(30522);
  // zero weights given up front: drawing 110 M normal numbers would dominate the test's time
  const zeros: TextEncoderWeights = new Map([...encoderTensorShapes(c)].map(([n, s]) => [n, new Float32Array(s.reduce((a, b) => a * b, 1))]));
  const g = new Graph();
  const ids = g.input('ids', [1, 512], 'int64');
  const mask = g.input('mask', [1, 512]);
  const { hidden, layers } = buildTextEncoder(g, c, ids, mask, { frozenLayers: 8, weights: zeros });
  assert.deepEqual(hidden.shape, [1, 512, 768]);
  assert.equal(layers.length, 12);
  let n = 0, trainable = 0;
  for (const p of g.params.values()) { n += p.value.length; if (p.trainable) trainable += p.value.length; }
  // BERT-base without pooler: 108.9 M parameters; layers 8–11 are 4 × 7.09 M
  const perLayer = 4 * (768 * 768 + 768) + 2 * 768 * 3072 + 3072 + 768 + 4 * 768;
  assert.equal(n, (30522 + 512 + 2) * 768 + 2 * 768 + 12 * perLayer);
  assert.equal(trainable, 4 * perLayer);
});

test('text encoder: a text longer than the position table is encoded in sentence-aligned windows', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctg-hfwin-'));
  try {
    const w = writeTinyHfBert(dir); // 10 positions: at most 8 tokens per window
    const enc = new ReportTextEncoder(loadTextEncoderFolder(dir), { threads: 1 });
    const text = 'No lesion in the liver. The liver. No lesions in the liver in the liver.';
    const { tokens, states } = await enc.encode(text);
    const wins = tokenWindows(text, tokens, 8);
    // first two sentences (6 + 3 tokens) cannot share a window; the last (10 tokens) must be cut
    assert.deepEqual(wins.map((x) => [x.from, x.to]), [[0, 6], [6, 9], [9, 17], [17, 19]]);
    for (const { from, to } of wins) {
      const ids = [2, ...tokens.slice(from, to).map((t) => t.id), 3];
      const ref = referenceBert(tinyConfig, w, ids, ids.map(() => 1), 1, ids.length);
      for (let k = from; k < to; k++) for (let d = 0; d < 8; d++) assert.ok(Math.abs(states[k * 8 + d]! - ref[(k - from + 1) * 8 + d]!) < 1e-4);
    }
    await enc.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('text encoder: config ctground_encode_window limits inference windows to the positions pretraining trained', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctg-hfwin2-'));
  try {
    const w = writeTinyHfBert(dir);
    const cfgPath = join(dir, 'config.json');
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, ctground_encode_window: 6 }));
    const enc = new ReportTextEncoder(loadTextEncoderFolder(dir), { threads: 1 });
    assert.equal(enc.config.encodeWindow, 6);
    const text = 'No lesion in the liver. The liver.';
    const { tokens, states } = await enc.encode(text);
    // 4 tokens per window: [no lesion in the] [liver .] (cut inside the sentence, then at its end) [the liver .]
    for (const [from, to] of [[0, 4], [4, 6], [6, 9]] as const) {
      const ids = [2, ...tokens.slice(from, to).map((t) => t.id), 3];
      const ref = referenceBert(tinyConfig, w, ids, ids.map(() => 1), 1, ids.length);
      for (let k = from; k < to; k++) for (let d = 0; d < 8; d++) assert.ok(Math.abs(states[k * 8 + d]! - ref[(k - from + 1) * 8 + d]!) < 1e-4, `token ${k}`);
    }
    await enc.dispose();
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, ctground_encode_window: 99 }));
    assert.throws(() => loadTextEncoderFolder(dir), /config\.json: ctground_encode_window must be an integer in 3\.\.10, got 99/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
