import { ops, type Graph, type Tensor, type Init } from '../engine/index.ts';
import { loadTaxonomy } from '../common/index.ts';
import { usesAnatomy, usesStructure, type GroundingConfig } from './config.ts';

/**
 * The grounding network as engine graph pieces. Each piece creates its parameters under fixed
 * names, so a training graph (everything, batch B) and the inference graphs (image keys once per
 * crop, text once per report, a cheap head per anomaly) share one checkpoint.
 */
export type Weights = Map<string, Float32Array>;

/** Stored weights that do not fit the configured network (the loader names the file). */
export class WeightMismatch extends Error {}

/** A parameter initialized from `weights` when it holds one of that name (inference, resume). */
export function param(g: Graph, name: string, shape: number[], init: Init, weights?: Weights, trainable = true): Tensor {
  const w = weights?.get(name);
  const n = shape.reduce((a, b) => a * b, 1);
  if (w && w.length !== n) throw new WeightMismatch(`parameter '${name}' has ${w.length} values, the model needs ${n} ([${shape.join(',')}])`);
  return g.param(name, shape, w ? { kind: 'values', data: w } : init, { trainable });
}

/**
 * The weights of a model whose CT windows are `from`, for one with the windows `to` (which start
 * with `from`): the first convolution gains zero weights for each added window channel, inserted
 * before the anatomy channel. The widened network computes exactly what the old one did until
 * training moves the new weights, so a trained model can be fine-tuned with an extra window.
 */
export function widenImageInput(weights: Weights, from: GroundingConfig, to: GroundingConfig): Weights {
  const a = from.crop.windows, b = to.crop.windows;
  if (b.length < a.length || a.some(([lo, hi], i) => b[i]![0] !== lo || b[i]![1] !== hi)) {
    throw new WeightMismatch(`the CT windows ${fmtWindows(b)} do not start with the model's ${fmtWindows(a)} (windows can only be added after them)`);
  }
  const name = 'img.s0.c0.w', w = weights.get(name);
  if (b.length === a.length || !w) return weights;
  const anatomy = usesAnatomy(from.variant) ? 1 : 0, cinOld = a.length + anatomy, cinNew = b.length + anatomy;
  const per = 27, cout = w.length / (cinOld * per);
  const out = new Float32Array(cout * cinNew * per);
  for (let o = 0; o < cout; o++) {
    for (let c = 0; c < a.length; c++) out.set(w.subarray((o * cinOld + c) * per, (o * cinOld + c + 1) * per), (o * cinNew + c) * per);
    if (anatomy) out.set(w.subarray((o * cinOld + a.length) * per, (o * cinOld + a.length + 1) * per), (o * cinNew + b.length) * per);
  }
  return new Map(weights).set(name, out);
}

function fmtWindows(w: [number, number][]): string {
  return w.map(([lo, hi]) => `${lo}:${hi}`).join(',');
}

function convBlock(g: Graph, x: Tensor, name: string, cin: number, cout: number, groups: number, weights?: Weights): Tensor {
  const w = param(g, `${name}.w`, [cout, cin, 3, 3, 3], { kind: 'he' }, weights);
  const b = param(g, `${name}.b`, [cout], { kind: 'zeros' }, weights);
  let y = ops.conv3d(x, w, b, { padding: 'same' });
  if (groups > 0) {
    y = ops.groupNorm(y, groups, param(g, `${name}.gn.g`, [cout], { kind: 'ones' }, weights), param(g, `${name}.gn.b`, [cout], { kind: 'zeros' }, weights));
  }
  return ops.relu(y);
}

/**
 * The VGG-like 3D image encoder (paper Sec. 4.2): stages of 3×3×3 convolutions with a 2× max-pool
 * between stages. Returns every stage's output; the last is V.
 */
export function imageEncoder(g: Graph, cfg: GroundingConfig, image: Tensor, weights?: Weights): Tensor[] {
  const stages: Tensor[] = [];
  let x = image;
  let cin = image.shape[1]!;
  for (let s = 0; s < 4; s++) {
    if (s > 0) x = ops.maxPool3d(x, { kernel: 2 });
    for (let c = 0; c < cfg.convsPerStage[s]!; c++) {
      x = convBlock(g, x, `img.s${s}.c${c}`, cin, cfg.widths[s]!, cfg.normGroups, weights);
      cin = cfg.widths[s]!;
    }
    stages.push(x);
  }
  return stages;
}

