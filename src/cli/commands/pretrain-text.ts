import { intFlag, numFlag, parseFlags, requireFlag } from '../args.ts';
import { UserError } from '../../common/index.ts';
import { PRETRAIN_DEFAULTS, pretrainText, shipTextEncoderFolder } from '../../model/index.ts';

export const summary = 'masked-LM pretraining of the report text encoder';

export const USAGE = `usage: ctground pretrain-text --corpus FILE [--corpus FILE …] --out DIR [--steps N] [--resume] [--seed S]
  --corpus FILE      .csv with Findings_EN/Impressions_EN columns (one report per row) or a text file
                     (one document per blank-line block); repeatable
  --out DIR          writes config.json, vocab.txt, model.safetensors (HF BERT layout), checkpoint/, pretrain-state.json
  --steps N          optimizer steps (default ${PRETRAIN_DEFAULTS.steps})
  --resume           continue the run in DIR from its last checkpoint (same data order and masks);
                     --steps, --lr, --seq-len, --batch, --long-fraction, --long-batch, --dropout given with it replace the run's values
  --seed S           seed of initialization, data order and masking (default ${PRETRAIN_DEFAULTS.seed})
  --vocab FILE       use this vocab.txt instead of training one (default: WordPiece, --vocab-size ${PRETRAIN_DEFAULTS.vocabSize})
  --layers N --hidden N --heads N --intermediate N   encoder shape (default 4 × 256 × 4, 1024)
  --batch N --seq-len N    short-phase batch (default ${PRETRAIN_DEFAULTS.batch}) and window length (default ${PRETRAIN_DEFAULTS.seqLen})
  --long-batch N --long-fraction F   the last F of the steps use 512-token windows (default ${PRETRAIN_DEFAULTS.longBatch}, ${PRETRAIN_DEFAULTS.longFraction})
  --lr X --warmup N --dropout P      peak learning rate (default ${PRETRAIN_DEFAULTS.lr}), warm-up steps (${PRETRAIN_DEFAULTS.warmup}), dropout (${PRETRAIN_DEFAULTS.dropout})
  --eval-every N --checkpoint-every N --threads N
  --ship DIR         afterwards, copy config.json, vocab.txt and the weights in F16 to DIR (how models/text-default is made)`;

export async function run(argv: string[]): Promise<number> {
  const { values: v } = parseFlags(argv, {
    corpus: { type: 'string', multiple: true }, out: { type: 'string' }, steps: { type: 'string' }, resume: { type: 'boolean' }, seed: { type: 'string' },
    vocab: { type: 'string' }, 'vocab-size': { type: 'string' }, layers: { type: 'string' }, hidden: { type: 'string' }, heads: { type: 'string' }, intermediate: { type: 'string' },
    batch: { type: 'string' }, 'seq-len': { type: 'string' }, 'long-batch': { type: 'string' }, 'long-fraction': { type: 'string' },
    lr: { type: 'string' }, warmup: { type: 'string' }, dropout: { type: 'string' }, 'eval-every': { type: 'string' }, 'checkpoint-every': { type: 'string' },
    threads: { type: 'string' }, ship: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  }, false);
  if (v.help) { console.log(USAGE); return 0; }
  const d = PRETRAIN_DEFAULTS;
  const corpus = v.corpus ?? [];
  if (corpus.length === 0) throw new UserError('missing required option --corpus');
  const model: Record<string, number> = {};
  if (v.layers !== undefined) model.numLayers = intFlag(v.layers, 'layers', 4);
  if (v.hidden !== undefined) model.hiddenSize = intFlag(v.hidden, 'hidden', 256);
  if (v.heads !== undefined) model.numHeads = intFlag(v.heads, 'heads', 4);
  if (v.intermediate !== undefined) model.intermediateSize = intFlag(v.intermediate, 'intermediate', 1024);
  else if (model.hiddenSize !== undefined) model.intermediateSize = 4 * model.hiddenSize;
  const pos = (n: number, flag: string) => { if (!(n > 0)) throw new UserError(`--${flag} must be positive, got ${n}`); return n; };
  const res = await pretrainText({
    corpus,
    out: requireFlag(v.out, 'out'),
    steps: pos(intFlag(v.steps, 'steps', d.steps), 'steps'),
    seed: intFlag(v.seed, 'seed', d.seed),
    resume: Boolean(v.resume),
    vocab: v.vocab,
    vocabSize: pos(intFlag(v['vocab-size'], 'vocab-size', d.vocabSize), 'vocab-size'),
    model,
    batch: pos(intFlag(v.batch, 'batch', d.batch), 'batch'),
    seqLen: pos(intFlag(v['seq-len'], 'seq-len', d.seqLen), 'seq-len'),
    longSeqLen: d.longSeqLen,
    longBatch: pos(intFlag(v['long-batch'], 'long-batch', d.longBatch), 'long-batch'),
    longFraction: numFlag(v['long-fraction'], 'long-fraction', d.longFraction),
    lr: pos(numFlag(v.lr, 'lr', d.lr), 'lr'),
    warmup: intFlag(v.warmup, 'warmup', d.warmup),
    dropout: numFlag(v.dropout, 'dropout', d.dropout),
    evalEvery: pos(intFlag(v['eval-every'], 'eval-every', d.evalEvery), 'eval-every'),
    checkpointEvery: pos(intFlag(v['checkpoint-every'], 'checkpoint-every', d.checkpointEvery), 'checkpoint-every'),
    threads: pos(intFlag(v.threads, 'threads', d.threads), 'threads'),
    heldOut: d.heldOut,
    // on --resume these flags, when given, replace the stored run's settings
    resumeOverrides: (['lr', 'long-fraction', 'long-batch', 'dropout', 'seq-len', 'batch'] as const).filter((f) => v[f] !== undefined)
      .map((f) => ({ lr: 'lr', 'long-fraction': 'longFraction', 'long-batch': 'longBatch', dropout: 'dropout', 'seq-len': 'seqLen', batch: 'batch' } as const)[f]),
  });
  const e = res.eval;
  console.log(`pretrain-text: ${res.state.step} steps, ${res.state.tokensSeen} tokens seen, seed ${res.state.seed}`);
  if (e) console.log(`held-out (${e.sentences} sentences, ${e.positions} masked tokens): loss ${e.loss.toFixed(3)} nats vs unigram ${e.unigramLoss.toFixed(3)}; accuracy ${(100 * e.accuracy).toFixed(1)} % (unigram ${(100 * e.unigramAccuracy).toFixed(1)} %), [MASK]-only ${(100 * e.maskAccuracy).toFixed(1)} %`);
  if (v.ship) {
    const meta: Record<string, string> = { step: String(res.state.step), seed: String(res.state.seed) };
    if (e) Object.assign(meta, { heldout_masked_loss: e.loss.toFixed(4), heldout_masked_accuracy: e.accuracy.toFixed(4), heldout_unigram_loss: e.unigramLoss.toFixed(4) });
    shipTextEncoderFolder(requireFlag(v.out, 'out'), v.ship, meta);
    console.log(`shipped to ${v.ship}`);
  }
  return 0;
}
