import { join } from 'node:path';
import { fileError, loadTaxonomy, Progress } from '../common/index.ts';
import { boxedOver, extractRegion, hullBox, maskBoundingBox, voxelBoxSize, type Volume, type VoxelBox } from '../volume/index.ts';
import { typicalKey, type GroundingMap, type GroundingModel } from '../model/index.ts';
import { MIOU_THRESHOLDS, instanceCounts, mean, peakDistanceMm, quantile, scoreAnomaly, summarize, type AnomalyScore, type InstanceCounts, type Summary } from './metrics.ts';
import { goldReport, type ManifestStudy } from './manifest.ts';
import { splitSentences } from '../report/index.ts';
import { lesionCnr } from '../data/index.ts';
import { loadOrganScheme } from '../anatomy/index.ts';
import type { OrganLookup } from './oracles.ts';

/** The world box an anomaly is grounded in (model/'s anomalyBox, injected: eval/ does not load the network code). */
export type GroundingBox = (anatomy: Volume, anomaly: ManifestStudy['anomalies'][number]) => { min: readonly number[]; max: readonly number[] };

/** Reads a CT, label map or mask (injected so eval/ stays testable without files). */
export type VolumeReader = (path: string) => Promise<Volume>;

/** One scored anomaly, with what the difficulty report needs about it. */
export interface AnomalyResult {
  study: string;
  id: string;
  organ: string;
  type: string;
  diffuse: boolean;
  score: AnomalyScore;
  instances: InstanceCounts;
  lesionMm3: number;
  organMm3: number;
  /** equivalent-sphere diameter of the lesion, mm */
  diameterMm: number;
  /** from the map's peak to the nearest lesion voxel, mm (0: the peak is on the lesion) */
  peakDistanceMm: number;
  /** largest side of the box the anomaly is grounded in (its organ, side or lobe), mm; NaN when not asked for */
  organExtentMm: number;
  /** generated lesions: contrast-to-noise against the organ around it (data/'s lesionCnr); NaN otherwise */
  cnr: number;
}

export interface Distribution { n: number; mean: number; p10: number; median: number; p90: number; min: number; max: number }

export function distribution(xs: readonly number[]): Distribution {
  const finite = xs.filter(Number.isFinite);
  return {
    n: finite.length, mean: mean(finite), p10: quantile(finite, 0.1), median: quantile(finite, 0.5), p90: quantile(finite, 0.9),
    min: finite.length ? Math.min(...finite) : NaN, max: finite.length ? Math.max(...finite) : NaN,
  };
}

/** How hard a split is, independent of any model (issue 10). */
export interface Difficulty {
  studies: number;
  anomalies: { focal: number; diffuse: number };
  lesionOrganRatio: { focal: Distribution; diffuse: Distribution };
  diameterMm: { focal: Distribution; diffuse: Distribution };
  anomaliesPerReport: Distribution;
  /** among sentences that hold at least one anomaly */
  anomaliesPerSentence: Distribution;
  /** pairs of anomalies of one report in the same organ class, and the reports that have one */
  sameOrganPairs: number;
  reportsWithSameOrganPair: number;
}

/** Where the report's sentences start, as the structurer splits them (abbreviations, decimals and all). */
function sentenceStarts(text: string): number[] {
  return splitSentences(text).map((s) => s.start);
}

function sentenceOf(starts: number[], offset: number): number {
  let s = 0;
  while (s + 1 < starts.length && starts[s + 1]! <= offset) s++;
  return s;
}

export function difficultyOf(results: readonly AnomalyResult[], reports: readonly { text: string; anomalies: { organ: string; spans: { start: number; class: string }[] }[] }[]): Difficulty {
  const focal = results.filter((r) => !r.diffuse), diffuse = results.filter((r) => r.diffuse);
  const perSentence: number[] = [];
  let pairs = 0, withPair = 0;
  for (const rep of reports) {
    const starts = sentenceStarts(rep.text);
    const counts = new Map<number, number>();
    for (const a of rep.anomalies) {
      const anchor = a.spans.find((s) => s.class === 'anomaly') ?? a.spans[0];
      if (!anchor) continue;
      const s = sentenceOf(starts, anchor.start);
      counts.set(s, (counts.get(s) ?? 0) + 1);
    }
    perSentence.push(...counts.values());
    const byOrgan = new Map<string, number>();
    for (const a of rep.anomalies) byOrgan.set(a.organ, (byOrgan.get(a.organ) ?? 0) + 1);
    let p = 0;
    for (const k of byOrgan.values()) p += (k * (k - 1)) / 2;
    pairs += p;
    if (p > 0) withPair++;
  }
  return {
    studies: reports.length,
    anomalies: { focal: focal.length, diffuse: diffuse.length },
    lesionOrganRatio: { focal: distribution(focal.map((r) => r.lesionMm3 / r.organMm3)), diffuse: distribution(diffuse.map((r) => r.lesionMm3 / r.organMm3)) },
    diameterMm: { focal: distribution(focal.map((r) => r.diameterMm)), diffuse: distribution(diffuse.map((r) => r.diameterMm)) },
    anomaliesPerReport: distribution(reports.map((r) => r.anomalies.length)),
    anomaliesPerSentence: distribution(perSentence),
    sameOrganPairs: pairs,
    reportsWithSameOrganPair: withPair,
  };
}

