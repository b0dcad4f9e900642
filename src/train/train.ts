import { existsSync, mkdirSync, readFileSync, appendFileSync, copyFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { createRng, fileError, formatSeconds, Progress, UserError, writeFileAtomic } from '../common/index.ts';
import { InferenceModel, Trainer, adam, saveParams } from '../engine/index.ts';
import {
  buildTrainGraph, defaultConfig, isBoxModel, widenImageInput, WeightMismatch, loadTextEncoder, mapFromLogits, readModelConfig, readWeights, textEncoderSha256,
  type GroundingConfig, type Variant, type ReportTextEncoder, type Weights,
} from '../model/index.ts';
import { ACCURACY_IOU, ACCURACY_THRESHOLD, readManifest, type ManifestStudy } from '../eval/index.ts';
import { makeBatch, prepareSamples, type Sample, type SampleSet } from './samples.ts';
import { lossCurveSvg } from './svg.ts';

export interface TrainOptions {
  /** one dataset folder, or several (their train splits are pooled, as are their val splits) */
  data: string | string[];
  /** start from this trained model folder's weights (same architecture); its network settings are kept */
  init?: string;
  variant: Variant;
  out: string;
  steps: number;
  seed: number;
  batch: number;
  lr: number;
  resume: boolean;
  /** text encoder folder (frozen; its states are computed once per report) */
  textDir: string;
  /** overrides of the default config (grid, widths, …) */
  config?: Partial<GroundingConfig>;
  /** crop.maxSpacingMm for this run, also over an --init model's (null: one cube per organ, no tiles) */
  maxSpacingMm?: number | null;
  /** crop.windows for this run; over an --init model's they must start with its windows (added channels start at zero weight) */
  windows?: [number, number][];
  /** validate (and checkpoint) every this many steps; 0 = once per epoch over the training samples */
  validateEvery?: number;
  /** cap on training studies (quick runs, tests) */
  maxStudies?: number;
  /**
   * class-balanced sampling: a training sample is drawn with weight n^-balance, n = the training
   * samples of its kind (background, organ, type); 0 or absent: uniform
   */
  balance?: number;
  quiet?: boolean;
  /** the command line, recorded in config.json */
  command?: string;
}

export interface LogEntry { step: number; loss: number; dice: number; valDice?: number; valHit?: number; valLoss?: number; seconds: number }

export interface TrainResult {
  bestValDice: number; bestValHit: number; bestStep: number; log: LogEntry[]; stepsPerSecond: number;
  /** training samples: one per anomaly, plus a tile away from it for anomalies of tiled organs */
  samples: number;
  anomalies: number;
}

const SHIFT_PAD = 4;

/** Soft Dice of thresholded predictions (at 0.5) against soft targets, averaged over samples. */
export function batchDice(prob: ArrayLike<number>, target: ArrayLike<number>, perSample: number): number[] {
  const out: number[] = [];
  for (let b = 0; b * perSample < prob.length; b++) {
    let inter = 0, p = 0, t = 0;
    for (let i = b * perSample; i < (b + 1) * perSample; i++) {
      const pv = prob[i]! >= 0.5 ? 1 : 0, tv = target[i]! >= 0.5 ? 1 : 0;
      inter += pv * tv; p += pv; t += tv;
    }
    out.push(p + t === 0 ? 1 : (2 * inter) / (p + t));
  }
  return out;
}

/**
 * Soft Dice 2Σpt / (Σp + Σt + 1) per sample: the validation score. Unlike Dice at 0.5 it moves
 * while the maps are still faint, so the best checkpoint is chosen by real progress.
 */
export function softDice(prob: ArrayLike<number>, target: ArrayLike<number>, perSample: number): number[] {
  const out: number[] = [];
  for (let b = 0; b * perSample < prob.length; b++) {
    let inter = 0, p = 0, t = 0;
    for (let i = b * perSample; i < (b + 1) * perSample; i++) { inter += prob[i]! * target[i]!; p += prob[i]!; t += target[i]!; }
    out.push((2 * inter + 1) / (p + t + 1));
  }
  return out;
}

/**
 * The grounding-accuracy test at crop level, per sample: the map (minPeak rule applied) above 0.1
 * against the soft target, IoU = Σ_{p>0.1} t / (#{p>0.1} + Σt − Σ_{p>0.1} t) > 0.1. It is what
 * `ctground eval` counts, without the paste back onto the CT grid.
 */
export function cropHits(cfg: GroundingConfig, logits: Float32Array, target: ArrayLike<number>, perSample: number): number[] {
  return mapHits(sampleMaps(cfg, logits, perSample), target, perSample);
}

/** Each sample's logits → map (`mapFromLogits`, minPeak per sample), the first `count` samples; the rest stay 0. */
function sampleMaps(cfg: GroundingConfig, logits: Float32Array, perSample: number, count = logits.length / perSample): Float32Array {
  const maps = new Float32Array(logits.length);
  for (let b = 0; b < count; b++) mapFromLogits(cfg, logits.subarray(b * perSample, (b + 1) * perSample), maps.subarray(b * perSample, (b + 1) * perSample));
  return maps;
}

/** `cropHits` on maps that already are probabilities: eval/'s accuracy thresholds against the soft target. */
function mapHits(maps: ArrayLike<number>, target: ArrayLike<number>, perSample: number): number[] {
  const out: number[] = [];
  for (let b = 0; b * perSample < maps.length; b++) {
    let inter = 0, np = 0, t = 0;
    for (let i = b * perSample; i < (b + 1) * perSample; i++) {
      t += target[i]!;
      if (maps[i]! >= ACCURACY_THRESHOLD) { np++; inter += target[i]!; }
    }
    out.push(t > 0 && inter / (np + t - inter) > ACCURACY_IOU ? 1 : 0);
  }
  return out;
}

/** Box IoU of (centre, size) boxes in crop units. */
function boxIouCs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let inter = 1, va = 1, vb = 1;
  for (let d = 0; d < 3; d++) {
    const lo = Math.max(a[d]! - a[d + 3]! / 2, b[d]! - b[d + 3]! / 2), hi = Math.min(a[d]! + a[d + 3]! / 2, b[d]! + b[d + 3]! / 2);
    inter *= Math.max(0, hi - lo); va *= a[d + 3]!; vb *= b[d + 3]!;
  }
  return inter / (va + vb - inter + 1e-9);
}

