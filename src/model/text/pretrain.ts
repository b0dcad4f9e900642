import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRng, fileError, Progress, UserError, writeFileAtomic, type Rng } from '../../common/index.ts';
import { Graph, InferenceModel, Trainer, adam, ops, type Tensor } from '../../engine/index.ts';
import { readConfig, smallConfig, validateConfig, type TextEncoderConfig } from './config.ts';
import { isHeldOut, readCorpus, type CorpusDocument } from './corpus.ts';
import { buildMlmHead, buildTextEncoder, encoderTensorShapes, mlmHeadTensorShapes, transpose2d, type TextEncoderWeights } from './encoder.ts';
import { makeMlmBatch, maxPredictionsFor, packWindows, sentenceSequences, unigramBaseline, type IdSequence, type MlmBatch } from './mlm.ts';
import { saveTextEncoderFolder, loadTextEncoderFolder } from './checkpoint.ts';
import { trainWordPiece, WordPieceTokenizer } from './tokenizer.ts';

export interface PretrainOptions {
  corpus: string[];
  out: string;
  steps: number;
  seed: number;
  resume: boolean;
  /** encoder shape; vocabSize comes from the vocabulary */
  model?: Partial<Omit<TextEncoderConfig, 'vocabSize'>>;
  /** an existing vocab.txt to use instead of training one */
  vocab?: string;
  vocabSize: number;
  batch: number;
  seqLen: number;
  /** the last `longFraction` of the steps train on windows of `longSeqLen` (BERT's 90 %/10 % schedule) */
  longSeqLen: number;
  longFraction: number;
  longBatch: number;
  lr: number;
  warmup: number;
  /** dropout during pretraining (config.json keeps the model's own for fine-tuning) */
  dropout: number;
  evalEvery: number;
  checkpointEvery: number;
  threads: number;
  /** held-out fraction of documents (fixed by id hash) */
  heldOut: number;
  quiet?: boolean;
  /** with `resume`: options given anew that replace the run's stored ones */
  resumeOverrides?: (keyof PretrainOptions)[];
  /** stop (after a checkpoint) once this step is reached, as an interruption would; for tests */
  stopAt?: number;
}

export const PRETRAIN_DEFAULTS: Omit<PretrainOptions, 'corpus' | 'out'> = {
  steps: 1000, seed: 1, resume: false, vocabSize: 2048, batch: 16, seqLen: 128, longSeqLen: 512, longFraction: 0.1, longBatch: 4,
  lr: 1e-3, warmup: 60, dropout: 0, evalEvery: 250, checkpointEvery: 50, threads: 2, heldOut: 0.1,
};

export interface MlmEval {
  /** mean cross-entropy (nats) over masked positions of held-out sentences */
  loss: number;
  /** top-1 accuracy over all masked positions (80/10/10 corrupted) */
  accuracy: number;
  /** top-1 accuracy over positions replaced by [MASK] only */
  maskAccuracy: number;
  /** the same figures for the unigram model of the training text */
  unigramLoss: number;
  unigramAccuracy: number;
  positions: number;
  sentences: number;
}

interface PretrainState {
  step: number;
  seed: number;
  tokensSeen: number;
  corpus: string[];
  options: Omit<PretrainOptions, 'corpus' | 'out' | 'resume' | 'quiet'>;
  history: { step: number; trainLoss: number; eval?: MlmEval }[];
}

/** Encoder + MLM head weights (HF layout) out of a graph built with buildTextEncoder/buildMlmHead. */
export function weightsFromGraph(g: Graph, config: TextEncoderConfig, prefix = 'bert.'): { weights: TextEncoderWeights; head: TextEncoderWeights } {
  const read = (shapes: Map<string, number[]>, pre: string): TextEncoderWeights => {
    const out: TextEncoderWeights = new Map();
    for (const [name, shape] of shapes) {
      const p = g.params.get(pre + name);
      if (!p) throw new Error(`weightsFromGraph: graph has no parameter ${pre + name}`);
      const isLinear = shape.length === 2 && !name.startsWith('embeddings.');
      // graph layout (in, out) → HF (out, in)
      out.set(name, isLinear ? transpose2d(p.value, shape[1]!, shape[0]!) : Float32Array.from(p.value));
    }
    return out;
  };
  return { weights: read(encoderTensorShapes(config), prefix), head: read(mlmHeadTensorShapes(config), '') };
}

