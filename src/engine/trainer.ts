/**
 * The Trainer compiles forward + backward + optimizer update into ONE ORT session and runs it per
 * step. Parameters and optimizer state live in JS typed arrays between steps, two buffers per
 * tensor: each step feeds buffer A as an input and ORT writes the updated value straight into
 * buffer B (a preallocated output), then the two swap. Nothing is copied in JS and nothing is
 * allocated per step; the cost is ORT reading and writing each state tensor once, which is what an
 * in-place update would cost anyway (measured in bench/engine.bench.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRng, fileError, writeFileAtomic } from '../common/index.ts';
import { gradients } from './grad.ts';
import { type DType, type Graph, shapeSize, type Tensor, type TypedData } from './graph.ts';
import { emitModel } from './onnx.ts';
import { add, mul, sqrt, sub, sum, div } from './ops.ts';
import { readSafetensors, writeSafetensors, type NamedArray } from './safetensors.ts';
import { createSession, ort, toOrt, type FeedValue, type SessionOptions } from './session.ts';

export type OptimizerConfig =
  | { kind: 'adam'; lr: number; beta1?: number; beta2?: number; eps?: number; weightDecay?: number; clipNorm?: number }
  | { kind: 'sgd'; lr: number; momentum?: number; weightDecay?: number; clipNorm?: number };

/** Adam; with weightDecay it is AdamW (decoupled decay). */
export function adam(lr: number, o: { beta1?: number; beta2?: number; eps?: number; weightDecay?: number; clipNorm?: number } = {}): OptimizerConfig {
  return { kind: 'adam', lr, ...o };
}
export function sgd(lr: number, o: { momentum?: number; weightDecay?: number; clipNorm?: number } = {}): OptimizerConfig {
  return { kind: 'sgd', lr, ...o };
}

export interface TrainerOptions extends SessionOptions {
  loss: Tensor;
  optimizer: OptimizerConfig;
  /** extra tensors read back after each step (e.g. predictions) */
  outputs?: Record<string, Tensor>;
  /** seed of the per-step dropout stream */
  seed?: number;
  /** also read back the global gradient norm (before clipping) as `gradNorm` */
  reportGradNorm?: boolean;
}

export interface StepResult {
  loss: number;
  gradNorm?: number;
  outputs: Record<string, TypedData>;
}

interface StateSlot {
  /** the graph input it is fed as, and the output it comes back from */
  input: Tensor;
  outName: string;
  bufs: [Float32Array | Float64Array, Float32Array | Float64Array];
  ckptName: string;
  /** param slots write the current buffer back into the graph's ParamInfo */
  param: string | null;
}

export interface StepOptions {
  /** overrides the configured learning rate for this step (schedules) */
  lr?: number;
}

export class Trainer {
  private slots: StateSlot[] = [];
  private cur = 0;
  step_ = 0;
  private lrIn: Tensor | null = null;
  private epsIn: Tensor | null = null;
  private wdIn: Tensor | null = null;

  private constructor(
    readonly graph: Graph,
    readonly opts: TrainerOptions,
    private session: ort.InferenceSession,
    private fedInputs: Tensor[],
  ) {}

  /** number of optimizer steps taken so far */
  get stepCount(): number { return this.step_; }