function splitTrainVal(studies: ReturnType<typeof readManifest>, seed: number): { train: typeof studies; val: typeof studies } {
  const train = studies.filter((s) => s.split === 'train');
  let val = studies.filter((s) => s.split === 'val' || s.split === 'validation');
  if (train.length === 0) throw new UserError(`no studies in split 'train' (have: ${[...new Set(studies.map((s) => s.split))].join(', ')})`);
  if (val.length === 0) {
    // No validation split: hold out a seeded tenth of train (at least one study).
    const shuffled = createRng(seed).fork('val').shuffle([...train]);
    const k = Math.max(1, Math.floor(train.length / 10));
    val = shuffled.slice(0, k);
    const held = new Set(val.map((s) => s.id));
    return { train: train.filter((s) => !held.has(s.id)), val };
  }
  return { train, val };
}

/** Trains one variant; writes config.json, model.safetensors (best by validation), loss.svg, train-log.jsonl, checkpoint/. */
export async function trainGroundingModel(o: TrainOptions): Promise<TrainResult> {
  let initWeights: Weights | undefined, initTraining: unknown = null;
  let cfg: GroundingConfig = { ...defaultConfig(o.variant), ...o.config, variant: o.variant };
  if (o.init) {
    const ic = readModelConfig(o.init);
    if (ic.variant !== o.variant) throw new UserError(`--init ${o.init} is a '${ic.variant}' model, not '${o.variant}'`);
    // the backbone's shape comes from the initial model; the loss and map settings from this run, and
    // parts the initial model lacks (decoder, position term) start from their initialization
    cfg = { ...cfg, crop: ic.crop, widths: ic.widths, convsPerStage: ic.convsPerStage, normGroups: ic.normGroups, attnDim: ic.attnDim, fineAttention: ic.fineAttention, lstmHidden: ic.lstmHidden, maxTokens: ic.maxTokens, maxAggregate: ic.maxAggregate, transformer: ic.transformer };
    initWeights = readWeights(join(o.init, 'model.safetensors'));
    // provenance: how the initial model was made travels with this one
    initTraining = (JSON.parse(readFileSync(join(o.init, 'config.json'), 'utf8')) as { training?: unknown }).training ?? null;
    const added = [cfg.decoder && !ic.decoder && 'decoder', cfg.positional && !ic.positional && 'position term'].filter(Boolean);
    // said, not silent: the run trains parts the initial model does not have
    if (added.length && !o.quiet) console.error(`--init ${o.init} has no ${added.join(' and no ')}: added, starting from their initialization`);
  }
  // tiling changes what the network sees, not its weights: a run may turn it on for an --init model
  if (o.maxSpacingMm !== undefined) cfg = { ...cfg, crop: { ...cfg.crop, maxSpacingMm: o.maxSpacingMm ?? undefined } };
  if (o.windows) {
    const before = cfg;
    cfg = { ...cfg, crop: { ...cfg.crop, windows: o.windows.map((w) => [...w] as [number, number]) } };
    if (initWeights) {
      try { initWeights = widenImageInput(initWeights, before, cfg); } catch (e) {
        if (e instanceof WeightMismatch) throw new UserError(`--init ${o.init}: ${e.message}`);
        throw e;
      }
      const added = cfg.crop.windows.length - before.crop.windows.length;
      if (added > 0 && !o.quiet) console.error(`--init ${o.init}: ${added} CT window channel(s) added, their first-layer weights starting at zero`);
    }
  }
  const out = resolve(o.out);
  mkdirSync(join(out, 'checkpoint'), { recursive: true });
  const text: ReportTextEncoder = loadTextEncoder(o.textDir);
  cfg.textEncoder = relative(out, resolve(o.textDir)) || '.';
  cfg.textEncoderSha256 = textEncoderSha256(o.textDir);
  cfg.frozenTextLayers = text.config.numLayers;
  const d = text.hiddenSize;

  const dirs = typeof o.data === 'string' ? [o.data] : o.data;
  const trainSet: SampleSet = { samples: [], pad: SHIFT_PAD, channels: 0 }, valSet: SampleSet = { samples: [], pad: SHIFT_PAD, channels: 0 };
  let nTrain = 0, nVal = 0, trainAnomalies = 0;
  // per training sample its kind, for --balance
  const kinds: string[] = [];
  for (const dir of dirs) {
    let { train, val } = splitTrainVal(readManifest(dir), o.seed);
    if (o.maxStudies) { train = train.slice(0, o.maxStudies); val = val.slice(0, Math.max(1, Math.ceil(o.maxStudies / 10))); }
    const tr = await prepareSamples(dir, train, cfg, text, SHIFT_PAD, `prepare train ${dir}`, o.quiet, createRng(o.seed).fork(`tiles ${dir}`));
    const byId = new Map(train.map((st) => [st.id, st]));
    for (const smp of tr.samples) kinds.push(sampleKind(byId.get(smp.study), smp.id));
    const va = await prepareSamples(dir, val, cfg, text, SHIFT_PAD, `prepare val ${dir}`, o.quiet);
    trainSet.samples.push(...tr.samples); valSet.samples.push(...va.samples);
    trainAnomalies += tr.anomalies;
    trainSet.channels = valSet.channels = tr.channels;
    nTrain += train.length; nVal += val.length;
  }
  if (trainSet.samples.length === 0) throw fileError(join(dirs[0]!, 'manifest.jsonl'), 'the training split has no anomaly with a mask');


  const { graph, loss, prob, logits, box } = buildTrainGraph(cfg, o.batch, d, o.seed, initWeights);
  const trainer = await Trainer.create(graph, { loss, optimizer: adam(o.lr, { clipNorm: 1 }), outputs: prob ? { prob } : { predBox: box! }, seed: o.seed });
  const logPath = join(out, 'train-log.jsonl'), ckpt = join(out, 'checkpoint', 'last.safetensors');
  let log: LogEntry[] = [];
  // best = most validation hits (the accuracy test at crop level), then the higher soft Dice
  let best = { hit: -1, dice: -1, step: 0 };
  const better = (hit: number, dice: number) => hit > best.hit || (hit === best.hit && dice > best.dice);
  if (o.resume && existsSync(ckpt)) {
    trainer.load(ckpt);
    if (existsSync(logPath)) log = readFileSync(logPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogEntry).filter((e) => e.step <= trainer.stepCount);
    for (const e of log) if (e.valDice !== undefined && better(e.valHit ?? 0, e.valDice)) best = { hit: e.valHit ?? 0, dice: e.valDice, step: e.step };
  } else {
    writeFileAtomic(logPath, '');
  }
  const G = cfg.crop.grid, n = G * G * G;
  const perEpoch = Math.max(1, Math.ceil(trainSet.samples.length / o.batch));
  const validateEvery = o.validateEvery || perEpoch;
  const writeConfig = (extra: Record<string, unknown>) => writeFileAtomic(join(out, 'config.json'), JSON.stringify({
    model: cfg,
    training: { data: dirs.length === 1 ? dirs[0] : dirs, init: o.init, initTraining: o.init ? initTraining : undefined, seed: o.seed, batch: o.batch, lr: o.lr, steps: o.steps, balance: o.balance || undefined, trainStudies: nTrain, valStudies: nVal, trainAnomalies: trainAnomalies, trainSamples: trainSet.samples.length, command: o.command, ...extra },
  }, null, 2) + '\n');

  const drawWeighted = o.balance ? weightedDraw(balancedWeights(kinds, o.balance)) : null;
  const progress = o.quiet ? null : new Progress(`train ${o.variant}`, o.steps, 'steps', trainer.stepCount);
  const t0 = Date.now(), startStep = trainer.stepCount;
  let recentLoss: number[] = [], recentDice: number[] = [];
  while (trainer.stepCount < o.steps) {
    const step = trainer.stepCount;
    // batch draw is a function of (seed, step): a resumed run continues the same sequence
    const rng = createRng(o.seed).fork(`batch${step}`);
    const picks: Sample[] = Array.from({ length: o.batch }, () => (drawWeighted ? trainSet.samples[drawWeighted(rng.next())]! : rng.pick(trainSet.samples)));
    const batch = makeBatch(trainSet, picks, cfg, d, rng);
    // cosine decay over the run after a short warm-up
    const warm = Math.min(1, (step + 1) / 50), lr = o.lr * warm * (0.1 + 0.9 * 0.5 * (1 + Math.cos((Math.PI * step) / o.steps)));
    const r = await trainer.step(batch.feeds, { lr });
    recentLoss.push(r.loss);
    recentDice.push(...(prob ? batchDice(r.outputs.prob as Float32Array, batch.targets, n) : [boxIouCs(r.outputs.predBox as Float32Array, batch.feeds.box as Float32Array)]));
    const mLoss = recentLoss.reduce((a, b) => a + b, 0) / recentLoss.length, mDice = recentDice.reduce((a, b) => a + b, 0) / recentDice.length;
    progress?.set(trainer.stepCount, `loss ${mLoss.toFixed(3)} ${prob ? 'Dice' : 'IoU'} ${mDice.toFixed(3)}`);
    const done = trainer.stepCount;
    if (done % validateEvery === 0 || done === o.steps) {
      const { score: v, hit } = await validate(graph, logits ? { logits } : { predBox: box! }, valSet, cfg, d, o.batch);
      const entry: LogEntry = { step: done, loss: mLoss, dice: mDice, valDice: v, valHit: hit, seconds: (Date.now() - t0) / 1000 };
      log.push(entry);
      appendFileSync(logPath, JSON.stringify(entry) + '\n');
      recentLoss = []; recentDice = [];
      trainer.save(ckpt);
      if (better(hit, v)) {
        best = { hit, dice: v, step: done };
        saveParams(graph, join(out, 'model.safetensors'), { variant: cfg.variant, step: String(done) });
      }
      writeConfig({ bestStep: best.step, bestValDice: best.dice, bestValHit: best.hit, stepsDone: done });
      writeFileAtomic(join(out, 'loss.svg'), lossCurveSvg(log, `${cfg.variant}: training loss and validation ${prob ? 'soft Dice' : 'box IoU'}`));
      if (!o.quiet) process.stderr.write(`\nstep ${done}: validation ${prob ? `hits ${(100 * hit).toFixed(1)}%, soft Dice` : 'box IoU'} ${v.toFixed(3)} (best at ${best.step}) ${formatSeconds((Date.now() - t0) / 1000)}\n`);
    }
  }
  progress?.finish();
  await trainer.dispose();
  const secs = (Date.now() - t0) / 1000;
  return { bestValDice: best.dice, bestValHit: best.hit, bestStep: best.step, log, stepsPerSecond: (trainer.stepCount - startStep) / Math.max(1e-9, secs), samples: trainSet.samples.length, anomalies: trainAnomalies };
}

