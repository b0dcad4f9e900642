import { Graph, ops, type Tensor } from '../engine/index.ts';
import { selectKth } from '../common/index.ts';
import { inputChannels, type GroundingConfig } from './config.ts';
import { POSITION_FEATURES } from './crop.ts';
import { aggregator, aggregatorVocab, attentionKeys, attentionLogits, boxLoss, imageEncoder, transvgBox, type Weights } from './network.ts';

/**
 * The graphs of one grounding model. Training runs everything on a batch; inference splits it so
 * the expensive parts run once: the image encoder once per crop, the text encoder once per report
 * (outside, frozen), and only the small head once per anomaly.
 *
 * Inputs (B = batch, A = cfg.maxAggregate, d = text hidden size, G = crop grid):
 *   image (B, C, G, G, G); rows (B, A, d) token states in aggregator order;
 *   ids (B, A) int64 into [rows of all samples; p_k; v_organ]; lengths (B) int64;
 *   target (B, 1, G, G, G) soft mask; box (B, 6) centre+size in crop units; rowMask (B, A) (transvg3d).
 */
export interface TrainGraph { graph: Graph; loss: Tensor; prob: Tensor | null; logits: Tensor | null; box: Tensor | null }

export function isBoxModel(cfg: GroundingConfig): boolean {
  return cfg.variant === 'transvg3d';
}

/** Row index of class embedding c / organ embedding o in the aggregator table of a batch. */
export function tableIndex(cfg: GroundingConfig, batch: number, item: { classEmb: number } | { organEmb: number }): number {
  const base = batch * cfg.maxAggregate;
  return 'classEmb' in item ? base + item.classEmb : base + aggregatorVocab().classes + item.organEmb;
}

export function buildTrainGraph(cfg: GroundingConfig, batch: number, textDim: number, seed: number, weights?: Weights): TrainGraph {
  const g = new Graph({ seed });
  const G = cfg.crop.grid, A = cfg.maxAggregate;
  const image = g.input('image', [batch, inputChannels(cfg), G, G, G]);
  const rows = g.input('rows', [batch, A, textDim]);
  const stages = imageEncoder(g, cfg, image, weights);
  if (isBoxModel(cfg)) {
    const rowMask = g.input('rowMask', [batch, A]);
    const target = g.input('box', [batch, 6]);
    const box = transvgBox(g, cfg, stages[3]!, rows, rowMask, weights);
    return { graph: g, loss: boxLoss(box, target), prob: null, logits: null, box };
  }
  const ids = g.input('ids', [batch, A], 'int64');
  const lengths = g.input('lengths', [batch], 'int64');
  const target = g.input('target', [batch, 1, G, G, G]);
  const keys = attentionKeys(g, cfg, stages, weights, positionInput(g, cfg, batch));
  const L = aggregator(g, cfg, ops.reshape(rows, [batch * A, textDim]), ids, lengths, weights);
  const logits = attentionLogits(g, cfg, L, keys, weights);
  const prob = ops.sigmoid(logits);
  let loss = ops.diceLoss(prob, target, cfg.diceSmooth);
  if (cfg.bceWeight > 0) loss = ops.add(loss, ops.mul(ops.bceWithLogits(logits, target), cfg.bceWeight));
  if (cfg.locWeight > 0) loss = ops.add(loss, ops.mul(localizationLoss(logits, target), cfg.locWeight));
  return { graph: g, loss, prob, logits, box: null };
}

/** −Σ t̂·log softmax(z) over each sample's voxels, t̂ = t / Σt: where the target's mass is, whatever its size. */
export function localizationLoss(logits: Tensor, target: Tensor): Tensor {
  const B = logits.shape[0]!, n = logits.shape.slice(1).reduce((a, b) => a * b, 1);
  const logp = ops.logSoftmax(ops.reshape(logits, [B, n]), -1);
  const t = ops.reshape(target, [B, n]);
  const tn = ops.div(t, ops.add(ops.sum(t, [1], true), 1e-6));
  return ops.neg(ops.mean(ops.sum(ops.mul(tn, logp), [1])));
}

/** The organ-relative position features (B, POSITION_FEATURES, G, G, G) of a positional model (`positionChannels`). */
function positionInput(g: Graph, cfg: GroundingConfig, batch: number): Tensor | undefined {
  if (!cfg.positional) return undefined;
  const G = cfg.crop.grid;
  return g.input('position', [batch, POSITION_FEATURES, G, G, G]);
}

/** Image side for inference: (1, C, G³) → the attention keys (mask models) or visual tokens (transvg3d). */
export function buildImageGraph(cfg: GroundingConfig, weights: Weights): { graph: Graph; outputs: Record<string, Tensor> } {
  const g = new Graph({ seed: 0 });
  const G = cfg.crop.grid;
  const image = g.input('image', [1, inputChannels(cfg), G, G, G]);
  const stages = imageEncoder(g, cfg, image, weights);
  if (isBoxModel(cfg)) return { graph: g, outputs: { visual: stages[3]! } };
  const keys = attentionKeys(g, cfg, stages, weights, positionInput(g, cfg, 1));
  return { graph: g, outputs: keys.fine ? { keys: keys.coarse, keysFine: keys.fine } : { keys: keys.coarse } };
}