  static async create(graph: Graph, opts: TrainerOptions): Promise<Trainer> {
    const g = graph;
    const trainable = [...g.params.values()].filter((p) => p.trainable).map((p) => p.tensor);
    if (trainable.length === 0) throw new Error('Trainer: no trainable parameters');
    const grads = gradients(opts.loss, trainable);
    const fd = g.dtype;
    const outputs = new Map<string, Tensor>([['loss', opts.loss]]);
    for (const [k, t] of Object.entries(opts.outputs ?? {})) outputs.set(k, t);
    const o = opts.optimizer;
    const lrIn = g.input(uniq(g, '__lr'), [], fd);
    const wdIn = o.weightDecay ? g.input(uniq(g, '__lr_wd'), [], fd) : null;
    const epsIn = o.kind === 'adam' ? g.input(uniq(g, '__eps'), [], fd) : null;

    const live = trainable.map((p, i) => [p, grads[i]] as const).filter(([, gr]) => gr !== null) as [Tensor, Tensor][];
    let gs = live.map(([, gr]) => gr);
    if (o.clipNorm !== undefined || opts.reportGradNorm) {
      let sq: Tensor | null = null;
      for (const gr of gs) { const s = sum(mul(gr, gr)); sq = sq ? add(sq, s) : s; }
      const norm = sqrt(sq!);
      if (opts.reportGradNorm) outputs.set('gradNorm', norm);
      if (o.clipNorm !== undefined) {
        const c = g.scalar(o.clipNorm, fd);
        const scale = div(c, g.node1('Max', [norm, c], {}, []));
        gs = gs.map((gr) => mul(gr, scale));
      }
    }
    const slots: StateSlot[] = [];
    const mkSlot = (input: Tensor, next: Tensor, ckptName: string, param: string | null, init: Float32Array | Float64Array): void => {
      const outName = `${input.name}__next`;
      outputs.set(outName, next);
      const b1 = init.slice();
      slots.push({ input, outName, bufs: [b1, b1.slice()], ckptName, param });
    };
    live.forEach(([p], i) => {
      const gr = gs[i]!;
      const info = g.params.get(p.name)!;
      const zeros = fd === 'float64' ? new Float64Array(p.size) : new Float32Array(p.size);
      let update: Tensor;
      if (o.kind === 'adam') {
        const b1 = o.beta1 ?? 0.9, b2 = o.beta2 ?? 0.999;
        const m = g.input(uniq(g, `__adam_m/${p.name}`), p.shape, fd);
        const v = g.input(uniq(g, `__adam_v/${p.name}`), p.shape, fd);
        const m2 = add(mul(m, b1), mul(gr, 1 - b1));
        const v2 = add(mul(v, b2), mul(mul(gr, gr), 1 - b2));
        update = mul(div(m2, add(sqrt(v2), epsIn!)), lrIn);
        mkSlot(m, m2, `optimizer.m/${p.name}`, null, zeros);
        mkSlot(v, v2, `optimizer.v/${p.name}`, null, zeros);
      } else {
        const mom = o.momentum ?? 0;
        if (mom > 0) {
          const buf = g.input(uniq(g, `__sgd_buf/${p.name}`), p.shape, fd);
          const b2 = add(mul(buf, mom), gr);
          update = mul(b2, lrIn);
          mkSlot(buf, b2, `optimizer.momentum/${p.name}`, null, zeros);
        } else update = mul(gr, lrIn);
      }
      if (wdIn) update = add(update, mul(p, wdIn));
      mkSlot(p, sub(p, update), p.name, p.name, info.value);
    });
    const { bytes, inputs } = emitModel(g, { outputs, mode: 'train', name: 'train_step' });
    const session = await createSession(bytes, opts);
    const t = new Trainer(g, opts, session, inputs);
    t.slots = slots;
    t.lrIn = lrIn;
    t.epsIn = epsIn;
    t.wdIn = wdIn;
    // the params' live values are now the slot buffers
    for (const s of slots) if (s.param) g.params.get(s.param)!.value = s.bufs[0];
    return t;
  }

  private scalarFeed(t: Tensor, v: number): ort.Tensor {
    return toOrt(t, this.graph.dtype === 'float64' ? new Float64Array([v]) : new Float32Array([v]));
  }

