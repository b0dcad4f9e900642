// An independent, plain-TypeScript float64 BERT forward (HF layout weights), written straight
// from the BERT paper's equations; the text tests compare the engine-built encoder against it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRng } from '../src/common/index.ts';
import { writeHfSafetensors, encoderTensorShapes, type NamedTensor, type TextEncoderConfig } from '../src/model/text/index.ts';

export interface RefConfig { hiddenSize: number; numLayers: number; numHeads: number; intermediateSize: number; layerNormEps: number }

type W = Map<string, Float32Array>;

function dense(x: Float64Array, n: number, inDim: number, w: Float32Array, b: Float32Array, outDim: number): Float64Array {
  // HF Linear: y = x · Wᵀ + b with W (out, in)
  const y = new Float64Array(n * outDim);
  for (let i = 0; i < n; i++) for (let o = 0; o < outDim; o++) {
    let s = b[o]!;
    for (let k = 0; k < inDim; k++) s += x[i * inDim + k]! * w[o * inDim + k]!;
    y[i * outDim + o] = s;
  }
  return y;
}

function layerNorm(x: Float64Array, n: number, d: number, g: Float32Array, b: Float32Array, eps: number): Float64Array {
  const y = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    let m = 0; for (let k = 0; k < d; k++) m += x[i * d + k]!; m /= d;
    let v = 0; for (let k = 0; k < d; k++) v += (x[i * d + k]! - m) ** 2; v /= d;
    for (let k = 0; k < d; k++) y[i * d + k] = ((x[i * d + k]! - m) / Math.sqrt(v + eps)) * g[k]! + b[k]!;
  }
  return y;
}

// erf by Abramowitz–Stegun 7.1.26 is too coarse for 1e-5 checks; use a series / continued fraction.
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let sum = ax, term = ax;
    for (let n = 1; n < 200; n++) { term *= -ax * ax / n; const t = term / (2 * n + 1); sum += t; if (Math.abs(t) < 1e-17) break; }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction for large |x|
  let f = 0;
  for (let n = 60; n >= 1; n--) f = (n / 2) / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return Math.sign(x) * (1 - erfc);
}
export const gelu = (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2));

/** hidden states (B·T·H) for token ids (B·T) and mask (B·T), segment 0 everywhere. */
export function referenceBert(c: RefConfig, w: W, ids: number[], mask: number[], B: number, T: number, prefix = ''): Float64Array {
  const H = c.hiddenSize, NH = c.numHeads, D = H / NH, I = c.intermediateSize, N = B * T;
  const get = (n: string) => { const t = w.get(prefix + n); if (!t) throw new Error('ref: missing ' + n); return t; };
  const we = get('embeddings.word_embeddings.weight'), pe = get('embeddings.position_embeddings.weight'), te = get('embeddings.token_type_embeddings.weight');
  let x: Float64Array = new Float64Array(N * H);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let k = 0; k < H; k++) {
    x[(b * T + t) * H + k] = we[ids[b * T + t]! * H + k]! + pe[t * H + k]! + te[k]!;
  }
  x = layerNorm(x, N, H, get('embeddings.LayerNorm.weight'), get('embeddings.LayerNorm.bias'), c.layerNormEps);
  for (let l = 0; l < c.numLayers; l++) {
    const p = `encoder.layer.${l}.`;
    const q = dense(x, N, H, get(p + 'attention.self.query.weight'), get(p + 'attention.self.query.bias'), H);
    const k = dense(x, N, H, get(p + 'attention.self.key.weight'), get(p + 'attention.self.key.bias'), H);
    const v = dense(x, N, H, get(p + 'attention.self.value.weight'), get(p + 'attention.self.value.bias'), H);
    const ctx = new Float64Array(N * H);
    for (let b = 0; b < B; b++) for (let h = 0; h < NH; h++) for (let i = 0; i < T; i++) {
      const s = new Float64Array(T);
      let mx = -Infinity;
      for (let j = 0; j < T; j++) {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[(b * T + i) * H + h * D + d]! * k[(b * T + j) * H + h * D + d]!;
        s[j] = dot / Math.sqrt(D) + (mask[b * T + j] ? 0 : -10000);
        mx = Math.max(mx, s[j]!);
      }
      let z = 0;
      for (let j = 0; j < T; j++) { s[j] = Math.exp(s[j]! - mx); z += s[j]!; }
      for (let d = 0; d < D; d++) {
        let acc = 0;
        for (let j = 0; j < T; j++) acc += (s[j]! / z) * v[(b * T + j) * H + h * D + d]!;
        ctx[(b * T + i) * H + h * D + d] = acc;
      }
    }
    const ao = dense(ctx, N, H, get(p + 'attention.output.dense.weight'), get(p + 'attention.output.dense.bias'), H);
    for (let i = 0; i < N * H; i++) ao[i]! += x[i]!;
    const h1 = layerNorm(ao, N, H, get(p + 'attention.output.LayerNorm.weight'), get(p + 'attention.output.LayerNorm.bias'), c.layerNormEps);
    const inter = dense(h1, N, H, get(p + 'intermediate.dense.weight'), get(p + 'intermediate.dense.bias'), I).map(gelu);
    const o = dense(inter, N, I, get(p + 'output.dense.weight'), get(p + 'output.dense.bias'), H);
    for (let i = 0; i < N * H; i++) o[i]! += h1[i]!;
    x = layerNorm(o, N, H, get(p + 'output.LayerNorm.weight'), get(p + 'output.LayerNorm.bias'), c.layerNormEps);
  }
  return x;
}

export const tinyConfig: TextEncoderConfig = { vocabSize: 12, hiddenSize: 8, numLayers: 2, numHeads: 2, intermediateSize: 16, maxPositions: 10, typeVocabSize: 2, layerNormEps: 1e-12, dropout: 0, lowercase: true };
export const TINY_VOCAB = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'liver', 'lesion', 'in', 'the', '.', '##s', 'no'];

/** Writes a tiny BERT folder exactly as HuggingFace lays one out (BertModel: no `bert.` prefix). */
export function writeTinyHfBert(dir: string, opts: { prefix?: string; gammaBeta?: boolean; drop?: string; reshape?: string; f16?: boolean } = {}): Map<string, Float32Array> {
  const rng = createRng(3);
  const weights = new Map<string, Float32Array>();
  const tensors = new Map<string, NamedTensor>();
  for (const [name, shape] of encoderTensorShapes(tinyConfig)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const d = Float32Array.from({ length: n }, () => rng.normal(0, 0.5));
    weights.set(name, d);
    let stored = (opts.prefix ?? '') + name;
    if (opts.gammaBeta) stored = stored.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta');
    if (name === opts.drop) continue;
    tensors.set(stored, { shape: name === opts.reshape ? [shape[0]! + 1, ...shape.slice(1)] : shape, data: name === opts.reshape ? new Float32Array(n + n / shape[0]!) : d });
  }
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ architectures: ['BertModel'], model_type: 'bert', vocab_size: 12, hidden_size: 8, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 16, max_position_embeddings: 10, type_vocab_size: 2, hidden_act: 'gelu', layer_norm_eps: 1e-12, hidden_dropout_prob: 0.1 }));
  writeFileSync(join(dir, 'vocab.txt'), TINY_VOCAB.join('\n') + '\n');
  writeHfSafetensors(join(dir, 'model.safetensors'), tensors);
  return weights;
}