export interface OrganTypeCell { organ: string; type: string; n: number; dice: number; accuracy: number }

export interface EvalResult {
  model: string;
  data: string;
  split: string;
  /** the paper's and ReXGroundingCT's numbers over all scored anomalies (fractions) */
  all: Summary;
  focal: Summary;
  diffuse: Summary;
  /** the paper's Fig. 4: mean Dice per organ × anomaly type */
  organType: OrganTypeCell[];
  difficulty: Difficulty;
  anomalies: AnomalyResult[];
}

function voxelMm3(v: Volume): number {
  return Math.abs(v.spacing[0] * v.spacing[1] * v.spacing[2]);
}

function extentOf(box: { min: readonly number[]; max: readonly number[] } | undefined): number {
  return box ? Math.max(...[0, 1, 2].map((a) => box.max[a]! - box.min[a]!)) : NaN;
}

function count(mask: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i]! > 0) n++;
  return n;
}

/** Mean IoU at each of MIOU_THRESHOLDS over some scored anomalies: where a model's maps are best cut. */
export function meanIouAt(results: readonly { score: AnomalyScore }[]): number[] {
  return MIOU_THRESHOLDS.map((_, k) => mean(results.map((r) => r.score.ious[k]!)));
}

type EvalOptions = {
  read: VolumeReader; organs: OrganLookup; split: string; quiet?: boolean; groundingBox?: GroundingBox;
  /** the organ map the model grounds in, from the CT (estimated anatomy) instead of the study's own labels */
  anatomy?: (ct: Volume) => Promise<Volume>;
};

/**
 * Grounds every study of a split with `model` and scores each anomaly that has a ground-truth mask
 * (absent findings have nothing to find). The model sees the gold structured report from the
 * manifest, so the figures measure grounding, not structuring.
 */
export async function evaluateStudies(model: GroundingModel, dir: string, studies: ManifestStudy[], opts: EvalOptions): Promise<EvalResult> {
  return (await evaluateModels([model], dir, studies, opts))[0]!;
}

/**
 * `evaluateStudies` for several models at once, studies outer: each study is read once and the
 * models ground the same study object (calibrated variants of one network then share its logits).
 */
export async function evaluateModels(models: readonly GroundingModel[], dir: string, studies: ManifestStudy[], opts: EvalOptions): Promise<EvalResult[]> {
  const diffuseType = new Map(loadTaxonomy().anomalyTypes.map((t) => [t.id, t.diffuse]));
  const results: AnomalyResult[][] = models.map(() => []);
  const reports: { text: string; anomalies: { organ: string; spans: { start: number; class: string }[] }[] }[] = [];
  const name = models.length === 1 ? models[0]!.name : `${models.length} models`;
  const progress = opts.quiet ? null : new Progress(`eval ${name}`, studies.length, 'studies');
  for (const study of studies) {
    const ct = await opts.read(join(dir, study.ct));
    const anatomy = opts.anatomy ? await opts.anatomy(ct) : await opts.read(join(dir, study.labels));
    const report = goldReport(dir, study);
    const scored = study.anomalies.filter((a) => a.mask);
    reports.push({ text: report.text, anomalies: scored });
    const v = voxelMm3(ct);
    // what does not depend on the model, once per anomaly
    const truths = [];
    for (const a of scored) {
      const gtPath = join(dir, a.mask!);
      const gt = await opts.read(gtPath);
      if (gt.data.length !== ct.data.length) throw fileError(gtPath, `mask is not on the CT grid of study ${study.id}`);
      const lesion = count(gt.data);
      const organValues = new Set(opts.organs(a.organ).map((o) => o.value));
      let organ = 0;
      for (let i = 0; i < anatomy.data.length; i++) if (organValues.has(anatomy.data[i]!)) organ++;
      truths.push({
        a, gt, gtBox: maskBoundingBox(gt), base: {
          study: study.id, id: a.id, organ: a.organ, type: a.type, diffuse: diffuseType.get(a.type) ?? false,
          lesionMm3: lesion * v, organMm3: organ * v, diameterMm: Math.cbrt((6 * lesion * v) / Math.PI),
          organExtentMm: extentOf(opts.groundingBox?.(anatomy, a)),
          cnr: a.synth ? lesionCnr(ct.data, anatomy.data, gt.data, ct.size, ct.spacing, loadOrganScheme().byName.get(a.synth.target)?.value ?? -1) : NaN,
        },
      });
    }
    const input = { ct, anatomy, report };
    for (const [m, model] of models.entries()) {
      const maps = await model.ground(input);
      for (const { a, gt, gtBox, base } of truths) {
        const boxed = maps.get(a.id);
        if (!boxed) throw new Error(`${model.name} returned no map for anomaly ${a.id} of study ${study.id}`);
        results[m]!.push({ ...base, ...scoreMap(boxed, gt, gtBox) });
      }
    }
    progress?.tick(1, models.length === 1 ? `acc ${(100 * mean(results[0]!.map((r) => (r.score.hit ? 1 : 0)))).toFixed(1)}%` : '');
  }
  progress?.finish();
  return models.map((model, m) => summarizeResults(model.name, dir, opts.split, results[m]!, reports));
}

