import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileError, projectRoot } from '../common/index.ts';
import type { PhraseClass, PhraseInfo } from './types.ts';

/**
 * The lexicons of data/lexicon/ compiled into one token trie (longest match, character offsets)
 * plus the regular-expression patterns for things no word list covers (sizes, S6, T9).
 */

export interface Token {
  start: number;
  end: number;
  /** lower-cased, plural folded */
  norm: string;
}

const WORD = /[\p{L}\p{N}]+/gu;

/**
 * Folds English plurals so one lexicon entry covers 'nodule' and 'nodules'. Applied to both the
 * lexicon and the text, so an imperfect fold ('masses' -> 'mass', 'bronchiectasis' kept) only
 * has to be consistent, not linguistically right.
 */
export function foldWord(w: string): string {
  const s = w.toLowerCase();
  if (s.length <= 3) return s;
  if (s.endsWith('ies') && s.length > 4) return s.slice(0, -3) + 'y';
  if (s.endsWith('sses')) return s.slice(0, -2);
  if (s.endsWith('s') && !s.endsWith('ss') && !s.endsWith('us') && !s.endsWith('is')) return s.slice(0, -1);
  return s;
}

export function tokenize(text: string, from = 0, to = text.length): Token[] {
  const out: Token[] = [];
  WORD.lastIndex = from;
  for (let m = WORD.exec(text); m && m.index < to; m = WORD.exec(text)) {
    const end = Math.min(m.index + m[0].length, to);
    out.push({ start: m.index, end, norm: foldWord(text.slice(m.index, end)) });
  }
  return out;
}

/** 'ignore' marks phrases that are matched only so that their words form no other phrase. */
export type MatchClass = PhraseClass | 'ignore';

interface Entry {
  cls: MatchClass;
  info: PhraseInfo;
}

interface TrieNode {
  next: Map<string, TrieNode>;
  entry?: Entry;
}

export interface Pattern {
  re: RegExp;
  cls: MatchClass;
  info: PhraseInfo;
  /** when set, each match of this inside a match of `re` is a phrase of its own (list items) */
  items?: RegExp;
}

/** Folded word sequences indexed by their first word, for fast 'does one start here' tests. */
export type SeqIndex = Map<string, string[][]>;

export function seqIndex(seqs: string[][]): SeqIndex {
  const m: SeqIndex = new Map();
  for (const q of seqs) {
    if (q.length === 0) continue;
    const l = m.get(q[0]!);
    if (l) l.push(q); else m.set(q[0]!, [q]);
  }
  return m;
}

export interface Lexicon {
  root: TrieNode;
  patterns: Pattern[];
  /** scope terminators of certainty cues */
  terminators: SeqIndex;
  clauseWords: Set<string>;
  /** after a clause word, what continues the statement's list instead of starting a new one */
  clauseContinuations: Set<string>;
  clauseSkip: Set<string>;
  verbs: Set<string>;
  /** relation cues (data/lexicon/relations.json) */
  nonLocating: SeqIndex;
  subjectStops: SeqIndex;
  relativeWords: SeqIndex;
  explainers: SeqIndex;
  hedgeTransparent: SeqIndex;
  /** finding types an explanation after them retypes (relations.json explainableTypes) */
  explainableTypes: Set<string>;
  /** diagnosis types too vague to retype a density finding ('hypodense lesion, possibly a hemangioma' stays low density) */
  weakExplanations: Set<string>;
  /** types that exist only in the lung (anomaly.json lungOnly) */
  lungOnly: Set<string>;
  /** aortic diameters that are a dilatation without a dilatation word (anomaly.json measuredDilatation) */
  measuredDilatation: { segments: { words: string[]; minMm: number }[]; defaultMinMm: number };
  /** scan-area phrases that give the organ of a finding in a sentence naming none (ignore.json organOf) */
  areaOrgans: { re: RegExp; organ: string }[];
  /** number of terms per class, for docs and tests */
  counts: Record<string, number>;
}

/** When one term is listed under two classes the earlier class here wins (documented in docs/report.md). */
const CLASS_PRIORITY: MatchClass[] = ['anomaly', 'certainty', 'anatomy', 'location', 'change', 'diagnosis', 'size', 'density', 'property', 'ignore'];

function readJson(name: string): any {
  const path = join(projectRoot, 'data', 'lexicon', name);
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch {
    throw fileError(path, 'lexicon file missing');
  }
  try {
    return JSON.parse(raw);
  } catch (e) {
    throw fileError(path, `not valid JSON (${(e as Error).message})`);
  }
}

export function foldPhrase(term: string): string[] {
  return tokenize(term).map((t) => t.norm);
}

let cached: Lexicon | undefined;

