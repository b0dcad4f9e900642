import { fileError, loadTaxonomy } from '../common/index.ts';
import { readText } from './io.ts';
import { structureReport } from './structure.ts';
import type { Certainty, StructuredAnomaly } from './types.ts';

/**
 * The development-set evaluator. A fixture is a JSONL file, one hand-annotated text per line:
 * {"id", "text", "anomalies": [{"organ", "type", "certainty", "location": [words], "anomaly"?}]}.
 * A predicted anomaly matches a gold one when organ and type are equal and every gold location
 * location entry is found, from the start of a word, among the predicted anomaly's phrases (case and hyphens ignored).
 */

export interface DevAnomaly {
  organ: string;
  type: string;
  certainty: Certainty;
  location: string[];
  /** the anomaly words, for people reading the fixture */
  anomaly?: string;
  /** the size as written ('4x3 mm'); a matched anomaly's phrases must hold its numbers */
  size?: string;
}

export interface DevItem {
  id: string;
  text: string;
  anomalies: DevAnomaly[];
}

export interface Prf {
  tp: number;
  fp: number;
  fn: number;
  precision: number;
  recall: number;
  f1: number;
}

export interface DevError {
  id: string;
  missed: DevAnomaly[];
  spurious: (Pick<StructuredAnomaly, 'organ' | 'type' | 'certainty'> & { phrases: string[] })[];
}

/**
 * The failure kinds of issue 26, counted per error: each missed gold finding and each spurious
 * predicted one (present/uncertain) gets one kind.
 */
export const ERROR_KINDS = {
  double: 'one finding counted twice (diagnosis/modifier as its own finding)',
  count: 'counts and pairs not honoured (one ... and one ...)',
  list: 'list of places/numbers not split',
  header: 'section header ignored (organ wrong after a header)',
  organ: 'organ wrong',
  place: 'places lost (organ and type right, a location word missing)',
  type: 'type wrong',
  missed: 'finding missed',
  spurious: 'false finding',
  certainty: 'present/uncertain confused',
} as const;
export type ErrorKind = keyof typeof ERROR_KINDS;

export interface DevEvaluation {
  items: number;
  /** errors of present/uncertain findings by kind */
  kinds: Record<ErrorKind, number>;
  /** matched present/uncertain anomalies whose gold has a size, and how many carry its numbers */
  sizes: { gold: number; right: number };
  /** present and uncertain anomalies together (a present/uncertain mix-up still counts) */
  findings: Prf;
  present: Prf;
  uncertain: Prf;
  absent: Prf;
  /** predicted present/uncertain anomalies that the annotation says are negated (must be 0) */
  negatedAsPresent: number;
  errors: DevError[];
}

/** What makes a gold anomaly unusable (an organ, type or certainty the taxonomy lacks), or null. */
export function devAnomalyProblem(a: { organ: string; type: string; certainty: string }): string | null {
  const tax = loadTaxonomy();
  if (!tax.reportOrgans.includes(a.organ)) return `unknown organ '${a.organ}'`;
  if (!tax.anomalyTypes.some((t) => t.id === a.type)) return `unknown anomaly type '${a.type}'`;
  if (!(tax.certainty as readonly string[]).includes(a.certainty)) return `unknown certainty '${a.certainty}'`;
  return null;
}

export function loadDevSet(path: string): DevItem[] {
  const items: DevItem[] = [];
  readText(path).split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let v: DevItem;
    try {
      v = JSON.parse(line) as DevItem;
    } catch {
      throw fileError(path, `line ${i + 1}: not valid JSON`);
    }
    if (typeof v?.text !== 'string' || !Array.isArray(v.anomalies)) throw fileError(path, `line ${i + 1}: needs "text" (string) and "anomalies" (array)`);
    for (const a of v.anomalies) {
      const problem = devAnomalyProblem(a);
      if (problem) throw fileError(path, `line ${i + 1}: ${problem}`);
      if (!Array.isArray(a.location)) a.location = [];
    }
    items.push({ id: String(v.id ?? `line ${i + 1}`), text: v.text, anomalies: v.anomalies });
  });
  if (items.length === 0) throw fileError(path, 'no fixtures in the file');
  return items;
}

