import type { Lexicon, SeqIndex, Token } from './lexicon.ts';
import type { Certainty, Phrase, PhraseInfo } from './types.ts';

/**
 * Relation estimation, sentence by sentence and clause by clause: which phrases describe which anomaly phrase, the
 * certainty each anomaly gets from NegEx-like cue scopes, and the split of a group that names
 * several locations into one anomaly per location (the paper's rule-based split, Sec. 3.3).
 */

export interface Clause {
  start: number;
  end: number;
}

export interface Draft {
  head: Phrase;
  certainty: Certainty;
  /** location and anatomy phrases of this one location */
  unit: Phrase[];
  /** the anatomy phrase written right before the anomaly phrase ('pleural' effusion), if any */
  preAnatomy?: Phrase;
  /** the same word whichever location this draft is ('splenic' lesions, one at the upper pole and
   * one at the hilum): the organ of a location that names none */
  headAnatomy?: Phrase;
  /** every other related phrase: size, property, density, change, diagnosis, certainty cues */
  shared: Phrase[];
  /** the anomaly phrase is a diagnosis standing alone ('viral pneumonia?') */
  promoted: boolean;
}

/** Words that may stand between a pre-modifier and what it modifies ('a 12 mm hypodense nodule'). */
const PRE_FILLER = new Set(['a', 'an', 'the', 'approximately', 'approx', 'about', 'around', 'nearly', 'almost', 'sized', 'size', 'type', 'very', 'some', 'up', 'to']);
const COORD = new Set(['and', 'or']);