  /** One optimizer step on a batch: feeds = graph input name → values. */
  async step(feeds: Record<string, FeedValue>, opts: StepOptions = {}): Promise<StepResult> {
    const o = this.opts.optimizer;
    const lr = opts.lr ?? o.lr;
    const t = this.step_ + 1;
    const ortFeeds: Record<string, ort.Tensor> = {};
    const bySlot = new Map(this.slots.map((s) => [s.input, s] as const));
    for (const inp of this.fedInputs) {
      const slot = bySlot.get(inp);
      if (slot) { ortFeeds[inp.name] = toOrt(inp, slot.bufs[this.cur]!); continue; }
      if (inp === this.lrIn) {
        const corr = o.kind === 'adam' ? Math.sqrt(1 - (o.beta2 ?? 0.999) ** t) / (1 - (o.beta1 ?? 0.9) ** t) : 1;
        ortFeeds[inp.name] = this.scalarFeed(inp, lr * corr);
      } else if (inp === this.epsIn) {
        // eps scaled like PyTorch's Adam: ε is added to the bias-corrected √v̂
        ortFeeds[inp.name] = this.scalarFeed(inp, (o.kind === 'adam' ? o.eps ?? 1e-8 : 0) * Math.sqrt(1 - ((o as { beta2?: number }).beta2 ?? 0.999) ** t));
      } else if (inp === this.wdIn) {
        ortFeeds[inp.name] = this.scalarFeed(inp, lr * (o.weightDecay ?? 0));
      } else if (inp === this.graph.stepSeed) {
        ortFeeds[inp.name] = toOrt(inp, new Float32Array([dropoutSeed(this.opts.seed ?? 0, t)]));
      } else if (inp.kind === 'param') {
        ortFeeds[inp.name] = toOrt(inp, this.graph.params.get(inp.name)!.value);
      } else {
        const v = feeds[inp.name];
        if (v === undefined) throw new Error(`step: missing input '${inp.name}'`);
        ortFeeds[inp.name] = toOrt(inp, v);
      }
    }
    const fetches: Record<string, ort.Tensor | null> = {};
    const next = 1 - this.cur;
    for (const s of this.slots) fetches[s.outName] = toOrt(s.input, s.bufs[next]!);
    fetches.loss = null;
    if (this.opts.reportGradNorm) fetches.gradNorm = null;
    for (const k of Object.keys(this.opts.outputs ?? {})) fetches[k] = null;
    const res = await this.session.run(ortFeeds, fetches);
    this.cur = next;
    this.step_ = t;
    for (const s of this.slots) if (s.param) this.graph.params.get(s.param)!.value = s.bufs[this.cur]!;
    const outputs: Record<string, TypedData> = {};
    for (const k of Object.keys(this.opts.outputs ?? {})) outputs[k] = res[k]!.data as TypedData;
    return {
      loss: Number((res.loss!.data as Float32Array)[0]),
      gradNorm: this.opts.reportGradNorm ? Number((res.gradNorm!.data as Float32Array)[0]) : undefined,
      outputs,
    };
  }

  /**
   * Saves parameters and optimizer state to `path` (.safetensors) and a JSON config beside it
   * (same name, .json) with the step count and optimizer settings.
   */
  save(path: string): void {
    const tensors = new Map<string, NamedArray>();
    for (const [name, p] of this.graph.params) tensors.set(name, { data: p.value, shape: [...p.tensor.shape] });
    for (const s of this.slots) if (!s.param) tensors.set(s.ckptName, { data: s.bufs[this.cur]!, shape: [...s.input.shape] });
    writeSafetensors(path, tensors, { format: 'ctground-engine', step: String(this.step_) });
    writeFileAtomic(configPath(path), JSON.stringify({ step: this.step_, optimizer: this.opts.optimizer, dtype: this.graph.dtype, seed: this.opts.seed ?? 0 }, null, 2) + '\n');
  }

