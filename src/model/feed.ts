import type { GroundingConfig } from './config.ts';
import { tableIndex } from './graphs.ts';
import { aggregateSequence, tokenClasses, type SeqItem, type TokenSpan } from './prepare.ts';
import type { GroundingAnomaly } from './types.ts';

/** The text side of one anomaly, ready to be placed at any batch position. */
export interface AnomalyText {
  /** token states in sequence order (A × d; zero rows for p/v entries and padding) */
  rows: Float32Array;
  seq: SeqItem[];
  length: number;
}

/** Gathers the aggregator sequence of one anomaly from the report's token states (tokens × d). */
export function anomalyText(cfg: GroundingConfig, anomaly: GroundingAnomaly, tokens: readonly TokenSpan[], states: Float32Array, d: number): AnomalyText {
  const seq = aggregateSequence(cfg, anomaly, tokenClasses(anomaly, tokens)).slice(0, cfg.maxAggregate);
  const rows = new Float32Array(cfg.maxAggregate * d);
  seq.forEach((it, i) => { if ('token' in it) rows.set(states.subarray(it.token * d, (it.token + 1) * d), i * d); });
  return { rows, seq, length: seq.length };
}

/** Writes sample `b` of a batch of `batch` into the ids/lengths/rowMask feeds. */
export function placeText(cfg: GroundingConfig, t: AnomalyText, b: number, batch: number, ids: BigInt64Array, lengths: BigInt64Array, rowMask: Float32Array): void {
  const A = cfg.maxAggregate;
  for (let i = 0; i < A; i++) {
    const it = t.seq[i];
    // padding points at this sample's first row; the LSTM ignores it past `length`
    const idx = !it || 'token' in it ? b * A + (it ? i : 0) : tableIndex(cfg, batch, it);
    ids[b * A + i] = BigInt(idx);
    rowMask[b * A + i] = i < t.length ? 1 : 0;
  }
  lengths[b] = BigInt(t.length);
}

/** Box (centre, size in crop units [0, 1]) of a soft mask on a G³ grid (voxels ≥ 0.5). */
export function maskBox(mask: ArrayLike<number>, G: number): Float32Array | null {
  let lo = [G, G, G], hi = [-1, -1, -1];
  for (let k = 0, o = 0; k < G; k++) for (let j = 0; j < G; j++) for (let i = 0; i < G; i++, o++) {
    if (mask[o]! < 0.5) continue;
    const p = [i, j, k];
    lo = lo.map((v, a) => Math.min(v, p[a]!));
    hi = hi.map((v, a) => Math.max(v, p[a]!));
  }
  if (hi[0]! < 0) return null;
  return Float32Array.from([0, 1, 2].flatMap((a) => [(lo[a]! + hi[a]! + 1) / 2 / G]).concat([0, 1, 2].map((a) => (hi[a]! + 1 - lo[a]!) / G)));
}

/** A box (centre, size in crop units) painted as a 0/1 map on the G³ crop grid. */
export function boxMap(box: ArrayLike<number>, G: number): Float32Array {
  const out = new Float32Array(G * G * G);
  const lo = [0, 1, 2].map((a) => (box[a]! - box[a + 3]! / 2) * G), hi = [0, 1, 2].map((a) => (box[a]! + box[a + 3]! / 2) * G);
  for (let k = 0, o = 0; k < G; k++) for (let j = 0; j < G; j++) for (let i = 0; i < G; i++, o++) {
    const p = [i + 0.5, j + 0.5, k + 0.5];
    if (p.every((v, a) => v >= lo[a]! && v <= hi[a]!)) out[o] = 1;
  }
  return out;
}
