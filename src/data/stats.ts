import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileError, loadTaxonomy } from '../common/index.ts';
import { structureReport } from '../report/index.ts';
import type { ManifestStudy } from './dataset.ts';
import { BACKGROUND_MM, lesionCnr } from './visibility.ts';

export interface DatasetStats {
  studies: number;
  splits: Record<string, number>;
  difficulty: Record<string, number>;
  anomalies: { present: number; uncertain: number; absent: number; withMask: number; focal: number; diffuse: number };
  perReport: { mean: number; max: number };
  /** pairs of masked findings written in one sentence / pairs of masked findings in one organ (class and scheme organ family) */
  sharedSentencePairs: number;
  sameOrganPairs: number;
  /** focal lesion voxels ÷ voxels of the organ it lies in (quantiles 10/25/50/75/90 %, and the share above 0.1) */
  lesionOrganRatio: { q10: number; q25: number; q50: number; q75: number; q90: number; over01: number };
  /** share of anomalies the report structurer finds with the same organ, type and an overlapping anomaly phrase */
  structurerRecall: number;
}

/** Difficulty figures of a dataset from its manifest alone (synthetic facts where present). */
function readStudies(dir: string, split?: string): ManifestStudy[] {
  const mf = join(dir, 'manifest.jsonl');
  if (!existsSync(mf)) throw fileError(mf, 'not found');
  const studies = readFileSync(mf, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as ManifestStudy);
  return split ? studies.filter((s) => s.split === split) : studies;
}

export function datasetStats(dir: string, split?: string): DatasetStats {
  const studies = readStudies(dir, split);
  const diffuseTypes = new Set(loadTaxonomy().anomalyTypes.filter((t) => t.diffuse).map((t) => t.id));
  const count = (xs: string[]): Record<string, number> => xs.reduce<Record<string, number>>((m, x) => ({ ...m, [x]: (m[x] ?? 0) + 1 }), {});
  const an = { present: 0, uncertain: 0, absent: 0, withMask: 0, focal: 0, diffuse: 0 };
  const ratios: number[] = [];
  let shared = 0, same = 0, found = 0, total = 0, maxPer = 0, sumPer = 0;
  for (const s of studies) {
    const text = readFileSync(join(dir, s.report), 'utf8');
    const st = structureReport(text);
    const masked = s.anomalies.filter((a) => a.mask);
    sumPer += masked.length; maxPer = Math.max(maxPer, masked.length);
    const sentenceOf = (a: (typeof masked)[number]): number => st.sentences.findIndex((x) => a.spans[0] && x.start <= a.spans[0].start && a.spans[0].start < x.end);
    for (let i = 0; i < masked.length; i++) for (let j = i + 1; j < masked.length; j++) {
      const a = masked[i]!, b = masked[j]!;
      if (sentenceOf(a) >= 0 && sentenceOf(a) === sentenceOf(b)) shared++;
      if (a.organ === b.organ && (a.synth?.target ?? '').split('_')[0] === (b.synth?.target ?? '').split('_')[0]) same++;
    }
    for (const a of s.anomalies) {
      an[a.certainty]++;
      if (a.mask) { an.withMask++; if (diffuseTypes.has(a.type)) an.diffuse++; else an.focal++; }
      if (a.mask && !diffuseTypes.has(a.type) && a.synth) ratios.push(a.synth.lesionVoxels / a.synth.organVoxels);
      const head = a.spans.find((x) => x.class === 'anomaly');
      if (!head) continue;
      total++;
      if (st.anomalies.some((b) => b.organ === a.organ && b.type === a.type && b.spans.some((x) => x.class === 'anomaly' && x.start < head.end && head.start < x.end))) found++;
    }
  }
  ratios.sort((x, y) => x - y);
  const q = (f: number): number => (ratios.length ? ratios[Math.min(ratios.length - 1, Math.floor(f * ratios.length))]! : NaN);
  return {
    studies: studies.length,
    splits: count(studies.map((s) => s.split)),
    difficulty: count(studies.map((s) => s.difficulty ?? 'unknown')),
    anomalies: an,
    perReport: { mean: studies.length ? sumPer / studies.length : 0, max: maxPer },
    sharedSentencePairs: shared,
    sameOrganPairs: same,
    lesionOrganRatio: { q10: q(0.1), q25: q(0.25), q50: q(0.5), q75: q(0.75), q90: q(0.9), over01: ratios.length ? ratios.filter((r) => r > 0.1).length / ratios.length : NaN },
    structurerRecall: total ? found / total : NaN,
  };
}

