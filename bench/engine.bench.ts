// The training engine against @tensorflow/tfjs (cpu backend) on the same VGG-like 3D block and the
// same train step (forward, backward, Adam), measured in the same run. Also: the per-step cost of
// moving parameters and optimizer state in and out of ORT (the ping-pong buffers).
import { Graph, Trainer, InferenceModel, adam, ops as o, type Tensor, emitModel, createSession, gradients, defaultSessionOptions, toOrt } from '../src/engine/index.ts';
import { createRng } from '../src/common/index.ts';
import { bestOf, bestOfInTurns } from './timing.ts';

const CH = [16, 16, 32, 32, 64, 64];
const SIZE = 48, CIN = 2;

function buildVgg(g: Graph): { x: Tensor; target: Tensor; out: Tensor; loss: Tensor } {
  const x = g.input('x', [1, CIN, SIZE, SIZE, SIZE]);
  let h = x, cin = CIN;
  CH.forEach((c, i) => {
    h = o.relu(o.conv3d(h, g.param(`conv${i}.w`, [c, cin, 3, 3, 3]), g.param(`conv${i}.b`, [c], { kind: 'zeros' }), { padding: 1 }));
    cin = c;
    if (i === 1 || i === 3) h = o.maxPool3d(h, { kernel: 2 });
  });
  const target = g.input('target', h.shape);
  const d = o.sub(h, target);
  return { x, target, out: h, loss: o.mean(o.mul(d, d)) };
}

async function tfjsTrainMs(xData: Float32Array, tData: Float32Array, outShape: number[], steps: number): Promise<{ train: number; fwd: number }> {
  const tf = await import('@tensorflow/tfjs');
  await tf.setBackend('cpu');
  await tf.ready();
  const rng = createRng(3);
  let cin = CIN;
  const vars = CH.map((c, i) => {
    const w = tf.variable(tf.tensor5d(Float32Array.from({ length: 27 * cin * c }, () => rng.normal(0, Math.sqrt(2 / (27 * cin)))), [3, 3, 3, cin, c]), true, `w${i}`);
    const b = tf.variable(tf.zeros([c]), true, `b${i}`);
    cin = c;
    return { w, b };
  });
  // tfjs conv3d is channels-last: NDHWC
  const x = tf.tensor5d(xData, [1, CIN, SIZE, SIZE, SIZE]).transpose([0, 2, 3, 4, 1]) as import('@tensorflow/tfjs').Tensor5D;
  const target = tf.tensor(tData, outShape).transpose([0, 2, 3, 4, 1]);
  const forward = () => {
    let h = x;
    vars.forEach((v, i) => {
      h = tf.relu(tf.add(tf.conv3d(h, v.w as import('@tensorflow/tfjs').Tensor5D, 1, 'same'), v.b)) as import('@tensorflow/tfjs').Tensor5D;
      if (i === 1 || i === 3) h = tf.maxPool3d(h, 2, 2, 'valid');
    });
    return tf.mean(tf.square(tf.sub(h, target))) as import('@tensorflow/tfjs').Scalar;
  };
  const opt = tf.train.adam(1e-3);
  const times: number[] = [];
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    const l = opt.minimize(forward, true);
    await l!.data();
    l!.dispose();
    times.push(performance.now() - t0);
  }
  const t0 = performance.now();
  const lf = tf.tidy(forward);
  await lf.data();
  const fwd = performance.now() - t0;
  return { train: Math.min(...times), fwd };
}

/**
 * The formulations of one 16→16 conv3d's gradients at 48³ (batch 1), each as its own session,
 * so the choices in grad.ts stay backed by numbers from this machine.
 */
