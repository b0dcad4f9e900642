import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitSentences, recognizePhrases } from '../src/report/index.ts';

const texts = (t: string): string[] => splitSentences(t).map((s) => t.slice(s.start, s.end));

test('sentences: periods inside numbers, levels, segments and abbreviations do not split', () => {
  const t = 'A 5.2 cm mass at the level of T9, e.g. near the S6 segment, approx. 3 mm from the rib. Second sentence here.';
  assert.deepEqual(texts(t), ['A 5.2 cm mass at the level of T9, e.g. near the S6 segment, approx. 3 mm from the rib.', 'Second sentence here.']);
});

test('sentences: a unit ends a sentence before a capital, not before a lower-case word', () => {
  // the generator's own phrasing: merged, the kidney cyst was also read as a stomach cyst
  const t = 'There is a simple cyst in the left kidney, measuring 8 mm. The stomach is unremarkable. An effusion of 2 cm. thickness. Etc. follows.';
  assert.deepEqual(texts(t), ['There is a simple cyst in the left kidney, measuring 8 mm.', 'The stomach is unremarkable.', 'An effusion of 2 cm. thickness.', 'Etc. follows.']);
});

test('sentences: section headers, lists, semicolons before a capital and bare line breaks', () => {
  const t = 'FINDINGS:\n1. Nodule in the right lung.\n2. Cyst in the liver\nSmall effusion on the left\n\nImpression: When examined in the lung window; A few nodules are seen; no mass.';
  const s = splitSentences(t);
  assert.deepEqual(s.map((x) => t.slice(x.start, x.end)), [
    '1. Nodule in the right lung.',
    '2. Cyst in the liver',
    'Small effusion on the left',
    'When examined in the lung window;',
    'A few nodules are seen; no mass.',
  ]);
  assert.deepEqual(s.map((x) => x.section), ['findings', 'findings', 'findings', 'impression', 'impression']);
});

test('sentences: a question mark inside a parenthesis or before lower case does not split', () => {
  const t = 'Density increase (secondary to treatment?) in the left axilla. Viral pneumonia? There are bronchiectases.';
  assert.deepEqual(texts(t), ['Density increase (secondary to treatment?) in the left axilla.', 'Viral pneumonia?', 'There are bronchiectases.']);
});

test('sentences: empty and whitespace-only input give no sentences; a run-on text is cut at whitespace', () => {
  assert.deepEqual(splitSentences(''), []);
  assert.deepEqual(splitSentences('  \n\t '), []);
  const words = Array.from({ length: 3000 }, (_, i) => `word${i}`).join(' ');
  const s = splitSentences(words);
  assert.ok(s.length >= 15);
  for (const x of s) {
    assert.ok(x.end - x.start <= 1000);
    assert.ok(!/^\s|\s$/.test(words.slice(x.start, x.end)));
  }
  assert.equal(s.map((x) => words.slice(x.start, x.end)).join(' '), words);
});

test('phrases: longest match wins and offsets index the original text', () => {
  const t = 'Ground-glass opacities in the posterior basal segment of the LEFT lower lobe, 12x8 mm.';
  const { phrases } = recognizePhrases(t);
  for (const p of phrases) assert.equal(t.slice(p.start, p.end), p.text);
  const byText = Object.fromEntries(phrases.map((p) => [p.text, p.class]));
  assert.equal(byText['Ground-glass opacities'], 'anomaly');
  assert.equal(byText['posterior basal segment'], 'location');
  assert.equal(byText['LEFT'], 'location');
  assert.equal(byText['lower lobe'], 'location');
  assert.equal(byText['12x8 mm'], 'size');
  assert.equal(byText['opacities'], undefined, 'the shorter match inside a longer one is not a phrase');
});