export function loadLexicon(): Lexicon {
  if (cached) return cached;
  const root: TrieNode = { next: new Map() };
  const counts: Record<string, number> = {};
  const add = (term: string, cls: MatchClass, info: PhraseInfo): void => {
    const toks = foldPhrase(term);
    if (toks.length === 0) return;
    let node = root;
    for (const t of toks) {
      let n = node.next.get(t);
      if (!n) node.next.set(t, (n = { next: new Map() }));
      node = n;
    }
    if (node.entry && CLASS_PRIORITY.indexOf(node.entry.cls) <= CLASS_PRIORITY.indexOf(cls)) return;
    node.entry = { cls, info };
    counts[cls] = (counts[cls] ?? 0) + 1;
  };
  const patterns: Pattern[] = [];

  const anatomy = readJson('anatomy.json') as { organs: Record<string, string[]> };
  const anatomyOrgan = new Map<string, string>();
  for (const [organ, terms] of Object.entries(anatomy.organs)) {
    for (const t of terms) { add(t, 'anatomy', { organ }); anatomyOrgan.set(foldPhrase(t).join(' '), organ); }
  }
  // A multi-word anomaly term that contains an anatomy word ('peribronchial thickening',
  // 'fatty liver') speaks of that organ.
  const organInside = (term: string): string | undefined => {
    const toks = foldPhrase(term);
    let found: string | undefined;
    for (let a = 0; a < toks.length; a++) {
      for (let b = toks.length; b > a; b--) {
        const o = anatomyOrgan.get(toks.slice(a, b).join(' '));
        if (o) { found = o; break; }
      }
    }
    return found;
  };

  const anomaly = readJson('anomaly.json') as { adjectives?: string[]; lungOnly?: string[]; measuredDilatation?: Lexicon['measuredDilatation']; entries: { type: string; terms: string[]; organ?: string; generic?: boolean; needsDensity?: string[]; byDensity?: Record<string, string>; byOrgan?: Record<string, string>; organMap?: Record<string, string>; defaultOrganMap?: Record<string, string>; organRemap?: Record<string, string> }[] };
  const adjectives = new Set(anomaly.adjectives ?? []);
  for (const e of anomaly.entries) {
    for (const term of e.terms) {
      const info: PhraseInfo = { type: e.type };
      if (adjectives.has(term)) info.adjective = true;
      const organ = e.organMap?.[term] ?? (term.includes(' ') ? organInside(term) : undefined);
      if (organ) info.organ = organ;
      if (e.organ) info.defaultOrgan = e.organ;
      if (e.defaultOrganMap?.[term]) info.fallbackOrgan = e.defaultOrganMap[term];
      if (e.generic) info.generic = true;
      if (e.needsDensity?.includes(term)) info.needsDensity = true;
      if (e.byDensity) info.byDensity = e.byDensity;
      if (e.byOrgan) info.byOrgan = e.byOrgan;
      if (e.organRemap) info.organRemap = e.organRemap;
      add(term, 'anomaly', info);
    }
  }

  const location = readJson('location.json') as {
    entries: { role: 'side' | 'site'; organ?: string; terms: string[] }[];
    patterns: { role: 'side' | 'site'; regex: string; flags: string; organ?: string | null; listItem?: boolean; items?: string }[];
    noSplit?: string[];
  };
  const noSplit = new Set(location.noSplit ?? []);
  for (const e of location.entries) {
    for (const t of e.terms) {
      const info: PhraseInfo = e.organ ? { role: e.role, organ: e.organ } : { role: e.role };
      if (noSplit.has(t)) info.noSplit = true;
      add(t, 'location', info);
    }
  }
  for (const p of location.patterns) {
    const info: PhraseInfo = p.organ ? { role: p.role, organ: p.organ } : { role: p.role };
    if (p.listItem) info.listItem = true;
    const flags = p.flags.includes('g') ? p.flags : p.flags + 'g';
    patterns.push({ re: new RegExp(p.regex, flags), cls: 'location', info, ...(p.items ? { items: new RegExp(p.items, flags) } : {}) });
  }

  const mods = readJson('modifiers.json') as {
    size: { terms: string[]; patterns: { regex: string; flags: string }[] };
    property: { terms: string[] };
    density: { terms: Record<string, string[]>; patterns: { regex: string; flags: string }[] };
    change: { terms: string[] };
    diagnosis: { terms: Record<string, string[]>; defaultOrgan?: Record<string, string> };
  };
  for (const t of mods.size.terms) add(t, 'size', {});
  for (const p of mods.size.patterns) patterns.push({ re: new RegExp(p.regex, p.flags), cls: 'size', info: { numeric: true } });
  for (const t of mods.property.terms) add(t, 'property', {});
  for (const [kind, terms] of Object.entries(mods.density.terms)) for (const t of terms) add(t, 'density', { density: kind });
  for (const p of mods.density.patterns) patterns.push({ re: new RegExp(p.regex, p.flags), cls: 'density', info: {} });
  for (const t of mods.change.terms) add(t, 'change', {});
  for (const [type, terms] of Object.entries(mods.diagnosis.terms)) {
    const organ = mods.diagnosis.defaultOrgan?.[type];
    for (const t of terms) add(t, 'diagnosis', organ ? { type, defaultOrgan: organ } : { type });
  }
  for (const t of (readJson('ignore.json') as { terms: string[] }).terms) add(t, 'ignore', {});

  const cert = readJson('certainty.json') as Record<string, string[]>;
  for (const cue of ['negPre', 'negPost', 'hedgePre', 'hedgePost'] as const) {
    for (const t of cert[cue] ?? []) add(t, 'certainty', { cue });
  }
  for (const re of cert.hedgePostPatterns ?? []) patterns.push({ re: new RegExp(re, 'g'), cls: 'certainty', info: { cue: 'hedgePost' } });
  // Changes that mean the finding is gone ('has resolved') stay change phrases but negate.
  for (const t of cert.negPostChange ?? []) add(t, 'change', { cue: 'negPost' });

  const rel = readJson('relations.json') as Record<string, string[]>;
  const lungOnly = new Set(anomaly.lungOnly ?? []);
  const seqs = (key: string): SeqIndex => seqIndex((rel[key] ?? []).map(foldPhrase));
  cached = {
    root,
    patterns,
    terminators: seqIndex((cert.terminators ?? []).map(foldPhrase)),
    clauseWords: new Set((cert.clauseWords ?? []).map(foldWord)),
    clauseContinuations: new Set((cert.clauseContinuations ?? []).map(foldWord)),
    clauseSkip: new Set((cert.clauseSkip ?? []).map(foldWord)),
    verbs: new Set((cert.verbs ?? []).map(foldWord)),
    nonLocating: seqs('nonLocating'),
    subjectStops: seqs('subjectStops'),
    relativeWords: seqs('relativeWords'),
    explainers: seqs('explainers'),
    hedgeTransparent: seqs('hedgeTransparent'),
    explainableTypes: new Set(rel.explainableTypes ?? []),
    weakExplanations: new Set(rel.weakExplanations ?? []),
    lungOnly,
    measuredDilatation: anomaly.measuredDilatation ?? { segments: [], defaultMinMm: Infinity },
    areaOrgans: Object.entries((readJson('ignore.json') as { organOf?: Record<string, string> }).organOf ?? {})
      .sort((a, b) => b[0].length - a[0].length)
      .map(([t, organ]) => ({ re: new RegExp(`\\b${t.split(' ').join('[\\s-]+')}\\b`, 'i'), organ })),
    counts,
  };
  return cached;
}

