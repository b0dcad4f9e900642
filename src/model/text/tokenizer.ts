import { readFileSync } from 'node:fs';
import { fileError, writeFileAtomic } from '../../common/index.ts';

/** One WordPiece token with the half-open span [start, end) of the ORIGINAL text it came from. */
export interface Token {
  id: number;
  text: string;
  start: number;
  end: number;
}

export const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

/** A character after BERT normalization, remembering the original span that produced it. */
interface NormChar {
  ch: string;
  start: number;
  end: number;
}

/** A pre-token (a whitespace/punctuation-delimited word) after basic tokenization. */
export interface Word {
  text: string;
  start: number;
  end: number;
  /** original span of each code point of `text` (normalization may change lengths) */
  spans: [number, number][];
}

const PUNCT = /^\p{P}$/u;
const CONTROL = /^[\p{Cc}\p{Cf}]$/u;
const MARK_NONSPACING = /\p{Mn}/gu;

function isWhitespace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || /^\p{Zs}$/u.test(c);
}

function isControl(c: string): boolean {
  if (c === '\t' || c === '\n' || c === '\r') return false;
  return CONTROL.test(c);
}

// BERT treats all non-letter/number ASCII as punctuation ("$", "^", "`" are not Unicode P*).
function isPunctuation(c: string): boolean {
  const cp = c.codePointAt(0)!;
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) return true;
  return PUNCT.test(c);
}

function isCjk(cp: number): boolean {
  return (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) || (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f);
}

/**
 * BERT's BasicTokenizer (clean text, split CJK, whitespace split, lowercase, strip accents,
 * punctuation split), done one original code point at a time so that every output character keeps
 * the span of the original text it came from. Normalizing the whole string first (as the
 * reference does) would lose that mapping whenever NFD or lowercasing changes lengths.
 */
export function basicTokenize(text: string, lowercase = true): Word[] {
  const words: Word[] = [];
  let cur: NormChar[] = [];
  const flush = () => {
    if (cur.length === 0) return;
    words.push({ text: cur.map((c) => c.ch).join(''), start: cur[0]!.start, end: cur[cur.length - 1]!.end, spans: cur.map((c) => [c.start, c.end]) });
    cur = [];
  };
  let i = 0;
  while (i < text.length) {
    const cp = text.codePointAt(i)!;
    const c = String.fromCodePoint(cp);
    const start = i, end = i + c.length;
    i = end;
    if (cp === 0 || cp === 0xfffd || isControl(c)) continue;
    if (isWhitespace(c)) { flush(); continue; }
    if (isCjk(cp)) { flush(); cur.push({ ch: c, start, end }); flush(); continue; }
    let norm = c;
    if (lowercase) norm = c.toLowerCase().normalize('NFD').replace(MARK_NONSPACING, '');
    if (norm.length === 0) continue; // a lone combining accent: BERT drops it
    for (const n of norm) {
      if (isPunctuation(n)) { flush(); cur.push({ ch: n, start, end }); flush(); } else cur.push({ ch: n, start, end });
    }
  }
  flush();
  return words;
}

/** A WordPiece vocabulary (BERT's `vocab.txt`: one token per line, id = line number). */
export class WordPieceTokenizer {
  readonly ids = new Map<string, number>();
  readonly pad: number;
  readonly unk: number;
  readonly cls: number;
  readonly sep: number;
  readonly mask: number;

  constructor(readonly vocab: string[], readonly lowercase = true, readonly maxCharsPerWord = 100) {
    vocab.forEach((t, i) => { if (!this.ids.has(t)) this.ids.set(t, i); });
    const need = (t: string) => {
      const id = this.ids.get(t);
      if (id === undefined) throw new Error(`vocabulary lacks the special token ${t}`);
      return id;
    };
    this.pad = need('[PAD]');
    this.unk = need('[UNK]');
    this.cls = need('[CLS]');
    this.sep = need('[SEP]');
    this.mask = need('[MASK]');
  }

  get size(): number {
    return this.vocab.length;
  }