const norm = (s: string): string => s.toLowerCase().replace(/[-‐–_/]+/g, ' ').replace(/\s+/g, ' ').trim();

function matches(g: DevAnomaly, p: StructuredAnomaly): boolean {
  if (g.organ !== p.organ || g.type !== p.type) return false;
  // from a word's start: a gold '7' is not found in '27x27 mm', 'segment' is in 'segments'
  const words = ` ${p.spans.map((s) => norm(s.text)).join(' | ')}`;
  return g.location.every((w) => words.includes(` ${norm(w)}`));
}

/** Greedy one-to-one matching; gold anomalies with more location words pick first. */
function match(gold: DevAnomaly[], pred: StructuredAnomaly[]): { pairs: [DevAnomaly, StructuredAnomaly][]; missed: DevAnomaly[]; spurious: StructuredAnomaly[] } {
  const free = new Set(pred);
  const pairs: [DevAnomaly, StructuredAnomaly][] = [];
  const missed: DevAnomaly[] = [];
  for (const g of [...gold].sort((a, b) => b.location.length - a.location.length)) {
    const p = [...free].find((q) => matches(g, q));
    if (p) { free.delete(p); pairs.push([g, p]); } else missed.push(g);
  }
  return { pairs, missed, spurious: [...free] };
}

const emptyCounts = (): { tp: number; fp: number; fn: number } => ({ tp: 0, fp: 0, fn: 0 });

function prf(c: { tp: number; fp: number; fn: number }): Prf {
  const precision = c.tp + c.fp > 0 ? c.tp / (c.tp + c.fp) : 1;
  const recall = c.tp + c.fn > 0 ? c.tp / (c.tp + c.fn) : 1;
  const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  return { ...c, precision, recall, f1 };
}

const HEADER = /^\s*[A-Za-z][A-Za-z ]{1,30}:/m;
const COUNT = /\b(two|three|four|five|several|one\b[^.]*\bone)\b/i;

/** One kind per error of the present/uncertain findings of one text (see ERROR_KINDS). */
function classify(text: string, pairs: [DevAnomaly, StructuredAnomaly][], missed: DevAnomaly[], spurious: StructuredAnomaly[], kinds: Record<ErrorKind, number>): void {
  const free = [...spurious];
  const take = (f: (p: StructuredAnomaly) => boolean): boolean => {
    const i = free.findIndex(f);
    if (i < 0) return false;
    free.splice(i, 1);
    return true;
  };
  const hasMatched = (g: DevAnomaly): boolean => pairs.some(([h]) => h.organ === g.organ && h.type === g.type);
  for (const g of missed) {
    if (take((p) => p.organ === g.organ && p.type === g.type)) kinds.place++;
    else if (take((p) => p.type === g.type)) kinds[HEADER.test(text) ? 'header' : 'organ']++;
    else if (hasMatched(g)) kinds[COUNT.test(text) ? 'count' : 'list']++;
    else if (take((p) => p.organ === g.organ)) kinds.type++;
    else kinds.missed++;
  }
  for (const p of free) {
    const sibling = pairs.some(([, q]) => q.sentence === p.sentence && q.organ === p.organ);
    kinds[sibling ? 'double' : 'spurious']++;
  }
}

const sizeNumbers = (s: string): string[] => s.match(/\d+(?:[.,]\d+)?/g) ?? [];

