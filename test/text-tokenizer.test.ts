import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPORTS_CSV } from './helpers/shared.ts';
import { basicTokenize, trainWordPiece, WordPieceTokenizer, readReportCsv, readCorpus, isHeldOut, parseCsv, splitSentences } from '../src/model/text/index.ts';

// BERT's normalization of one original character, written independently of the tokenizer.
const norm = (s: string) => s.toLowerCase().normalize('NFD').replace(/\p{Mn}/gu, '');

test('text tokenizer: CSV reader finds all 1,564 real reports and a fixed ~10 % held-out split', () => {
  const docs = readReportCsv(REPORTS_CSV());
  assert.equal(docs.length, 1564);
  assert.equal(new Set(docs.map((d) => d.id)).size, 1564);
  const held = docs.filter((d) => isHeldOut(d.id)).length;
  assert.ok(held > 100 && held < 220, `held-out ${held}`);
  // Findings and impressions are both present: the impression of the first report is its last part.
  assert.ok(docs[0]!.text.endsWith('upper lobe and lower lobe of the right lung.'));
});

test('text tokenizer: WordPiece round trip on all 1,564 real reports (offsets give back each token exactly)', () => {
  const docs = readReportCsv(REPORTS_CSV());
  const tok = trainWordPiece(docs.filter((d) => !isHeldOut(d.id)).map((d) => d.text), { vocabSize: 1200 });
  assert.equal(tok.size, 1200);
  let tokens = 0, unk = 0, continued = 0;
  for (const d of docs) {
    const ts = tok.tokenize(d.text);
    let covered = 0;
    let prevEnd = 0;
    for (const t of ts) {
      assert.ok(t.start >= prevEnd && t.end > t.start, `${d.id}: overlapping or empty span`);
      prevEnd = t.end;
      covered += t.end - t.start;
      const orig = d.text.slice(t.start, t.end);
      if (t.id === tok.unk) { unk++; continue; }
      const piece = t.text.startsWith('##') ? t.text.slice(2) : t.text;
      if (t.text.startsWith('##')) { continued++; assert.ok(/[^\s]/.test(d.text[t.start - 1]!), `${d.id}: ## piece after whitespace`); }
      assert.equal(norm(orig), piece, `${d.id}: token ${t.text} at ${t.start} covers '${orig}'`);
      assert.equal(tok.vocab[t.id], t.text);
      tokens++;
    }
    // every non-whitespace character belongs to a token
    assert.equal(covered, d.text.replace(/\s/g, '').length, `${d.id}: uncovered characters`);
  }
  assert.ok(tokens > 300_000 && continued > 0);
  assert.ok(unk < 10, `${unk} unknown tokens`);
});

test('text tokenizer: BERT basic rules (lowercase, accents, punctuation, CJK, control chars) keep offsets', () => {
  const text = 'Café\u0000 Naïve-HEPATIC, 3.5cm; 肝臓 \u00ADx İ';
  const words = basicTokenize(text);
  assert.deepEqual(words.map((w) => w.text), ['cafe', 'naive', '-', 'hepatic', ',', '3', '.', '5cm', ';', '肝', '臓', 'x', 'i']);
  for (const w of words) assert.equal(norm(text.slice(w.start, w.end)).replace(/\u00AD/g, ''), w.text);
  const cased = basicTokenize('Liver', false);
  assert.equal(cased[0]!.text, 'Liver');
  // A decomposed accent (e + combining acute) maps both code units to the one output letter.
  const dec = basicTokenize('cafe\u0301s');
  assert.deepEqual(dec.map((w) => [w.text, w.start, w.end]), [['cafes', 0, 6]]);
});

test('text tokenizer: vocab.txt save/load, greedy longest match, [UNK] for unknown words', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctg-text-'));
  try {
    const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'hepat', 'he', '##ic', '##i', '##c', 'liver', ','];
    const path = join(dir, 'vocab.txt');
    writeFileSync(path, vocab.join('\n') + '\n');
    const tok = WordPieceTokenizer.load(path);
    assert.deepEqual(tok.vocab, vocab);
    const ts = tok.tokenize('Hepatic liver, spleen');
    assert.deepEqual(ts.map((t) => [t.text, t.start, t.end]), [['hepat', 0, 5], ['##ic', 5, 7], ['liver', 8, 13], [',', 13, 14], ['[UNK]', 15, 21]]);
    tok.save(join(dir, 'again.txt'));
    assert.deepEqual(WordPieceTokenizer.load(join(dir, 'again.txt')).vocab, vocab);
    writeFileSync(join(dir, 'bad.txt'), 'a\nb\n');
    assert.throws(() => WordPieceTokenizer.load(join(dir, 'bad.txt')), /bad\.txt: vocabulary lacks the special token \[PAD\]/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('text corpus: CSV quoting, blank-line text blocks, sentence split keeps decimals', () => {
  assert.deepEqual(parseCsv('a,b\n"x, ""y""\nz",2\r\n'), [['a', 'b'], ['x, "y"\nz', '2']]);
  const dir = mkdtempSync(join(tmpdir(), 'ctg-text-'));
  try {
    const p = join(dir, 'c.txt');
    writeFileSync(p, 'First doc.\nStill first.\n\n  \nSecond doc.\n');
    assert.deepEqual(readCorpus(p).map((d) => d.text), ['First doc.\nStill first.', 'Second doc.']);
    writeFileSync(join(dir, 'x.csv'), 'A,B\n1,2\n');
    assert.throws(() => readCorpus(join(dir, 'x.csv')), /x\.csv: CSV has neither Findings_EN nor Impressions_EN/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const t = 'A 5.4 mm nodule. No effusion! Heart normal';
  assert.deepEqual(splitSentences(t).map((s) => t.slice(s.start, s.end)), ['A 5.4 mm nodule.', 'No effusion!', 'Heart normal']);
});