interface MlmGraph {
  graph: Graph;
  loss: Tensor;
  logits: Tensor;
}

function buildMlmGraph(config: TextEncoderConfig, B: number, T: number, P: number, seed: number, dropout: number, weights?: TextEncoderWeights, head?: TextEncoderWeights): MlmGraph {
  const g = new Graph({ seed });
  const ids = g.input('input_ids', [B, T], 'int64');
  const mask = g.input('attention_mask', [B, T]);
  const pos = g.input('mlm_positions', [B * P], 'int64');
  const labels = g.input('mlm_labels', [B * P], 'int64');
  const w = g.input('mlm_weights', [B * P]);
  const enc = buildTextEncoder(g, config, ids, mask, { dropout, weights });
  const logits = buildMlmHead(g, config, enc.hidden, pos, g.params.get('bert.embeddings.word_embeddings.weight')!.tensor, { weights: head ?? undefined });
  const loss = ops.maskedCrossEntropy(logits, labels, w);
  return { graph: g, loss, logits };
}

function feedsOf(b: MlmBatch): Record<string, BigInt64Array | Float32Array> {
  return {
    input_ids: BigInt64Array.from(b.inputIds, (v) => BigInt(v)),
    attention_mask: b.attentionMask,
    mlm_positions: BigInt64Array.from(b.positions, (v) => BigInt(v)),
    mlm_labels: BigInt64Array.from(b.labels, (v) => BigInt(v)),
    mlm_weights: b.weights,
  };
}

/** Fixed evaluation batches: every held-out sentence, masked once with a seed of its own. */
export function evalBatches(sentences: IdSequence[], tok: WordPieceTokenizer, seed: number, T = 64, B = 64): MlmBatch[] {
  const rng = createRng(seed).fork('mlm-eval');
  const P = maxPredictionsFor(T);
  const out: MlmBatch[] = [];
  for (let i = 0; i < sentences.length; i += B) {
    const chunk = sentences.slice(i, i + B);
    while (chunk.length < B) chunk.push(new Int32Array(0)); // empty rows: weight 0 everywhere
    out.push(makeMlmBatch(chunk, tok, T, P, rng));
  }
  return out;
}

/** Masked-token loss and accuracy of encoder + head weights on fixed batches (inference graph, no dropout). */
export async function evaluateMlm(config: TextEncoderConfig, weights: TextEncoderWeights, head: TextEncoderWeights, batches: MlmBatch[], threads = 2): Promise<Pick<MlmEval, 'loss' | 'accuracy' | 'maskAccuracy' | 'positions'>> {
  if (batches.length === 0) throw new Error('evaluateMlm: no batches');
  const b0 = batches[0]!;
  const m = buildMlmGraph(config, b0.batch, b0.seqLen, b0.maxPredictions, 0, 0, weights, head);
  const logp = ops.logSoftmax(m.logits, -1);
  const model = await InferenceModel.create(m.graph, { logp }, { threads });
  const V = config.vocabSize;
  let loss = 0, hits = 0, n = 0, maskHits = 0, maskN = 0;
  try {
    for (const b of batches) {
      const f = feedsOf(b);
      const out = (await model.run({ input_ids: f.input_ids!, attention_mask: f.attention_mask!, mlm_positions: f.mlm_positions! })).logp as Float32Array;
      for (let i = 0; i < b.labels.length; i++) {
        if (b.weights[i] === 0) continue;
        const row = out.subarray(i * V, (i + 1) * V);
        let best = 0;
        for (let v = 1; v < V; v++) if (row[v]! > row[best]!) best = v;
        loss -= row[b.labels[i]!]!;
        const hit = best === b.labels[i] ? 1 : 0;
        hits += hit; n++;
        if (b.kinds[i] === 0) { maskHits += hit; maskN++; }
      }
    }
  } finally {
    await model.dispose();
  }
  return { loss: loss / n, accuracy: hits / n, maskAccuracy: maskHits / Math.max(1, maskN), positions: n };
}