/** The keys V·W_K of the source-target attention (a 1×1×1 convolution), coarse and optionally fine. */
export function attentionKeys(g: Graph, cfg: GroundingConfig, stages: Tensor[], weights?: Weights, position?: Tensor): { coarse: Tensor; fine: Tensor | null } {
  const key = (x: Tensor, name: string) => {
    const w = param(g, `${name}.w`, [cfg.attnDim, x.shape[1]!, 1, 1, 1], { kind: 'xavier' }, weights);
    return ops.conv3d(x, w, param(g, `${name}.b`, [cfg.attnDim], { kind: 'zeros' }, weights));
  };
  if (!cfg.fineAttention) return { coarse: key(stages[3]!, 'attn.wk'), fine: null };
  let fine = key(cfg.decoder ? decoder(g, cfg, stages, weights) : stages[1]!, 'attn.wk_fine');
  if (cfg.positional) {
    if (!position || position.shape[2] !== fine.shape[2]) throw new Error('attentionKeys: the position term needs the decoder\'s fine keys (crop resolution) and the position features');
    // zero at the start: a model fine-tuned from one without the term begins with the same maps
    const w = param(g, 'attn.wk_pos.w', [cfg.attnDim, position.shape[1]!, 1, 1, 1], { kind: 'zeros' }, weights);
    fine = ops.add(fine, ops.conv3d(position, w, null));
  }
  return { coarse: key(stages[3]!, 'attn.wk'), fine };
}

/** Upsample-and-merge from the last stage back to stage 1's (full crop) resolution. */
function decoder(g: Graph, cfg: GroundingConfig, stages: Tensor[], weights?: Weights): Tensor {
  let x = stages[3]!;
  for (let s = 2; s >= 0; s--) {
    const skip = stages[s]!;
    x = ops.concat([ops.resizeLinear(x, skip.shape.slice(2)), skip], 1);
    // the full-resolution merge keeps stage 2's width: the fine keys see as many channels as without the decoder
    const cin = x.shape[1]!, cout = cfg.widths[Math.max(1, s)]!;
    if (s > 0) {
      x = convBlock(g, x, `dec.s${s}`, cin, cout, cfg.normGroups, weights);
    } else {
      const w = param(g, 'dec.s0.w', [cout, cin, 1, 1, 1], { kind: 'he' }, weights);
      x = ops.relu(ops.conv3d(x, w, param(g, 'dec.s0.b', [cout], { kind: 'zeros' }, weights)));
    }
  }
  return x;
}

/** Number of class-label embeddings p_k and organ embeddings v_organ. */
export function aggregatorVocab(): { classes: number; organs: number } {
  const t = loadTaxonomy();
  return { classes: t.phraseClasses.length, organs: t.reportOrgans.length };
}

/**
 * The Anomaly-wise Feature Aggregator (Eq. 5): the sequence [v_organ; p_1; e_1; …; p_C; e_C] is
 * gathered from one table that stacks the report's token embeddings (rows 0..R-1), the class
 * embeddings p_k and the organ embeddings v_organ; `ids` (B, A) index it, `lengths` (B) end each
 * sequence; an LSTM's last state is L_t. Variants without structuring pass only the anomaly
 * phrase's tokens, and then the p/v tables are not built at all. `inference`: the LSTM as one ONNX node.
 */
export function aggregator(g: Graph, cfg: GroundingConfig, tokenRows: Tensor, ids: Tensor, lengths: Tensor, weights?: Weights, inference = false): Tensor {
  const d = tokenRows.shape[1]!;
  let table = tokenRows;
  if (usesStructure(cfg.variant)) {
    const v = aggregatorVocab();
    const p = param(g, 'afa.class_emb', [v.classes, d], { kind: 'normal', std: 0.5 }, weights);
    const o = param(g, 'afa.organ_emb', [v.organs, d], { kind: 'normal', std: 0.5 }, weights);
    table = ops.concat([tokenRows, p, o], 0);
  }
  const seq = ops.embedding(table, ids);
  const H = cfg.lstmHidden;
  const lstm = {
    wx: param(g, 'afa.lstm.wx', [d, 4 * H], { kind: 'xavier' }, weights),
    wh: param(g, 'afa.lstm.wh', [H, 4 * H], { kind: 'xavier' }, weights),
    // forget-gate bias 1: the usual start that lets the state carry over long sequences
    b: param(g, 'afa.lstm.b', [4 * H], { kind: 'values', data: Float32Array.from({ length: 4 * H }, (_, i) => (i >= H && i < 2 * H ? 1 : 0)) }, weights),
  };
  // inference graphs: one LSTM node (same numbers, test/engine-grad); training needs the unrolled form's gradients
  return inference ? ops.lstmLast(seq, lstm, lengths) : ops.lstm(seq, lstm, lengths).last;
}

