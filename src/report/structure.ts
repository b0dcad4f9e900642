import { loadTaxonomy } from '../common/index.ts';
import { loadLexicon } from './lexicon.ts';
import { recognizePhrases } from './phrases.ts';
import { relateSentence, type Draft } from './relations.ts';
import { splitSentences } from './sentences.ts';
import type { Phrase, Sentence, Span, StructuredAnomaly, StructuredReport } from './types.ts';

/**
 * structureReport: sentences -> phrases -> clauses -> relations -> one record per anomaly and
 * location. Each stage is a separate function (splitSentences, recognizePhrases, relateSentence)
 * so that a learned tagger can replace one stage without touching the others.
 */

/** Sections whose sentences describe the patient or the scan, not findings. */
const NO_FINDINGS = new Set(['clinical', 'technique', 'comparison', 'recommendation']);

const toSpan = (p: Span): Span => ({ start: p.start, end: p.end, text: p.text, class: p.class });

/** A vertebral level's organ class follows the convention: thoracic spine -> chest, lumbar -> abdomen. */
function placeOrgan(p: Phrase): string | undefined {
  const o = p.info.organ;
  if (o !== 'spine') return o;
  const c = p.text.trim()[0]?.toUpperCase();
  return c === 'C' ? 'neck' : c === 'L' ? 'abdomen' : 'chest';
}

/**
 * Organ class of one anomaly, most specific evidence first: the anomaly word itself
 * (hepatomegaly); an organ of its location where this finding usually is ('consolidation on the
 * pleura in the right upper lobe': lung); the anatomy word right before it ('pleural' effusion);
 * the anatomy of its location; what a location implies (a lobe: lung); the word's usual organ
 * (atelectasis: lung); the nearest anatomy earlier in the sentence; the sentence's organ; the
 * previous sentence's.
 */
function resolveOrgan(d: Draft, sentence: Phrase[], sentenceOrgan: string | undefined, context: string | undefined, header: string | undefined, areaOrgan?: string): string {
  const info = d.head.info;
  const anat = d.unit.filter((p) => p.class === 'anatomy');
  const usual = info.defaultOrgan ? anat.find((p) => placeOrgan(p) === info.defaultOrgan) : undefined;
  const nearestBefore = anat.filter((p) => p.end <= d.head.start).pop();
  const after = anat.find((p) => p.start >= d.head.end);
  const hint = d.unit.map(placeOrgan).find((o) => o !== undefined);
  const before = sentence.filter((p) => p.class === 'anatomy' && p.end <= d.head.start).pop();
  // A vertebral level ('L2') says more than the vertebra word next to it.
  const level = d.unit.find((p) => p.info.organ === 'spine');
  // A section header ('Thyroid:', 'KIDNEYS:') names the organ of what follows; only an organ
  // written in the finding's own location says more ('Abdomen: a cyst in the left kidney').
  const organ = info.organ ?? (level && placeOrgan(level)) ?? (usual && placeOrgan(usual)) ?? (d.preAnatomy && placeOrgan(d.preAnatomy)) ?? (nearestBefore && placeOrgan(nearestBefore)) ??
    (d.headAnatomy && placeOrgan(d.headAnatomy)) ?? (after && placeOrgan(after)) ?? header ?? hint ?? info.defaultOrgan ?? (before && placeOrgan(before)) ?? sentenceOrgan ?? areaOrgan ?? info.fallbackOrgan ?? context ?? 'chest';
  return info.organRemap?.[organ] ?? organ;
}

function resolveType(d: Draft, organ: string): string {
  const info = d.head.info;
  let type = info.type ?? 'other';
  if (info.generic && info.byDensity) {
    const dens = d.shared.find((p) => p.class === 'density' && p.info.density && info.byDensity![p.info.density]);
    if (dens) type = info.byDensity[dens.info.density!]!;
  }
  if (info.byOrgan?.[organ]) type = info.byOrgan[organ]!;
  return type;
}

/**
 * 'The aortic arch calibration is 35 mm.': a diameter beyond the segment's usual limit is a
 * dilatation though no word says so (CT-RATE states one mostly when it is abnormal). One record per
 * segment; the measurement is its anomaly phrase. Nothing when the sentence negates or calls it normal.
 */