/** Documents of all corpus files, split into training and held-out by the fixed id hash. */
export function loadCorpora(files: string[], heldOut: number): { train: CorpusDocument[]; held: CorpusDocument[] } {
  if (files.length === 0) throw new UserError('no corpus given (--corpus FILE …)');
  const docs = files.flatMap((f) => readCorpus(f));
  const held = docs.filter((d) => isHeldOut(d.id, heldOut));
  const train = docs.filter((d) => !isHeldOut(d.id, heldOut));
  if (train.length === 0) throw new UserError(`${files.join(', ')}: every document fell in the held-out split; give more text`);
  return { train, held };
}

/** One training stream per sequence length: windows reshuffled every epoch from a seed. */
class WindowStream {
  private epochOrder: IdSequence[] | null = null;
  private epochIndex = -1;

  constructor(private readonly docs: IdSequence[], private readonly seqLen: number, private readonly sep: number, private readonly rng: Rng) {}

  /** the B windows of batch number k of this stream (deterministic in k, so a resumed run sees the same data) */
  batch(k: number, B: number): IdSequence[] {
    const out: IdSequence[] = [];
    for (let i = k * B; i < (k + 1) * B; i++) out.push(this.window(i));
    return out;
  }

  private window(i: number): IdSequence {
    let total = 0;
    for (const d of this.docs) total += d.length + 1;
    const n = Math.ceil(total / (this.seqLen - 2));
    const e = Math.floor(i / n);
    return this.order(e)[i - e * n]!;
  }

  private order(e: number): IdSequence[] {
    if (this.epochIndex !== e) {
      const r = this.rng.fork(`epoch${e}`);
      // a new document order per epoch moves window boundaries too, not just their order
      const docs = r.shuffle([...this.docs]);
      this.epochOrder = r.shuffle(packWindows(docs, this.seqLen, this.sep));
      this.epochIndex = e;
    }
    return this.epochOrder!;
  }
}

function lrAt(step: number, o: PretrainOptions): number {
  // linear warm-up, then linear decay to 10 % of the peak
  if (step < o.warmup) return (o.lr * (step + 1)) / o.warmup;
  const f = (step - o.warmup) / Math.max(1, o.steps - o.warmup);
  return o.lr * (1 - 0.9 * Math.min(1, f));
}

/**
 * Masked-LM pretraining (BERT's recipe, scaled down): trains a WordPiece vocabulary on the
 * training documents unless one is given, then runs `steps` Adam steps on packed windows with
 * 15 % masking (80/10/10), the last `longFraction` of them at `longSeqLen` so every position
 * embedding up to 512 is trained. Checkpoints (engine format, with optimizer state) go to
 * OUT/checkpoint/, the usable encoder folder (config.json, vocab.txt, model.safetensors) to OUT.
 * `resume` continues from OUT's last checkpoint with the same data order and masks.
 */
