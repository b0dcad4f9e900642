import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot, type Rng } from '../common/index.ts';
import type { Part, Place } from './location.ts';

/** A phrase span of the report: offsets into the text (JS string indices), its class. */
export interface Span { start: number; end: number; text: string; class: string }

interface Words {
  sized: boolean;
  anomaly?: string[];
  density?: string[];
  property?: string[];
  diagnosis?: string[];
  location?: 'side' | 'none';
  templates?: string[];
}

interface ReportPhrasing {
  verb: string[];
  verbp: string[];
  single: { sized: string[]; unsized: string[]; uncertainSized: string[]; uncertainUnsized: string[] };
  pair: { sized: string[]; unsized: string[] };
  hedgePre: string[];
  hedge: string[];
  sizeFormats: string[];
  words: Record<string, Words>;
  normal: Record<string, string[]>;
  absent: { organ: string; type: string; section: string; texts: string[] }[];
  sections: string[];
}

let phrasingCache: ReportPhrasing | undefined;
export function loadPhrasing(): ReportPhrasing {
  phrasingCache ??= JSON.parse(readFileSync(join(projectRoot, 'data', 'synth', 'report.json'), 'utf8')) as ReportPhrasing;
  return phrasingCache;
}

/** One finding to write about. */
export interface Finding {
  organ: string;
  type: string;
  certainty: 'present' | 'uncertain' | 'absent';
  /** key into report.json's words */
  words: string;
  place: Place;
  /** measured extent, mm, largest first (sized findings) */
  extentMm?: [number, number, number];
  section: string;
}

/** A written sentence and, per finding it mentions, the spans (offsets relative to the sentence). */
interface Written { text: string; spans: Map<number, Span[]> }

const SLOT = /\{([A-Za-z]+?)([12]?)(\?)?(?::([^}]*))?\}/g;
const cap = (s: string): string => (s ? s[0]!.toUpperCase() + s.slice(1) : s);

function sizeText(rng: Rng, fmt: string, e: [number, number, number]): string {
  const d1 = Math.max(1, Math.round(e[0])), d2 = Math.max(1, Math.round(e[1]));
  const c1 = (e[0] / 10).toFixed(1), c2 = (e[1] / 10).toFixed(1);
  // cm to one decimal only from 1 cm up: "0.6 cm" is legal but rounds a 6 mm lesion too coarsely.
  if (fmt.includes('{c') && e[0] < 10) fmt = rng.next() < 0.5 ? '{d1} mm' : '{d1} x {d2} mm';
  return fmt.replace('{d1}', String(d1)).replace('{d2}', String(d2)).replace('{c1}', c1).replace('{c2}', c2);
}

/** Parses vocabulary text: plain → one part of class `cls`; with {class:text} markup → its parts. */
function vocabParts(rng: Rng, text: string, cls: string): Part[] {
  if (!text.includes('{')) return [{ text, cls }];
  const out: Part[] = [];
  let last = 0;
  for (const m of text.matchAll(SLOT)) {
    if (m.index! > last) out.push({ text: text.slice(last, m.index) });
    out.push({ text: rng.pick(m[4]!.split('|')), cls: m[1]! });
    last = m.index! + m[0].length;
  }
  if (last < text.length) out.push({ text: text.slice(last) });
  return out;
}

/**
 * Fills one template for the findings `who` (1 or 2 of them). Returns null when a required slot
 * cannot be filled (the template does not suit these findings).
 */
function render(rng: Rng, template: string, who: Finding[], ids: number[]): Written | null {
  const P = loadPhrasing();
  type Piece = { text: string; cls?: string; owners: number[]; article?: 'a' | 'A' };
  const pieces: Piece[] = [];
  let last = 0;
  let eatSpace = false;
  const literal = (s: string): void => {
    if (eatSpace && s.startsWith(' ')) s = s.slice(1);
    eatSpace = false;
    if (s) pieces.push({ text: s, owners: [] });
  };
  for (const m of template.matchAll(SLOT)) {
    literal(template.slice(last, m.index));
    last = m.index! + m[0].length;
    const [, rawName, idxS, opt, inline] = m as unknown as [string, string, string, string | undefined, string | undefined];
    const idx = idxS ? Number(idxS) - 1 : -1;
    const owners = idx >= 0 ? [ids[idx]!] : ids;
    const f = who[idx >= 0 ? idx : 0]!;
    const name = rawName.toLowerCase();
    const upper = rawName[0] !== name[0];
    if (inline !== undefined) {
      const text = rng.pick(inline.split('|'));
      pieces.push({ text: upper ? cap(text) : text, cls: name, owners });
      continue;
    }
    if (name === 'a') { pieces.push({ text: '', owners: [], article: upper ? 'A' : 'a' }); continue; }
    const w = P.words[f.words]!;
    let parts: Part[] | null;
    switch (name) {
      case 'verb': parts = [{ text: rng.pick(P.verb) }]; break;
      case 'verbp': parts = [{ text: rng.pick(P.verbp) }]; break;
      case 'hedge': parts = f.certainty === 'uncertain' ? [{ text: rng.pick(upper ? P.hedgePre : P.hedge), cls: 'certainty' }] : null; break;
      case 'anomaly': parts = w.anomaly ? [{ text: rng.pick(w.anomaly), cls: 'anomaly' }] : null; break;
      case 'size': parts = w.sized && f.extentMm ? [{ text: sizeText(rng, rng.pick(P.sizeFormats), f.extentMm), cls: 'size' }] : null; break;
      case 'location': parts = w.location === 'none' ? null : f.place.parts; break;
      case 'density': case 'property': case 'diagnosis': {
        const list = w[name];
        parts = list && list.length ? vocabParts(rng, rng.pick(list), name) : null;
        break;
      }
      default: throw new Error(`report.json: unknown slot {${rawName}} in "${template}"`);
    }
    if (opt && (parts === null || rng.next() < 0.5)) { eatSpace = true; continue; }
    if (parts === null) return null;
    parts.forEach((p, n) => pieces.push({ text: upper && n === 0 && name !== 'hedge' ? cap(p.text) : p.text, cls: p.cls, owners }));
    // hedgePre is already capitalised
  }
  literal(template.slice(last));
  // Articles agree with the word that follows them.
  for (let n = 0; n < pieces.length; n++) {
    const pc = pieces[n]!;
    if (!pc.article) continue;
    let next = '';
    for (let m = n + 1; m < pieces.length && !next.trim(); m++) next += pieces[m]!.text;
    next = next.trimStart().toLowerCase();
    const an = /^[aeiou]/.test(next) || /^(8|11|18)\b|^8/.test(next);
    pc.text = pc.article === 'A' ? (an ? 'An' : 'A') : an ? 'an' : 'a';
  }
  let text = '';
  const spans = new Map<number, Span[]>();
  for (const pc of pieces) {
    if (pc.cls) for (const o of pc.owners) {
      if (!spans.has(o)) spans.set(o, []);
      spans.get(o)!.push({ start: text.length, end: text.length + pc.text.length, text: pc.text, class: pc.cls });
    }
    text += pc.text;
  }
  for (const o of ids) if (!spans.has(o)) spans.set(o, []);
  // Sentence case even when a template opens with a slot.
  if (text && text[0] !== text[0]!.toUpperCase()) {
    text = cap(text);
    for (const list of spans.values()) for (const s of list) if (s.start === 0) s.text = text.slice(0, s.end);
  }
  return { text, spans };
}