function measuredDilatations(text: string, start: number, end: number, ph: Phrase[], lex: ReturnType<typeof loadLexicon>): Phrase[][] {
  const sentence = text.slice(start, end);
  if (/\b(?:no|not|normal limits?|within normal|is normal|are normal|natural|narrow(?:ed|ing)?)\b/i.test(sentence.replace(/\b(?:larger|wider|greater) than normal\b|\babove normal\b/gi, ''))) return [];
  const aortas = ph.filter((p) => p.class === 'anatomy' && placeOrgan(p) === 'aorta' && /aort|\barch\b/i.test(p.text) && !/coronar|pulmonar|iliac|renal|carotid|subclavian/i.test(p.text));
  const out: Phrase[][] = [];
  aortas.forEach((a, i) => {
    const next = aortas[i + 1]?.start ?? end;
    const size = ph.find((p) => p.class === 'size' && p.info.numeric && p.start >= a.end && p.start < next);
    const m = size && /(\d+(?:[.,]\d+)?)\s*(mm|cm)\b/i.exec(size.text);
    if (!size || !m) return;
    const mm = Number(m[1]!.replace(',', '.')) * (m[2]!.toLowerCase() === 'cm' ? 10 : 1);
    // the segment word is in the anatomy phrase ('aortic arch') or a place just before it ('ascending aorta')
    const places = ph.filter((p) => p.class === 'location' && p.end <= a.start && text.slice(p.end, a.start).trim().length === 0);
    const words = [a, ...places].map((p) => p.text.toLowerCase()).join(' ');
    const seg = lex.measuredDilatation.segments.find((g) => g.words.some((w) => new RegExp(`\\b${w}`).test(words)));
    if (mm < (seg?.minMm ?? lex.measuredDilatation.defaultMinMm)) return;
    out.push([...places, a, { ...size, class: 'anomaly' as const }].sort((x, y) => x.start - y.start));
  });
  return out;
}

export function structureReport(text: string): StructuredReport {
  if (typeof text !== 'string') throw new TypeError('structureReport: text must be a string');
  const lex = loadLexicon();
  const types = new Set(loadTaxonomy().anomalyTypes.map((t) => t.id));
  const sentences: Sentence[] = [];
  const phrases: Span[] = [];
  const anomalies: StructuredAnomaly[] = [];
  let context: string | undefined;
  let section: string | undefined;
  let header: string | undefined;
  let prevEnd = 0;
  for (const s of splitSentences(text)) {
    const { phrases: ph, tokens } = recognizePhrases(text, s.start, s.end, lex);
    for (const p of ph) phrases.push(toSpan(p));
    if (s.section !== section) { section = s.section; context = undefined; header = undefined; }
    // 'Thyroid: a 1.2 cm nodule in the left lobe.', 'KIDNEYS:\n...': a header of anatomy words
    // sets the organ until the next header or a blank line; any other 'Words:' lead ends it.
    if (/\n[ \t\r]*\n/.test(text.slice(prevEnd, s.start))) header = undefined;
    prevEnd = s.end;
    const lead = /^\s*([A-Za-z][A-Za-z ,&/-]{0,40}?)\s*:/.exec(text.slice(s.start, Math.min(s.end, s.start + 48)));
    if (lead) {
      const leadEnd = s.start + lead[0].length;
      const organsIn = ph.filter((p) => p.end <= leadEnd && p.class === 'anatomy').map(placeOrgan).filter((o): o is string => o !== undefined);
      header = organsIn[0];
    }
    const placed: { pos: number; organ: string }[] = [];
    for (const p of ph) {
      if (p.class !== 'anatomy' && p.class !== 'location') continue;
      const o = placeOrgan(p);
      if (o) placed.push({ pos: p.start, organ: o });
    }
    const sentenceOrgan = placed.find((x) => ph.some((p) => p.start === x.pos && p.class === 'anatomy'))?.organ ?? placed[0]?.organ;
    const index = sentences.length;
    if (!NO_FINDINGS.has(s.section ?? '')) {
      // 'in the upper abdominal sections ... no solid mass': where the reader looked is the organ
      const sentenceText = text.slice(s.start, s.end);
      const areaOrgan = lex.areaOrgans.find((a) => a.re.test(sentenceText))?.organ;
      for (const d of relateSentence(text, s.start, s.end, ph, tokens, lex, types)) {
        let organ = resolveOrgan(d, ph, sentenceOrgan, context, header, areaOrgan);
        const type = resolveType(d, organ);
        if (!types.has(type)) continue;
        // A lung-only word beside a thoracic organ or vessel is a lung finding ('atelectasis
        // adjacent to the pleural effusion'); elsewhere it only describes ('kidney ... with cortical scarring').
        if (lex.lungOnly.has(type) && organ !== 'lung') {
          if (organ === 'chest' || organ === 'mediastinum' || organ === 'aorta') organ = 'lung';
          else continue;
        }
        const spans = [d.head, ...d.unit, ...d.shared]
          .filter((p, i, all) => all.findIndex((q) => q.start === p.start && q.end === p.end) === i)
          .sort((a, b) => a.start - b.start)
          .map(toSpan);
        anomalies.push({ id: `a${anomalies.length + 1}`, organ, type, certainty: d.certainty, spans, anomaly: toSpan(d.head), sentence: index });
        placed.push({ pos: d.head.start, organ });
      }
      // a sentence that already has a dilatation word has its record ('42 mm and shows dilatation')
      const worded = anomalies.some((a) => a.sentence === index && a.organ === 'aorta' && a.type === 'aneurysm');
      for (const m of worded ? [] : measuredDilatations(text, s.start, s.end, ph, lex)) {
        anomalies.push({ id: `a${anomalies.length + 1}`, organ: 'aorta', type: 'aneurysm', certainty: 'present', spans: m.map(toSpan), anomaly: toSpan(m.find((p) => p.class === 'anomaly')!), sentence: index });
      }
    }
    placed.sort((a, b) => a.pos - b.pos);
    const organs = [...new Set(placed.map((x) => x.organ))];
    if (organs.length > 0) context = organs[organs.length - 1];
    sentences.push(s.section ? { start: s.start, end: s.end, organs, section: s.section } : { start: s.start, end: s.end, organs });
  }
  return { text, sentences, phrases, anomalies };
}

