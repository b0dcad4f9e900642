import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../common/index.ts';

/**
 * Section and sentence splitting for radiology text. A period ends a sentence only when
 * whitespace follows and the word before is not an abbreviation, so '5.2 cm', 'T9', 'S6' and
 * 'e.g.' survive; a line break ends one when the next line starts like a sentence (capital,
 * bullet, list number) or the line ended with punctuation, so reports without periods at line
 * ends still split; '; ' before a capital ends one (the CT-RATE 'window; A few nodules...').
 */

export interface SentenceSpan {
  start: number;
  end: number;
  section?: string;
}

interface SplitData {
  abbreviations: Set<string>;
  endBeforeCapital: Set<string>;
  sections: Map<string, string>;
}

let data: SplitData | undefined;
function splitData(): SplitData {
  if (!data) {
    const raw = JSON.parse(readFileSync(join(projectRoot, 'data', 'lexicon', 'splitting.json'), 'utf8')) as { abbreviations: string[]; endBeforeCapital: string[]; sections: Record<string, string> };
    data = { abbreviations: new Set(raw.abbreviations), endBeforeCapital: new Set(raw.endBeforeCapital), sections: new Map(Object.entries(raw.sections)) };
  }
  return data;
}

/** Longest sentence kept whole; longer runs (no punctuation at all) are cut at whitespace so that
 * later stages stay linear in the report length. */
export const MAX_SENTENCE = 1000;

const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v' || c === '\u00a0';
const isUpper = (c: string | undefined): boolean => c !== undefined && c !== c.toLowerCase() && c === c.toUpperCase();
const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
const startsSentence = (c: string | undefined): boolean => isUpper(c) || isDigit(c) || c === '-' || c === '•' || c === '*' || c === '(' || c === '"' || c === '·' || c === '–';
const HAS_LETTER = /\p{L}/u;

function sectionOf(head: string): string | undefined {
  const key = head.trim().replace(/[:\s]+$/, '').replace(/\s+/g, ' ').toLowerCase();
  return key.length > 0 && key.length <= 40 ? splitData().sections.get(key) : undefined;
}

export function splitSentences(text: string): SentenceSpan[] {
  const { abbreviations, endBeforeCapital } = splitData();
  const raw: SentenceSpan[] = [];
  let section: string | undefined;
  let s = 0;
  const emit = (end: number): void => {
    let a = s, b = end;
    while (a < b && isSpace(text[a])) a++;
    while (b > a && isSpace(text[b - 1])) b--;
    s = end;
    if (a >= b) return;
    const head = text.slice(a, b);
    const sec = b - a <= 48 ? sectionOf(head) : undefined;
    if (sec) { section = sec; return; }
    if (!HAS_LETTER.test(head)) return;
    raw.push(section ? { start: a, end: b, section } : { start: a, end: b });
  };
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text[i];
    if (c === '.' || c === '!' || c === '?') {
      let j = i + 1;
      while (j < n && (text[j] === ')' || text[j] === '"' || text[j] === "'" || text[j] === '.')) j++;
      if (j < n && !isSpace(text[j])) continue;
      let k = j;
      while (k < n && isSpace(text[k])) k++;
      const next = text[k];
      if (c === '.') {
        const before = /([\p{L}.]+)$/u.exec(text.slice(Math.max(s, i - 12), i))?.[1]?.toLowerCase();
        if (before && abbreviations.has(before) && !(endBeforeCapital.has(before) && isUpper(next))) continue;
        if (i - s < 8 && /^\s*\d{1,2}$/.test(text.slice(s, i))) continue; // a list number '1.'
      } else if (k < n && !startsSentence(next)) continue; // '(post-treatment?) and ...'
      emit(j);
      i = j - 1;
    } else if (c === ';') {
      let k = i + 1;
      while (k < n && isSpace(text[k])) k++;
      if (k > i + 1 && isUpper(text[k])) emit(i + 1);
    } else if (c === ':') {
      if (i - s <= 60 && sectionOf(text.slice(s, i))) emit(i + 1);
    } else if (c === '\n') {
      let k = i + 1;
      while (k < n && isSpace(text[k]) && text[k] !== '\n') k++;
      let p = i - 1;
      while (p >= s && isSpace(text[p])) p--;
      const last = text[p];
      if (text[k] === '\n' || k >= n || startsSentence(text[k]) || last === '.' || last === ':' || last === ';' || last === '!' || last === '?' || (i - s <= 60 && sectionOf(text.slice(s, i)))) emit(i + 1);
    }
  }
  emit(n);
  // Cap run-on sentences at whitespace.
  const out: SentenceSpan[] = [];
  for (const r of raw) {
    let a = r.start;
    while (r.end - a > MAX_SENTENCE) {
      let cut = a + MAX_SENTENCE;
      while (cut > a + MAX_SENTENCE / 2 && !isSpace(text[cut])) cut--;
      if (cut <= a + MAX_SENTENCE / 2) cut = a + MAX_SENTENCE;
      let e = cut;
      while (e > a && isSpace(text[e - 1])) e--;
      out.push(r.section ? { start: a, end: e, section: r.section } : { start: a, end: e });
      a = cut;
      while (a < r.end && isSpace(text[a])) a++;
    }
    if (a < r.end) out.push(r.section ? { start: a, end: r.end, section: r.section } : { start: a, end: r.end });
  }
  return out;
}
