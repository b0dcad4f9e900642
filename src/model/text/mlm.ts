import type { Rng } from '../../common/index.ts';
import type { WordPieceTokenizer } from './tokenizer.ts';
import { splitSentences, type CorpusDocument } from './corpus.ts';

/**
 * One masked-LM batch with FIXED shapes, so one compiled training graph serves every step:
 * `inputIds`/`attentionMask` are [batch, seqLen]; the P = maxPredictions masked positions of each
 * sequence are listed in `positions` (flat indices into batch·seqLen) with their true `labels` and
 * a `weights` of 1 (0 for padding slots when a sequence had fewer maskable tokens).
 */
export interface MlmBatch {
  batch: number;
  seqLen: number;
  maxPredictions: number;
  inputIds: Int32Array;
  attentionMask: Float32Array;
  positions: Int32Array;
  labels: Int32Array;
  weights: Float32Array;
  /** how each masked position was corrupted: 0 = [MASK], 1 = random token, 2 = kept */
  kinds: Uint8Array;
}

/** A sequence of token ids without [CLS]/[SEP]. */
export type IdSequence = Int32Array;

/**
 * Training windows: the training documents' tokens are laid end to end (documents separated by
 * [SEP]) and cut into windows of exactly seqLen − 2 tokens, each then framed by [CLS] … [SEP].
 * Full windows waste no compute on padding and train every position embedding up to seqLen.
 */
export function packWindows(docs: IdSequence[], seqLen: number, sep: number): IdSequence[] {
  const body = seqLen - 2;
  let total = 0;
  for (const d of docs) total += d.length + 1;
  const stream = new Int32Array(total);
  let o = 0;
  for (const d of docs) { stream.set(d, o); o += d.length; stream[o++] = sep; }
  const out: IdSequence[] = [];
  for (let s = 0; s < stream.length; s += body) out.push(stream.subarray(s, Math.min(stream.length, s + body)));
  return out;
}

/** Held-out evaluation sequences: every sentence of the documents on its own (truncated to seqLen − 2). */
export function sentenceSequences(docs: CorpusDocument[], tok: WordPieceTokenizer, seqLen: number): IdSequence[] {
  const out: IdSequence[] = [];
  for (const d of docs) {
    for (const s of splitSentences(d.text)) {
      const ids = tok.tokenize(d.text.slice(s.start, s.end)).map((t) => t.id);
      if (ids.length < 2) continue;
      out.push(Int32Array.from(ids.slice(0, seqLen - 2)));
    }
  }
  return out;
}

/** BERT's max_predictions_per_seq for a 15 % rate: enough slots for every sequence of this length. */
export function maxPredictionsFor(seqLen: number, rate = 0.15): number {
  return Math.max(1, Math.ceil((seqLen - 2) * rate));
}

/**
 * Builds a batch: 15 % of the real tokens of each sequence are chosen (at least one), and of those
 * 80 % become [MASK], 10 % a random vocabulary token, 10 % stay as they are (BERT's 80/10/10, so
 * the encoder cannot assume every visible token is genuine).
 */
export function makeMlmBatch(seqs: IdSequence[], tok: WordPieceTokenizer, seqLen: number, maxPredictions: number, rng: Rng, rate = 0.15): MlmBatch {
  const B = seqs.length;
  const inputIds = new Int32Array(B * seqLen).fill(tok.pad);
  const attentionMask = new Float32Array(B * seqLen);
  const positions = new Int32Array(B * maxPredictions);
  const labels = new Int32Array(B * maxPredictions);
  const weights = new Float32Array(B * maxPredictions);
  const kinds = new Uint8Array(B * maxPredictions);
  const special = new Set([tok.pad, tok.unk, tok.cls, tok.sep, tok.mask]);
  // Random replacements are drawn from ordinary tokens only: specials would teach nothing.
  const firstOrdinary = Math.max(...[tok.pad, tok.cls, tok.sep, tok.mask, tok.unk]) + 1;
  for (let b = 0; b < B; b++) {
    const s = seqs[b]!;
    const n = Math.min(s.length, seqLen - 2);
    const row = b * seqLen;
    inputIds[row] = tok.cls;
    for (let i = 0; i < n; i++) inputIds[row + 1 + i] = s[i]!;
    inputIds[row + 1 + n] = tok.sep;
    for (let i = 0; i < n + 2; i++) attentionMask[row + i] = 1;
    const candidates: number[] = [];
    for (let i = 0; i < n; i++) if (!special.has(s[i]!)) candidates.push(1 + i);
    rng.shuffle(candidates);
    const k = Math.min(maxPredictions, candidates.length, Math.max(1, Math.round(candidates.length * rate)));
    const chosen = candidates.slice(0, k).sort((x, y) => x - y);
    for (let p = 0; p < maxPredictions; p++) {
      const slot = b * maxPredictions + p;
      if (p >= chosen.length) { positions[slot] = row; labels[slot] = tok.pad; weights[slot] = 0; continue; }
      const pos = row + chosen[p]!;
      positions[slot] = pos;
      labels[slot] = inputIds[pos]!;
      weights[slot] = 1;
      const u = rng.next();
      if (u < 0.8) { inputIds[pos] = tok.mask; kinds[slot] = 0; } else if (u < 0.9) { inputIds[pos] = rng.int(firstOrdinary, tok.size - 1); kinds[slot] = 1; } else kinds[slot] = 2;
    }
  }
  return { batch: B, seqLen, maxPredictions, inputIds, attentionMask, positions, labels, weights, kinds };
}

/**
 * Cross-entropy of the unigram model (training token frequencies, add-one smoothed) on the masked
 * labels of the given batches: the baseline a masked LM must beat by using context at all.
 */
export function unigramBaseline(trainSeqs: IdSequence[], vocabSize: number, batches: MlmBatch[], special: ReadonlySet<number> = new Set()): { loss: number; accuracy: number } {
  const counts = new Float64Array(vocabSize).fill(1);
  let total = vocabSize;
  for (const s of trainSeqs) for (const id of s) if (!special.has(id)) { counts[id]! += 1; total += 1; }
  let argmax = 0;
  for (let i = 0; i < vocabSize; i++) if (counts[i]! > counts[argmax]!) argmax = i;
  let loss = 0, hits = 0, n = 0;
  for (const b of batches) {
    for (let i = 0; i < b.labels.length; i++) {
      if (b.weights[i] === 0) continue;
      loss -= Math.log(counts[b.labels[i]!]! / total);
      if (b.labels[i] === argmax) hits++;
      n++;
    }
  }
  return { loss: loss / n, accuracy: hits / n };
}
