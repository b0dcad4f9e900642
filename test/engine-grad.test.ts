// Gradient checks of every op and loss against central finite differences (engine/gradcheck.ts),
// in float64 where ORT has float64 kernels; the rest are checked in float32 with tolerances
// justified next to each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng } from '../src/common/index.ts';
import { localizationLoss } from '../src/model/index.ts';
import {
  Graph, type Tensor, gradCheck, ops, gradients, emitModel, createSession, toOrt, InferenceModel,
} from '../src/engine/index.ts';

const o = ops;

/** L = Σ r ⊙ y with a fixed random r, so every element of y carries its own weight. */
function weighted(y: Tensor, seed = 11): Tensor {
  const g = y.graph;
  const r = createRng(seed);
  const data = g.dtype === 'float64' ? Float64Array.from({ length: y.size }, () => r.normal()) : Float32Array.from({ length: y.size }, () => r.normal());
  return o.sum(o.mul(y, g.constant(data, y.shape)));
}

interface Case {
  name: string;
  dtype?: 'float32' | 'float64';
  /** builds the op on params and returns its output (or a scalar loss when `isLoss`) */
  build: (g: Graph) => Tensor;
  isLoss?: boolean;
  tol?: number;
  eps?: number;
  feeds?: Record<string, Float32Array | Float64Array | BigInt64Array>;
}

const U = (lo: number, hi: number) => ({ kind: 'uniform', lo, hi }) as const;
const N1 = { kind: 'normal', std: 1 } as const;

