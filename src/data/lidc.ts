import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRng, fileError, projectRoot, type Rng } from '../common/index.ts';
import type { Span } from './report.ts';

/**
 * The LIDC-IDRI nodule crops of ../shared/data/lidc-nodules (CC BY 3.0; Armato SG III et al.,
 * Medical Physics 38(2):915–931, 2011; TCIA doi:10.7937/K9/TCIA.2015.LO9QL9SX): one row of
 * nodules.csv per nodule, with the radiologists' majority-vote ratings.
 */
export interface LidcNodule {
  patient: string;
  nodule: number;
  /** file name stem of image/ and mask/ */
  name: string;
  diameterMm: number;
  texture: number;
  calcification: number;
  margin: number;
  spiculation: number;
  lobulation: number;
  /** world x of the nodule in its scan, LPS (LIDC's frame): negative = patient right */
  lpsX: number;
}

export type LidcSplit = 'train' | 'val' | 'test';

interface RatingRule { when: Record<string, number[]>; p: number; words: string[] }
export interface LidcConfig {
  split: { train: number; val: number };
  transplant: {
    spacingMm: number; rimMm: number; blendMm: number; minInLobe: number; parenchymaBelowHu: number;
    shiftFullBelowHu: number; shiftNoneAboveHu: number; backgroundRadiusMm: number; tries: number;
  };
  words: {
    density: RatingRule[]; property: RatingRule[]; anomaly: string[]; single: string[]; pair: string[];
    pairProb: number; otherwiseNormal: string[]; otherwiseProb: number;
  };
}

let configCache: LidcConfig | undefined;
export function loadLidcConfig(): LidcConfig {
  configCache ??= JSON.parse(readFileSync(join(projectRoot, 'data', 'synth', 'lidc.json'), 'utf8')) as LidcConfig;
  return configCache;
}

/** A CSV line split on commas outside double quotes (nodules.csv quotes nothing today, but may). */
function csvCells(line: string): string[] {
  const out: string[] = [];
  let cur = '', quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '"') { if (quoted && line[i + 1] === '"') { cur += '"'; i++; } else quoted = !quoted; }
    else if (c === ',' && !quoted) { out.push(cur); cur = ''; }
    else cur += c;
  }
  out.push(cur);
  return out;
}

/** nodules.csv → one entry per nodule whose image and mask exist; a malformed file fails in one line. */
export function readLidcCatalog(dir: string): LidcNodule[] {
  const file = join(dir, 'nodules.csv');
  if (!existsSync(file)) throw fileError(file, 'not found (the LIDC nodule folder needs nodules.csv, image/ and mask/)');
  const lines = readFileSync(file, 'utf8').split(/\r?\n/).filter((l) => l.trim());
  const head = csvCells(lines[0] ?? '');
  const col = (name: string): number => {
    const i = head.indexOf(name);
    if (i < 0) throw fileError(file, `no column '${name}'`);
    return i;
  };
  const c = {
    patient: col('patient_id'), nodule: col('nodule_id'), diameter: col('diameter_mm'), x: col('coordX'), texture: col('Texture_value'),
    calcification: col('Calcification_value'), margin: col('Margin_value'), spiculation: col('Spiculation_value'), lobulation: col('Lobulation_value'),
  };
  const out: LidcNodule[] = [];
  lines.slice(1).forEach((line, n) => {
    const cells = csvCells(line);
    const num = (i: number, what: string): number => {
      const v = Number(cells[i]);
      if (cells[i] === undefined || cells[i] === '' || !Number.isFinite(v)) throw fileError(file, `line ${n + 2}: ${what} is not a number`);
      return v;
    };
    const patient = cells[c.patient] ?? '';
    if (!/^[A-Za-z0-9-]+$/.test(patient)) throw fileError(file, `line ${n + 2}: bad patient_id`);
    const nodule = num(c.nodule, 'nodule_id');
    const name = `${patient}_R_${nodule}`;
    if (!existsSync(join(dir, 'image', `${name}.nii.gz`)) || !existsSync(join(dir, 'mask', `${name}.nii.gz`))) return;
    out.push({
      patient, nodule, name, diameterMm: num(c.diameter, 'diameter_mm'), texture: num(c.texture, 'Texture_value'), calcification: num(c.calcification, 'Calcification_value'),
      margin: num(c.margin, 'Margin_value'), spiculation: num(c.spiculation, 'Spiculation_value'), lobulation: num(c.lobulation, 'Lobulation_value'), lpsX: num(c.x, 'coordX'),
    });
  });
  if (!out.length) throw fileError(file, 'lists no nodule whose image/ and mask/ files exist');
  return out;
}

/**
 * A patient's split, from a hash of the patient id and the seed: every nodule of one patient lands
 * in the same split, whatever else the catalogue holds (adding patients never moves one).
 */