/**
 * The paper's m_t (Eq. 2) in run-length form: [start, end, 1 + class index] for each related
 * phrase, sorted, overlaps resolved as charClasses resolves them (the later phrase wins). Its size
 * is the anomaly's phrase count, not the report's length: a report with n anomalies costs O(n),
 * where n dense arrays as long as the report cost O(n * length) (a 200 KB report: 4 GB).
 */
export function charClassRuns(textLength: number, anomaly: Pick<StructuredAnomaly, 'spans'>): [number, number, number][] {
  const classes = loadTaxonomy().phraseClasses;
  const ks = anomaly.spans.map((sp) => {
    const k = classes.indexOf(sp.class);
    if (k < 0) throw new Error(`charClassRuns: unknown phrase class '${sp.class}'`);
    if (sp.start < 0 || sp.end > textLength || sp.start > sp.end) throw new RangeError(`charClassRuns: span [${sp.start}, ${sp.end}) outside a text of ${textLength} characters`);
    return k + 1;
  });
  // Elementary intervals between span boundaries; on each the last span covering it wins (as in
  // charClasses' fill order). An anomaly has a few dozen spans at most, so this is cheap.
  const cuts = [...new Set(anomaly.spans.flatMap((sp) => [sp.start, sp.end]))].sort((x, y) => x - y);
  const runs: [number, number, number][] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const a = cuts[i]!, b = cuts[i + 1]!;
    let k = 0;
    anomaly.spans.forEach((sp, j) => { if (sp.start <= a && sp.end >= b) k = ks[j]!; });
    if (k === 0) continue;
    const last = runs[runs.length - 1];
    if (last && last[1] === a && last[2] === k) last[1] = b;
    else runs.push([a, b, k]);
  }
  return runs;
}

/**
 * The paper's m_t (Eq. 2): for every character of the report, 1 + the phrase class index of
 * the related phrase it belongs to, 0 when it is not related to this anomaly.
 */
export function charClasses(text: string, anomaly: Pick<StructuredAnomaly, 'spans'>): Int8Array {
  const classes = loadTaxonomy().phraseClasses;
  const out = new Int8Array(text.length);
  for (const sp of anomaly.spans) {
    const k = classes.indexOf(sp.class);
    if (k < 0) throw new Error(`charClasses: unknown phrase class '${sp.class}'`);
    if (sp.start < 0 || sp.end > text.length || sp.start > sp.end) throw new RangeError(`charClasses: span [${sp.start}, ${sp.end}) outside a text of ${text.length} characters`);
    out.fill(k + 1, sp.start, sp.end);
  }
  return out;
}