// float64 cases: tolerance 1e-5 relative (central differences with ε=1e-6 are accurate to ~1e-9
// for smooth ops; the margin covers kinks of relu/abs that random points almost never straddle)
const cases: Case[] = [
  { name: 'add (broadcast)', build: (g) => o.add(g.param('a', [2, 3, 4], N1), g.param('b', [3, 1], N1)) },
  { name: 'sub (broadcast)', build: (g) => o.sub(g.param('a', [2, 3], N1), g.param('b', [3], N1)) },
  { name: 'mul (broadcast)', build: (g) => o.mul(g.param('a', [2, 3, 4], N1), g.param('b', [1, 4], N1)) },
  { name: 'div', build: (g) => o.div(g.param('a', [3, 4], N1), g.param('b', [4], U(1, 2))) },
  { name: 'neg', build: (g) => o.neg(g.param('a', [5], N1)) },
  { name: 'relu', build: (g) => o.relu(g.param('a', [20], N1)) },
  { name: 'sigmoid', build: (g) => o.sigmoid(g.param('a', [10], N1)) },
  { name: 'tanh', build: (g) => o.tanh(g.param('a', [10], N1)) },
  { name: 'exp', build: (g) => o.exp(g.param('a', [10], N1)) },
  { name: 'log', build: (g) => o.log(g.param('a', [10], U(0.5, 3))) },
  { name: 'sqrt', build: (g) => o.sqrt(g.param('a', [10], U(0.5, 3))) },
  { name: 'abs', build: (g) => o.abs(g.param('a', [10], N1)) },
  { name: 'softplus', build: (g) => o.softplus(g.param('a', [10], N1)) },
  { name: 'pow (cubic)', build: (g) => o.pow(g.param('a', [10], N1), 3) },
  { name: 'square', build: (g) => o.square(g.param('a', [10], N1)) },
  { name: 'where', build: (g) => o.where(o.compare('Greater', g.constant(Float64Array.from([1, -1, 2, -2, 0.5, -0.5]), [6]), 0), g.param('a', [6], N1), g.param('b', [1], N1)) },
  { name: 'matmul (batched, broadcast)', build: (g) => o.matmul(g.param('a', [2, 3, 4], N1), g.param('b', [4, 5], N1)) },
  { name: 'linear', build: (g) => o.linear(g.param('x', [3, 4], N1), g.param('w', [4, 2], N1), g.param('b', [2], N1)) },
  { name: 'reshape + transpose', build: (g) => o.transpose(o.reshape(g.param('a', [2, 3, 4], N1), [6, 4]), [1, 0]) },
  { name: 'expand', build: (g) => o.expand(g.param('a', [3, 1], N1), [2, 3, 4]) },
  { name: 'concat', build: (g) => o.concat([g.param('a', [2, 3], N1), g.param('b', [2, 2], N1)], 1) },
  { name: 'slice', build: (g) => o.slice(g.param('a', [4, 5], N1), [1, 2], [3, 5], [0, 1]) },
  { name: 'pad', build: (g) => o.pad(g.param('a', [2, 3], N1), [1, 0, 0, 2]) },
  { name: 'sum (axes)', build: (g) => o.sum(g.param('a', [2, 3, 4], N1), [0, 2], true) },
  { name: 'max (axes)', build: (g) => o.max(g.param('a', [2, 3, 4], N1), [0, 2]) },
  { name: 'mean (axes)', build: (g) => o.mean(g.param('a', [2, 3, 4], N1), [1]) },
  { name: 'softmax', build: (g) => o.softmax(g.param('a', [3, 5], N1), -1) },
  { name: 'logSoftmax', build: (g) => o.logSoftmax(g.param('a', [3, 5], N1), 1) },
  { name: 'embedding (gather)', build: (g) => o.embedding(g.param('table', [6, 3], N1), g.constant(BigInt64Array.from([1n, 4n, 1n, 0n]), [2, 2])) },
  { name: 'gatherElements', build: (g) => o.gatherElements(g.param('a', [2, 4], N1), g.constant(BigInt64Array.from([3n, 0n, 3n, 1n, 1n, 2n]), [2, 3]), 1) },
  { name: 'layerNorm (fused LayerNormalization)', dtype: 'float32', tol: 2e-3, build: (g) => o.layerNorm(g.param('x', [2, 3, 6], N1), g.param('gamma', [6], N1), g.param('beta', [6], N1)) },
  { name: 'layerNorm without affine (fused)', dtype: 'float32', tol: 2e-3, build: (g) => o.layerNorm(g.param('x', [3, 5], N1), null, null) },
  { name: 'layerNorm (composed)', build: (g) => o.layerNormComposed(g.param('x', [3, 6], N1), g.param('gamma', [6], N1), g.param('beta', [6], N1)) },
  { name: 'groupNorm (fused InstanceNormalization)', dtype: 'float32', tol: 2e-3, build: (g) => o.groupNorm(g.param('x', [2, 4, 3, 2, 2], N1), 2, g.param('gamma', [4], N1), g.param('beta', [4], N1)) },
  { name: 'instanceNorm (fused)', dtype: 'float32', tol: 2e-3, build: (g) => o.instanceNorm(g.param('x', [2, 3, 4, 3, 2], N1), g.param('gamma', [3], N1), null) },
  {
    name: 'InstanceNormalization node with learned scale and bias', dtype: 'float32', tol: 2e-3,
    build: (g) => { const x = g.param('x', [2, 3, 4, 5], N1); return g.node1('InstanceNormalization', [x, g.param('s', [3], N1), g.param('b', [3], N1)], { epsilon: { f: 1e-5 } }, x.shape); },
  },
  { name: 'groupNorm (composed)', build: (g) => o.groupNormComposed(g.param('x', [2, 4, 3, 2, 2], N1), 2, g.param('gamma', [4], N1), g.param('beta', [4], N1)) },
  { name: 'instanceNorm (composed, float64)', build: (g) => o.instanceNorm(g.param('x', [1, 3, 2, 3, 2], N1), g.param('gamma', [3], N1), null) },
  // the float32 leg rounds at ~1e-7 relative, so ε must be far above that: ε=1e-2 on a linear map
  { name: 'cast round trip', eps: 1e-2, tol: 1e-5, build: (g) => o.cast(o.mul(o.cast(g.param('a', [4], N1), 'float32'), 2), 'float64') },
  {
    name: 'lstm (masked lengths)',
    build: (g) => {
      const x = g.param('x', [3, 4, 2], N1);
      const p = { wx: g.param('wx', [2, 12], { kind: 'normal', std: 0.5 }), wh: g.param('wh', [3, 12], { kind: 'normal', std: 0.5 }), b: g.param('b', [12], N1) };
      const r = o.lstm(x, p, g.constant(BigInt64Array.from([4n, 2n, 1n]), [3]));
      return o.concat([o.reshape(r.outputs, [3, 12]), r.last], 1);
    },
  },
  {
    name: 'dropout (fixed step seed)',
    build: (g) => o.mul(o.dropout(g.param('a', [50], N1), 0.3), 1),
    feeds: { __step_seed: Float32Array.from([5]) },
  },
  { name: 'diceLoss', isLoss: true, build: (g) => o.diceLoss(o.sigmoid(g.param('a', [2, 1, 3, 3, 2], N1)), g.constant(Float64Array.from({ length: 36 }, (_, i) => (i % 3 === 0 ? 1 : 0)), [2, 1, 3, 3, 2])) },
  {
    name: 'localizationLoss (softmax over voxels against a soft target)', isLoss: true,
    build: (g) => localizationLoss(g.param('a', [2, 1, 3, 2, 2], N1), g.constant(Float64Array.from({ length: 24 }, (_, i) => (i % 5 === 0 ? 0.7 : i % 4 === 1 ? 0.2 : 0)), [2, 1, 3, 2, 2])),
  },
  { name: 'bceWithLogits', isLoss: true, build: (g) => o.bceWithLogits(g.param('a', [12], { kind: 'normal', std: 3 }), g.constant(Float64Array.from({ length: 12 }, (_, i) => i % 2), [12])) },
  {
    name: 'maskedCrossEntropy', isLoss: true,
    build: (g) => o.maskedCrossEntropy(g.param('logits', [2, 3, 5], N1), g.constant(BigInt64Array.from([0n, 4n, 2n, 1n, 1n, 3n]), [2, 3]), g.constant(Float64Array.from([1, 0, 1, 1, 1, 0]), [2, 3])),
  },
  // ops whose ORT CPU kernels are float-only: float32 with ε=1e-2; these ops are piecewise linear
  // or smooth on the scale of ε, so the difference quotient is accurate to float32 rounding of the
  // loss (~1e-7 relative, divided by ε) — 2e-3 relative leaves a wide margin
  { name: 'gelu', dtype: 'float32', tol: 2e-3, build: (g) => o.gelu(g.param('a', [20], N1)) },
  { name: 'erf', dtype: 'float32', tol: 2e-3, build: (g) => o.erf(g.param('a', [20], N1)) },
  { name: 'maxPool 2×2×2', dtype: 'float32', tol: 2e-3, build: (g) => o.maxPool3d(g.param('a', [2, 2, 4, 4, 5], N1), { kernel: 2 }) },
  { name: 'maxPool overlapping 3/2 padded', dtype: 'float32', tol: 2e-3, build: (g) => o.maxPool3d(g.param('a', [1, 2, 5, 5, 5], N1), { kernel: 3, stride: 2, padding: 1 }) },
  { name: 'avgPool (remainder)', dtype: 'float32', tol: 2e-3, build: (g) => o.avgPool3d(g.param('a', [1, 2, 4, 5, 4], N1), 2) },
  { name: 'upsampleNearest ×2', dtype: 'float32', tol: 2e-3, build: (g) => o.upsampleNearest(g.param('a', [1, 2, 2, 3, 2], N1), 2) },
  { name: 'resizeLinear ×2 (trilinear, borders)', dtype: 'float32', tol: 2e-3, build: (g) => o.resizeLinear(g.param('a', [1, 2, 3, 4, 2], N1), [6, 8, 4]) },
  { name: 'resizeLinear down 6→4, 5→3', dtype: 'float32', tol: 2e-3, build: (g) => o.resizeLinear(g.param('a', [1, 1, 6, 5, 2], N1), [4, 3, 2]) },
  { name: 'resizeLinearSeparable ×8 along D, ×2/×3 in-plane', dtype: 'float32', tol: 2e-3, build: (g) => o.resizeLinearSeparable(g.param('a', [2, 1, 2, 3, 2], N1), [16, 6, 6]) },
];

