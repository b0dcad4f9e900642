import { loadTaxonomy } from '../common/index.ts';
import { voxelBoxToWorld, type Geometry, type Vec3, type Volume } from '../volume/index.ts';
import { loadOrganScheme, organsForReportClass, placeRegion, type PlaceRegion } from '../anatomy/index.ts';
import { usesStructure, type GroundingConfig } from './config.ts';
import { cropTiles, isTiled, labelsWorldBox, organCrop, tileNear, type Box, type CropGeometry, type CropRegion } from './crop.ts';
import { isBoxModel } from './graphs.ts';
import type { GroundingAnomaly } from './types.ts';

/** A token of the report with its character offsets (the text encoder's tokens fit this). */
export interface TokenSpan { start: number; end: number }

/**
 * The phrase class of each token for one anomaly (the paper's m_t of Eq. 2, lifted from characters
 * to tokens): 1 + index in taxonomy.phraseClasses where the token overlaps a span related to the
 * anomaly, else 0.
 */
export function tokenClasses(anomaly: GroundingAnomaly, tokens: readonly TokenSpan[]): Int8Array {
  const classes = loadTaxonomy().phraseClasses;
  const out = new Int8Array(tokens.length);
  for (const s of anomaly.spans) {
    const c = classes.indexOf(s.class) + 1;
    if (c <= 0) continue;
    tokens.forEach((t, k) => { if (out[k] === 0 && t.start < s.end && t.end > s.start) out[k] = c; });
  }
  return out;
}

/** One entry of the aggregator's input sequence. */
export type SeqItem = { token: number } | { classEmb: number } | { organEmb: number };

/**
 * The aggregator's input sequence for one anomaly. With structuring (Eq. 5):
 * [v_organ; p_1; e_1; …; p_C; e_C] where e_k are the tokens of class k in text order. Without
 * (the baseline): only the tokens of the anomaly phrase itself. Capped at cfg.maxAggregate, taking
 * tokens from each class in turn so a long location phrase cannot crowd out the anomaly word.
 */
export function aggregateSequence(cfg: GroundingConfig, anomaly: GroundingAnomaly, cls: Int8Array): SeqItem[] {
  const C = loadTaxonomy().phraseClasses.length;
  const byClass: number[][] = Array.from({ length: C + 1 }, () => []);
  cls.forEach((c, k) => { if (c > 0) byClass[c]!.push(k); });
  if (!usesStructure(cfg.variant)) {
    const anomalyClass = loadTaxonomy().phraseClasses.indexOf('anomaly') + 1;
    return byClass[anomalyClass]!.slice(0, cfg.maxAggregate).map((token) => ({ token }));
  }
  const organ = Math.max(0, loadTaxonomy().reportOrgans.indexOf(anomaly.organ));
  let budget = cfg.maxAggregate - 1 - C;
  const take = byClass.map(() => 0);
  // round-robin over classes until the budget or the tokens run out
  for (let progressed = true; budget > 0 && progressed;) {
    progressed = false;
    for (let c = 1; c <= C && budget > 0; c++) if (take[c]! < byClass[c]!.length) { take[c]!++; budget--; progressed = true; }
  }
  const seq: SeqItem[] = [{ organEmb: organ }];
  for (let c = 1; c <= C; c++) {
    seq.push({ classEmb: c - 1 });
    for (const token of byClass[c]!.slice(0, take[c])) seq.push({ token });
  }
  return seq;
}

/** Report organ class → label values of the scheme (the class's own organs, else all that may hold it). */
export function organLabels(cls: string): { value: number; side?: string; lobe?: string }[] {
  const scheme = loadOrganScheme();
  let values = organsForReportClass(cls, { primary: true });
  if (values.length === 0) values = organsForReportClass(cls);
  return values.map((v) => ({ value: v, side: scheme.byValue.get(v)!.side, lobe: scheme.byValue.get(v)!.lobe }));
}

/** The anomaly's anatomy and location phrases, lower case, in one string: where its place words are. */
function placeWords(anomaly: GroundingAnomaly): string {
  return anomaly.spans.filter((s) => s.class === 'anatomy' || s.class === 'location').map((s) => s.text.toLowerCase()).join(' ');
}

/** Side and lobe named by the anomaly's anatomy/location phrases. */
export function namedSideLobe(anomaly: GroundingAnomaly): { side?: string; lobe?: string } {
  const text = placeWords(anomaly);
  const right = /\bright\b/.test(text), left = /\bleft\b/.test(text);
  const side = right && !left ? 'right' : left && !right ? 'left' : undefined;
  // "the superior segment of the right lower lobe" names the lower lobe: an explicit "<x> lobe" first
  const lobeWord = /\b(upper|middle|lower)\s+lobe\b/.exec(text)?.[1];
  const lobe = lobeWord ? lobeWord : /\b(upper|superior)\b/.test(text) ? 'upper' : /\b(middle|lingula)/.test(text) ? 'middle' : /\b(lower|inferior)\b/.test(text) ? 'lower' : undefined;
  return { side, lobe };
}

/**
 * The organs of the anomaly's report class (primary or not) that one of its anatomy phrases names
 * by the scheme's `terms` ("vertebral body" → spine for a chest or abdomen finding).
 */