export function evaluateDevSet(items: DevItem[], structure: (text: string) => { anomalies: StructuredAnomaly[] } = structureReport): DevEvaluation {
  const groups = { findings: emptyCounts(), present: emptyCounts(), uncertain: emptyCounts(), absent: emptyCounts() };
  let negatedAsPresent = 0;
  const errors: DevError[] = [];
  const kinds = Object.fromEntries(Object.keys(ERROR_KINDS).map((k) => [k, 0])) as Record<ErrorKind, number>;
  const sizes = { gold: 0, right: 0 };
  const seen = (c: Certainty): boolean => c !== 'absent';
  for (const item of items) {
    const pred = structure(item.text).anomalies;
    const tally = (key: keyof typeof groups, keepGold: (g: DevAnomaly) => boolean, keepPred: (p: StructuredAnomaly) => boolean) => {
      const m = match(item.anomalies.filter(keepGold), pred.filter(keepPred));
      groups[key].tp += m.pairs.length;
      groups[key].fn += m.missed.length;
      groups[key].fp += m.spurious.length;
      return m;
    };
    const f = tally('findings', (g) => seen(g.certainty), (p) => seen(p.certainty));
    tally('present', (g) => g.certainty === 'present', (p) => p.certainty === 'present');
    tally('uncertain', (g) => g.certainty === 'uncertain', (p) => p.certainty === 'uncertain');
    const a = tally('absent', (g) => g.certainty === 'absent', (p) => p.certainty === 'absent');
    const negated = item.anomalies.filter((g) => g.certainty === 'absent');
    const negPairs = match(negated, f.spurious).pairs;
    negatedAsPresent += negPairs.length;
    classify(item.text, f.pairs, f.missed, f.spurious.filter((p) => !negPairs.some(([, q]) => q === p)), kinds);
    for (const [g, p] of f.pairs) {
      if (g.certainty !== p.certainty) kinds.certainty++;
      if (!g.size) continue;
      sizes.gold++;
      const have = new Set(p.spans.filter((x) => x.class === 'size').flatMap((x) => sizeNumbers(x.text)));
      if (sizeNumbers(g.size).every((n) => have.has(n))) sizes.right++;
    }
    const missed = [...f.missed, ...a.missed];
    const spurious = [...f.spurious, ...a.spurious];
    if (missed.length || spurious.length) {
      errors.push({ id: item.id, missed, spurious: spurious.map((p) => ({ organ: p.organ, type: p.type, certainty: p.certainty, phrases: p.spans.map((s) => s.text) })) });
    }
  }
  return {
    items: items.length,
    kinds,
    sizes,
    findings: prf(groups.findings),
    present: prf(groups.present),
    uncertain: prf(groups.uncertain),
    absent: prf(groups.absent),
    negatedAsPresent,
    errors,
  };
}

export function formatEvaluation(ev: DevEvaluation, verbose = false): string {
  const pct = (x: number): string => (100 * x).toFixed(1).padStart(6);
  const row = (name: string, p: Prf): string => `${name.padEnd(20)} ${String(p.tp + p.fn).padStart(5)} ${String(p.tp + p.fp).padStart(5)} ${pct(p.precision)} ${pct(p.recall)} ${pct(p.f1)}`;
  const lines = [
    `${ev.items} fixtures`,
    `${'anomalies'.padEnd(20)} ${'gold'.padStart(5)} ${'pred'.padStart(5)} ${'P %'.padStart(6)} ${'R %'.padStart(6)} ${'F1 %'.padStart(6)}`,
    row('present+uncertain', ev.findings),
    row('  present', ev.present),
    row('  uncertain', ev.uncertain),
    row('absent', ev.absent),
    `negated findings reported as present: ${ev.negatedAsPresent}`,
    `sizes right on matched findings: ${ev.sizes.right} / ${ev.sizes.gold}`,
    'errors by kind (present+uncertain):',
    ...(Object.keys(ERROR_KINDS) as ErrorKind[]).map((k) => `  ${String(ev.kinds[k]).padStart(4)}  ${ERROR_KINDS[k]}`),
  ];
  if (verbose) {
    for (const e of ev.errors) {
      lines.push(`-- ${e.id}`);
      for (const m of e.missed) lines.push(`   missed   ${m.certainty} ${m.organ} ${m.type} [${m.location.join(', ')}]`);
      for (const s of e.spurious) lines.push(`   spurious ${s.certainty} ${s.organ} ${s.type} [${s.phrases.join(', ')}]`);
    }
  }
  return lines.join('\n');
}