/**
 * Validation of the current weights on centred crops, no augmentation: mean soft Dice (box IoU for
 * box models) and the share of crop-level hits (`cropHits`; box models: IoU > 0.1).
 */
async function validate(graph: ReturnType<typeof buildTrainGraph>['graph'], outputs: Record<string, import('../engine/index.ts').Tensor>, set: SampleSet, cfg: GroundingConfig, d: number, B: number): Promise<{ score: number; hit: number }> {
  if (set.samples.length === 0) return { score: NaN, hit: NaN };
  const model = await InferenceModel.create(graph, outputs);
  const n = cfg.crop.grid ** 3;
  const scores: number[] = [], hits: number[] = [];
  try {
    for (let i = 0; i < set.samples.length; i += B) {
      const real = set.samples.slice(i, i + B);
      const picks = [...real];
      while (picks.length < B) picks.push(real[0]!);
      const batch = makeBatch(set, picks, cfg, d, null);
      const feeds: Record<string, Float32Array | BigInt64Array> = { ...batch.feeds };
      const r = await model.run(feeds);
      if (isBoxModel(cfg)) {
        const s = real.map((_, b) => boxIouCs((r.predBox as Float32Array).subarray(b * 6), (batch.feeds.box as Float32Array).subarray(b * 6)));
        scores.push(...s); hits.push(...s.map((x) => (x > ACCURACY_IOU ? 1 : 0)));
      } else {
        const p = sampleMaps(cfg, r.logits as Float32Array, n, real.length);
        scores.push(...softDice(p, batch.targets, n).slice(0, real.length));
        hits.push(...mapHits(p, batch.targets, n).slice(0, real.length));
      }
    }
  } finally {
    await model.dispose();
  }
  const m = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { score: m(scores), hit: m(hits) };
}