export async function pretrainText(opts: PretrainOptions): Promise<{ state: PretrainState; eval: MlmEval | null }> {
  const o = opts;
  const log = (s: string) => { if (!o.quiet) process.stderr.write(s + '\n'); };
  const statePath = join(o.out, 'pretrain-state.json');
  const ckptPath = join(o.out, 'checkpoint', 'last.safetensors');
  let state: PretrainState | null = null;
  let config: TextEncoderConfig;
  let tok: WordPieceTokenizer;
  const { train, held } = loadCorpora(o.corpus, o.heldOut);

  if (o.resume) {
    if (!existsSync(statePath) || !existsSync(ckptPath)) throw fileError(o.out, 'nothing to resume (no pretrain-state.json and checkpoint/last.safetensors); run without --resume');
    try {
      state = JSON.parse(readFileSync(statePath, 'utf8')) as PretrainState;
    } catch {
      throw fileError(statePath, 'corrupt (not JSON)');
    }
    config = readConfig(join(o.out, 'config.json'));
    tok = WordPieceTokenizer.load(join(o.out, 'vocab.txt'), config.lowercase);
    if (state.seed !== o.seed) log(`resume: using the run's seed ${state.seed} (not ${o.seed})`);
    // the run's stored options win, except the step count, the bookkeeping and any option the
    // caller names in `resumeOverrides` (e.g. a longer 512-token phase for the added steps)
    const keep: Partial<PretrainOptions> = { steps: o.steps, evalEvery: o.evalEvery, checkpointEvery: o.checkpointEvery, threads: o.threads };
    for (const k of o.resumeOverrides ?? []) (keep as Record<string, unknown>)[k] = o[k];
    Object.assign(o, { ...state.options, ...keep });
    state.options = stripOptions(o);
    o.seed = state.seed;
  } else {
    if (existsSync(statePath)) throw fileError(o.out, 'already holds a pretraining run; use --resume to continue it or choose another --out');
    tok = o.vocab ? WordPieceTokenizer.load(o.vocab) : trainWordPiece(train.map((d) => d.text), { vocabSize: o.vocabSize });
    config = { ...smallConfig(tok.size), ...o.model, vocabSize: tok.size };
    validateConfig(config, 'model options');
  }

  const trainIds = train.map((d) => Int32Array.from(tok.tokenize(d.text), (t) => t.id));
  const trainTokens = trainIds.reduce((a, d) => a + d.length, 0);
  const heldSentences = sentenceSequences(held, tok, 64);
  const evalSet = evalBatches(heldSentences, tok, o.seed);
  const special = new Set([tok.pad, tok.unk, tok.cls, tok.sep, tok.mask]);
  const uni = evalSet.length ? unigramBaseline(trainIds, tok.size, evalSet, special) : { loss: NaN, accuracy: NaN };
  log(`pretrain-text: ${train.length} training documents (${trainTokens} tokens), ${held.length} held-out (${heldSentences.length} sentences); vocabulary ${tok.size}; ${config.numLayers} layers × ${config.hiddenSize} hidden × ${config.numHeads} heads`);

  const longStart = Math.min(o.steps, Math.round(o.steps * (1 - o.longFraction)));
  const phases = [
    { from: 0, to: longStart, T: Math.min(o.seqLen, config.maxPositions), B: o.batch },
    { from: longStart, to: o.steps, T: Math.min(o.longSeqLen, config.maxPositions), B: o.longBatch },
  ].filter((p) => p.to > p.from);

  state ??= { step: 0, seed: o.seed, tokensSeen: 0, corpus: o.corpus, options: stripOptions(o), history: [] };
  const saveAll = (trainer: Trainer, g: Graph) => {
    trainer.save(ckptPath);
    const { weights, head } = weightsFromGraph(g, config);
    saveTextEncoderFolder(o.out, config, tok, weights, head, { step: String(state!.step), seed: String(o.seed) });
    writeFileAtomic(statePath, JSON.stringify(state, null, 2) + '\n');
  };
  const runEval = async (g: Graph): Promise<MlmEval | null> => {
    if (evalSet.length === 0) return null;
    const { weights, head } = weightsFromGraph(g, config);
    const r = await evaluateMlm(config, weights, head, evalSet, o.threads);
    return { ...r, unigramLoss: uni.loss, unigramAccuracy: uni.accuracy, sentences: heldSentences.length };
  };

  let last: MlmEval | null = null;
  if (!o.resume) {
    // fresh run: write vocab and config now so an interrupted first phase can still be resumed
    const g0 = buildMlmGraph(config, 1, 8, 1, o.seed, 0);
    const { weights, head } = weightsFromGraph(g0.graph, config);
    saveTextEncoderFolder(o.out, config, tok, weights, head, { step: '0', seed: String(o.seed) });
  }
  // counts only this invocation's steps, so rate and ETA stay right after a resume
  const startStep = state.step;
  const progress = new Progress('pretrain-text', Math.max(0, o.steps - startStep), 'step');
  const rootRng = createRng(o.seed);
  for (const [pi, ph] of phases.entries()) {
    if (state.step >= ph.to) continue;
    const P = maxPredictionsFor(ph.T);
    const m = buildMlmGraph(config, ph.B, ph.T, P, o.seed, o.dropout);
    const trainer = await Trainer.create(m.graph, { loss: m.loss, optimizer: adam(o.lr, { weightDecay: 0.01, clipNorm: 1 }), seed: o.seed, threads: o.threads });
    if (existsSync(ckptPath) && (o.resume || state.step > 0)) {
      trainer.load(ckptPath);
      if (trainer.stepCount !== state.step) throw fileError(ckptPath, `checkpoint is at step ${trainer.stepCount} but pretrain-state.json says ${state.step}`);
    } else if (pi > 0) throw new Error('pretrain: a later phase needs the checkpoint of the previous one');
    const stream = new WindowStream(trainIds, ph.T, tok.sep, rootRng.fork(`windows${ph.T}`));
    let t0 = Date.now(), tokSince = 0, lossAvg = NaN;
    while (state.step < ph.to) {
      if (o.stopAt !== undefined && state.step >= o.stopAt) { saveAll(trainer, m.graph); await trainer.dispose(); return { state, eval: null }; }
      const s = state.step;
      const seqs = stream.batch(s - ph.from, ph.B);
      const batch = makeMlmBatch(seqs, tok, ph.T, P, rootRng.fork(`mask${s}`));
      const r = await trainer.step(feedsOf(batch), { lr: lrAt(s, o) });
      if (!Number.isFinite(r.loss)) throw new Error(`pretrain: loss became ${r.loss} at step ${s + 1}; try a lower --lr`);
      state.step = s + 1;
      let real = 0;
      for (const v of batch.attentionMask) real += v;
      state.tokensSeen += real;
      tokSince += real;
      lossAvg = Number.isNaN(lossAvg) ? r.loss : 0.95 * lossAvg + 0.05 * r.loss;
      const secs = (Date.now() - t0) / 1000;
      progress.set(state.step - startStep, `step ${state.step}/${o.steps} loss ${lossAvg.toFixed(3)} ${(tokSince / Math.max(secs, 1e-3)).toFixed(0)} tok/s T=${ph.T}`);
      const entry: PretrainState['history'][number] = { step: state.step, trainLoss: lossAvg };
      if (state.step % o.evalEvery === 0 || state.step === o.steps) {
        last = await runEval(m.graph);
        if (last) {
          entry.eval = last;
          log(`\n  step ${state.step}: held-out masked loss ${last.loss.toFixed(3)} (unigram ${last.unigramLoss.toFixed(3)}), accuracy ${(100 * last.accuracy).toFixed(1)} % ([MASK] only ${(100 * last.maskAccuracy).toFixed(1)} %)`);
        }
        t0 = Date.now(); tokSince = 0;
      }
      if (entry.eval || state.step % 10 === 0) state.history.push(entry);
      if (state.step % o.checkpointEvery === 0 || state.step === ph.to) saveAll(trainer, m.graph);
    }
    await trainer.dispose();
  }
  progress.finish();
  if (!last && evalSet.length) {
    // resumed at the end, or steps not a multiple of evalEvery: evaluate the saved weights
    const f = loadTextEncoderFolder(o.out);
    const r = await evaluateMlm(f.config, f.weights, f.head!, evalSet, o.threads);
    last = { ...r, unigramLoss: uni.loss, unigramAccuracy: uni.accuracy, sentences: heldSentences.length };
  }
  return { state, eval: last };
}

function stripOptions(o: PretrainOptions): PretrainState['options'] {
  const { corpus: _c, out: _o, resume: _r, quiet: _q, stopAt: _s, resumeOverrides: _ro, ...rest } = o;
  return rest;
}
