import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRng } from '../src/common/index.ts';
import { REPORTS_CSV } from './helpers/shared.ts';
import { makeMlmBatch, packWindows, pretrainText, readReportCsv, trainWordPiece, loadTextEncoderFolder, PRETRAIN_DEFAULTS, type PretrainOptions } from '../src/model/text/index.ts';

test('text MLM: 15 % of real tokens masked, 80/10/10, specials and padding never chosen, labels are the originals', () => {
  const docs = readReportCsv(REPORTS_CSV()).slice(0, 200);
  const tok = trainWordPiece(docs.map((d) => d.text), { vocabSize: 600 });
  const ids = docs.map((d) => Int32Array.from(tok.tokenize(d.text), (t) => t.id));
  const T = 64, P = 10;
  const windows = packWindows(ids, T, tok.sep);
  // packing keeps every token, in order, with one [SEP] after each document
  assert.equal(windows.reduce((a, w) => a + w.length, 0), ids.reduce((a, d) => a + d.length + 1, 0));
  assert.ok(windows.slice(0, -1).every((w) => w.length === T - 2));
  const rng = createRng(5);
  let chosen = 0, real = 0, maskK = 0, randK = 0, keepK = 0;
  for (let i = 0; i + 16 <= windows.length; i += 16) {
    const seqs = windows.slice(i, i + 16);
    const b = makeMlmBatch(seqs, tok, T, P, rng);
    for (let r = 0; r < 16; r++) {
      const s = seqs[r]!;
      assert.equal(b.inputIds[r * T], tok.cls);
      assert.equal(b.inputIds[r * T + s.length + 1], tok.sep);
      real += [...s].filter((x) => x !== tok.sep).length;
    }
    for (let k = 0; k < b.labels.length; k++) {
      if (b.weights[k] === 0) continue;
      chosen++;
      const pos = b.positions[k]!;
      const row = Math.floor(pos / T), col = pos % T;
      assert.ok(col >= 1 && col <= seqs[row]!.length, 'position inside the sequence');
      assert.equal(b.labels[k], seqs[row]![col - 1], 'label is the original token');
      assert.ok(![tok.pad, tok.cls, tok.sep, tok.mask, tok.unk].includes(b.labels[k]!));
      const now = b.inputIds[pos]!;
      if (b.kinds[k] === 0) { maskK++; assert.equal(now, tok.mask); } else if (b.kinds[k] === 1) { randK++; assert.ok(now >= 5); } else { keepK++; assert.equal(now, b.labels[k]); }
    }
  }
  const rate = chosen / real;
  assert.ok(rate > 0.14 && rate < 0.16, `masked fraction ${rate}`);
  assert.ok(Math.abs(maskK / chosen - 0.8) < 0.03 && Math.abs(randK / chosen - 0.1) < 0.02 && Math.abs(keepK / chosen - 0.1) < 0.02, `${maskK} ${randK} ${keepK}`);
});

function tinyRun(dir: string, corpus: string, steps: number, resume = false): PretrainOptions {
  return { ...PRETRAIN_DEFAULTS, corpus: [corpus], out: dir, steps, resume, seed: 7, vocabSize: 300, batch: 4, seqLen: 32, longBatch: 1, longFraction: 0.25,
    lr: 3e-3, warmup: 2, dropout: 0.1, evalEvery: 1000, checkpointEvery: 3, threads: 1, quiet: true, model: { numLayers: 2, hiddenSize: 32, numHeads: 2, intermediateSize: 64, maxPositions: 64 } };
}

test('text pretraining: tiny run learns, writes an HF folder, and an interrupted run resumes to identical weights', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctg-pt-'));
  try {
    // a small real corpus as a text file (one report per blank-line block)
    const docs = readReportCsv(REPORTS_CSV()).slice(0, 120);
    const corpus = join(dir, 'reports.txt');
    writeFileSync(corpus, docs.map((d) => d.text.replace(/\n\s*\n/g, '\n')).join('\n\n'));
    const full = await pretrainText(tinyRun(join(dir, 'full'), corpus, 12));
    assert.equal(full.state.step, 12);
    const hist = full.state.history;
    assert.ok(full.eval && full.eval.positions > 100);
    // training loss falls and held-out masked loss beats the uniform guess log(V)
    assert.ok(hist[hist.length - 1]!.trainLoss < Math.log(300), `train loss ${hist[hist.length - 1]!.trainLoss}`);
    assert.ok(full.eval.loss < Math.log(300), `held-out ${full.eval.loss}`);
    const f = loadTextEncoderFolder(join(dir, 'full'));
    assert.equal(f.config.numLayers, 2);
    assert.ok(f.head !== null);
    const cfg = JSON.parse(readFileSync(join(dir, 'full', 'config.json'), 'utf8'));
    assert.equal(cfg.model_type, 'bert');

    // the same run cut at step 5 (inside the short phase, between checkpoints) and resumed: bit-identical weights
    const cut = await pretrainText({ ...tinyRun(join(dir, 'cut'), corpus, 12), stopAt: 5 });
    assert.equal(cut.state.step, 5);
    const resumed = await pretrainText(tinyRun(join(dir, 'cut'), corpus, 12, true));
    assert.equal(resumed.state.step, 12);
    const g = loadTextEncoderFolder(join(dir, 'cut'));
    for (const [name, w] of f.weights) assert.deepEqual(g.weights.get(name), w, name);
    await assert.rejects(pretrainText(tinyRun(join(dir, 'cut'), corpus, 12)), /already holds a pretraining run/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