/** Copies the text encoder folder's files a model folder needs when it must stand alone. */
export function copyTextEncoder(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const f of ['config.json', 'vocab.txt', 'model.safetensors']) copyFileSync(join(from, f), join(to, f));
}

/**
 * A training sample's kind for balanced sampling: its study's background ('-' when the manifest
 * names none), its anomaly's organ and type. A sample its manifest does not list is a bug, not a
 * kind: falling back would quietly make balanced sampling uniform.
 */
export function sampleKind(study: ManifestStudy | undefined, id: string): string {
  const a = study?.anomalies.find((x) => x.id === id);
  if (!study || !a) throw new Error(`sampleKind: no anomaly ${id} in ${study ? `study ${study.id}` : 'an unknown study'}`);
  return `${study.background ?? '-'}:${a.organ}:${a.type}`;
}

/** Per sample n^-alpha, n = the samples of its kind: alpha 1 draws every kind equally often, 0 every sample. */
export function balancedWeights(kinds: readonly string[], alpha: number): Float64Array {
  const n = new Map<string, number>();
  for (const k of kinds) n.set(k, (n.get(k) ?? 0) + 1);
  return Float64Array.from(kinds, (k) => n.get(k)! ** -alpha);
}

/** Maps a uniform u in [0, 1) to an index drawn with probability proportional to its weight. */
export function weightedDraw(weights: Float64Array): (u: number) => number {
  const cum = new Float64Array(weights.length);
  let t = 0;
  weights.forEach((w, i) => { t += w; cum[i] = t; });
  return (u) => {
    const x = u * t;
    let lo = 0, hi = cum.length - 1;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (cum[mid]! > x) hi = mid; else lo = mid + 1; }
    return lo;
  };
}
