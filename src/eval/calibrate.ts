import { MIOU_THRESHOLDS, mean } from './metrics.ts';
import { meanIouAt, type AnomalyResult } from './evaluate.ts';
import { typicalKey, type KindCalibration } from '../model/index.ts';

/** The calibration settings of one grid point (0: that step off). */
export interface CalibrationSettings {
  minPeak: number;
  temperature: number;
  /** 0: no size cap */
  sizeCap: number;
  /** 0: no place prior */
  placePrior: number;
  /** 0: no size cap for findings whose report states no size */
  typicalSizeCap: number;
  /** 0: no contrast gate */
  contrastGate: number;
  /** 0: no zoom stage; else the zoom network grounds findings expected to be at most this many mm³ */
  zoomMaxMm3: number;
  /** per-kind gates and typical caps over the global ones (`chooseKindCalibration`); absent: none */
  kindCalibration?: Record<string, KindCalibration>;
}

/** One point of a map-calibration grid, scored over the pooled validation anomalies. */
export interface CalibrationPoint extends CalibrationSettings {
  /** anomalies grounded by the paper's criterion (IoU > 0.1 at threshold 0.1) */
  hits: number;
  n: number;
  miou: number;
  /** mean IoU at each of MIOU_THRESHOLDS */
  iouAt: number[];
}

export function calibrationPoint(settings: CalibrationSettings, results: readonly AnomalyResult[]): CalibrationPoint {
  return {
    ...settings, n: results.length, hits: results.filter((r) => r.score.hit).length,
    miou: mean(results.map((r) => r.score.miou)), iouAt: meanIouAt(results),
  };
}

/**
 * The calibration a model ships with: the grid point grounding the most validation anomalies (the
 * paper's accuracy), ties to the higher mIoU; then the region threshold of `ground`/`label` = the
 * evaluated threshold with the best mean IoU at that point, kept below minPeak (a map lifted by the
 * minPeak rule peaks at minPeak, and must still get a region).
 */
export function chooseCalibration(points: readonly CalibrationPoint[]): { best: CalibrationPoint; regionThreshold: number | undefined } {
  if (points.length === 0) throw new Error('chooseCalibration: an empty grid');
  const best = points.reduce((b, p) => (p.hits > b.hits || (p.hits === b.hits && p.miou > b.miou) ? p : b));
  let regionThreshold: number | undefined, top = -Infinity;
  MIOU_THRESHOLDS.forEach((t, k) => {
    if ((best.minPeak > 0 && t >= best.minPeak) || best.iouAt[k]! <= top) return;
    top = best.iouAt[k]!;
    regionThreshold = t;
  });
  return { best, regionThreshold };
}

/** The positions of each kind's findings ("organ:type", `typicalKey`) in a list of results. */
export function findingsByKind(results: readonly AnomalyResult[]): Map<string, number[]> {
  const members = new Map<string, number[]>();
  results.forEach((r, i) => {
    const k = typicalKey(r.organ, r.type), l = members.get(k);
    if (l) l.push(i); else members.set(k, [i]);
  });
  return members;
}

/** One calibration variant's per-anomaly results; the variants differ in contrast gate and typical-size cap alone. */
export interface KindCandidate extends KindCalibration { results: readonly AnomalyResult[] }

/** One kind of finding's choice in `chooseKindCalibration`: its validation count, its settings, and hits and mIoU at its own and at the global ones. */
export interface KindChoice extends KindCalibration { kind: string; n: number; hits: number; miou: number; baseHits: number; baseMiou: number }

/**
 * Contrast gate and typical-size cap per kind of finding ("organ:type", `typicalKey`): a finding's
 * map depends on its own kind's settings alone, so each kind with at least `minCount` results whose
 * findings some candidate grounds more of than the global settings `base` do takes the best such
 * candidate (most hits, ties to mIoU), the others keep the base, and the results of those choices
 * add up to the combined variant's. A kind `gated` refuses keeps the base gate (its maps are not
 * gated, whatever the candidate's gate). The candidates' results
 * must list the same findings in the same order (one evaluation pass); a finding is matched by
 * position, since study ids repeat across datasets.
 */
export function chooseKindCalibration(candidates: readonly KindCandidate[], base: KindCalibration, minCount: number, gated: (organ: string, type: string) => boolean): { kinds: KindChoice[]; overrides: Record<string, KindCalibration>; results: AnomalyResult[] } {
  const same = (a: KindCalibration, b: KindCalibration) => a.contrastGate === b.contrastGate && a.typicalSizeCap === b.typicalSizeCap;
  const baseline = candidates.find((c) => same(c, base));
  if (!baseline) throw new Error(`chooseKindCalibration: no candidate has the base settings (gate ${base.contrastGate}, typical cap ${base.typicalSizeCap})`);
  for (const c of candidates) {
    if (c.results.length !== baseline.results.length || c.results.some((r, i) => r.study !== baseline.results[i]!.study || r.id !== baseline.results[i]!.id)) {
      throw new Error(`chooseKindCalibration: gate ${c.contrastGate}, typical cap ${c.typicalSizeCap} lists other findings than the base`);
    }
  }
  const members = findingsByKind(baseline.results);
  const kinds: KindChoice[] = [], overrides: Record<string, KindCalibration> = {}, pick = new Map<string, KindCandidate>();
  for (const [kind, at] of [...members].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const first = baseline.results[at[0]!]!;
    if (at.length < minCount) continue;
    const gate = gated(first.organ, first.type);
    const score = (c: KindCandidate) => ({ c, hits: at.filter((i) => c.results[i]!.score.hit).length, miou: mean(at.map((i) => c.results[i]!.score.miou)) });
    const b = score(baseline);
    // a kind leaves the global settings only for more hits: its mIoU alone, over a few dozen
    // findings and many candidates, is too noisy to choose by (it did not carry over to held-out data)
    const top = candidates.filter((c) => gate || c.contrastGate === base.contrastGate).map(score)
      .reduce((x, y) => (y.hits > x.hits || (y.hits === x.hits && y.miou > x.miou) ? y : x), b);
    const best = top.hits > b.hits ? top : b;
    const own = { contrastGate: best.c.contrastGate, typicalSizeCap: best.c.typicalSizeCap };
    kinds.push({ kind, n: at.length, ...own, hits: best.hits, miou: best.miou, baseHits: b.hits, baseMiou: b.miou });
    if (!same(own, base)) { overrides[kind] = own; pick.set(kind, best.c); }
  }
  const results = baseline.results.map((r, i) => pick.get(typicalKey(r.organ, r.type))?.results[i] ?? r);
  return { kinds, overrides, results };
}