for (const c of cases) {
  test(`gradient check: ${c.name}`, async () => {
    const g = new Graph({ seed: 3, dtype: c.dtype ?? 'float64' });
    const y = c.build(g);
    const loss = c.isLoss ? y : weighted(y);
    const params = [...g.params.values()].map((p) => p.tensor);
    const r = await gradCheck(g, loss, params, c.feeds ?? {}, { directions: 3, eps: c.eps });
    assert.ok(r.maxRelError < (c.tol ?? 1e-5), `${c.name}: rel error ${r.maxRelError} (${JSON.stringify(r.pairs)})`);
    // a gradient that is identically zero would pass trivially; every case here has a real one
    assert.ok(r.pairs.some((p) => Math.abs(p.analytic) > 1e-6), `${c.name}: zero gradient`);
  });
}

/** analytic gradients of `loss` w.r.t. params, read back from ORT */
async function grads(g: Graph, loss: Tensor, wrt: Tensor[]): Promise<Float64Array[]> {
  const gs = gradients(loss, wrt);
  const outputs = new Map(gs.map((t, i) => [`g${i}`, t!] as const));
  const { bytes, inputs } = emitModel(g, { outputs, mode: 'train' });
  const s = await createSession(bytes, { threads: 1 });
  const feeds = Object.fromEntries(inputs.map((t) => [t.name, toOrt(t, g.params.get(t.name)!.value)]));
  const res = await s.run(feeds);
  return gs.map((_, i) => Float64Array.from(res[`g${i}`]!.data as Float64Array));
}

