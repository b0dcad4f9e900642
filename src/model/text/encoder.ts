import { ops, type Graph, type Tensor, type Init } from '../../engine/index.ts';
import type { TextEncoderConfig } from './config.ts';

/**
 * Encoder weights keyed by HuggingFace BERT tensor names relative to the BERT root
 * (`embeddings.word_embeddings.weight`, `encoder.layer.3.attention.self.query.weight`, …) and in
 * HF layout: a Linear weight is (out, in). The graph holds Linear weights as (in, out) because the
 * engine computes x·W; the transpose happens only here, at the boundary.
 */
export type TextEncoderWeights = Map<string, Float32Array>;

export interface TextEncoderOptions {
  /** prefix of every parameter name in the graph (default 'bert.'), so several encoders or other modules can share a graph */
  prefix?: string;
  /** the first K transformer layers (and the embeddings, when K > 0) get no gradients (the paper freezes 8 of 12) */
  frozenLayers?: number;
  /** initial values (HF layout); missing entries are freshly initialized */
  weights?: TextEncoderWeights;
  /** training-mode dropout; 0 builds an inference graph (default: config.dropout) */
  dropout?: number;
  /** int64 (B, T) segment ids; all zeros when omitted */
  tokenTypeIds?: Tensor | null;
}

export interface TextEncoderOutput {
  /** (B, T, hidden) final hidden states */
  hidden: Tensor;
  /** the output of each transformer layer, (B, T, hidden) each */
  layers: Tensor[];
  /** the graph parameter names this encoder created, in HF-relative form → graph name */
  paramNames: Map<string, string>;
}

/** One (in, out) weight shape per HF Linear: HF stores (out, in). */
export function linearShapes(c: TextEncoderConfig): Map<string, [number, number]> {
  const m = new Map<string, [number, number]>();
  const H = c.hiddenSize, I = c.intermediateSize;
  for (let l = 0; l < c.numLayers; l++) {
    const p = `encoder.layer.${l}.`;
    for (const n of ['query', 'key', 'value']) m.set(`${p}attention.self.${n}.weight`, [H, H]);
    m.set(`${p}attention.output.dense.weight`, [H, H]);
    m.set(`${p}intermediate.dense.weight`, [I, H]);
    m.set(`${p}output.dense.weight`, [H, I]);
  }
  return m;
}

/** Every tensor of the encoder (HF-relative name → HF shape), for loading and validation. */
export function encoderTensorShapes(c: TextEncoderConfig): Map<string, number[]> {
  const H = c.hiddenSize, I = c.intermediateSize;
  const m = new Map<string, number[]>();
  m.set('embeddings.word_embeddings.weight', [c.vocabSize, H]);
  m.set('embeddings.position_embeddings.weight', [c.maxPositions, H]);
  m.set('embeddings.token_type_embeddings.weight', [c.typeVocabSize, H]);
  m.set('embeddings.LayerNorm.weight', [H]);
  m.set('embeddings.LayerNorm.bias', [H]);
  for (let l = 0; l < c.numLayers; l++) {
    const p = `encoder.layer.${l}.`;
    for (const n of ['query', 'key', 'value']) { m.set(`${p}attention.self.${n}.weight`, [H, H]); m.set(`${p}attention.self.${n}.bias`, [H]); }
    m.set(`${p}attention.output.dense.weight`, [H, H]);
    m.set(`${p}attention.output.dense.bias`, [H]);
    m.set(`${p}attention.output.LayerNorm.weight`, [H]);
    m.set(`${p}attention.output.LayerNorm.bias`, [H]);
    m.set(`${p}intermediate.dense.weight`, [I, H]);
    m.set(`${p}intermediate.dense.bias`, [I]);
    m.set(`${p}output.dense.weight`, [H, I]);
    m.set(`${p}output.dense.bias`, [H]);
    m.set(`${p}output.LayerNorm.weight`, [H]);
    m.set(`${p}output.LayerNorm.bias`, [H]);
  }
  return m;
}

/** The masked-LM head tensors (decoder weight tied to the word embeddings, as in BERT). */
export function mlmHeadTensorShapes(c: TextEncoderConfig): Map<string, number[]> {
  const H = c.hiddenSize;
  return new Map<string, number[]>([
    ['cls.predictions.transform.dense.weight', [H, H]],
    ['cls.predictions.transform.dense.bias', [H]],
    ['cls.predictions.transform.LayerNorm.weight', [H]],
    ['cls.predictions.transform.LayerNorm.bias', [H]],
    ['cls.predictions.bias', [c.vocabSize]],
  ]);
}

export function transpose2d(a: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c]!;
  return out;
}