export function formatStats(s: DatasetStats): string {
  const r = s.lesionOrganRatio;
  return [
    `studies ${s.studies} (${Object.entries(s.splits).map(([k, v]) => `${k} ${v}`).join(', ')}; ${Object.entries(s.difficulty).map(([k, v]) => `${k} ${v}`).join(', ')})`,
    `anomalies: ${s.anomalies.present} present, ${s.anomalies.uncertain} uncertain, ${s.anomalies.absent} absent (negated, no mask); ${s.anomalies.withMask} with masks = ${s.anomalies.focal} focal + ${s.anomalies.diffuse} diffuse`,
    `masked findings per report: mean ${s.perReport.mean.toFixed(2)}, max ${s.perReport.max}; pairs in one sentence ${s.sharedSentencePairs}; same-organ pairs ${s.sameOrganPairs}`,
    `focal lesion / organ volume: 10% ${r.q10.toFixed(4)}, 25% ${r.q25.toFixed(4)}, median ${r.q50.toFixed(4)}, 75% ${r.q75.toFixed(4)}, 90% ${r.q90.toFixed(4)}; share over 0.1: ${(100 * r.over01).toFixed(1)}%`,
    `report structurer finds ${(100 * s.structurerRecall).toFixed(1)}% of the anomalies (same organ, type and anomaly phrase)`,
  ].join('\n');
}

/** How visible one kind of generated lesion is: contrast-to-noise against the organ around it. */
export interface KindContrast { kind: string; n: number; medianCnr: number; belowOne: number }

/** `lesionCnr` of every generated lesion of a dataset, summarized per lesion kind (reads the volumes). */
export async function lesionContrast(dir: string, split: string | undefined, read: (path: string) => Promise<{ data: ArrayLike<number>; size: readonly number[]; spacing: readonly number[] }>, organValue: (name: string) => number | undefined): Promise<KindContrast[]> {
  const byKind = new Map<string, number[]>();
  for (const s of readStudies(dir, split)) {
    const withSynth = s.anomalies.filter((a) => a.mask && a.synth);
    if (!withSynth.length) continue;
    const ct = await read(join(dir, s.ct)), labels = await read(join(dir, s.labels));
    for (const a of withSynth) {
      const organ = organValue(a.synth!.target);
      if (organ === undefined) continue;
      const mask = await read(join(dir, a.mask!));
      const cnr = lesionCnr(ct.data, labels.data, mask.data, ct.size, ct.spacing, organ);
      if (Number.isFinite(cnr)) byKind.set(a.synth!.kind, [...(byKind.get(a.synth!.kind) ?? []), cnr]);
    }
  }
  return [...byKind].map(([kind, xs]) => {
    const s = [...xs].sort((a, b) => a - b);
    return { kind, n: s.length, medianCnr: s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2, belowOne: s.filter((v) => v < 1).length };
  }).sort((a, b) => a.medianCnr - b.medianCnr);
}

export function formatContrast(rows: KindContrast[]): string {
  const total = rows.reduce((a, r) => a + r.n, 0), below = rows.reduce((a, r) => a + r.belowOne, 0);
  return [
    `lesion contrast-to-noise against the organ around it (|lesion mean − organ median| ÷ organ robust spread, ${BACKGROUND_MM} mm around the lesion):`,
    ...rows.map((r) => `  ${r.kind.padEnd(22)} n ${String(r.n).padStart(4)}  median CNR ${r.medianCnr.toFixed(2).padStart(6)}  under 1: ${r.belowOne}`),
    `under 1 (about as bright as the organ's own texture): ${below} of ${total} lesions`,
  ].join('\n');
}
