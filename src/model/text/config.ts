import { readFileSync } from 'node:fs';
import { fileError, writeFileAtomic } from '../../common/index.ts';

/**
 * The encoder's shape, stored as a HuggingFace BERT `config.json` (same keys) so a folder we write
 * is a BERT folder other tools recognise, and a user's BERT folder configures this encoder.
 */
export interface TextEncoderConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  maxPositions: number;
  typeVocabSize: number;
  layerNormEps: number;
  /** dropout on embeddings, attention probabilities and residual branches during training */
  dropout: number;
  lowercase: boolean;
  /**
   * longest window (in tokens, with [CLS]/[SEP]) inference should feed: the positions pretraining
   * really trained, which may be fewer than maxPositions (config.json key
   * `ctground_encode_window`; absent = maxPositions)
   */
  encodeWindow?: number;
}

/** The paper's text encoder: BERT-base (12 layers, 768 hidden, 12 heads). Builds; too big to pretrain here. */
export function paperConfig(vocabSize: number): TextEncoderConfig {
  return { vocabSize, hiddenSize: 768, numLayers: 12, numHeads: 12, intermediateSize: 3072, maxPositions: 512, typeVocabSize: 2, layerNormEps: 1e-12, dropout: 0.1, lowercase: true };
}

/** The shipped default: small enough to pretrain on two shared CPU cores within an hour. */
export function smallConfig(vocabSize: number): TextEncoderConfig {
  return { vocabSize, hiddenSize: 256, numLayers: 4, numHeads: 4, intermediateSize: 1024, maxPositions: 512, typeVocabSize: 2, layerNormEps: 1e-12, dropout: 0.1, lowercase: true };
}

export function validateConfig(c: TextEncoderConfig, where: string): void {
  const ints: (keyof TextEncoderConfig)[] = ['vocabSize', 'hiddenSize', 'numLayers', 'numHeads', 'intermediateSize', 'maxPositions', 'typeVocabSize'];
  for (const k of ints) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw fileError(where, `${k} must be a positive integer, got ${String(v)}`);
  }
  if (c.hiddenSize % c.numHeads !== 0) throw fileError(where, `hidden size ${c.hiddenSize} is not divisible by ${c.numHeads} heads`);
  if (!(c.dropout >= 0 && c.dropout < 1)) throw fileError(where, `dropout must be in [0, 1), got ${c.dropout}`);
}

/** HF config.json → config. Unknown activations are refused rather than silently replaced by GELU. */
export function readConfig(path: string): TextEncoderConfig {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw fileError(path, code ? `cannot read (${code})` : `not valid JSON (${(e as Error).message})`);
  }
  const act = j.hidden_act ?? 'gelu';
  if (act !== 'gelu') throw fileError(path, `hidden_act '${String(act)}' is not supported (only exact 'gelu')`);
  if (j.position_embedding_type !== undefined && j.position_embedding_type !== 'absolute') throw fileError(path, `position_embedding_type '${String(j.position_embedding_type)}' is not supported (only 'absolute')`);
  const num = (k: string, dflt?: number): number => {
    const v = j[k] ?? dflt;
    if (typeof v !== 'number') throw fileError(path, `missing or non-numeric '${k}'`);
    return v;
  };
  const c: TextEncoderConfig = {
    vocabSize: num('vocab_size'),
    hiddenSize: num('hidden_size'),
    numLayers: num('num_hidden_layers'),
    numHeads: num('num_attention_heads'),
    intermediateSize: num('intermediate_size'),
    maxPositions: num('max_position_embeddings', 512),
    typeVocabSize: num('type_vocab_size', 2),
    layerNormEps: num('layer_norm_eps', 1e-12),
    dropout: num('hidden_dropout_prob', 0.1),
    lowercase: j.do_lower_case === undefined ? true : Boolean(j.do_lower_case),
  };
  if (j.ctground_encode_window !== undefined) {
    const w = j.ctground_encode_window;
    if (typeof w !== 'number' || !Number.isInteger(w) || w < 3 || w > c.maxPositions) throw fileError(path, `ctground_encode_window must be an integer in 3..${c.maxPositions}, got ${String(w)}`);
    c.encodeWindow = w;
  }
  validateConfig(c, path);
  return c;
}

export function writeConfig(path: string, c: TextEncoderConfig, extra: Record<string, unknown> = {}): void {
  const j = {
    architectures: ['BertForMaskedLM'],
    model_type: 'bert',
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    intermediate_size: c.intermediateSize,
    hidden_act: 'gelu',
    hidden_dropout_prob: c.dropout,
    attention_probs_dropout_prob: c.dropout,
    max_position_embeddings: c.maxPositions,
    type_vocab_size: c.typeVocabSize,
    layer_norm_eps: c.layerNormEps,
    position_embedding_type: 'absolute',
    pad_token_id: 0,
    do_lower_case: c.lowercase,
    ...(c.encodeWindow !== undefined ? { ctground_encode_window: c.encodeWindow } : {}),
    ...extra,
  };
  writeFileAtomic(path, JSON.stringify(j, null, 2) + '\n');
}