/**
 * Source-target attention (Eq. 1) as logits: L_t·W_Q against the keys, scaled by 1/√d_n, plus a
 * learned offset, upsampled (trilinear) to the crop grid. With fine keys the two scales' logits add.
 * `L` (B, H); keys (B, d_n, …); returns (B, 1, G, G, G) logits (sigmoid gives M_t). `inference`:
 * the upsampling as `resizeLinearSeparable` (same values, faster forward at B anomaly maps; in
 * training, batch 2, the plain Resize's backward is the cheaper one).
 */
export function attentionLogits(g: Graph, cfg: GroundingConfig, L: Tensor, keys: { coarse: Tensor; fine: Tensor | null }, weights?: Weights, inference = false): Tensor {
  const B = L.shape[0]!, dn = cfg.attnDim, G = cfg.crop.grid;
  // the 1/√d_n scale on q (B·d_n values), not on the product (B·G³)
  const query = (name: string) => ops.mul(ops.linear(L, param(g, `${name}.w`, [L.shape[1]!, dn], { kind: 'xavier' }, weights), param(g, `${name}.b`, [dn], { kind: 'zeros' }, weights)), 1 / Math.sqrt(dn));
  // q·k as one MatMul over dn: a broadcast product summed over dn made a (B, dn, G³) tensor, the
  // head's largest by far. Keys of one image serve every query (inference), else one image each.
  const product = (q: Tensor, k: Tensor) => {
    const sp = k.shape.slice(2), N = sp.reduce((a, b) => a * b, 1), kb = k.shape[0]!;
    return ops.reshape(kb === 1 ? ops.matmul(q, ops.reshape(k, [dn, N])) : ops.matmul(ops.reshape(q, [B, 1, dn]), ops.reshape(k, [kb, dn, N])), [B, 1, ...sp]);
  };
  const coarseQ = query('attn.wq');
  // Starts the maps mostly "off": lesions are a small part of any crop.
  const bias = param(g, 'attn.bias', [1], { kind: 'constant', value: -2 }, weights);
  const fineQ = keys.fine ? query('attn.wq_fine') : null;
  if (!inference) {
    const upsampled = (x: Tensor) => ops.resizeLinear(x, [G, G, G]);
    let logits = upsampled(product(coarseQ, keys.coarse));
    if (keys.fine) logits = ops.add(logits, upsampled(product(fineQ!, keys.fine)));
    return ops.add(logits, bias);
  }
  // The same sum, cheaper for B maps of one image (inference keys have batch 1): the bias joins the
  // coarse map before its upsampling (the interpolation weights sum to 1), and the two scales add as
  // (B, G³) tensors, which ORT fuses with the fine MatMul into one Gemm when the fine keys are at crop
  // resolution (the decoder's; a model without it has them at half, upsampled like the coarse ones).
  const N = G ** 3;
  const upsampled = (x: Tensor) => ops.reshape(ops.resizeLinearSeparable(x, [G, G, G]), [B, N]);
  const coarse = upsampled(ops.add(product(coarseQ, keys.coarse), bias));
  const fine = !keys.fine ? null
    : keys.fine.shape.slice(2).every((d) => d === G) ? ops.matmul(fineQ!, ops.reshape(keys.fine, [dn, N]))
    : upsampled(product(fineQ!, keys.fine));
  return ops.reshape(fine ? ops.add(fine, coarse) : coarse, [B, 1, G, G, G]);
}

/**
 * transvg3d (TransVG adapted to 3D as in the paper's comparison): the coarse visual tokens, the
 * anomaly phrase's tokens and a [REG] token through a small transformer; [REG] regresses a box
 * (centre, size) in crop-normalized units, sigmoid-bounded. `textMask` (B, A) is 1 on real tokens.
 */