/**
 * One map's scores against its lesion mask (on the same grid; `gtBox` = the mask's voxel box).
 * Every metric looks only where the map or the mask is nonzero (its thresholds are above 0), so
 * scoring over the hull of the two boxes equals scoring the whole grid, at the boxes' cost.
 */
export function scoreMap(map: GroundingMap, gt: Volume, gtBox: VoxelBox | null): Pick<AnomalyResult, 'score' | 'instances' | 'peakDistanceMm'> {
  const hull: VoxelBox = hullBox(map.box, gtBox) ?? { min: [0, 0, 0], max: [0, 0, 0] };
  const size = voxelBoxSize(hull);
  const values = boxedOver(map, hull), truth = extractRegion(gt, hull.min, size).data;
  return { score: scoreAnomaly(values, truth), instances: instanceCounts(values, truth, size), peakDistanceMm: peakDistanceMm(values, truth, size, gt.spacing) };
}

function summarizeResults(model: string, dir: string, split: string, results: AnomalyResult[], reports: Parameters<typeof difficultyOf>[1]): EvalResult {
  const cells = new Map<string, AnomalyResult[]>();
  for (const r of results) {
    const k = `${r.organ}\u0000${r.type}`;
    cells.set(k, [...(cells.get(k) ?? []), r]);
  }
  const organType = [...cells.entries()].map(([k, rs]) => {
    const [organ, type] = k.split('\u0000') as [string, string];
    return { organ, type, n: rs.length, dice: mean(rs.map((r) => r.score.dice)), accuracy: mean(rs.map((r) => (r.score.hit ? 1 : 0))) };
  }).sort((a, b) => a.organ.localeCompare(b.organ) || a.type.localeCompare(b.type));
  const sum = (rs: AnomalyResult[]) => summarize(rs.map((r) => ({ score: r.score, instances: r.instances })));
  return {
    model, data: dir, split,
    all: sum(results), focal: sum(results.filter((r) => !r.diffuse)), diffuse: sum(results.filter((r) => r.diffuse)),
    organType, difficulty: difficultyOf(results, reports), anomalies: results,
  };
}

/** Each finding with a mask among `studies` and its gold volume, mm³ (the mask read from disk). */
async function* maskVolumesMm3(dir: string, studies: readonly ManifestStudy[], read: VolumeReader): AsyncGenerator<{ a: ManifestStudy['anomalies'][number]; mm3: number }> {
  for (const s of studies) for (const a of s.anomalies) {
    if (!a.mask) continue;
    const m = await read(join(dir, a.mask));
    yield { a, mm3: count(m.data) * voxelMm3(m) };
  }
}

/** Median lesion volume (mm³) over a split's masks: the `prior` oracle's blob size. */
export async function medianLesionMm3(dir: string, studies: ManifestStudy[], read: VolumeReader, limit = 200): Promise<number> {
  const vols: number[] = [];
  for await (const { mm3 } of maskVolumesMm3(dir, studies, read)) {
    vols.push(mm3);
    if (vols.length >= limit) break;
  }
  return quantile(vols, 0.5);
}

