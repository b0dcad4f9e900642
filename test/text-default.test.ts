import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadTextEncoder, DEFAULT_TEXT_ENCODER_DIR } from '../src/model/text/index.ts';
import { REPORTS_CSV } from './helpers/shared.ts';
import { readReportCsv } from '../src/model/text/index.ts';

// Chosen before the shipped default was trained (committed with the training still running):
// organ nouns with their adjectives, against words of report boilerplate that name no organ.
const RELATED: [string, string][] = [['liver', 'hepatic'], ['lung', 'pulmonary'], ['kidney', 'renal'], ['heart', 'cardiac'], ['aorta', 'aortic'], ['pleura', 'pleural']];
const UNRELATED = ['recommended', 'millimetric', 'calibration', 'appearance', 'sections', 'natural'];

const cos = (a: Float32Array, b: Float32Array) => {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { d += a[i]! * b[i]!; na += a[i]! ** 2; nb += b[i]! ** 2; }
  return d / Math.sqrt(na * nb);
};

test('text default: shipped encoder loads; organ word pairs are nearer than unrelated pairs (input embeddings, cosine)', () => {
  const enc = loadTextEncoder(DEFAULT_TEXT_ENCODER_DIR);
  const vec = (w: string) => { const v = enc.wordVector(w); assert.ok(v, `'${w}' is not one token of the default vocabulary`); return v; };
  let wins = 0, gapSum = 0;
  for (const [a, b] of RELATED) {
    const related = cos(vec(a), vec(b));
    const unrelated = UNRELATED.reduce((s, u) => s + cos(vec(a), vec(u)) + cos(vec(b), vec(u)), 0) / (2 * UNRELATED.length);
    if (related > unrelated) wins++;
    gapSum += related - unrelated;
  }
  assert.ok(wins >= RELATED.length - 1, `only ${wins} of ${RELATED.length} organ pairs beat the unrelated words`);
  assert.ok(gapSum / RELATED.length > 0.05, `mean cosine gap ${gapSum / RELATED.length}`);
});

test('text default: character embeddings of a real report cover every non-space character', async () => {
  const enc = loadTextEncoder(DEFAULT_TEXT_ENCODER_DIR, { threads: 1 });
  const text = readReportCsv(REPORTS_CSV())[1]!.text;
  const r = await enc.characterEmbeddings(text);
  const H = enc.hiddenSize;
  assert.equal(r.data.length, text.length * H);
  for (let j = 0; j < text.length; j++) {
    const row = r.data.subarray(j * H, (j + 1) * H);
    const norm = Math.hypot(...row);
    if (/\s/.test(text[j]!)) assert.equal(norm, 0);
    else assert.ok(norm > 1 && Number.isFinite(norm), `char ${j} '${text[j]}' norm ${norm}`);
  }
  // characters of one token share its vector; different tokens of the same word differ by context
  const k = r.charToken[0]!;
  const t = r.tokens[k]!;
  for (let j = t.start + 1; j < t.end; j++) assert.deepEqual(r.data.subarray(j * H, (j + 1) * H), r.data.subarray(t.start * H, (t.start + 1) * H));
  await enc.dispose();
});
