import { lexiconMatches, loadLexicon, patternMatches, tokenize, type Lexicon, type Match, type Token } from './lexicon.ts';
import type { Phrase } from './types.ts';

/**
 * Phrase recognition: every lexicon and pattern match in [from, to), overlaps resolved by
 * keeping the longest (ties: the earlier, then the lexicon's class priority, which matches
 * already encode). Returns phrases sorted by start, with the tokens of the range.
 */
export function recognizePhrases(text: string, from = 0, to = text.length, lex: Lexicon = loadLexicon()): { phrases: Phrase[]; tokens: Token[] } {
  const tokens = tokenize(text, from, to);
  const cands: Match[] = lexiconMatches(lex, text, tokens);
  for (const m of patternMatches(lex, text, from, to)) cands.push(m);
  cands.sort((a, b) => (b.end - b.start) - (a.end - a.start) || a.start - b.start);
  const taken = new Uint8Array(to - from);
  const out: Phrase[] = [];
  for (const m of cands) {
    let free = true;
    for (let i = m.start; i < m.end; i++) if (taken[i - from]) { free = false; break; }
    if (!free) continue;
    taken.fill(1, m.start - from, m.end - from);
    if (m.cls === 'ignore') continue;
    out.push({ start: m.start, end: m.end, text: text.slice(m.start, m.end), class: m.cls, info: m.info });
  }
  out.sort((a, b) => a.start - b.start);
  return { phrases: out, tokens };
}