export function transvgBox(g: Graph, cfg: GroundingConfig, visual: Tensor, text: Tensor, textMask: Tensor, weights?: Weights): Tensor {
  const { dim: D, layers, heads } = cfg.transformer;
  const B = visual.shape[0]!, F = visual.shape[1]!;
  const nv = visual.shape.slice(2).reduce((a, b) => a * b, 1);
  const A = text.shape[1]!;
  const vis = ops.add(ops.linear(ops.transpose(ops.reshape(visual, [B, F, nv]), [0, 2, 1]), param(g, 'tvg.vproj', [F, D], { kind: 'xavier' }, weights)), param(g, 'tvg.vpos', [nv, D], { kind: 'normal', std: 0.02 }, weights));
  const txt = ops.add(ops.linear(text, param(g, 'tvg.tproj', [text.shape[2]!, D], { kind: 'xavier' }, weights)), param(g, 'tvg.tpos', [A, D], { kind: 'normal', std: 0.02 }, weights));
  const reg = ops.expand(param(g, 'tvg.reg', [1, 1, D], { kind: 'normal', std: 0.02 }, weights), [B, 1, D]);
  let x = ops.concat([reg, vis, txt], 1);
  const N = 1 + nv + A;
  const ones = g.constant(new Float32Array(B * (1 + nv)).fill(1), [B, 1 + nv]);
  const keyBias = ops.mul(ops.sub(ops.reshape(ops.concat([ones, textMask], 1), [B, 1, 1, N]), 1), 10000);
  const dh = D / heads;
  for (let l = 0; l < layers; l++) {
    const P = (n: string, shape: number[], init: Init = { kind: 'xavier' }) => param(g, `tvg.l${l}.${n}`, shape, init, weights);
    const split = (t: Tensor) => ops.transpose(ops.reshape(t, [B, N, heads, dh]), [0, 2, 1, 3]);
    const q = split(ops.linear(x, P('q', [D, D])));
    const k = ops.transpose(ops.reshape(ops.linear(x, P('k', [D, D])), [B, N, heads, dh]), [0, 2, 3, 1]);
    const v = split(ops.linear(x, P('v', [D, D])));
    const att = ops.softmax(ops.add(ops.mul(ops.matmul(q, k), 1 / Math.sqrt(dh)), keyBias), -1);
    const ctx = ops.reshape(ops.transpose(ops.matmul(att, v), [0, 2, 1, 3]), [B, N, D]);
    x = ops.layerNorm(ops.add(x, ops.linear(ctx, P('o', [D, D]))), P('ln1.g', [D], { kind: 'ones' }), P('ln1.b', [D], { kind: 'zeros' }));
    const ff = ops.linear(ops.relu(ops.linear(x, P('f1', [D, 2 * D]), P('f1b', [2 * D], { kind: 'zeros' }))), P('f2', [2 * D, D]), P('f2b', [D], { kind: 'zeros' }));
    x = ops.layerNorm(ops.add(x, ff), P('ln2.g', [D], { kind: 'ones' }), P('ln2.b', [D], { kind: 'zeros' }));
  }
  const r = ops.reshape(ops.slice(x, [0], [1], [1]), [B, D]);
  const h = ops.relu(ops.linear(r, param(g, 'tvg.head1', [D, D], { kind: 'xavier' }, weights), param(g, 'tvg.head1b', [D], { kind: 'zeros' }, weights)));
  return ops.sigmoid(ops.linear(h, param(g, 'tvg.head2', [D, 6], { kind: 'xavier' }, weights), param(g, 'tvg.head2b', [6], { kind: 'zeros' }, weights)));
}

/** L1 + (1 − GIoU) of (B, 6) boxes given as centre and size, the TransVG objective. */
export function boxLoss(pred: Tensor, target: Tensor): Tensor {
  const l1 = ops.mean(ops.abs(ops.sub(pred, target)));
  const corners = (b: Tensor) => {
    const c = ops.slice(b, [0], [3], [1]), s = ops.slice(b, [3], [6], [1]);
    return { lo: ops.sub(c, ops.mul(s, 0.5)), hi: ops.add(c, ops.mul(s, 0.5)), vol: prod3(s) };
  };
  const a = corners(pred), b = corners(target);
  const ilo = maxT(a.lo, b.lo), ihi = minT(a.hi, b.hi);
  const inter = prod3(ops.relu(ops.sub(ihi, ilo)));
  const union = ops.sub(ops.add(a.vol, b.vol), inter);
  const elo = minT(a.lo, b.lo), ehi = maxT(a.hi, b.hi);
  const enclose = prod3(ops.sub(ehi, elo));
  const iou = ops.div(inter, ops.add(union, 1e-6));
  const giou = ops.sub(iou, ops.div(ops.sub(enclose, union), ops.add(enclose, 1e-6)));
  return ops.add(l1, ops.mean(ops.sub(1, giou)));
}

/** Product of the three columns of (B, 3) → (B, 1). */
function prod3(t: Tensor): Tensor {
  return ops.mul(ops.mul(ops.slice(t, [0], [1], [1]), ops.slice(t, [1], [2], [1])), ops.slice(t, [2], [3], [1]));
}

// max/min of two tensors from differentiable primitives: (a+b ± |a−b|)/2
function maxT(a: Tensor, b: Tensor): Tensor { return ops.mul(ops.add(ops.add(a, b), ops.abs(ops.sub(a, b))), 0.5); }
function minT(a: Tensor, b: Tensor): Tensor { return ops.mul(ops.sub(ops.add(a, b), ops.abs(ops.sub(a, b))), 0.5); }