test('chained ops + broadcast add: gradient equals the sum of its parts and the hand-derived chain rule', async () => {
  // L = Σ r ⊙ (tanh(x ⊙ w) + b) + Σ s ⊙ x, with b broadcast over rows and x used twice
  const build = (parts: 'all' | 'first' | 'second') => {
    const g = new Graph({ seed: 9, dtype: 'float64' });
    const x = g.param('x', [3, 4], N1), w = g.param('w', [4], N1), b = g.param('b', [1, 4], N1);
    const first = weighted(o.add(o.tanh(o.mul(x, w)), b), 1);
    const second = weighted(x, 2);
    const loss = parts === 'all' ? o.add(first, second) : parts === 'first' ? o.add(first, o.mul(o.sum(b), 0)) : o.add(second, o.mul(o.sum(o.mul(w, b)), 0));
    return { g, loss, params: [x, w, b] };
  };
  const all = build('all'), first = build('first'), second = build('second');
  const [ga, gf, gs] = [await grads(all.g, all.loss, all.params), await grads(first.g, first.loss, first.params), await grads(second.g, second.loss, second.params)];
  for (let p = 0; p < 3; p++) for (let i = 0; i < ga[p]!.length; i++) assert.ok(Math.abs(ga[p]![i]! - gf[p]![i]! - gs[p]![i]!) < 1e-12);
  // hand-derived: dL/db_j = Σ_i r_ij ; dL/dx_ij = r_ij (1 − tanh²(x_ij w_j)) w_j + s_ij
  const rr = createRng(1), sr = createRng(2);
  const r = Array.from({ length: 12 }, () => rr.normal()), s = Array.from({ length: 12 }, () => sr.normal());
  const x = all.g.params.get('x')!.value, w = all.g.params.get('w')!.value;
  for (let j = 0; j < 4; j++) {
    const want = r[j]! + r[4 + j]! + r[8 + j]!;
    assert.ok(Math.abs(ga[2]![j]! - want) < 1e-12, `db_${j}`);
    for (let i = 0; i < 3; i++) {
      const t = Math.tanh(x[i * 4 + j]! * w[j]!);
      const dx = r[i * 4 + j]! * (1 - t * t) * w[j]! + s[i * 4 + j]!;
      assert.ok(Math.abs(ga[0]![i * 4 + j]! - dx) < 1e-12, `dx_${i}${j}`);
    }
  }
});

test('frozen parameters get no gradient graph', async () => {
  const g = new Graph({ seed: 1, dtype: 'float64' });
  const a = g.param('a', [3], N1), b = g.param('b', [3], N1);
  const loss = o.sum(o.mul(o.tanh(a), b));
  const before = g.nodes.length;
  const [ga] = gradients(loss, [b]);
  assert.ok(ga);
  // dL/db = tanh(a) needs no node that differentiates tanh
  assert.ok(!g.nodes.slice(before).some((n) => n.op === 'Sub'), 'tanh backward (1 − y²) was built for a frozen input');
});

test('fused layer norm matches the composed one in value and gradient', async () => {
  const run = async (fused: boolean) => {
    const g = new Graph({ seed: 4 });
    const x = g.param('x', [4, 7, 16], N1), ga = g.param('gamma', [16], N1), be = g.param('beta', [16], N1);
    const y = (fused ? o.layerNorm : o.layerNormComposed)(x, ga, be);
    return { y: await grads(g, weighted(y), [x, ga, be]), n: g.nodes.filter((nd) => nd.op === 'LayerNormalization').length };
  };
  const a = await run(true), b = await run(false);
  assert.equal(a.n, 1);
  assert.equal(b.n, 0);
  for (let p = 0; p < 3; p++) for (let i = 0; i < a.y[p]!.length; i++) assert.ok(Math.abs(a.y[p]![i]! - b.y[p]![i]!) < 1e-4 * (1 + Math.abs(b.y[p]![i]!)), `param ${p}[${i}]`);
});

