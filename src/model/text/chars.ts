import type { Token } from './tokenizer.ts';
import { splitSentences } from './corpus.ts';

/**
 * For every character j of a text of length `length`, the index of the token covering it, or −1
 * where no token does (whitespace, dropped control characters). This is what turns token hidden
 * states into the paper's per-character embeddings r[j]: a graph can Gather with it (after mapping
 * −1 to an appended zero row).
 */
export function charTokenIndex(tokens: readonly Token[], length: number): Int32Array {
  const idx = new Int32Array(length).fill(-1);
  tokens.forEach((t, k) => { for (let j = t.start; j < t.end; j++) idx[j] = k; });
  return idx;
}

/**
 * Splits a long token list into windows of at most `maxTokens`, cutting only at sentence ends
 * when possible, so each window is a self-contained stretch of report for the encoder. A single
 * sentence longer than the window is cut at the window size.
 */
export function tokenWindows(text: string, tokens: readonly Token[], maxTokens: number): { from: number; to: number }[] {
  if (tokens.length <= maxTokens) return [{ from: 0, to: tokens.length }];
  const sentenceEnds = new Set<number>();
  // token k ends a sentence when the next token starts in a later sentence
  const sents = splitSentences(text);
  let si = 0;
  for (let k = 0; k < tokens.length; k++) {
    while (si < sents.length && sents[si]!.end <= tokens[k]!.start) si++;
    const next = tokens[k + 1];
    if (!next || (si < sents.length && next.start >= sents[si]!.end)) sentenceEnds.add(k + 1);
  }
  const out: { from: number; to: number }[] = [];
  let from = 0;
  while (from < tokens.length) {
    let to = Math.min(tokens.length, from + maxTokens);
    if (to < tokens.length) {
      let cut = to;
      while (cut > from && !sentenceEnds.has(cut)) cut--;
      if (cut > from) to = cut;
    }
    out.push({ from, to });
    from = to;
  }
  return out;
}