  static load(path: string, lowercase = true): WordPieceTokenizer {
    let raw: string;
    try {
      raw = readFileSync(path, 'utf8');
    } catch (e) {
      throw fileError(path, `cannot read vocabulary (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const vocab = raw.split('\n');
    if (vocab.length > 0 && vocab[vocab.length - 1] === '') vocab.pop();
    const lines = vocab.map((l) => l.replace(/\r$/, ''));
    try {
      return new WordPieceTokenizer(lines, lowercase);
    } catch (e) {
      throw fileError(path, (e as Error).message);
    }
  }

  save(path: string): void {
    writeFileAtomic(path, this.vocab.join('\n') + '\n');
  }

  /** Greedy longest-match-first WordPiece split of one basic word (BERT's rule: all or [UNK]). */
  wordPieces(word: Word): Token[] {
    const chars = Array.from(word.text);
    if (chars.length > this.maxCharsPerWord) return [{ id: this.unk, text: '[UNK]', start: word.start, end: word.end }];
    const out: Token[] = [];
    let s = 0;
    while (s < chars.length) {
      let e = chars.length;
      let found: Token | undefined;
      while (e > s) {
        const piece = (s > 0 ? '##' : '') + chars.slice(s, e).join('');
        const id = this.ids.get(piece);
        if (id !== undefined) {
          found = { id, text: piece, start: word.spans[s]![0], end: word.spans[e - 1]![1] };
          break;
        }
        e--;
      }
      if (!found) return [{ id: this.unk, text: '[UNK]', start: word.start, end: word.end }];
      out.push(found);
      s = e;
    }
    return out;
  }

  /** Tokens of `text` (no [CLS]/[SEP]) with their original character spans. */
  tokenize(text: string): Token[] {
    const out: Token[] = [];
    for (const w of basicTokenize(text, this.lowercase)) out.push(...this.wordPieces(w));
    return out;
  }
}

export interface WordPieceTrainOptions {
  vocabSize: number;
  /** pieces seen fewer times than this are never merged */
  minFrequency?: number;
  lowercase?: boolean;
  /** extra tokens kept verbatim after the specials (e.g. "[unused0]") */
  reserved?: string[];
}

/**
 * Learns a WordPiece vocabulary from documents. Starts from every character (word-initial and
 * "##"-continuation forms) and repeatedly merges the most frequent adjacent pair, as HuggingFace's
 * WordPiece trainer does. The likelihood score count(ab)/(count(a)·count(b)) was tried first: on
 * this small corpus (about 3,000 distinct words) it spends the vocabulary on rare pairs and left
 * even "the" split as "th ##e" at 4,000 tokens, so frequency it is.
 */
export function trainWordPiece(documents: Iterable<string>, opts: WordPieceTrainOptions): WordPieceTokenizer {
  const lowercase = opts.lowercase ?? true;
  const minFreq = opts.minFrequency ?? 2;
  const wordCounts = new Map<string, number>();
  for (const doc of documents) for (const w of basicTokenize(doc, lowercase)) wordCounts.set(w.text, (wordCounts.get(w.text) ?? 0) + 1);
  // Deterministic order regardless of Map insertion quirks: sort words.
  const words = [...wordCounts.keys()].sort();
  const splits: string[][] = words.map((w) => Array.from(w).map((c, i) => (i === 0 ? c : '##' + c)));
  const freqs = words.map((w) => wordCounts.get(w)!);
  const vocab: string[] = [...SPECIAL_TOKENS, ...(opts.reserved ?? [])];
  const inVocab = new Set(vocab);
  const alphabet = new Set<string>();
  for (const s of splits) for (const p of s) alphabet.add(p);
  for (const c of [...alphabet].sort()) if (!inVocab.has(c)) { vocab.push(c); inVocab.add(c); }

  while (vocab.length < opts.vocabSize) {
    const pairCount = new Map<string, number>();
    for (let wi = 0; wi < splits.length; wi++) {
      const s = splits[wi]!, f = freqs[wi]!;
      for (let k = 0; k + 1 < s.length; k++) {
        const key = s[k] + '\u0000' + s[k + 1];
        pairCount.set(key, (pairCount.get(key) ?? 0) + f);
      }
    }
    let best = '', bestScore = -1;
    for (const [key, c] of pairCount) {
      if (c < minFreq) continue;
      if (c > bestScore || (c === bestScore && key < best)) { bestScore = c; best = key; }
    }
    if (bestScore < 0) break;
    const [a, b] = best.split('\u0000') as [string, string];
    const merged = a + (b.startsWith('##') ? b.slice(2) : b);
    for (let wi = 0; wi < splits.length; wi++) {
      const s = splits[wi]!;
      if (s.length < 2) continue;
      let changed = false;
      const next: string[] = [];
      for (let k = 0; k < s.length; k++) {
        if (k + 1 < s.length && s[k] === a && s[k + 1] === b) { next.push(merged); k++; changed = true; } else next.push(s[k]!);
      }
      if (changed) splits[wi] = next;
    }
    if (!inVocab.has(merged)) { vocab.push(merged); inVocab.add(merged); }
  }
  return new WordPieceTokenizer(vocab, lowercase);
}
