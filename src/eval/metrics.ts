/**
 * Grounding metrics of Ichinose et al. (Sec. 5.1) and of ReXGroundingCT, on voxel maps that share
 * one grid. A prediction is a probability map in [0, 1]; the ground truth any array where > 0 means
 * "lesion".
 */
export type MaskLike = ArrayLike<number>;

/** The paper's threshold ladder for mIoU. */
export const MIOU_THRESHOLDS = [0.1, 0.2, 0.3, 0.4, 0.5] as const;
/** Grounding accuracy: IoU > ACCURACY_IOU with the map thresholded at ACCURACY_THRESHOLD. */
export const ACCURACY_THRESHOLD = 0.1;
export const ACCURACY_IOU = 0.1;
/** The probability at which a map becomes a mask for Dice (and for instance matching). */
export const DICE_THRESHOLD = 0.5;

export interface Overlap { inter: number; pred: number; gt: number }

/** Voxel counts |P ∩ G|, |P|, |G| with P = {prob ≥ threshold}. */
export function overlap(prob: MaskLike, gt: MaskLike, threshold: number): Overlap {
  if (prob.length !== gt.length) throw new Error(`overlap: prediction has ${prob.length} voxels, ground truth ${gt.length}`);
  let inter = 0, pred = 0, g = 0;
  for (let i = 0; i < prob.length; i++) {
    const p = prob[i]! >= threshold, t = gt[i]! > 0;
    if (p) pred++;
    if (t) g++;
    if (p && t) inter++;
  }
  return { inter, pred, gt: g };
}

// Two empty masks agree perfectly; by convention that scores 1, which only matters for oracles
// on degenerate inputs (every evaluated anomaly has a non-empty ground truth).
export function iouOf(o: Overlap): number {
  const union = o.pred + o.gt - o.inter;
  return union === 0 ? 1 : o.inter / union;
}

export function diceOf(o: Overlap): number {
  const s = o.pred + o.gt;
  return s === 0 ? 1 : (2 * o.inter) / s;
}

export function iouAt(prob: MaskLike, gt: MaskLike, threshold: number): number {
  return iouOf(overlap(prob, gt, threshold));
}

export function diceAt(prob: MaskLike, gt: MaskLike, threshold = DICE_THRESHOLD): number {
  return diceOf(overlap(prob, gt, threshold));
}

/** Everything the paper reports about one anomaly's map. */
export interface AnomalyScore {
  dice: number;
  /** IoU at each of MIOU_THRESHOLDS */
  ious: number[];
  miou: number;
  /** the paper's grounding accuracy criterion for this anomaly */
  hit: boolean;
  /** counts at DICE_THRESHOLD, for the pooled ("global") Dice */
  overlap: Overlap;
}

export function scoreAnomaly(prob: MaskLike, gt: MaskLike): AnomalyScore {
  const ious = MIOU_THRESHOLDS.map((t) => iouAt(prob, gt, t));
  const o = overlap(prob, gt, DICE_THRESHOLD);
  const acc = ACCURACY_THRESHOLD === MIOU_THRESHOLDS[0] ? ious[0]! : iouAt(prob, gt, ACCURACY_THRESHOLD);
  return { dice: diceOf(o), ious, miou: mean(ious), hit: acc > ACCURACY_IOU, overlap: o };
}

export type Box = [[number, number, number], [number, number, number]];

/** IoU of two axis-aligned boxes given as [min, max] corners (any unit). */
export function boxIou(a: Box, b: Box): number {
  let inter = 1, va = 1, vb = 1;
  for (let d = 0; d < 3; d++) {
    inter *= Math.max(0, Math.min(a[1][d]!, b[1][d]!) - Math.max(a[0][d]!, b[0][d]!));
    va *= Math.max(0, a[1][d]! - a[0][d]!);
    vb *= Math.max(0, b[1][d]! - b[0][d]!);
  }
  const union = va + vb - inter;
  return union <= 0 ? 0 : inter / union;
}

/**
 * Connected components (26-neighbourhood) of {values ≥ threshold} on an nx×ny×nz grid. Returns the
 * label of each voxel (0 = background) and the component count.
 */
export function connectedComponents(values: MaskLike, size: readonly [number, number, number], threshold: number): { labels: Int32Array; count: number } {
  const [nx, ny, nz] = size;
  const n = nx * ny * nz;
  if (values.length !== n) throw new Error(`connectedComponents: ${values.length} voxels for a ${nx}×${ny}×${nz} grid`);
  const labels = new Int32Array(n);
  const stack = new Int32Array(n);
  let count = 0;
  for (let start = 0; start < n; start++) {
    if (labels[start] !== 0 || !(values[start]! >= threshold)) continue;
    count++;
    labels[start] = count;
    let top = 0;
    stack[top++] = start;
    while (top > 0) {
      const v = stack[--top]!;
      const x = v % nx, y = Math.floor(v / nx) % ny, z = Math.floor(v / (nx * ny));
      for (let dz = -1; dz <= 1; dz++) {
        const zz = z + dz;
        if (zz < 0 || zz >= nz) continue;
        for (let dy = -1; dy <= 1; dy++) {
          const yy = y + dy;
          if (yy < 0 || yy >= ny) continue;
          for (let dx = -1; dx <= 1; dx++) {
            const xx = x + dx;
            if (xx < 0 || xx >= nx) continue;
            const w = xx + nx * (yy + ny * zz);
            if (labels[w] === 0 && values[w]! >= threshold) {
              labels[w] = count;
              stack[top++] = w;
            }
          }
        }
      }
    }
  }
  return { labels, count };
}