/** Per-anomaly head for inference: token rows + the crop's keys → map logits (or box); `sizeCappedCalibration` + `applyCalibration` make the map. */
export function buildHeadGraph(cfg: GroundingConfig, textDim: number, weights: Weights, imageShapes: Record<string, readonly number[]>, batch = 1): { graph: Graph; output: Tensor } {
  const g = new Graph({ seed: 0 });
  const A = cfg.maxAggregate, B = batch;
  const rows = g.input('rows', [B, A, textDim]);
  if (isBoxModel(cfg)) {
    const rowMask = g.input('rowMask', [B, A]);
    const visual = g.input('visual', imageShapes.visual!);
    // one crop's visual tokens serve every anomaly of the batch
    const vis = B === 1 ? visual : ops.expand(visual, [B, ...imageShapes.visual!.slice(1)]);
    return { graph: g, output: transvgBox(g, cfg, vis, rows, rowMask, weights) };
  }
  const ids = g.input('ids', [B, A], 'int64');
  const lengths = g.input('lengths', [B], 'int64');
  // the keys have batch 1 (one crop) and broadcast against the B queries
  const keys = { coarse: g.input('keys', imageShapes.keys!), fine: imageShapes.keysFine ? g.input('keysFine', imageShapes.keysFine) : null };
  const L = aggregator(g, cfg, ops.reshape(rows, [B * A, textDim]), ids, lengths, weights, true);
  return { graph: g, output: attentionLogits(g, cfg, L, keys, weights, true) };
}

/**
 * The image encoder and the logits half in one graph: one grid's image (and position) and L_t
 * (B, lstmHidden) → map logits (B, 1, G, G, G) and each map's highest logit `peak` (B). Grounding runs this per grid so the keys (the
 * encoder's largest output) never leave the runtime; `buildImageGraph` + `buildLogitsGraph` compute
 * the same in two runs.
 */
export function buildImageLogitsGraph(cfg: GroundingConfig, weights: Weights, batch = 1): { graph: Graph; output: Tensor; peak: Tensor } {
  const g = new Graph({ seed: 0 });
  const G = cfg.crop.grid;
  const image = g.input('image', [1, inputChannels(cfg), G, G, G]);
  const keys = attentionKeys(g, cfg, imageEncoder(g, cfg, image, weights), weights, positionInput(g, cfg, 1));
  const L = g.input('L', [batch, cfg.lstmHidden]);
  const logits = attentionLogits(g, cfg, L, keys, weights, true);
  return { graph: g, output: logits, peak: ops.max(logits, [1, 2, 3, 4]) };
}

/**
 * The text half of a mask model's head: token rows → L_t (B, lstmHidden). It does not depend on the
 * image, so grounding runs it once per anomaly however many grids (tiles) its organ has.
 */
export function buildQueryGraph(cfg: GroundingConfig, textDim: number, weights: Weights, batch = 1): { graph: Graph; output: Tensor } {
  const g = new Graph({ seed: 0 });
  const A = cfg.maxAggregate, B = batch;
  const rows = g.input('rows', [B, A, textDim]);
  const ids = g.input('ids', [B, A], 'int64');
  const lengths = g.input('lengths', [B], 'int64');
  return { graph: g, output: aggregator(g, cfg, ops.reshape(rows, [B * A, textDim]), ids, lengths, weights, true) };
}

/**
 * The image half: L_t (B, lstmHidden) and one grid's keys → map logits; `buildHeadGraph` = this after
 * `buildQueryGraph`. Grounding runs `buildImageLogitsGraph` instead; this two-run form, with the
 * plain 3-D Resize, is the reference that graph is tested against (test/model-load).
 */
export function buildLogitsGraph(cfg: GroundingConfig, weights: Weights, imageShapes: Record<string, readonly number[]>, batch = 1): { graph: Graph; output: Tensor } {
  const g = new Graph({ seed: 0 });
  const L = g.input('L', [batch, cfg.lstmHidden]);
  const keys = { coarse: g.input('keys', imageShapes.keys!), fine: imageShapes.keysFine ? g.input('keysFine', imageShapes.keysFine) : null };
  return { graph: g, output: attentionLogits(g, cfg, L, keys, weights) };
}

const logit = (p: number): number => Math.log(p / (1 - p));

/**
 * How a map's logits become probabilities: p = sigmoid(z · scale + shift), scale = 1 / temperature, where the shift
 * (minPeak rule) lifts a map whose peak is under cfg.minPeak until it reaches it (shape kept), and
 * `below`, the raw logit under which p < floor (those come out as 0). `peak` is the map's highest raw logit.
 */
export function mapCalibration(cfg: GroundingConfig, peak: number, floor = 0): MapCalibration {
  const t = cfg.temperature ?? 1;
  const shift = cfg.minPeak > 0 ? Math.max(0, logit(cfg.minPeak) - peak / t) : 0;
  return withFloor({ scale: 1 / t, shift }, floor);
}