/** Only spaces and hyphens may stand between the words of one lexicon phrase. */
function joins(text: string, a: number, b: number): boolean {
  for (let i = a; i < b; i++) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 45 && c !== 9 && c !== 10 && c !== 13 && c !== 0xa0 && c !== 0x2010 && c !== 0x2013) return false;
  }
  return true;
}

export interface Match {
  start: number;
  end: number;
  cls: MatchClass;
  info: PhraseInfo;
}

/**
 * Every lexicon match starting at each token, longest first: the caller keeps the longest
 * non-overlapping ones, and a shorter match survives when a longer one loses an overlap ('No' of
 * 'No pathological size ...' once 'pathological size' wins over 'no pathological').
 */
export function lexiconMatches(lex: Lexicon, text: string, tokens: Token[]): Match[] {
  const out: Match[] = [];
  for (let i = 0; i < tokens.length; i++) {
    let node: TrieNode | undefined = lex.root;
    for (let j = i; j < tokens.length; j++) {
      if (j > i && !joins(text, tokens[j - 1]!.end, tokens[j]!.start)) break;
      node = node.next.get(tokens[j]!.norm);
      if (!node) break;
      if (node.entry) out.push({ start: tokens[i]!.start, end: tokens[j]!.end, cls: node.entry.cls, info: node.entry.info });
    }
  }
  return out;
}

export function patternMatches(lex: Lexicon, text: string, from: number, to: number): Match[] {
  const out: Match[] = [];
  const slice = text.slice(from, to);
  for (const p of lex.patterns) {
    p.re.lastIndex = 0;
    for (let m = p.re.exec(slice); m; m = p.re.exec(slice)) {
      if (m[0].length === 0) { p.re.lastIndex++; continue; }
      const s = m[0].trimEnd();
      if (p.items) {
        // a list ('segments 2, 3 and 5'): one phrase per item; linear, unlike a look-behind per item
        p.items.lastIndex = 0;
        for (let it = p.items.exec(s); it; it = p.items.exec(s)) {
          if (it[0].length === 0) { p.items.lastIndex++; continue; }
          out.push({ start: from + m.index + it.index, end: from + m.index + it.index + it[0].length, cls: p.cls, info: p.info });
        }
        continue;
      }
      out.push({ start: from + m.index, end: from + m.index + s.length, cls: p.cls, info: p.info });
    }
  }
  return out;
}