/** Instance matches of one map (ReXGroundingCT style): a component matches at Dice ≥ minDice. */
export interface InstanceCounts { predInstances: number; predMatched: number; gtInstances: number; gtMatched: number }

export function instanceCounts(prob: MaskLike, gt: MaskLike, size: readonly [number, number, number], minDice = 0.2, threshold = DICE_THRESHOLD): InstanceCounts {
  const p = connectedComponents(prob, size, threshold);
  const g = connectedComponents(gt, size, 0.5);
  const pSize = new Float64Array(p.count + 1), gSize = new Float64Array(g.count + 1);
  // Sparse pairwise intersections: components overlap rarely, so a map keyed by the pair is small.
  const inter = new Map<number, number>();
  for (let i = 0; i < p.labels.length; i++) {
    const a = p.labels[i]!, b = g.labels[i]!;
    if (a) pSize[a]!++;
    if (b) gSize[b]!++;
    if (a && b) {
      const key = a * (g.count + 1) + b;
      inter.set(key, (inter.get(key) ?? 0) + 1);
    }
  }
  const pOk = new Uint8Array(p.count + 1), gOk = new Uint8Array(g.count + 1);
  for (const [key, n] of inter) {
    const a = Math.floor(key / (g.count + 1)), b = key % (g.count + 1);
    if ((2 * n) / (pSize[a]! + gSize[b]!) >= minDice) { pOk[a] = 1; gOk[b] = 1; }
  }
  let pm = 0, gm = 0;
  for (let a = 1; a <= p.count; a++) pm += pOk[a]!;
  for (let b = 1; b <= g.count; b++) gm += gOk[b]!;
  return { predInstances: p.count, predMatched: pm, gtInstances: g.count, gtMatched: gm };
}

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Linear-interpolated quantile (q in [0, 1]) of a sample; NaN when empty. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

/** Aggregate of many anomaly scores: the paper's three numbers and ReXGroundingCT's. */
export interface Summary {
  n: number;
  /** fractions in [0, 1] */
  accuracy: number;
  dice: number;
  miou: number;
  globalDice: number;
  hitRate: number;
  instancePrecision: number;
  instanceRecall: number;
  instanceF1: number;
}

export function summarize(scores: readonly { score: AnomalyScore; instances?: InstanceCounts }[]): Summary {
  let inter = 0, sizes = 0, pi = 0, pm = 0, gi = 0, gm = 0;
  for (const { score, instances } of scores) {
    inter += score.overlap.inter;
    sizes += score.overlap.pred + score.overlap.gt;
    if (instances) { pi += instances.predInstances; pm += instances.predMatched; gi += instances.gtInstances; gm += instances.gtMatched; }
  }
  const precision = pi === 0 ? 0 : pm / pi, recall = gi === 0 ? 0 : gm / gi;
  return {
    n: scores.length,
    accuracy: mean(scores.map((s) => (s.score.hit ? 1 : 0))),
    dice: mean(scores.map((s) => s.score.dice)),
    miou: mean(scores.map((s) => s.score.miou)),
    globalDice: sizes === 0 ? NaN : (2 * inter) / sizes,
    hitRate: mean(scores.map((s) => (s.score.dice >= 0.1 ? 1 : 0))),
    instancePrecision: precision,
    instanceRecall: recall,
    instanceF1: precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall),
  };
}

/**
 * Distance (mm) from a map's peak voxel (the first of equal maxima) to the nearest voxel of the
 * gold mask: tells a miss that looked in the wrong place from one that found the lesion but drew
 * it too large. `size` and `spacing` of the shared grid; Infinity when the mask is empty or the
 * map is all zero (no peak).
 */
export function peakDistanceMm(map: ArrayLike<number>, gold: ArrayLike<number>, size: readonly number[], spacing: readonly number[]): number {
  let peak = 0;
  for (let i = 1; i < map.length; i++) if (map[i]! > map[peak]!) peak = i;
  if (!(map[peak]! > 0)) return Infinity;
  const [nx, ny] = size as [number, number];
  const at = (i: number) => [i % nx, Math.floor(i / nx) % ny, Math.floor(i / (nx * ny))];
  const p = at(peak);
  let best = Infinity;
  for (let i = 0; i < gold.length; i++) {
    if (!(gold[i]! > 0)) continue;
    const q = at(i);
    best = Math.min(best, Math.hypot((q[0]! - p[0]!) * spacing[0]!, (q[1]! - p[1]!) * spacing[1]!, (q[2]! - p[2]!) * spacing[2]!));
  }
  return best;
}