/** p = sigmoid(z · scale + shift); logits under `below` give p < the floor they were computed for. */
export interface MapCalibration { scale: number; shift: number; below: number }

function withFloor(c: { scale: number; shift: number }, floor: number): MapCalibration {
  return { ...c, below: floor > 0 ? (logit(floor) - c.shift) / c.scale : -Infinity };
}

/**
 * The probability whose region the size cap bounds: the lowest level maps are read at (the paper's
 * accuracy threshold and the first of the mIoU thresholds), i.e. the map's support.
 */
export const SUPPORT_LEVEL = 0.1;

/**
 * The size cap: the report states how large the finding is (or, without a stated size, its kind
 * has a typical size: `mapCapMm3`), so a map whose support (p ≥ SUPPORT_LEVEL) holds more than
 * `capMm3` is sharpened about its peak until its support holds that volume, the peak's probability
 * kept. Without a cap, or with a support already that small: `mapCalibration`. `tiles` are the
 * map's logits on each grid of one organ (they share a spacing: `voxelMm3`, so the cap is a voxel
 * count); `peak` their highest logit.
 */
export function sizeCappedCalibration(cfg: GroundingConfig, tiles: readonly Float32Array[], voxelMm3: number, peak: number, capMm3: number | undefined, floor = 0): MapCalibration {
  const base = mapCalibration(cfg, peak, floor);
  if (capMm3 === undefined) return base;
  const z0 = (logit(SUPPORT_LEVEL) - base.shift) / base.scale;
  let n = 0;
  for (const t of tiles) for (let i = 0; i < t.length; i++) if (t[i]! >= z0) n++;
  const keep = Math.max(1, Math.floor(capMm3 / voxelMm3));
  if (n <= keep) return base;
  const support = new Float32Array(n);
  n = 0;
  for (const t of tiles) for (let i = 0; i < t.length; i++) if (t[i]! >= z0) support[n++] = t[i]!;
  // the keep-th largest support logit
  const zCut = selectKth(support, n - keep);
  if (!(peak > zCut)) return base;
  const top = peak * base.scale + base.shift;
  const scale = (top - logit(SUPPORT_LEVEL)) / (peak - zCut);
  return withFloor({ scale, shift: top - scale * peak }, floor);
}

// The sigmoid on [−SIG_RANGE, SIG_RANGE] tabulated every 1/SIG_STEPS, read with linear
// interpolation: error ≤ h²/8 · max|σ''| < 5e-8, under float32's resolution of a map value, at a
// fraction of Math.exp's cost (a diffuse map sends every voxel of four tiles through it).
const SIG_RANGE = 16, SIG_STEPS = 512;
const SIG_TABLE = Float64Array.from({ length: 2 * SIG_RANGE * SIG_STEPS + 2 }, (_, i) => 1 / (1 + Math.exp(-(i / SIG_STEPS - SIG_RANGE))));

/**
 * p = sigmoid(z · scale + shift) per logit, 0 under the calibration's `below` (not computed for those).
 * With `at`, only those indices are written (a map's few voxels that can reach the floor; the
 * caller's `out` holds the rest).
 */
export function applyCalibration<T extends Float32Array>(logits: Float32Array, c: MapCalibration, out?: T, at?: Int32Array): T {
  const o = (out ?? new Float32Array(logits.length)) as T;
  const a = c.scale * SIG_STEPS, b = (c.shift + SIG_RANGE) * SIG_STEPS, top = 2 * SIG_RANGE * SIG_STEPS;
  const n = at ? at.length : logits.length;
  for (let q = 0; q < n; q++) {
    const i = at ? at[q]! : q, z = logits[i]!;
    if (z < c.below) { o[i] = 0; continue; }
    const u = z * a + b;
    if (u >= 0 && u < top) {
      const k = Math.floor(u), f = u - k, p0 = SIG_TABLE[k]!;
      o[i] = p0 + (SIG_TABLE[k + 1]! - p0) * f;
    } else o[i] = 1 / (1 + Math.exp(-(z * c.scale + c.shift)));
  }
  return o;
}

/**
 * Logits → probability map (`mapCalibration`: temperature and the minPeak rule: a described anomaly
 * is there, so a map whose peak is under cfg.minPeak is lifted until it reaches it). Probabilities
 * under `floor` come out as 0 (no exp for them: most of a crop is far from any lesion).
 * `peak` is the highest logit of the whole map when these logits are one tile of it (default: theirs).
 */
export function mapFromLogits<T extends Float32Array>(cfg: GroundingConfig, logits: Float32Array, out?: T, floor = 0, peak?: number): T {
  let zmax = peak ?? -Infinity;
  if (peak === undefined) for (let i = 0; i < logits.length; i++) if (logits[i]! > zmax) zmax = logits[i]!;
  return applyCalibration(logits, mapCalibration(cfg, zmax, floor), out);
}