/**
 * Median gold volume (mm³) of the findings of several datasets' studies with a mask, per
 * "organ:type" (`typicalKey`) with at least `minCount` findings, and per type: what a map may
 * cover when the report states no size (`model.typicalMm3`).
 */
export async function typicalLesionVolumes(sets: readonly { dir: string; studies: readonly ManifestStudy[] }[], read: VolumeReader, minCount = 5): Promise<Record<string, number>> {
  const byKey = new Map<string, number[]>();
  const add = (k: string, v: number) => { const l = byKey.get(k); if (l) l.push(v); else byKey.set(k, [v]); };
  for (const { dir, studies } of sets) {
    for await (const { a, mm3 } of maskVolumesMm3(dir, studies, read)) {
      if (mm3 <= 0) continue;
      add(typicalKey(a.organ, a.type), mm3);
      add(a.type, mm3);
    }
  }
  const out: Record<string, number> = {};
  for (const [k, vols] of [...byKey].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) if (vols.length >= minCount || !k.includes(':')) out[k] = quantile(vols, 0.5);
  return out;
}

/** A fraction as a percentage with one decimal, '–' when there is none (the eval tables' cells). */
export const pct = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(1) : '–');
export const num = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');

/** Diameter bins (mm) of the per-size accuracy line, and what counts as a peak far from / near the lesion. */
const DIAMETER_BINS: [number, number][] = [[0, 8], [8, 12], [12, 16], [16, 24], [24, Infinity]];
/** Bins (mm) of the largest side of the grounding box: with the default crop, one 32³ cube of a box over 140 mm is coarser than 5 mm. */
const EXTENT_BINS: [number, number][] = [[0, 100], [100, 140], [140, 180], [180, 220], [220, Infinity]];
const FAR_MM = 24, NEAR_MM = 4;
/** Contrast-to-noise bins of generated lesions: under 1 a lesion is about as bright as its organ's texture. */
const CNR_BINS: [number, number][] = [[0, 1], [1, 2], [2, 5], [5, Infinity]];

/**
 * Focal anomalies split by whether another finding of the same report lies in the same organ (the
 * report's words must then tell them apart), with how many of each were grounded.
 */
export function sameOrganSplit(anomalies: readonly Pick<AnomalyResult, 'study' | 'organ' | 'diffuse' | 'score'>[]): { shared: { hit: number; n: number }; alone: { hit: number; n: number } } {
  const perOrgan = new Map<string, number>();
  for (const a of anomalies) perOrgan.set(`${a.study}\u0000${a.organ}`, (perOrgan.get(`${a.study}\u0000${a.organ}`) ?? 0) + 1);
  const shared = { hit: 0, n: 0 }, alone = { hit: 0, n: 0 };
  for (const a of anomalies) {
    if (a.diffuse) continue;
    const bin = perOrgan.get(`${a.study}\u0000${a.organ}`)! > 1 ? shared : alone;
    bin.n++;
    if (a.score.hit) bin.hit++;
  }
  return { shared, alone };
}

/** Quartiles (p25, median, p75) of each anomaly's IoU at the lowest map threshold, the one the accuracy criterion reads. */
export function iouQuartiles(results: readonly { score: AnomalyScore }[]): [number, number, number] {
  const x = results.map((r) => r.score.ious[0]!);
  return [quantile(x, 0.25), quantile(x, 0.5), quantile(x, 0.75)];
}