function gapWords(text: string, a: number, b: number): string[] | null {
  const gap = text.slice(a, b);
  if (/[.;:!?]/.test(gap)) return null;
  return gap.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

const isModifier = (p: Phrase): boolean => p.class !== 'anomaly';
const isPlace = (p: Phrase): boolean => p.class === 'location' || p.class === 'anatomy';

/**
 * Splits a sentence into clauses at ';' and ':' and at 'and'/'but'/'while' when both sides carry
 * a verb ('... was normal and no wall thickening was detected'), so that a negation never
 * crosses into the next statement. `heads` are the phrases that can head an anomaly: a stretch
 * without one that starts with a measurement or a place only lists more of the statement.
 */
export function splitClauses(text: string, start: number, end: number, tokens: Token[], lex: Lexicon, heads: readonly Phrase[] = []): Clause[] {
  const cuts: number[] = [];
  for (let i = start; i < end; i++) {
    const c = text[i];
    if (c === ';' || c === ':') cuts.push(i + 1);
  }
  // Verb positions decide whether a coordinating word joins two statements or two nouns.
  const verbIdx: number[] = [];
  tokens.forEach((t, i) => { if (lex.verbs.has(t.norm)) verbIdx.push(i); });
  if (verbIdx.length >= 2) {
    let lastCut = -1;
    // '... and 11 mm in the right adrenal gland are observed', '... and in the left lobe': a
    // measurement or a place, with no finding of its own before the next clause word, goes on with
    // the statement's list (its verb is the shared one)
    const continues = (i: number, stop: number): boolean => {
      let j = i + 1;
      while (tokens[j] && lex.clauseSkip.has(tokens[j]!.norm)) j++;
      const next = tokens[j]?.norm;
      if (next === undefined || !(/^\d/.test(next) || lex.clauseContinuations.has(next))) return false;
      return !heads.some((h) => h.start > tokens[i]!.start && h.start < stop);
    };
    tokens.forEach((t, i) => {
      if (!lex.clauseWords.has(t.norm)) return;
      const nextClauseWord = tokens.findIndex((u, j) => j > i && lex.clauseWords.has(u.norm));
      if (continues(i, nextClauseWord < 0 ? end : tokens[nextClauseWord]!.start)) return;
      const before = verbIdx.some((v) => v < i && v > lastCut);
      const after = verbIdx.some((v) => v > i && (nextClauseWord < 0 || v < nextClauseWord));
      if (before && after) { cuts.push(t.start); lastCut = i; }
    });
  }
  cuts.sort((a, b) => a - b);
  const out: Clause[] = [];
  let s = start;
  for (const c of cuts) {
    if (c > s) out.push({ start: s, end: c });
    s = c;
  }
  if (s < end) out.push({ start: s, end });
  return out;
}

/** Char offsets where one of the indexed word sequences starts (and none of `except` does). */
function seqPositions(tokens: Token[], index: SeqIndex, except?: SeqIndex): number[] {
  const pos: number[] = [];
  const at = (i: number, idx: SeqIndex): boolean => (idx.get(tokens[i]!.norm) ?? []).some((q) => q.every((w, k) => tokens[i + k]?.norm === w));
  for (let i = 0; i < tokens.length; i++) {
    if (except && at(i, except)) continue;
    if (at(i, index)) pos.push(tokens[i]!.start);
  }
  return pos;
}

const JOINER = /^[\s\-‐–]*$/;
/** What may stand between a describing adjective and its finding once places are taken out:
 * 'enlarged left hilar and aortopulmonary window lymph nodes'. */
const LIST_JOINER = /^[\s,\-‐–/]*(?:(?:and|or|&)[\s,\-‐–/]*)*$/i;
/** Words that make an out-of-taxonomy finding a feature of the finding before it
 * ('consolidation with air bronchograms'), so that it neither heads nor takes places. */
const FEATURE_WORDS = new Set(['with', 'containing', 'showing', 'including', 'in', 'which', 'and', 'a', 'an', 'the', 'some', 'few', 'multiple', 'its', 'internal', 'scattered']);
const FEATURE_LEADS = new Set(['with', 'containing', 'which']);

/**
 * One anomaly per noun group: 'atheroma plaques', 'consolidation area', 'sequelae fibrotic
 * recessions' (only describing words between), 'area of increase in density', and a generic
 * finding explained by a specific one ('increase in density consistent with atelectasis').
 */
function buildHeads(text: string, phrases: Phrase[], tokens: Token[], lex: Lexicon, anomalyTypes: Set<string>): { heads: Phrase[]; places: Phrase[]; absorbed: Phrase[] } {
  // `places` also returns describing words turned into property phrases.
  const heads: Phrase[] = [];
  const absorbed: Phrase[] = [];
  const between = (a: number, b: number): string => {
    let gap = text.slice(a, b);
    for (const p of phrases) {
      if (p.start >= a && p.end <= b && (p.class === 'property' || p.class === 'density' || p.class === 'size')) gap = gap.replace(p.text, ' ');
    }
    return gap;
  };
  // 'enlarged subcarinal lymph node': an adjective before another finding only describes it.
  const describing: Phrase[] = [];
  const anomalies = phrases.filter((p) => p.class === 'anomaly');
  anomalies.forEach((p, i) => {
    const nx = anomalies[i + 1];
    if (!p.info.adjective || !nx || nx.info.generic) return; // 'osteosclerotic lesion' is one finding
    let gap = text.slice(p.end, nx.start);
    let hasPlace = false;
    for (const q of phrases) {
      if (q.start >= p.end && q.end <= nx.start && q.class !== 'certainty') { gap = gap.replace(q.text, ' '); hasPlace ||= isPlace(q); }
    }
    if (JOINER.test(gap) || (hasPlace && LIST_JOINER.test(gap))) describing.push(p);
  });
  const features: Phrase[] = [];
  for (const p of phrases) {
    if (p.class !== 'anomaly' || describing.includes(p)) continue;
    const last = heads[heads.length - 1];
    if (last && p.info.type === 'other' && last.info.type !== 'other') {
      const words = gapWords(text, last.end, p.start);
      if (words && words.some((w) => FEATURE_LEADS.has(w)) && words.every((w) => FEATURE_WORDS.has(w))) { features.push(p); continue; }
    }
    if (last) {
      const gap = text.slice(last.end, p.start);
      const gapOnly = between(last.end, p.start);
      // Words joined by spaces are one noun group ('band atelectatic change'); a hyphen between two
      // specific findings is a coordination ('effusion-thickening').
      const compound = JOINER.test(gapOnly) &&
        (last.info.generic || p.info.generic || last.info.type === p.info.type || last.info.type === 'other' || p.info.type === 'other' || /^\s+$/.test(gapOnly));
      const ofGeneric = last.info.generic && /^\s+of(\s+the)?\s+$/i.test(gap);
      if (compound || ofGeneric) {
        const cands = [p.info, last.info];
        const keep = cands.find((i) => !i.generic && i.type !== 'other') ?? cands.find((i) => i.type !== 'other') ?? p.info;
        heads[heads.length - 1] = { start: last.start, end: p.end, text: text.slice(last.start, p.end), class: 'anomaly', info: keep };
        continue;
      }
    }
    if (last && last.info.type === p.info.type) {
      // 'lytic or destructive lesions', 'free fluid or loculated collection': one finding named twice
      // (only describing words may stand between).
      const between = phrases.filter((q) => q.start >= last.end && q.end <= p.start);
      let rest = text.slice(last.end, p.start);
      for (const q of between) rest = rest.replace(q.text, ' ');
      const words = rest.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
      if (!/[.;:!?]/.test(rest) && words.length > 0 && words.every((w) => COORD.has(w)) && between.every((q) => q.class === 'property' || q.class === 'density')) {
        heads[heads.length - 1] = { start: last.start, end: p.end, text: text.slice(last.start, p.end), class: 'anomaly', info: p.info };
        continue;
      }
    }
    heads.push(p);
  }
  // Explained findings take the explanation's type.
  for (let k = 0; k < heads.length; k++) {
    const g = heads[k]!;
    if (!g.info.generic && !lex.explainableTypes.has(g.info.type ?? '')) continue;
    const next = phrases.find((q) => q.start >= g.end && !features.includes(q) && (q.class === 'anomaly' || (q.class === 'diagnosis' && q.info.type !== undefined && q.info.type !== 'other' && anomalyTypes.has(q.info.type))));
    if (!next) continue;
    const gapToks = tokens.filter((t) => t.start >= g.end && t.end <= next.start);
    // places and sizes between do not count ('14 mm low-attenuation focus in the right kidney,
    // most in keeping with a cyst'): only the words of the explaining phrase itself
    const described = (t: Token): boolean => phrases.some((q) => q.start <= t.start && q.end >= t.end && q.class !== 'anomaly' && q.class !== 'certainty' && q.class !== 'diagnosis');
    const explained = gapToks.filter((t) => !described(t)).length <= 7 && !/[.;]/.test(text.slice(g.end, next.start)) && seqPositions(gapToks, lex.explainers).length > 0;
    if (!explained) continue;
    if (next.class === 'diagnosis' && lex.weakExplanations.has(next.info.type ?? '')) continue;
    const s = heads.find((h) => h.start <= next.start && h.end >= next.end) ?? next;
    const info: PhraseInfo = { ...g.info, type: s.info.type!, generic: false };
    if (s.info.defaultOrgan) info.defaultOrgan = s.info.defaultOrgan;
    if (s.info.organ) info.organ = s.info.organ;
    heads[k] = { ...g, info };
    const si = heads.indexOf(s);
    if (si >= 0) heads.splice(si, 1);
    absorbed.push(s);
  }
  // 'area', 'focus' without a density word are places ('in the subcapsular area').
  const places: Phrase[] = [];
  const out = heads.filter((h) => {
    if (!h.info.needsDensity) return true;
    const dens = phrases.some((q) => q.class === 'density' && ((q.end <= h.start && JOINER.test(text.slice(q.end, h.start))) || (q.start >= h.end && /^\s+of\s+$/i.test(text.slice(h.end, q.start)))));
    if (dens) return true;
    places.push({ ...h, class: 'location', info: { role: 'site' } });
    return false;
  });
  for (const p of [...describing, ...features]) places.push({ ...p, class: 'property', info: {} });
  return { heads: out, places, absorbed };
}

/** Only anomaly phrases and typed diagnoses can head an anomaly; most sentences have none. */
function canHead(p: Phrase, anomalyTypes: Set<string>): boolean {
  return p.class === 'anomaly' || (p.class === 'diagnosis' && p.info.type !== undefined && anomalyTypes.has(p.info.type));
}

interface Group {
  start: number;
  end: number;
  phrases: Phrase[];
}

/**
 * Gives each location unit the kinds of place (side, organ, site) it lacks from `from` (a common
 * or leading place); `gives(p)` says whether a phrase of the unit already gives its kind.
 */
function fillKinds(units: { all: Phrase[] }[], from: Phrase[], gives: (p: Phrase) => boolean = () => true): void {
  for (const u of units) for (const kind of ['side', 'anatomy', 'site'] as Kind[]) if (!u.all.some((p) => kindOf(p) === kind && gives(p))) u.all.push(...from.filter((p) => kindOf(p) === kind));
}

/**
 * Relations inside one clause (or one parenthesis). `borrowed` are the places of the previous
 * clause of the sentence, for a finding that names none ('the esophagus is normal and no wall
 * thickening was detected').
 */
export function relateGroup(text: string, group: Group, tokens: Token[], lex: Lexicon, anomalyTypes: Set<string>, borrowed: Phrase[]): Draft[] {
  if (!group.phrases.some((p) => canHead(p, anomalyTypes))) return [];
  const built = buildHeads(text, group.phrases, tokens, lex, anomalyTypes);
  let heads = built.heads;
  const replaced = new Set(built.places.map((p) => p.start));
  const phrases = [...group.phrases.filter((p) => !(p.class === 'anomaly' && replaced.has(p.start))), ...built.places].sort((a, b) => a.start - b.start);
  let promoted = false;
  if (heads.length === 0) {
    // A diagnosis alone can describe an anomaly ('metastasis in the liver', 'viral pneumonia?').
    heads = phrases.filter((p) => p.class === 'diagnosis' && p.info.type !== undefined && anomalyTypes.has(p.info.type)).map((p) => ({ ...p, class: 'anomaly' as const }));
    if (heads.length === 0) return [];
    promoted = true;
  }
  const inHead = (p: Phrase): boolean => heads.some((h) => p.start >= h.start && p.end <= h.end);
  const mods = phrases.filter((p) => !inHead(p) && (p.class !== 'anomaly' || built.absorbed.includes(p)) && p.class !== 'certainty');
  const cues = phrases.filter((p) => p.info.cue !== undefined && !inHead(p));
  const ctoks = tokens.filter((t) => t.start >= group.start && t.end <= group.end);

  // Pre-modifier chains: walk back from each head while only filler separates the phrases.
  const seq = [...phrases.filter((p) => !inHead(p)), ...heads].sort((a, b) => a.start - b.start);
  const chainStart = heads.map((h) => {
    let cur = h.start;
    let right: Phrase = h;
    for (let j = seq.indexOf(h) - 1; j >= 0; j--) {
      const p = seq[j]!;
      if (p.class === 'anomaly' || p.end > cur) break;
      const words = gapWords(text, p.end, cur);
      if (words === null) break;
      const ok = words.every((w) => PRE_FILLER.has(w) || (COORD.has(w) && right !== h && isModifier(right) && isPlace(p) === isPlace(right)));
      if (!ok) break;
      cur = p.start;
      right = p;
    }
    return cur;
  });

  const owned: Phrase[][] = heads.map(() => []);
  const leading: Phrase[] = [];
  for (const p of mods) {
    let k = heads.findIndex((h) => h.start >= p.end);
    if (k < 0) k = heads.length;
    if (k === 0) { owned[0]!.push(p); if (p.start < chainStart[0]!) leading.push(p); }
    else if (k === heads.length) owned[k - 1]!.push(p);
    else owned[p.start >= chainStart[k]! ? k : k - 1]!.push(p);
  }
  const pre = heads.map((h, k) => owned[k]!.filter((p) => p.end <= h.start && p.start >= chainStart[k]!));
  const post = heads.map((h, k) => owned[k]!.filter((p) => p.start >= h.end));

  // Coordinated anomalies ('effusion-thickening', 'nodules and cysts in the liver') share their
  // places: the earlier takes the later's trailing places, the later the earlier's leading ones.
  const coordinated = heads.map((h, k) => {
    const nx = heads[k + 1];
    if (!nx || post[k]!.length > 0) return false;
    const words = gapWords(text, h.end, Math.max(h.end, chainStart[k + 1]!));
    return words !== null && words.every((w) => COORD.has(w) || w === 'as' || w === 'well');
  });
  for (let k = heads.length - 2; k >= 0; k--) {
    if (!coordinated[k]) continue;
    const ownPlace = owned[k]!.some(isPlace);
    for (const p of post[k + 1]!) if (!owned[k]!.includes(p) && !(ownPlace && isPlace(p))) owned[k]!.push(p);
  }
  for (let k = 0; k + 1 < heads.length; k++) {
    if (!coordinated[k]) continue;
    const nx = heads[k + 1]!;
    const hyphen = /^\s*[-‐–/]\s*$/.test(text.slice(heads[k]!.end, nx.start));
    if (!hyphen && owned[k + 1]!.some(isPlace)) continue;
    for (const p of pre[k]!) {
      if (p.class === 'location' || (p.class === 'anatomy' && (hyphen || (!nx.info.organ && !nx.info.defaultOrgan)))) {
        if (!owned[k + 1]!.includes(p)) { owned[k + 1]!.push(p); pre[k + 1]!.push(p); }
      }
    }
  }
  const subjectStops = seqPositions(ctoks, lex.subjectStops);
  // Subjects share the predicate's place: 'No fractures, lytic or sclerotic lesions were detected
  // in the bone structures'.
  const verbAt = ctoks.find((t) => lex.verbs.has(t.norm) && heads.some((h) => h.end <= t.start))?.start;
  if (verbAt !== undefined) {
    const before = heads.map((_, k) => k).filter((k) => heads[k]!.end <= verbAt);
    const last = before[before.length - 1]!;
    const predicate = owned[last]!.filter((p) => isPlace(p) && p.start >= verbAt);
    if (predicate.length > 0) {
      for (const k of before) {
        if (k === last || owned[k]!.some((p) => p.class === 'location' || (p.class === 'anatomy' && p.start >= heads[k]!.end))) continue;
        if (subjectStops.some((t) => t >= heads[k]!.end && t < heads[last]!.start)) continue;
        for (const p of predicate) if (!owned[k]!.includes(p)) owned[k]!.push(p);
      }
    }
  }
  // 'In the right lung, a nodule and a cyst ...': a comma-separated lead is context for every
  // anomaly of the clause: its places, when the anomaly names none, else what its places lack.
  const comma = text.lastIndexOf(',', chainStart[0]! - 1);
  const lead = comma >= group.start ? leading.filter((p) => isPlace(p) && p.end <= comma) : [];
  if (lead.length > 0) owned[0] = owned[0]!.filter((p) => !lead.includes(p));
  for (let k = 0; k < heads.length; k++) {
    if (!owned[k]!.some(isPlace) && lead.length === 0 && !heads[k]!.info.organ) owned[k]!.push(...borrowed);
  }

  // Certainty from cue scopes.
  // 'no finding consistent with pneumonia', 'may be compatible with pneumonia': cues read
  // through evidential words; a relative clause closed by a comma ('the effusion, which was seen
  // before, was not detected') does not stop a cue that follows it.
  const stops = seqPositions(ctoks, lex.terminators, lex.hedgeTransparent);
  const relative = new Set(seqPositions(ctoks, lex.relativeWords));
  const blocked = (a: number, b: number, backward: boolean): boolean =>
    stops.some((t) => t >= a && t < b && !(backward && relative.has(t) && text.slice(t, b).includes(',')));
  const nonLocatingAt = seqPositions(ctoks, lex.nonLocating);
  const certainty: Certainty[] = heads.map(() => 'present');
  const cueOf: Phrase[][] = heads.map(() => []);
  heads.forEach((h, k) => {
    let neg = false, hedge = false;
    for (const c of cues) {
      const kind = c.info.cue!;
      if ((kind === 'negPre' || kind === 'hedgePre') && c.end <= h.start && !blocked(c.end, h.start, false)) {
        if (kind === 'negPre') neg = true; else hedge = true;
        cueOf[k]!.push(c);
      } else if ((kind === 'negPost' || kind === 'hedgePost') && c.start >= h.end && !blocked(h.end, c.start, true)) {
        if (kind === 'hedgePost') {
          const interposed = phrases.some((p) => p.start >= h.end && p.end <= c.start && p.class === 'diagnosis') || heads.some((o) => o.start >= h.end && o.end <= c.start);
          if (interposed) continue;
          hedge = true;
        } else neg = true;
        cueOf[k]!.push(c);
      }
    }
    certainty[k] = neg ? 'absent' : hedge ? 'uncertain' : 'present';
  });

  const respectively = /\brespectively\b/i.test(text.slice(group.start, group.end));
  const drafts: Draft[] = [];
  heads.forEach((h, k) => {
    const mine = [...owned[k]!].sort((a, b) => a.start - b.start);
    // A place after 'more prominent', 'especially', 'adjacent to' only says where the finding is
    // most marked or what it touches.
    const emph = nonLocatingAt.find((e) => e >= h.end);
    const places = mine.filter((p) => isPlace(p) && !(emph !== undefined && p.start > emph));
    // 'Two cysts in the left kidney, one of 1 cm in the upper pole and one of 3 cm in the lower
    // pole': what is written before ', one' is common to every place after it.
    const oneAt = /,\s*(?:the\s+)?one\b/i.exec(text.slice(h.end, group.end));
    const oneCut = oneAt ? h.end + oneAt.index : -1;
    const common = oneCut >= 0 && places.some((p) => p.start > oneCut) ? places.filter((p) => p.end <= oneCut) : [];
    const preAnatomy = [...pre[k]!].filter((p) => p.class === 'anatomy').sort((a, b) => b.end - a.end)[0];
    let units = splitUnits(text, places.filter((p) => !common.includes(p)), h);
    fillKinds(units, common);
    if (lead.length > 0) {
      if (units.length === 0) units = splitUnits(text, lead);
      // A spread word ('subpleural', 'peripheral') is no site of its own: the lead's lobe still applies
      // ('In the lower lobes of both lungs, subpleural areas of ground glass density').
      else fillKinds(units, lead, (p) => !(kindOf(p) === 'site' && p.info.noSplit));
    }
    const others = mine.filter((p) => !places.includes(p));
    const sizes = others.filter((p) => p.class === 'size' && p.info.numeric);
    const sizeOf = new Map<Phrase, number>();
    if (units.length > 1) {
      // paired in order: by 'respectively', or one size written before each place ('12 mm in the
      // left adrenal gland and 11 mm in the right')
      const paired = sizes.length === units.length && (respectively || sizes.every((s, i) => s.start < units[i]!.anchor && (i === 0 || s.start > units[i - 1]!.anchor)));
      if (paired) sizes.forEach((s, i) => sizeOf.set(s, i));
      else {
        // A size written inside a location's stretch of text ('right lung (5 mm) and left lung
        // (8 mm)') belongs to that location only; sizes before or after all of them are shared.
        for (const s of sizes) {
          for (let u = units.length - 1; u >= 0; u--) if (s.start > units[u]!.anchor) { sizeOf.set(s, u); break; }
        }
        const last = units.length - 1;
        if (![...sizeOf.values()].some((u) => u < last)) sizeOf.clear();
      }
    }
    const unitList = units.length > 0 ? units.map((u) => u.all) : [[]];
    unitList.forEach((unit, u) => {
      const shared = others.filter((p) => !sizeOf.has(p) || sizeOf.get(p) === u);
      const d: Draft = { head: h, certainty: certainty[k]!, unit, shared: [...shared, ...cueOf[k]!], promoted };
      if (preAnatomy && unit.includes(preAnatomy)) d.preAnatomy = preAnatomy;
      if (preAnatomy && !/[,;:]/.test(text.slice(preAnatomy.end, h.start))) d.headAnatomy = preAnatomy;
      drafts.push(d);
    });
  });
  return drafts;
}

/** Parenthesised stretches '( ... )' inside [start, end). */
function parenRanges(text: string, start: number, end: number): [number, number][] {
  const out: [number, number][] = [];
  let open = -1;
  for (let i = start; i < end; i++) {
    if (text[i] === '(' && open < 0) open = i;
    else if (text[i] === ')' && open >= 0) { out.push([open, i + 1]); open = -1; }
  }
  return out;
}

/**
 * Relations of one sentence, clause by clause. A parenthesis is its own group, and its findings
 * are dropped when they only interpret a finding already named ('nodule ... (lymph node?)').
 */
export function relateSentence(text: string, start: number, end: number, phrases: Phrase[], tokens: Token[], lex: Lexicon, anomalyTypes: Set<string>): Draft[] {
  const drafts: Draft[] = [];
  const heads = phrases.filter((p) => canHead(p, anomalyTypes));
  if (heads.length === 0) return drafts;
  let borrowed: Phrase[] = [];
  for (const clause of splitClauses(text, start, end, tokens, lex, heads)) {
    const inClause = phrases.filter((p) => p.start >= clause.start && p.end <= clause.end);
    const parens = parenRanges(text, clause.start, clause.end);
    const parenOf = (p: Phrase): [number, number] | undefined => parens.find((r) => p.start >= r[0] && p.end <= r[1]);
    const main = inClause.filter((p) => !parenOf(p) || p.class === 'size' || p.class === 'density');
    const mainDrafts = relateGroup(text, { start: clause.start, end: clause.end, phrases: main }, tokens, lex, anomalyTypes, borrowed);
    drafts.push(...mainDrafts);
    const places = main.filter(isPlace);
    for (const r of parens) {
      const inside = inClause.filter((p) => parenOf(p) === r && p.class !== 'size' && p.class !== 'density');
      if (!inside.some((p) => p.class === 'anomaly' || p.class === 'diagnosis')) continue;
      const pd = relateGroup(text, { start: r[0], end: r[1], phrases: inside }, tokens, lex, anomalyTypes, places.length > 0 ? places : borrowed);
      const interpretive = pd.every((d) => d.certainty === 'uncertain' || d.promoted);
      if (mainDrafts.length === 0 || !interpretive) drafts.push(...pd);
    }
    if (places.length > 0) borrowed = places;
  }
  return drafts;
}

type Kind = 'side' | 'site' | 'anatomy';
const kindOf = (p: Phrase): Kind => (p.class === 'anatomy' ? 'anatomy' : p.info.role === 'side' ? 'side' : 'site');

/**
 * Groups place phrases into one group per location: a new group starts where a coordinator
 * ('and', 'or', ',', '/') separates two places without an 'of' ('upper lobe and lower lobe of
 * the right lung' -> [upper lobe], [lower lobe, right, lung]). A group then borrows what it lacks
 * from its neighbours: a side or organ from the next group first ('the upper and lower lobes of
 * the right lung'), a site only from the next one ('right and left upper lobes').
 */
export function splitUnits(text: string, places: Phrase[], head?: Phrase): { all: Phrase[]; anchor: number }[] {
  if (places.length === 0) return [];
  const units: Phrase[][] = [[places[0]!]];
  for (let i = 1; i < places.length; i++) {
    const a = places[i - 1]!, b = places[i]!;
    const gap = text.slice(a.end, b.start).toLowerCase();
    // A coordinator on the far side of the finding joins predicates or describes the finding, not
    // two places ('the left kidney is small and atrophic with cortical thinning', 'liver lesions,
    // one ... in segment 2 and one ... in segment 6': 'liver' goes with the first place).
    // (a comma before the finding still separates: 'In the mediastinum, no lymph nodes ... in both axillary regions')
    const acrossHead = head !== undefined && a.end <= head.start && b.start >= head.end && !/[,;]/.test(text.slice(a.end, head.start));
    const coord = !acrossHead && (/(^|[^\p{L}])(and|or)([^\p{L}]|$)|,|&|\/|\bas well as\b/u.test(gap) || (a.class === 'anatomy' && b.class === 'anatomy' && /^\s*[-–]\s*$/.test(gap)));
    // 'lower lobe OF THE right lung' nests; 'and one of 2 cm at the hilum' does not
    const nested = /\bof\b/.test(gap.replace(/\bone of\b/g, ''));
    if (coord && !nested && !a.info.noSplit && !b.info.noSplit) units.push([b]);
    else units[units.length - 1]!.push(b);
  }
  if (units.length === 1) return [{ all: units[0]!, anchor: units[0]![0]!.start }];
  const has = (u: Phrase[], k: Kind): boolean => u.some((p) => kindOf(p) === k);
  const filled = units.map((u) => [...u]);
  // '3' of 'segments 2 and 3': a group of bare list items takes the list's word from the group before
  for (let i = 1; i < units.length; i++) {
    if (!units[i]![0]!.info.listItem) continue;
    const listWord = (u: Phrase[]): Phrase[] => u.filter((p) => kindOf(p) === 'site' && !p.info.listItem);
    const from = units.slice(0, i).reverse().find((u) => u.some((p) => p.info.listItem) && listWord(u).length > 0);
    if (from) filled[i]!.push(...listWord(from));
  }
  for (let i = 0; i < units.length; i++) {
    for (const k of ['side', 'anatomy', 'site'] as Kind[]) {
      if (has(units[i]!, k)) continue;
      // From a later group only what is written after its head word ('lower lobe OF THE RIGHT
      // LUNG'); a prefix ('bilateral hilar') stays with its own group.
      let got = false;
      for (let j = i + 1; j < units.length && !got; j++) {
        const take = units[j]!.slice(1).filter((p) => kindOf(p) === k);
        if (take.length > 0) { filled[i]!.push(...take); got = true; }
        else if (has(units[j]!, k)) break;
      }
      if (!got && k !== 'site') {
        for (let j = i - 1; j >= 0 && !got; j--) {
          const take = units[j]!.filter((p) => kindOf(p) === k);
          if (take.length > 0) { filled[i]!.push(...take); got = true; }
        }
      }
    }
    filled[i]!.sort((a, b) => a.start - b.start);
  }
  // Two groups naming the same words are one location; so is a group written before the finding
  // whose every word a group after it also names ('In the right lung, bands ... in the middle
  // lobe': [right lung] is the frame of [middle lobe, right lung], not a second place).
  const seen = new Set<string>();
  const out: { all: Phrase[]; anchor: number }[] = [];
  const wordSets = filled.map((u) => new Set(u.map((p) => p.text.toLowerCase())));
  const frame = (i: number, j: number): boolean => head !== undefined && units[i]!.every((p) => p.end <= head.start) && units[j]![0]!.start >= head.end &&
    wordSets[j]!.size > wordSets[i]!.size && [...wordSets[i]!].every((w) => wordSets[j]!.has(w));
  filled.forEach((u, i) => {
    const key = u.map((p) => p.text.toLowerCase()).sort().join('|');
    if (filled.some((_, j) => j !== i && frame(i, j))) return;
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ all: u, anchor: units[i]![0]!.start });
  });
  return out;
}