/** Creates one parameter: HF-relative `name`, HF `shape`; Linear weights become (in, out) in the graph. */
function makeParam(g: Graph, prefix: string, name: string, hfShape: number[], init: Init, weights: TextEncoderWeights | undefined, names: Map<string, string>): Tensor {
  const isLinear = name.endsWith('.weight') && hfShape.length === 2 && !name.startsWith('embeddings.');
  const graphShape = isLinear ? [hfShape[1]!, hfShape[0]!] : hfShape;
  const w = weights?.get(name);
  let pinit = init;
  if (w) {
    const n = hfShape.reduce((a, b) => a * b, 1);
    if (w.length !== n) throw new Error(`weights for ${name}: ${w.length} values, expected [${hfShape.join(',')}]`);
    pinit = { kind: 'values', data: isLinear ? transpose2d(w, hfShape[0]!, hfShape[1]!) : w };
  }
  const full = prefix + name;
  names.set(name, full);
  return g.param(full, graphShape, pinit);
}

// BERT's initializer: N(0, 0.02) for every matrix, zeros for biases, ones for layer-norm gains.
const INIT_W: Init = { kind: 'normal', std: 0.02 };
const ZEROS: Init = { kind: 'zeros' };
const ONES: Init = { kind: 'ones' };

/**
 * Position embeddings start from the Transformer's sinusoids, scaled to BERT's N(0, 0.02)
 * magnitude, instead of noise. Pretraining here gets ~1,000 steps; a run with noise-initialized
 * positions sat on the unigram plateau for 500 steps (held-out [MASK] accuracy 6.7 %, unigram
 * 5.8 %), since every offset pattern had to be learnt separately for each of the 128 positions.
 * Sinusoids make "the token k places away" a linear function of the embedding from step 0.
 */
export function sinusoidalPositions(positions: number, hidden: number, scale = 0.02 * Math.SQRT2): Float32Array {
  const out = new Float32Array(positions * hidden);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < hidden; i += 2) {
      const a = p / Math.pow(10000, i / hidden);
      out[p * hidden + i] = scale * Math.sin(a);
      if (i + 1 < hidden) out[p * hidden + i + 1] = scale * Math.cos(a);
    }
  }
  return out;
}

function paramFor(g: Graph, prefix: string, name: string, shape: number[], weights: TextEncoderWeights | undefined, names: Map<string, string>): Tensor {
  const init: Init = name.endsWith('LayerNorm.weight') ? ONES : name.endsWith('.bias') ? ZEROS
    : name === 'embeddings.position_embeddings.weight' ? { kind: 'values', data: sinusoidalPositions(shape[0]!, shape[1]!) } : INIT_W;
  return makeParam(g, prefix, name, shape, init, weights, names);
}

/**
 * Builds the BERT encoder into graph `g`: token + position + segment embeddings, then N
 * post-norm transformer layers (multi-head self-attention with a padding mask, exact-erf GELU
 * feed-forward). `tokenIds` int64 (B, T); `mask` float (B, T), 1 for real tokens and 0 for
 * padding. Returns hidden states (B, T, hidden). Embed it in a bigger training graph to fine-tune
 * the unfrozen layers.
 */