/** The human-readable report of one evaluation: headline rows, difficulty, Fig. 4 table. */
export function formatEval(r: EvalResult): string {
  const row = (label: string, s: Summary) => `| ${label} | ${s.n} | ${pct(s.accuracy)} | ${pct(s.dice)} | ${pct(s.miou)} | ${pct(s.globalDice)} | ${pct(s.hitRate)} | ${pct(s.instancePrecision)} | ${pct(s.instanceRecall)} | ${pct(s.instanceF1)} |`;
  const d = r.difficulty;
  const dist = (x: Distribution, f = (v: number) => num(v)) => `${f(x.median)} (p10 ${f(x.p10)}, p90 ${f(x.p90)}, n ${x.n})`;
  const ratio = (v: number) => (Number.isFinite(v) ? v.toFixed(4) : '–');
  const misses = r.anomalies.filter((a) => !a.score.hit);
  const focal = r.anomalies.filter((a) => !a.diffuse);
  const same = sameOrganSplit(r.anomalies);
  const binned = (bins: [number, number][], of: (a: AnomalyResult) => number, among: AnomalyResult[], unit: string) => bins.map(([lo, hi]) => {
    const s = among.filter((a) => of(a) >= lo && of(a) < hi);
    return `${hi === Infinity ? `≥ ${lo}` : `${lo}–${hi}`}${unit} ${s.filter((a) => a.score.hit).length}/${s.length}`;
  });
  // the extent and contrast lines only where the evaluation has those figures
  const has = (of: (a: AnomalyResult) => number) => r.anomalies.some((a) => Number.isFinite(of(a)));
  const bySize = binned(DIAMETER_BINS, (a) => a.diameterMm, focal, ' mm');
  const byExtent = has((a) => a.organExtentMm) ? binned(EXTENT_BINS, (a) => a.organExtentMm, r.anomalies, ' mm') : null;
  const byCnr = has((a) => a.cnr) ? binned(CNR_BINS, (a) => a.cnr, r.anomalies, '') : null;
  return [
    `${r.model} on ${r.data} [split ${r.split}]`,
    '',
    '| anomalies | n | accuracy % | Dice % | mIoU % | global Dice % | hit rate % | inst. P % | inst. R % | inst. F1 % |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    row('all', r.all), row('focal', r.focal), row('diffuse', r.diffuse),
    '',
    `difficulty (split ${r.split}): ${d.studies} studies, ${d.anomalies.focal} focal + ${d.anomalies.diffuse} diffuse anomalies`,
    `  lesion/organ volume, focal: ${dist(d.lesionOrganRatio.focal, ratio)}; diffuse: ${dist(d.lesionOrganRatio.diffuse, ratio)}`,
    `  lesion diameter mm, focal: ${dist(d.diameterMm.focal)}; diffuse: ${dist(d.diameterMm.diffuse)}`,
    `  anomalies per report: ${dist(d.anomaliesPerReport)}; per sentence: ${dist(d.anomaliesPerSentence, (v) => num(v, 2))}`,
    `  same-organ pairs: ${d.sameOrganPairs} in ${d.reportsWithSameOrganPair} reports`,
    '',
    `grounded focal anomalies by lesion diameter: ${bySize.join(', ')}`,
    ...(byExtent ? [`grounded anomalies by the largest side of their organ's box: ${byExtent.join(', ')}`] : []),
    ...(byCnr ? [`grounded generated lesions by contrast-to-noise against their organ: ${byCnr.join(', ')}`] : []),
    `misses: ${misses.length}; the map's peak > ${FAR_MM} mm from the lesion in ${misses.filter((a) => a.peakDistanceMm > FAR_MM).length}, within ${NEAR_MM} mm in ${misses.filter((a) => a.peakDistanceMm <= NEAR_MM).length}`,
    `grounded focal anomalies sharing their organ with another finding of the report: ${same.shared.hit}/${same.shared.n}; the others: ${same.alone.hit}/${same.alone.n}`,
    `mean IoU at thresholds ${MIOU_THRESHOLDS.join(' / ')}: ${meanIouAt(r.anomalies).map((v) => num(v, 3)).join(' / ')} (where a model's maps are best cut)`,
    `IoU at map threshold ${MIOU_THRESHOLDS[0]} (the accuracy criterion: > 0.1), quartiles over ${r.anomalies.length} anomalies: ${iouQuartiles(r.anomalies).map((v) => num(v, 3)).join(' / ')} (p25 / median / p75)`,
    '',
    '| organ | anomaly type | n | Dice % | accuracy % |',
    '| --- | --- | --- | --- | --- |',
    ...r.organType.map((c) => `| ${c.organ} | ${c.type} | ${c.n} | ${pct(c.dice)} | ${pct(c.accuracy)} |`),
  ].join('\n');
}

/** `--json`: one object, fractions, the tables, no per-voxel data. */
export function evalJson(r: EvalResult): Record<string, unknown> {
  return {
    model: r.model, data: r.data, split: r.split,
    accuracy: r.all.accuracy, dice: r.all.dice, miou: r.all.miou, n: r.all.n,
    all: r.all, focal: r.focal, diffuse: r.diffuse, organType: r.organType, difficulty: r.difficulty,
    anomalies: r.anomalies.map((a) => ({ study: a.study, id: a.id, organ: a.organ, type: a.type, diffuse: a.diffuse, dice: a.score.dice, ious: a.score.ious, hit: a.score.hit, lesionMm3: a.lesionMm3, organMm3: a.organMm3, diameterMm: a.diameterMm, peakDistanceMm: a.peakDistanceMm, organExtentMm: Number.isFinite(a.organExtentMm) ? a.organExtentMm : null, cnr: Number.isFinite(a.cnr) ? a.cnr : null })),
  };
}