async function convGradForms(threads: number): Promise<Record<string, number>> {
  const C = 16, S = 48, P = S ** 3;
  const offs: number[][] = [];
  for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) for (let c = 0; c < 3; c++) offs.push([a, b, c]);
  const sessions: { release(): Promise<void> }[] = [];
  const time = async (build: (g: Graph, x: Tensor, dy: Tensor, w: Tensor) => Tensor): Promise<() => Promise<unknown>> => {
    const g = new Graph({ seed: 1 });
    const x = g.input('x', [1, C, S, S, S]);
    const dy = g.input('dy', [1, C, S, S, S]);
    const w = g.param('w', [C, C, 3, 3, 3]);
    const { bytes, inputs } = emitModel(g, { outputs: new Map([['out', build(g, x, dy, w)]]), mode: 'train' });
    const s = await createSession(bytes, { threads });
    sessions.push(s);
    const r = createRng(4);
    const feeds = Object.fromEntries(inputs.map((t) => [t.name, toOrt(t, Float32Array.from({ length: t.size }, () => r.normal()))]));
    return () => s.run(feeds);
  };
  const xp = (x: Tensor) => o.pad(x, [0, 0, 1, 1, 1, 0, 0, 1, 1, 1]);
  const sl = (t: Tensor, a: number, b: number, c: number) => o.slice(t, [a, b, c], [a + S, b + S, c + S], [2, 3, 4]);
  const dyT = (dy: Tensor) => o.transpose(o.reshape(dy, [1, C, P]), [0, 2, 1]);
  const runners: Record<string, () => Promise<unknown>> = {
    forward_conv: await time((_g, x, _dy, w) => o.conv3d(x, w, null, { padding: 1 })),
    // dX = Conv(dY, flip(W) with in/out swapped): what grad.ts emits (gradient of a conv w.r.t. x)
    dx_flipped_conv: await time((g, x, dy, w) => {
      const y = o.conv3d(x, w, null, { padding: 1 });
      return gradientsOf(g, y, dy, x);
    }),
    dx_conv_transpose: await time((g, x, dy, w) => g.node1('ConvTranspose', [dy, w], { kernel_shape: [3, 3, 3], pads: [1, 1, 1, 1, 1, 1] }, x.shape)),
    dw_two_stage_im2col: await time((g, x, dy, w) => {
      const y = o.conv3d(x, w, null, { padding: 1 });
      return gradientsOf(g, y, dy, w);
    }),
    dw_full_im2col: await time((_g, x, dy) => o.matmul(o.reshape(o.concat(offs.map(([a, b, c]) => sl(xp(x), a!, b!, c!)), 1), [1, 27 * C, P]), dyT(dy))),
    dw_27_matmuls: await time((_g, x, dy) => o.concat(offs.map(([a, b, c]) => o.matmul(o.reshape(sl(xp(x), a!, b!, c!), [1, C, P]), dyT(dy))), 1)),
  };
  const res = await interleaved(runners, 7);
  for (const s of sessions) await s.release();
  return res;
}

/**
 * Forward + backward of the fused normalizations against their compositions from primitives:
 * layer norm on (4096, 256) token activations, group norm (8 groups) on a 2×32×32³ feature map.
 */
async function normForms(threads: number): Promise<Record<string, number>> {
  const runners: Record<string, () => Promise<unknown>> = {};
  const sessions: { release(): Promise<void> }[] = [];
  const cases: [string, number[], (g: Graph, x: Tensor, C: number) => Tensor][] = [
    ['layernorm_fused', [4096, 256], (g, x, C) => o.layerNorm(x, g.param('gamma', [C], { kind: 'ones' }), g.param('beta', [C], { kind: 'zeros' }))],
    ['layernorm_composed', [4096, 256], (g, x, C) => o.layerNormComposed(x, g.param('gamma', [C], { kind: 'ones' }), g.param('beta', [C], { kind: 'zeros' }))],
    ['groupnorm_fused', [2, 32, 32, 32, 32], (g, x, C) => o.groupNorm(x, 8, g.param('gamma', [C], { kind: 'ones' }), g.param('beta', [C], { kind: 'zeros' }))],
    ['groupnorm_composed', [2, 32, 32, 32, 32], (g, x, C) => o.groupNormComposed(x, 8, g.param('gamma', [C], { kind: 'ones' }), g.param('beta', [C], { kind: 'zeros' }))],
  ];
  for (const [name, shape, build] of cases) {
    const g = new Graph({ seed: 1 });
    const x = g.param('x', shape, { kind: 'normal', std: 1 });
    const y = build(g, x, shape[1]!);
    const r = g.input('r', shape);
    const gs = gradients(o.sum(o.mul(y, r)), [...g.params.values()].map((p) => p.tensor));
    const outputs = new Map(gs.map((t, i) => [`g${i}`, t!] as const));
    const { bytes, inputs } = emitModel(g, { outputs, mode: 'train' });
    const s = await createSession(bytes, { threads });
    const feeds = Object.fromEntries(inputs.map((t) => [t.name, toOrt(t, t.kind === 'param' ? g.params.get(t.name)!.value : new Float32Array(t.size).fill(0.5))]));
    sessions.push(s);
    runners[name] = () => s.run(feeds);
  }
  const res = await interleaved(runners, 10);
  for (const s of sessions) await s.release();
  return res;
}