export function lidcSplitOf(patient: string, seed: number): LidcSplit {
  const { train, val } = loadLidcConfig().split;
  const u = createRng(seed).fork(`lidc-patient:${patient}`).next();
  return u < train ? 'train' : u < train + val ? 'val' : 'test';
}

/** A phrase piece; with a class it is a span of the finding. */
export interface Piece { text: string; cls?: string }

function ruleWords(rng: Rng, rules: RatingRule[], n: LidcNodule): string[] {
  const out: string[] = [];
  for (const r of rules) {
    const fits = Object.entries(r.when).every(([k, vals]) => vals.includes(n[k as keyof LidcNodule] as number));
    // the draw happens either way, so one rule's outcome never shifts another's
    const u = rng.next();
    if (fits && u < r.p) out.push(rng.pick(r.words));
  }
  return out;
}

/**
 * The words a report uses for this nodule's ratings: density (calcification first, else the
 * texture; one word) and up to two properties (spiculation, lobulation, margin), each a span.
 */
export function noduleDescriptor(rng: Rng, n: LidcNodule): Piece[] {
  const w = loadLidcConfig().words;
  const density = ruleWords(rng, w.density, n).slice(0, 1);
  const props = ruleWords(rng, w.property, n).slice(0, 2);
  const out: Piece[] = [];
  props.forEach((p, i) => { if (i) out.push({ text: ', ' }); out.push({ text: p, cls: 'property' }); });
  if (density.length) { if (out.length) out.push({ text: ' ' }); out.push({ text: density[0]!, cls: 'density' }); }
  return out;
}

/** The stated size: the rated diameter, "7 mm" under 1 cm, else "12 mm" or "1.2 cm". */
export function diameterText(rng: Rng, mm: number): string {
  const d = Math.max(1, Math.round(mm));
  return mm >= 10 && rng.next() < 0.5 ? `${(mm / 10).toFixed(1)} cm` : `${d} mm`;
}

/** One nodule as the report names it: its pieces per slot. */
export interface NoduleWords { size: string; desc: Piece[]; anomaly: string; location: Piece[] }

const SLOT = /\{([A-Za-z]+)([12]?)\}/g;

/**
 * Fills a sentence template with one or two nodules' words and returns its text and the spans of
 * each nodule (offsets into the sentence). Empty descriptors drop their slot and its space.
 */
export function renderNoduleSentence(rng: Rng, template: string, who: NoduleWords[], verbs: { verb: string[]; verbp: string[] }): { text: string; spans: Span[][] } {
  const pieces: { text: string; cls?: string; owner: number }[] = [];
  let last = 0;
  let eat = false;
  const literal = (s: string): void => {
    if (eat && s.startsWith(' ')) s = s.slice(1);
    eat = false;
    if (s) pieces.push({ text: s, owner: -1 });
  };
  for (const m of template.matchAll(SLOT)) {
    literal(template.slice(last, m.index));
    last = m.index! + m[0].length;
    const name = m[1]!, idx = m[2] ? Number(m[2]) - 1 : 0;
    const f = who[idx]!;
    const lower = name.toLowerCase();
    if (lower === 'a') { pieces.push({ text: name === 'A' ? '\u0000A' : '\u0000a', owner: -1 }); continue; }
    if (lower === 'verb') { pieces.push({ text: rng.pick(verbs.verb), owner: -1 }); continue; }
    if (lower === 'verbp') { pieces.push({ text: rng.pick(verbs.verbp), owner: -1 }); continue; }
    const parts: Piece[] = lower === 'size' ? [{ text: f.size, cls: 'size' }] : lower === 'anomaly' ? [{ text: f.anomaly, cls: 'anomaly' }] : lower === 'location' ? f.location : lower === 'desc' ? f.desc : [];
    if (!parts.length) { eat = true; continue; }
    for (const p of parts) pieces.push({ text: p.text, cls: p.cls, owner: idx });
  }
  literal(template.slice(last));
  // articles agree with the next word
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i]!;
    if (!p.text.startsWith('\u0000')) continue;
    let next = '';
    for (let j = i + 1; j < pieces.length && !next.trim(); j++) next += pieces[j]!.text;
    const an = /^\s*([aeiou]|8|11\b|18\b)/i.test(next);
    p.text = p.text === '\u0000A' ? (an ? 'An' : 'A') : an ? 'an' : 'a';
  }
  let text = '';
  const spans: Span[][] = who.map(() => []);
  for (const p of pieces) {
    if (p.cls && p.owner >= 0) spans[p.owner]!.push({ start: text.length, end: text.length + p.text.length, text: p.text, class: p.cls });
    text += p.text;
  }
  if (text && text[0] !== text[0]!.toUpperCase()) {
    text = text[0]!.toUpperCase() + text.slice(1);
    for (const list of spans) for (const s of list) if (s.start === 0) s.text = text.slice(0, s.end);
  }
  return { text, spans };
}