test('fused group norm matches the composed one in value and gradient', async () => {
  const run = async (fused: boolean) => {
    const g = new Graph({ seed: 4 });
    const x = g.param('x', [2, 8, 5, 4, 3], N1), ga = g.param('gamma', [8], N1), be = g.param('beta', [8], N1);
    const y = (fused ? o.groupNorm : o.groupNormComposed)(x, 4, ga, be);
    return { y: await grads(g, weighted(y), [x, ga, be]), n: g.nodes.filter((nd) => nd.op === 'InstanceNormalization').length };
  };
  const a = await run(true), b = await run(false);
  assert.equal(a.n, 1);
  assert.equal(b.n, 0);
  for (let p = 0; p < 3; p++) for (let i = 0; i < a.y[p]!.length; i++) assert.ok(Math.abs(a.y[p]![i]! - b.y[p]![i]!) < 1e-4 * (1 + Math.abs(b.y[p]![i]!)), `param ${p}[${i}]`);
});

test('lstmLast (one ONNX LSTM node) gives the unrolled lstm\'s last valid state, lengths masked', async () => {
  // float32 only: ORT's LSTM kernel has no float64
  const B = 3, T = 6, I = 5, H = 4;
  const run = async (fused: boolean) => {
    const rng = createRng(21);
    const arr = (n: number, s = 1) => Float32Array.from({ length: n }, () => s * rng.normal());
    const g = new Graph({ seed: 1, dtype: 'float32' });
    const x = g.constant(arr(B * T * I), [B, T, I]);
    const p = { wx: g.constant(arr(I * 4 * H, 0.6), [I, 4 * H]), wh: g.constant(arr(H * 4 * H, 0.6), [H, 4 * H]), b: g.constant(arr(4 * H, 0.5), [4 * H]) };
    const lengths = g.constant(BigInt64Array.from([6n, 3n, 1n]), [B]);
    const y = fused ? o.lstmLast(x, p, lengths) : o.lstm(x, p, lengths).last;
    const m = await InferenceModel.create(g, { y });
    const r = (await m.run({})).y as Float32Array;
    await m.dispose();
    return { r, lstmNodes: g.nodes.filter((nd) => nd.op === 'LSTM').length };
  };
  const a = await run(true), b = await run(false);
  assert.equal(a.lstmNodes, 1);
  assert.equal(b.lstmNodes, 0);
  assert.equal(a.r.length, B * H);
  for (let i = 0; i < a.r.length; i++) assert.ok(Math.abs(a.r[i]! - b.r[i]!) < 1e-5, `[${i}]: ${a.r[i]} vs ${b.r[i]}`);
  // the lengths matter: the shortest sequence's state is not its full-length one
  assert.ok(Math.abs(a.r[2 * H]! - a.r[0]!) > 1e-3);
});

test('resizeLinearSeparable gives ORT\'s 3-D linear Resize (half-pixel, clamped borders) at the attention\'s ×8 and at other factors', async () => {
  for (const [shape, size] of [[[12, 1, 4, 4, 4], [32, 32, 32]], [[2, 3, 3, 5, 2], [7, 10, 6]], [[1, 2, 4, 4, 4], [4, 8, 8]]] as [number[], [number, number, number]][]) {
    const g = new Graph({ seed: 0, dtype: 'float32' });
    const x = g.input('x', shape);
    const m = await InferenceModel.create(g, { a: o.resizeLinear(x, size), b: o.resizeLinearSeparable(x, size) }, { spinning: false });
    const r = createRng(5);
    const res = await m.run({ x: Float32Array.from({ length: shape.reduce((p, v) => p * v, 1) }, () => r.normal()) });
    const a = res.a as Float32Array, b = res.b as Float32Array;
    assert.equal(b.length, a.length);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    assert.ok(worst < 1e-5, `${shape} → ${size}: max difference ${worst}`);
    await m.dispose();
  }
});