/**
 * Best-of-`reps` for several runners measured round-robin after two warm-ups each, so that a burst
 * of background load hits all of them alike.
 */
async function interleaved(runners: Record<string, () => Promise<unknown>>, reps: number): Promise<Record<string, number>> {
  for (const f of Object.values(runners)) { await f(); await f(); }
  const best: Record<string, number> = {};
  for (let i = 0; i < reps; i++) {
    for (const [k, f] of Object.entries(runners)) best[k] = Math.min(best[k] ?? Infinity, await bestOf(f, 1));
  }
  return Object.fromEntries(Object.entries(best).map(([k, v]) => [k, round(v)]));
}

/** the engine's gradient of Σ dy ⊙ y with respect to `wrt`, i.e. the backward of y fed with dy */
function gradientsOf(_g: Graph, y: Tensor, dy: Tensor, wrt: Tensor): Tensor {
  // wrt may be an input; differentiate with respect to it by treating it like a parameter
  return gradients(o.sum(o.mul(y, dy)), [wrt])[0]!;
}

export async function run({ json }: { json: boolean }): Promise<Record<string, unknown>> {
  const log = (s: string) => { if (!json) console.log(s); };
  const g = new Graph({ seed: 1 });
  const net = buildVgg(g);
  const rng = createRng(2);
  const xData = Float32Array.from({ length: net.x.size }, () => rng.normal());
  const tData = Float32Array.from({ length: net.target.size }, () => rng.uniform(0, 1));
  const { threads, executionProviders } = defaultSessionOptions();

  const inf = await InferenceModel.create(g, { out: net.out }, { threads });
  const tr = await Trainer.create(g, { loss: net.loss, optimizer: adam(1e-3), threads });
  // the first runs grow ORT's memory arena (page faults of a few hundred MB): warm both up, then
  // interleave forward and train-step timings so both see the same background load
  for (let i = 0; i < 3; i++) { await inf.run({ x: xData }); await tr.step({ x: xData, target: tData }); }
  let fwd = Infinity, train = Infinity;
  for (let i = 0; i < 10; i++) {
    fwd = Math.min(fwd, await bestOf(() => inf.run({ x: xData }), 1));
    train = Math.min(train, await bestOf(() => tr.step({ x: xData, target: tData }), 1));
  }
  log(`ours forward (inference session), best of 10: ${fwd.toFixed(1)} ms`);
  log(`ours train step (fwd + bwd + Adam), best of 10: ${train.toFixed(1)} ms = ${(train / fwd).toFixed(2)}× forward`);

  // the state traffic alone: a session that takes every parameter and Adam moment as input and
  // returns it through Identity into the preallocated ping-pong buffer, as a train step does
  const states = [...g.params.values()].flatMap((p) => [p, p, p].map((q) => q.value.slice()));
  const sg = new Graph();
  const ins = states.map((s, i) => sg.input(`s${i}`, [s.length]));
  const outs = new Map(ins.map((t, i) => [`o${i}`, sg.node1('Identity', [t], {}, t.shape)] as const));
  const ss = await createSession(emitModel(sg, { outputs: outs, mode: 'train' }).bytes, { threads });
  const other = states.map((s) => s.slice());
  const stateMs = await bestOf(() => ss.run(
    Object.fromEntries(ins.map((t, i) => [t.name, toOrt(t, states[i]!)])),
    Object.fromEntries(ins.map((t, i) => [`o${i}`, toOrt(t, other[i]!)])),
  ), 20);
  const nParams = [...g.params.values()].reduce((a, p) => a + p.value.length, 0);
  log(`state in/out per step (${nParams} params × 3 tensors): ${stateMs.toFixed(2)} ms (${((100 * stateMs) / train).toFixed(1)}% of a step)`);

  log('conv3d 16→16 at 48³, gradient formulations (ms):');
  const forms = await convGradForms(threads);
  for (const [k, v] of Object.entries(forms)) log(`  ${k}: ${v}`);
  const norms = await normForms(threads);
  log(`normalization forward+backward (ms): ${JSON.stringify(norms)}`);
  const upsampling = await resizeForms(threads);
  log(`trilinear upsampling, 3-D Resize vs bilinear + MatMul (ms, best of 20 in turns): ${JSON.stringify(upsampling)}`);
  const tfSteps = Number(process.env.CTGROUND_TFJS_STEPS ?? 1);
  // CTGROUND_SKIP_TFJS=1 is for tuning runs only: it leaves out the comparison
  if (process.env.CTGROUND_SKIP_TFJS) return { ours_fwd_ms: round(fwd), ours_train_ms: round(train), train_over_fwd: round(train / fwd), state_io_ms: round(stateMs), conv16_48_ms: forms, norm_fwd_bwd_ms: norms, upsampling_ms: upsampling };
  log(`tfjs cpu backend: ${tfSteps} train step(s) (slow) ...`);
  const tfjs = await tfjsTrainMs(xData, tData, [...net.out.shape], tfSteps);
  log(`tfjs train step: ${tfjs.train.toFixed(0)} ms; tfjs forward: ${tfjs.fwd.toFixed(0)} ms`);
  const result = {
    network: 'VGG-like 3D block: 6 conv3d 3³ (16-16-32-32-64-64) + 2 max-pool, input 1×2×48³, MSE loss, Adam',
    threads,
    execution_providers: executionProviders.join(','),
    ours_fwd_ms: round(fwd),
    ours_train_ms: round(train),
    tfjs_train_ms: round(tfjs.train),
    tfjs_fwd_ms: round(tfjs.fwd),
    speedup_vs_tfjs: round(tfjs.train / train),
    train_over_fwd: round(train / fwd),
    state_io_ms: round(stateMs),
    params: nParams,
    conv16_48_ms: forms,
    norm_fwd_bwd_ms: norms,
    upsampling_ms: upsampling,
  };
  log(`speedup vs tfjs: ${result.speedup_vs_tfjs}×; train/forward: ${result.train_over_fwd}`);
  await inf.dispose();
  await tr.dispose();
  await ss.release();
  return result;
}