function writeFindings(rng: Rng, group: Finding[], ids: number[]): Written {
  const P = loadPhrasing();
  for (let attempt = 0; attempt < 40; attempt++) {
    let list: string[];
    if (group.length === 2) {
      const sized = group.every((f) => P.words[f.words]!.sized && f.extentMm);
      list = sized && rng.next() < 0.7 ? P.pair.sized : P.pair.unsized;
    } else {
      const f = group[0]!, w = P.words[f.words]!;
      if (w.templates) list = w.templates;
      else if (f.certainty === 'uncertain') list = w.sized && rng.next() < 0.7 ? P.single.uncertainSized : P.single.uncertainUnsized;
      else list = w.sized && rng.next() < 0.8 ? P.single.sized : P.single.unsized;
    }
    const r = render(rng, rng.pick(list), group, ids);
    if (r) return r;
  }
  throw new Error(`report.json: no template fits finding words '${group.map((g) => g.words).join('+')}'`);
}

export interface GeneratedReport {
  text: string;
  /** spans per finding, in the order of `findings` given */
  spans: Span[][];
}

/**
 * Writes a whole report: sections in reading order, a normal statement for untouched organs,
 * negated findings (certainty 'absent', with their spans), findings one or two to a sentence.
 * `sections` lists the sections this study shows (a real abdominal CT has no airway).
 */
export function writeReport(rng: Rng, findings: Finding[], sections: string[], opts: { pairProb?: number; absentProb?: number } = {}): GeneratedReport {
  const P = loadPhrasing();
  const sentences: Written[] = [];
  const present = new Set(findings.filter((f) => f.certainty !== 'absent').map((f) => `${f.organ}/${f.type}`));
  for (const section of P.sections) {
    if (!sections.includes(section)) continue;
    const here = findings.map((f, i) => ({ f, i })).filter(({ f }) => f.section === section && f.certainty !== 'absent');
    const order = rng.shuffle([...here]);
    while (order.length) {
      const a = order.shift()!;
      // Two findings in one sentence: the structurer must split them by their own words.
      if (order.length && a.f.certainty === 'present' && order[0]!.f.certainty === 'present' && rng.next() < (opts.pairProb ?? 0.5)
        && !P.words[a.f.words]!.templates && !P.words[order[0]!.f.words]!.templates) {
        const b = order.shift()!;
        sentences.push(writeFindings(rng, [a.f, b.f], [a.i, b.i]));
      } else sentences.push(writeFindings(rng, [a.f], [a.i]));
    }
    if (!here.length && P.normal[section] && rng.next() < 0.85) sentences.push({ text: rng.pick(P.normal[section]!), spans: new Map() });
    // Negated findings are written from the list given (so they are in the manifest with spans).
    for (const { f, i } of findings.map((f, i) => ({ f, i })).filter(({ f }) => f.section === section && f.certainty === 'absent')) {
      if (present.has(`${f.organ}/${f.type}`)) continue;
      const entry = P.absent.find((e) => e.organ === f.organ && e.type === f.type)!;
      sentences.push(render(rng, rng.pick(entry.texts), [f], [i])!);
    }
  }
  let text = '';
  const spans: Span[][] = findings.map(() => []);
  for (const s of sentences) {
    if (text) text += ' ';
    const off = text.length;
    text += s.text;
    for (const [i, list] of s.spans) for (const sp of list) spans[i]!.push({ start: sp.start + off, end: sp.end + off, text: sp.text, class: sp.class });
  }
  return { text, spans };
}

/** Negated findings a report of these sections may state (they must not contradict a present one). */
export function absentCandidates(sections: string[]): { organ: string; type: string; section: string }[] {
  return loadPhrasing().absent.filter((e) => sections.includes(e.section)).map(({ organ, type, section }) => ({ organ, type, section }));
}
