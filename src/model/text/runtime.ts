import { join } from 'node:path';
import { projectRoot } from '../../common/index.ts';
import { Graph, InferenceModel, exportOnnx, type SessionOptions, type Tensor } from '../../engine/index.ts';
import { loadTextEncoderFolder, type TextEncoderFolder } from './checkpoint.ts';
import { buildTextEncoder } from './encoder.ts';
import type { TextEncoderConfig } from './config.ts';
import type { Token, WordPieceTokenizer } from './tokenizer.ts';
import { charTokenIndex, tokenWindows } from './chars.ts';

export const DEFAULT_TEXT_ENCODER_DIR = join(projectRoot, 'models', 'text-default');

/** Per-character embeddings of one text: r[j] for every character j (the paper's r_1…r_{N_C}). */
export interface CharacterEmbeddings {
  /** text.length × hidden, row j = embedding of the token covering character j (zeros where none) */
  data: Float32Array;
  hidden: number;
  length: number;
  tokens: Token[];
  /** token index covering each character, −1 for whitespace and dropped characters */
  charToken: Int32Array;
}

// Static shapes: one inference session per padded length; rounding up to a multiple of 64 bounds
// the number of sessions (8 for 512 positions) while wasting at most 63 padded tokens.
const LENGTH_STEP = 64;

/**
 * The pretrained text encoder for inference: tokenizes, runs the encoder graph (inference mode:
 * no dropout, weights baked in) and maps token states back to characters.
 */
export class ReportTextEncoder {
  private readonly sessions = new Map<number, Promise<InferenceModel>>();

  /** `opts` unset take the session defaults (CTGROUND_THREADS, ORT's spinning) */
  constructor(readonly folder: TextEncoderFolder, private readonly opts: Pick<SessionOptions, 'threads' | 'spinning'> = {}) {}

  get config(): TextEncoderConfig { return this.folder.config; }
  get tokenizer(): WordPieceTokenizer { return this.folder.tokenizer; }
  get hiddenSize(): number { return this.folder.config.hiddenSize; }

  /** The inference graph for a (1, T) input, as a standalone ONNX model (weights inside). */
  static inferenceGraph(folder: TextEncoderFolder, T: number): { graph: Graph; hidden: Tensor } {
    const g = new Graph({ seed: 0 });
    const ids = g.input('input_ids', [1, T], 'int64');
    const mask = g.input('attention_mask', [1, T]);
    const { hidden } = buildTextEncoder(g, folder.config, ids, mask, { weights: folder.weights, dropout: 0 });
    return { graph: g, hidden };
  }

  static exportOnnx(folder: TextEncoderFolder, T: number): Uint8Array {
    const { graph, hidden } = ReportTextEncoder.inferenceGraph(folder, T);
    return exportOnnx(graph, { hidden });
  }

  private session(T: number): Promise<InferenceModel> {
    let s = this.sessions.get(T);
    if (!s) {
      const { graph, hidden } = ReportTextEncoder.inferenceGraph(this.folder, T);
      s = InferenceModel.create(graph, { hidden }, this.opts);
      this.sessions.set(T, s);
    }
    return s;
  }

  /**
   * Hidden states of one sequence of token ids (without [CLS]/[SEP]; at most maxPositions − 2):
   * returns (ids.length × hidden), the states of the tokens themselves.
   */
  async encodeIds(ids: ArrayLike<number>): Promise<Float32Array> {
    const n = ids.length;
    const maxBody = this.config.maxPositions - 2;
    if (n > maxBody) throw new Error(`encodeIds: ${n} tokens exceed ${maxBody}`);
    const T = Math.min(this.config.maxPositions, Math.ceil((n + 2) / LENGTH_STEP) * LENGTH_STEP);
    const tok = this.tokenizer;
    const feedIds = new BigInt64Array(T).fill(BigInt(tok.pad));
    const mask = new Float32Array(T);
    feedIds[0] = BigInt(tok.cls);
    for (let i = 0; i < n; i++) feedIds[1 + i] = BigInt(ids[i]!);
    feedIds[n + 1] = BigInt(tok.sep);
    mask.fill(1, 0, n + 2);
    const model = await this.session(T);
    const { hidden } = await model.run({ input_ids: feedIds, attention_mask: mask });
    const H = this.hiddenSize;
    return (hidden as Float32Array).slice(H, H * (n + 1));
  }

  /**
   * Hidden state of every token of `text`. Texts longer than the encode window (config
   * `encodeWindow`, default the position table) are encoded in sentence-aligned windows.
   */
  async encode(text: string): Promise<{ tokens: Token[]; states: Float32Array }> {
    const tokens = this.tokenizer.tokenize(text);
    const H = this.hiddenSize;
    const states = new Float32Array(tokens.length * H);
    const window = Math.min(this.config.encodeWindow ?? this.config.maxPositions, this.config.maxPositions) - 2;
    for (const w of tokenWindows(text, tokens, window)) {
      const ids = tokens.slice(w.from, w.to).map((t) => t.id);
      states.set(await this.encodeIds(ids), w.from * H);
    }
    return { tokens, states };
  }

  /**
   * r[j] for every character j: the final hidden state of the token that covers it. Characters
   * no token covers (whitespace, control characters) get a ZERO vector: they carry no content, a
   * zero row adds nothing when the aggregator pools or sums character embeddings, and the
   * grounding model can still learn a whitespace vector of its own from `charToken` (−1) if it
   * wants word boundaries. A learned vector here would be one more thing pretraining never trains,
   * since MLM never predicts whitespace.
   */
  async characterEmbeddings(text: string): Promise<CharacterEmbeddings> {
    const { tokens, states } = await this.encode(text);
    const H = this.hiddenSize;
    const charToken = charTokenIndex(tokens, text.length);
    const data = new Float32Array(text.length * H);
    for (let j = 0; j < text.length; j++) {
      const k = charToken[j]!;
      if (k >= 0) data.set(states.subarray(k * H, (k + 1) * H), j * H);
    }
    return { data, hidden: H, length: text.length, tokens, charToken };
  }

  /** Input-embedding row of a token (the static word vector, for similarity checks). */
  wordVector(token: string): Float32Array | null {
    const id = this.tokenizer.ids.get(token);
    if (id === undefined) return null;
    const H = this.hiddenSize;
    return this.folder.weights.get('embeddings.word_embeddings.weight')!.slice(id * H, (id + 1) * H);
  }

  async dispose(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).dispose();
    this.sessions.clear();
  }
}

/** Loads a text-encoder folder (default `models/text-default/`); a UserError names any missing or bad file or tensor. */
export function loadTextEncoder(dir: string = DEFAULT_TEXT_ENCODER_DIR, opts: Pick<SessionOptions, 'threads' | 'spinning'> = {}): ReportTextEncoder {
  return new ReportTextEncoder(loadTextEncoderFolder(dir), opts);
}
