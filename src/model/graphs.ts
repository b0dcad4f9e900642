import { Graph, ops, type Tensor } from '../engine/index.ts';
import { inputChannels, type GroundingConfig } from './config.ts';
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
export interface TrainGraph { graph: Graph; loss: Tensor; prob: Tensor | null; box: Tensor | null }

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
    return { graph: g, loss: boxLoss(box, target), prob: null, box };
  }
  const ids = g.input('ids', [batch, A], 'int64');
  const lengths = g.input('lengths', [batch], 'int64');
  const target = g.input('target', [batch, 1, G, G, G]);
  const keys = attentionKeys(g, cfg, stages, weights);
  const L = aggregator(g, cfg, ops.reshape(rows, [batch * A, textDim]), ids, lengths, weights);
  const logits = attentionLogits(g, cfg, L, keys, weights);
  const prob = ops.sigmoid(logits);
  const dice = ops.diceLoss(prob, target);
  const loss = cfg.bceWeight > 0 ? ops.add(dice, ops.mul(ops.bceWithLogits(logits, target), cfg.bceWeight)) : dice;
  return { graph: g, loss, prob, box: null };
}

/** Image side for inference: (1, C, G³) → the attention keys (mask models) or visual tokens (transvg3d). */
export function buildImageGraph(cfg: GroundingConfig, weights: Weights): { graph: Graph; outputs: Record<string, Tensor> } {
  const g = new Graph({ seed: 0 });
  const G = cfg.crop.grid;
  const image = g.input('image', [1, inputChannels(cfg), G, G, G]);
  const stages = imageEncoder(g, cfg, image, weights);
  if (isBoxModel(cfg)) return { graph: g, outputs: { visual: stages[3]! } };
  const keys = attentionKeys(g, cfg, stages, weights);
  return { graph: g, outputs: keys.fine ? { keys: keys.coarse, keysFine: keys.fine } : { keys: keys.coarse } };
}

/** Per-anomaly head for inference: token rows + the crop's keys → probability map (or box). */
export function buildHeadGraph(cfg: GroundingConfig, textDim: number, weights: Weights, imageShapes: Record<string, readonly number[]>): { graph: Graph; output: Tensor } {
  const g = new Graph({ seed: 0 });
  const A = cfg.maxAggregate;
  const rows = g.input('rows', [1, A, textDim]);
  if (isBoxModel(cfg)) {
    const rowMask = g.input('rowMask', [1, A]);
    const visual = g.input('visual', imageShapes.visual!);
    return { graph: g, output: transvgBox(g, cfg, visual, rows, rowMask, weights) };
  }
  const ids = g.input('ids', [1, A], 'int64');
  const lengths = g.input('lengths', [1], 'int64');
  const keys = { coarse: g.input('keys', imageShapes.keys!), fine: imageShapes.keysFine ? g.input('keysFine', imageShapes.keysFine) : null };
  const L = aggregator(g, cfg, ops.reshape(rows, [A, textDim]), ids, lengths, weights);
  return { graph: g, output: ops.sigmoid(attentionLogits(g, cfg, L, keys, weights)) };
}
