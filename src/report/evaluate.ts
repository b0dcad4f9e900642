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

export interface DevEvaluation {
  items: number;
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

export function evaluateDevSet(items: DevItem[]): DevEvaluation {
  const groups = { findings: emptyCounts(), present: emptyCounts(), uncertain: emptyCounts(), absent: emptyCounts() };
  let negatedAsPresent = 0;
  const errors: DevError[] = [];
  const seen = (c: Certainty): boolean => c !== 'absent';
  for (const item of items) {
    const pred = structureReport(item.text).anomalies;
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
    negatedAsPresent += match(negated, f.spurious).pairs.length;
    const missed = [...f.missed, ...a.missed];
    const spurious = [...f.spurious, ...a.spurious];
    if (missed.length || spurious.length) {
      errors.push({ id: item.id, missed, spurious: spurious.map((p) => ({ organ: p.organ, type: p.type, certainty: p.certainty, phrases: p.spans.map((s) => s.text) })) });
    }
  }
  return {
    items: items.length,
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