/**
 * Trilinear upsampling: ORT's 3-D Resize against `resizeLinearSeparable` (bilinear Resize + one
 * MatMul along depth), timed in turns: the attention's 12 maps 4³ → 32³ and a decoder step ×2.
 */
async function resizeForms(threads: number): Promise<Record<string, { resize3d: number; separable: number; ratio: number }>> {
  const out: Record<string, { resize3d: number; separable: number; ratio: number }> = {};
  for (const [name, shape, size] of [['12×1×4³→32³', [12, 1, 4, 4, 4], [32, 32, 32]], ['1×16×16³→32³', [1, 16, 16, 16, 16], [32, 32, 32]]] as [string, number[], [number, number, number]][]) {
    const g = new Graph({ seed: 0 });
    const x = g.input('x', shape);
    const plain = await InferenceModel.create(g, { out: o.resizeLinear(x, size) }, { threads });
    const sep = await InferenceModel.create(g, { out: o.resizeLinearSeparable(x, size) }, { threads });
    const feed = { x: Float32Array.from({ length: x.size }, (_, i) => Math.sin(i)) };
    await plain.run(feed); await sep.run(feed);
    const [a, b] = await bestOfInTurns([() => plain.run(feed), () => sep.run(feed)], 20);
    out[name] = { resize3d: round(a!), separable: round(b!), ratio: round(a! / b!) };
    await plain.dispose(); await sep.dispose();
  }
  return out;
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}