  /** Restores a checkpoint written by save(); every parameter and state tensor must be present and fit. */
  load(path: string): void {
    const ck = readSafetensors(path);
    const expect = new Map<string, { shape: readonly number[]; set: (d: Float32Array | Float64Array) => void }>();
    for (const [name, p] of this.graph.params) {
      const slot = this.slots.find((s) => s.param === name);
      expect.set(name, { shape: p.tensor.shape, set: (d) => { if (slot) slot.bufs[this.cur]!.set(d); else p.value.set(d); } });
    }
    for (const s of this.slots) if (!s.param) expect.set(s.ckptName, { shape: s.input.shape, set: (d) => s.bufs[this.cur]!.set(d) });
    checkTensors(path, ck.tensors, expect);
    for (const [name, e] of expect) e.set(convert(ck.tensors.get(name)!.data, this.graph.dtype));
    let step = Number(ck.metadata.step ?? NaN);
    const cfg = configPath(path);
    if (existsSync(cfg)) {
      try { step = (JSON.parse(readFileSync(cfg, 'utf8')) as { step: number }).step; } catch { throw fileError(cfg, 'corrupt checkpoint config (not JSON)'); }
    }
    if (!Number.isInteger(step) || step < 0) throw fileError(path, 'checkpoint has no valid step count');
    this.step_ = step;
    for (const s of this.slots) if (s.param) this.graph.params.get(s.param)!.value = s.bufs[this.cur]!;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

function uniq(g: Graph, name: string): string {
  let n = name, i = 1;
  while (g.inputs.has(n) || g.params.has(n)) n = `${name}#${i++}`;
  return n;
}

function configPath(path: string): string {
  return path.replace(/\.safetensors$/, '') + '.json';
}

/** the dropout seed of step t: a deterministic function of (seed, t), so a resumed run repeats it */
export function dropoutSeed(seed: number, t: number): number {
  return Math.floor(createRng(seed).fork(t).next() * 10000);
}

function convert(d: Float32Array | Float64Array, dtype: DType): Float32Array | Float64Array {
  if (dtype === 'float64') return d instanceof Float64Array ? d : Float64Array.from(d);
  return d instanceof Float32Array ? d : Float32Array.from(d);
}

/** Checks a checkpoint's tensors against what a model expects; errors name the tensor. */
export function checkTensors(file: string, have: ReadonlyMap<string, NamedArray>, expect: ReadonlyMap<string, { shape: readonly number[] }>): void {
  for (const [name, e] of expect) {
    const t = have.get(name);
    if (!t) throw fileError(file, `parameter '${name}' is missing from the checkpoint`);
    if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) {
      throw fileError(file, `parameter '${name}' has shape [${t.shape.join(',')}] but the model expects [${e.shape.join(',')}]`);
    }
    for (let i = 0; i < t.data.length; i++) {
      if (!Number.isFinite(t.data[i]!)) throw fileError(file, `parameter '${name}' holds a non-finite value at element ${i}`);
    }
  }
  for (const name of have.keys()) if (!expect.has(name)) throw fileError(file, `checkpoint has parameter '${name}' that the model does not have`);
}

/**
 * Loads parameter values (no optimizer state) from a safetensors file into a graph, e.g. for
 * inference or to start training from pretrained weights. With `partial`, graph params absent from
 * the file keep their initialization (a new head on a pretrained encoder); tensors in the file that
 * the graph lacks, or that do not fit, are still errors. Returns the names loaded.
 */
export function loadParams(graph: Graph, path: string, opts: { partial?: boolean } = {}): string[] {
  const ck = readSafetensors(path);
  const params = new Map([...ck.tensors].filter(([n]) => !n.startsWith('optimizer.')));
  const expect = new Map([...graph.params].filter(([n]) => !opts.partial || params.has(n)).map(([n, p]) => [n, { shape: p.tensor.shape }] as const));
  checkTensors(path, params, expect);
  for (const name of expect.keys()) graph.params.get(name)!.value.set(convert(params.get(name)!.data, graph.dtype));
  return [...expect.keys()];
}

export function saveParams(graph: Graph, path: string, metadata: Record<string, string> = {}): void {
  const tensors = new Map<string, NamedArray>();
  for (const [name, p] of graph.params) tensors.set(name, { data: p.value, shape: [...p.tensor.shape] });
  writeSafetensors(path, tensors, metadata);
}

export { shapeSize };