export function buildTextEncoder(g: Graph, config: TextEncoderConfig, tokenIds: Tensor, mask: Tensor, opts: TextEncoderOptions = {}): TextEncoderOutput {
  const c = config;
  const prefix = opts.prefix ?? 'bert.';
  const p = opts.dropout ?? c.dropout;
  const frozen = opts.frozenLayers ?? 0;
  if (frozen < 0 || frozen > c.numLayers) throw new Error(`frozenLayers ${frozen} outside 0..${c.numLayers}`);
  if (tokenIds.rank !== 2 || tokenIds.dtype !== 'int64') throw new Error(`text encoder: tokenIds must be int64 (B, T), got ${tokenIds.toString()}`);
  const [B, T] = tokenIds.shape as [number, number];
  if (mask.rank !== 2 || mask.shape[0] !== B || mask.shape[1] !== T) throw new Error(`text encoder: mask must be (${B}, ${T}), got ${mask.toString()}`);
  if (T > c.maxPositions) throw new Error(`text encoder: ${T} tokens exceed the ${c.maxPositions} position embeddings`);
  const H = c.hiddenSize, NH = c.numHeads, D = H / NH;
  const shapes = encoderTensorShapes(c);
  const names = new Map<string, string>();
  const P = (name: string) => paramFor(g, prefix, name, shapes.get(name)!, opts.weights, names);

  const wordE = P('embeddings.word_embeddings.weight');
  const posE = P('embeddings.position_embeddings.weight');
  const typeE = P('embeddings.token_type_embeddings.weight');
  let x = ops.embedding(wordE, tokenIds);
  x = ops.add(x, T === c.maxPositions ? posE : ops.slice(posE, [0], [T], [0]));
  x = ops.add(x, opts.tokenTypeIds ? ops.embedding(typeE, opts.tokenTypeIds) : ops.slice(typeE, [0], [1], [0]));
  x = ops.layerNorm(x, P('embeddings.LayerNorm.weight'), P('embeddings.LayerNorm.bias'), c.layerNormEps);
  x = ops.dropout(x, p);

  // Additive key mask: 0 where attended, −10000 on padding (BERT's constant; exp underflows to 0).
  const keyBias = ops.mul(ops.sub(ops.reshape(mask, [B, 1, 1, T]), 1), 10000);
  const scale = 1 / Math.sqrt(D);
  const layers: Tensor[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const pre = `encoder.layer.${l}.`;
    const heads = (t: Tensor) => ops.transpose(ops.reshape(t, [B, T, NH, D]), [0, 2, 1, 3]);
    const q = heads(ops.linear(x, P(`${pre}attention.self.query.weight`), P(`${pre}attention.self.query.bias`)));
    const kT = ops.transpose(ops.reshape(ops.linear(x, P(`${pre}attention.self.key.weight`), P(`${pre}attention.self.key.bias`)), [B, T, NH, D]), [0, 2, 3, 1]);
    const v = heads(ops.linear(x, P(`${pre}attention.self.value.weight`), P(`${pre}attention.self.value.bias`)));
    const scores = ops.add(ops.mul(ops.matmul(q, kT), scale), keyBias);
    const probs = ops.dropout(ops.softmax(scores, -1), p);
    const ctx = ops.reshape(ops.transpose(ops.matmul(probs, v), [0, 2, 1, 3]), [B, T, H]);
    const attn = ops.dropout(ops.linear(ctx, P(`${pre}attention.output.dense.weight`), P(`${pre}attention.output.dense.bias`)), p);
    const h = ops.layerNorm(ops.add(x, attn), P(`${pre}attention.output.LayerNorm.weight`), P(`${pre}attention.output.LayerNorm.bias`), c.layerNormEps);
    const inter = ops.gelu(ops.linear(h, P(`${pre}intermediate.dense.weight`), P(`${pre}intermediate.dense.bias`)));
    const out = ops.dropout(ops.linear(inter, P(`${pre}output.dense.weight`), P(`${pre}output.dense.bias`)), p);
    x = ops.layerNorm(ops.add(h, out), P(`${pre}output.LayerNorm.weight`), P(`${pre}output.LayerNorm.bias`), c.layerNormEps);
    layers.push(x);
  }

  if (frozen > 0) {
    // Freezing layer K without the embeddings below it would still back-propagate into them
    // through the frozen layers; BERT fine-tuning practice freezes the embeddings too.
    const frozenNames = new Set<string>();
    for (const [rel, full] of names) {
      const m = /^encoder\.layer\.(\d+)\./.exec(rel);
      if (rel.startsWith('embeddings.') || (m && Number(m[1]) < frozen)) frozenNames.add(full);
    }
    g.setTrainable((n) => frozenNames.has(n), false);
  }
  return { hidden: x, layers, paramNames: names };
}

/**
 * The masked-LM head on the hidden states at `positions` (int64 flat indices into B·T): dense +
 * GELU + layer norm, then logits against the word-embedding table (tied, as in BERT).
 */
export function buildMlmHead(g: Graph, config: TextEncoderConfig, hidden: Tensor, positions: Tensor, wordEmbeddings: Tensor, opts: { prefix?: string; weights?: TextEncoderWeights } = {}): Tensor {
  const c = config;
  const prefix = opts.prefix ?? '';
  const shapes = mlmHeadTensorShapes(c);
  const names = new Map<string, string>();
  const P = (name: string) => paramFor(g, prefix, name, shapes.get(name)!, opts.weights, names);
  const [B, T, H] = hidden.shape as [number, number, number];
  const picked = ops.embedding(ops.reshape(hidden, [B * T, H]), positions);
  let t = ops.gelu(ops.linear(picked, P('cls.predictions.transform.dense.weight'), P('cls.predictions.transform.dense.bias')));
  t = ops.layerNorm(t, P('cls.predictions.transform.LayerNorm.weight'), P('cls.predictions.transform.LayerNorm.bias'), c.layerNormEps);
  return ops.add(ops.matmul(t, ops.transpose(wordEmbeddings, [1, 0])), P('cls.predictions.bias'));
}