export function namedStructures(anomaly: GroundingAnomaly): { value: number; side?: string; lobe?: string }[] {
  // whole words only: each phrase padded with spaces, punctuation and hyphens as spaces
  const words = anomaly.spans.filter((s) => s.class === 'anatomy').map((s) => ` ${s.text.toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim()} `);
  if (words.length === 0) return [];
  const scheme = loadOrganScheme();
  const names = (t: string) => words.some((w) => w.includes(` ${t} `));
  return organsForReportClass(anomaly.organ).map((v) => scheme.byValue.get(v)!).filter((o) => o.terms?.some(names)).map((o) => ({ value: o.value, side: o.side, lobe: o.lobe }));
}

/**
 * The labels that define an anomaly's crop: its organ's labels — or the one structure an anatomy
 * phrase names (`namedStructures`: the spine of "the T8 vertebral body") — narrowed to the named
 * side/lobe when the scheme has labels for them (left kidney, right upper lobe). A narrowing that
 * would leave nothing is ignored.
 */
export function cropLabels(anomaly: GroundingAnomaly): number[] {
  const named = namedStructures(anomaly);
  let labels = named.length ? named : organLabels(anomaly.organ);
  const place = namedSideLobe(anomaly);
  if (place.side) { const n = labels.filter((l) => l.side === place.side); if (n.length) labels = n; }
  if (place.lobe) { const n = labels.filter((l) => l.lobe === place.lobe); if (n.length) labels = n; }
  return labels.map((l) => l.value);
}

/** A key that is equal for anomalies that share a crop (so V is computed once for them). */
export function cropKey(anomaly: GroundingAnomaly, region: CropRegion = 'organ'): string {
  return region === 'body' ? 'body' : cropLabels(anomaly).join(',');
}

/**
 * The world box an anomaly's crop is cut around: its organ (side/lobe) on the label map; when the
 * label map does not hold that organ, everything labelled (the body, `organFound` false), else the
 * whole grid. With region 'body', the body whatever the anomaly.
 */
export function anomalyBox(anatomy: Volume, anomaly: GroundingAnomaly, region: CropRegion = 'organ'): Box & { organFound: boolean } {
  const organ = region === 'body' ? null : labelsWorldBox(anatomy, cropLabels(anomaly));
  return { ...(organ ?? labelsWorldBox(anatomy, 'any') ?? boxOfGrid(anatomy)), organFound: organ !== null };
}

/** The one cube around an anomaly's organ box (the crop of untiled models and of box models). */
export function anomalyCrop(anatomy: Volume, anomaly: GroundingAnomaly, cfg: GroundingConfig, pad = 0): CropGeometry {
  return organCrop(anomalyBox(anatomy, anomaly, cfg.crop.region), cfg.crop, pad);
}

/**
 * Whether an anomaly with this box is grounded (and learned) through tiles: mask models only, a box
 * coarser than maxSpacingMm, and an organ the label map has — a body-wide stand-in for a missing
 * organ would tile into dozens of grids that do not know where the organ is either (the
 * HU-fallback anatomy has no liver or colon), so it keeps one cube, as before tiling.
 */
export function groundsThroughTiles(box: ReturnType<typeof anomalyBox>, cfg: GroundingConfig): boolean {
  return !isBoxModel(cfg) && (box.organFound || cfg.crop.region === 'body') && isTiled(box, cfg.crop);
}

/** The grids an anomaly is grounded on: its organ's cube, or that organ's tiles (`groundsThroughTiles`). */
export function anomalyTiles(anatomy: Volume, anomaly: GroundingAnomaly, cfg: GroundingConfig, pad = 0): CropGeometry[] {
  const box = anomalyBox(anatomy, anomaly, cfg.crop.region);
  return groundsThroughTiles(box, cfg) ? cropTiles(box, cfg.crop, pad) : [organCrop(box, cfg.crop, pad)];
}

/**
 * The zoom stage's grid for an anomaly (config of the zoom network): the tile of its organ at that
 * network's spacing centred at `point` (the first look's peak, world mm), kept where training tiles
 * may sit; an organ small enough for one cube at that spacing gets its cube, as in training.
 */
export function zoomTile(anatomy: Volume, anomaly: GroundingAnomaly, cfg: GroundingConfig, point: Vec3): CropGeometry {
  const box = anomalyBox(anatomy, anomaly, cfg.crop.region);
  return groundsThroughTiles(box, cfg) ? tileNear(box, cfg.crop, point, [0, 0, 0]) : organCrop(box, cfg.crop);
}

function boxOfGrid(v: Geometry): Box {
  const [min, max] = voxelBoxToWorld(v);
  return { min, max };
}

/**
 * The part of its crop's organ box an anomaly's place words name (`placeRegion` of the one label
 * the crop was cut around), or null: no such words, a crop around several labels or the body, or
 * an organ the label map lacks (then the box is not the organ's and its fractions mean nothing).
 */
export function anomalyPlace(anatomy: Volume, anomaly: GroundingAnomaly, cfg: GroundingConfig): PlaceRegion | null {
  if (cfg.crop.region === 'body') return null;
  const labels = cropLabels(anomaly);
  if (labels.length !== 1 || !labelsWorldBox(anatomy, labels)) return null;
  return placeRegion(loadOrganScheme().byValue.get(labels[0]!)!.name, placeWords(anomaly));
}
