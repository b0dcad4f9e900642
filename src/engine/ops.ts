/**
 * Forward ops. Each is one ONNX node (or a short composition of them) with its output shape
 * inferred here. Composite ops (layer norm, LSTM, losses) get their gradients for free from the
 * primitives they are made of; primitives have one rule each in grad.ts.
 */
import { broadcastShapes, shapeSize, Tensor, type DType, type Shape } from './graph.ts';

export type TLike = Tensor | number;

function lift(ref: Tensor, v: TLike): Tensor {
  return typeof v === 'number' ? ref.graph.scalar(v, ref.dtype) : v;
}

function binary(op: string, a: TLike, b: TLike): Tensor {
  const ref = typeof a === 'number' ? (b as Tensor) : a;
  const ta = lift(ref, a), tb = lift(ref, b);
  if (ta.dtype !== tb.dtype) throw new Error(`${op}: dtypes ${ta.dtype} and ${tb.dtype} differ`);
  return ref.graph.node1(op, [ta, tb], {}, broadcastShapes(ta.shape, tb.shape, op));
}

function unary(op: string, x: Tensor, attrs: Record<string, number | { f: number }> = {}): Tensor {
  return x.graph.node1(op, [x], attrs, x.shape);
}

function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`axis ${axis} out of range for rank ${rank}`);
  return a;
}

// ---- elementwise ----
export const add = (a: TLike, b: TLike): Tensor => binary('Add', a, b);
export const sub = (a: TLike, b: TLike): Tensor => binary('Sub', a, b);
export const mul = (a: TLike, b: TLike): Tensor => binary('Mul', a, b);
export const div = (a: TLike, b: TLike): Tensor => binary('Div', a, b);
export const neg = (x: Tensor): Tensor => unary('Neg', x);
export const relu = (x: Tensor): Tensor => unary('Relu', x);
export const sigmoid = (x: Tensor): Tensor => unary('Sigmoid', x);
export const tanh = (x: Tensor): Tensor => unary('Tanh', x);
export const exp = (x: Tensor): Tensor => unary('Exp', x);
export const log = (x: Tensor): Tensor => unary('Log', x);
export const sqrt = (x: Tensor): Tensor => unary('Sqrt', x);
export const abs = (x: Tensor): Tensor => unary('Abs', x);
/** log(1 + eˣ) as relu(x) + log(1 + e^−|x|): overflow-free, and built from ops that have float64 kernels */
export const softplus = (x: Tensor): Tensor => add(relu(x), log(add(exp(neg(abs(x))), 1)));
export const erf = (x: Tensor): Tensor => unary('Erf', x);
export const square = (x: Tensor): Tensor => mul(x, x);
/** exact (erf) GELU, as BERT uses */
export const gelu = (x: Tensor): Tensor => unary('Gelu', x);
/** x ** p for a constant exponent */
export const pow = (x: Tensor, p: number): Tensor => x.graph.node1('Pow', [x, x.graph.scalar(p, x.dtype)], {}, x.shape);

/** `cond ? a : b` elementwise, broadcasting; cond is a bool tensor (no gradient flows into it). */
export function where(cond: Tensor, a: TLike, b: TLike): Tensor {
  const ref = typeof a === 'number' ? (b as Tensor) : a;
  const ta = lift(ref, a), tb = lift(ref, b);
  const shape = broadcastShapes(cond.shape, broadcastShapes(ta.shape, tb.shape, 'Where'), 'Where');
  return ref.graph.node1('Where', [cond, ta, tb], {}, shape, ta.dtype);
}

export function compare(op: 'Less' | 'Greater' | 'Equal' | 'LessOrEqual' | 'GreaterOrEqual', a: TLike, b: TLike): Tensor {
  const ref = typeof a === 'number' ? (b as Tensor) : a;
  const ta = lift(ref, a), tb = lift(ref, b);
  return ref.graph.node1(op, [ta, tb], {}, broadcastShapes(ta.shape, tb.shape, op), 'bool');
}

const onnxType: Record<DType, number> = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float64: 11 };
export function cast(x: Tensor, to: DType): Tensor {
  if (x.dtype === to) return x;
  return x.graph.node1('Cast', [x], { to: onnxType[to] }, x.shape, to);
}

// ---- shape ops ----
export function reshape(x: Tensor, shape: Shape): Tensor {
  const s = [...shape];
  const inferred = s.indexOf(-1);
  if (inferred >= 0) s[inferred] = x.size / shapeSize(s.filter((d, i) => i !== inferred));
  if (shapeSize(s) !== x.size) throw new Error(`reshape: [${x.shape.join(',')}] → [${shape.join(',')}] changes the element count`);
  if (s.every((d, i) => d === x.shape[i]) && s.length === x.rank) return x;
  return x.graph.node1('Reshape', [x, x.graph.ints(s)], {}, s);
}

export function transpose(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.rank || [...perm].sort().some((p, i) => p !== i)) throw new Error(`transpose: bad perm [${perm.join(',')}] for rank ${x.rank}`);
  if (perm.every((p, i) => p === i)) return x;
  return x.graph.node1('Transpose', [x], { perm: [...perm] }, perm.map((p) => x.shape[p]!));
}

export function expand(x: Tensor, shape: Shape): Tensor {
  const out = broadcastShapes(x.shape, shape, 'Expand');
  if (out.length === x.rank && out.every((d, i) => d === x.shape[i])) return x;
  return x.graph.node1('Expand', [x, x.graph.ints(shape)], {}, out);
}

export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new Error('concat: no inputs');
  if (xs.length === 1) return xs[0]!;
  const first = xs[0]!;
  const a = normAxis(axis, first.rank);
  let total = 0;
  for (const x of xs) {
    if (x.rank !== first.rank || x.shape.some((d, i) => i !== a && d !== first.shape[i])) throw new Error(`concat: shape [${x.shape.join(',')}] does not match [${first.shape.join(',')}] off axis ${a}`);
    total += x.shape[a]!;
  }
  const shape = [...first.shape];
  shape[a] = total;
  return first.graph.node1('Concat', [...xs], { axis: a }, shape);
}

/**
 * Slice with ONNX semantics on explicit axes; `steps` may be >1 (no gradient rule then) but the
 * start/end must be in range (no clamping surprises).
 */
export function slice(x: Tensor, starts: readonly number[], ends: readonly number[], axes: readonly number[], steps?: readonly number[]): Tensor {
  const shape = [...x.shape];
  const ax = axes.map((a) => normAxis(a, x.rank));
  ax.forEach((a, i) => {
    const s = steps?.[i] ?? 1;
    const st = starts[i]!, en = ends[i]!;
    if (s <= 0 || st < 0 || en > x.shape[a]! || en <= st) throw new Error(`slice: bad range ${st}:${en}:${s} on axis ${a} of [${x.shape.join(',')}]`);
    shape[a] = Math.ceil((en - st) / s);
  });
  const g = x.graph;
  const inputs = [x, g.ints(starts), g.ints(ends), g.ints(ax)];
  if (steps && steps.some((s) => s !== 1)) inputs.push(g.ints(steps));
  return g.node1('Slice', inputs, {}, shape);
}

/** Zero (or constant) padding; `pads` = [begin per axis..., end per axis...] as in ONNX. */
export function pad(x: Tensor, pads: readonly number[], value = 0): Tensor {
  if (pads.length !== 2 * x.rank) throw new Error(`pad: ${pads.length} pads for rank ${x.rank}`);
  if (pads.every((p) => p === 0)) return x;
  const shape = x.shape.map((d, i) => d + pads[i]! + pads[i + x.rank]!);
  const inputs: Tensor[] = [x, x.graph.ints(pads)];
  if (value !== 0) inputs.push(x.graph.scalar(value, x.dtype));
  return x.graph.node1('Pad', inputs, { mode: 'constant' }, shape);
}

// ---- reductions ----
function reduce(op: string, x: Tensor, axes: readonly number[] | undefined, keepdims: boolean): Tensor {
  const ax = (axes ?? x.shape.map((_, i) => i)).map((a) => normAxis(a, x.rank));
  if (ax.length === 0) return x;
  const shape = keepdims ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !ax.includes(i));
  return x.graph.node1(op, [x, x.graph.ints(ax)], { keepdims: keepdims ? 1 : 0 }, shape);
}
/** sum over `axes` (all when omitted) */
export const sum = (x: Tensor, axes?: readonly number[], keepdims = false): Tensor => reduce('ReduceSum', x, axes, keepdims);
export const mean = (x: Tensor, axes?: readonly number[], keepdims = false): Tensor => reduce('ReduceMean', x, axes, keepdims);
/** max over axes; its gradient goes to the maximal elements */
export const max = (x: Tensor, axes?: readonly number[], keepdims = false): Tensor => reduce('ReduceMax', x, axes, keepdims);

// ---- linear algebra ----
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.rank < 2 || b.rank < 2) throw new Error(`matmul: needs rank ≥ 2, got [${a.shape.join(',')}] and [${b.shape.join(',')}]`);
  const [m, k] = a.shape.slice(-2) as [number, number];
  const [k2, n] = b.shape.slice(-2) as [number, number];
  if (k !== k2) throw new Error(`matmul: inner dimensions ${k} and ${k2} differ ([${a.shape.join(',')}]·[${b.shape.join(',')}])`);
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'MatMul');
  return a.graph.node1('MatMul', [a, b], {}, [...batch, m, n]);
}

/** x·W + b with W of shape (in, out) */
export function linear(x: Tensor, w: Tensor, b?: Tensor | null): Tensor {
  const y = matmul(x, w);
  return b ? add(y, b) : y;
}

// ---- softmax family ----
export function softmax(x: Tensor, axis = -1): Tensor {
  return x.graph.node1('Softmax', [x], { axis: normAxis(axis, x.rank) }, x.shape);
}
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return x.graph.node1('LogSoftmax', [x], { axis: normAxis(axis, x.rank) }, x.shape);
}

// ---- gathers ----
/** Rows of `table` (V, D) picked by int64 `ids` of any shape → ids.shape + [D]. */
export function embedding(table: Tensor, ids: Tensor): Tensor {
  if (ids.dtype !== 'int64') throw new Error('embedding: ids must be int64');
  return table.graph.node1('Gather', [table, ids], { axis: 0 }, [...ids.shape, ...table.shape.slice(1)]);
}

/** ONNX GatherElements: out[i][j] = x[i][idx[i][j]] along `axis`. */
export function gatherElements(x: Tensor, idx: Tensor, axis: number): Tensor {
  return x.graph.node1('GatherElements', [x, idx], { axis: normAxis(axis, x.rank) }, idx.shape);
}

// ---- convolution and pooling (N spatial dims; 3D is the case the models use) ----
export interface ConvOptions {
  stride?: number | number[];
  /** symmetric padding per spatial axis, or 'same' (stride 1 only) */
  padding?: number | number[] | 'same';
  dilation?: number | number[];
}

export function perAxis(v: number | number[] | undefined, n: number, dflt: number): number[] {
  if (v === undefined) return Array(n).fill(dflt);
  if (typeof v === 'number') return Array(n).fill(v);
  if (v.length !== n) throw new Error(`expected ${n} values, got ${v.length}`);
  return v;
}

/** Output length of a conv/pool window along one axis. */
export function windowOut(len: number, k: number, s: number, d: number, pb: number, pe: number): number {
  return Math.floor((len + pb + pe - d * (k - 1) - 1) / s) + 1;
}

/** Convolution; x (N, Cin, ...spatial), w (Cout, Cin, ...kernel), b (Cout) or null. */
export function conv(x: Tensor, w: Tensor, b: Tensor | null, opts: ConvOptions = {}): Tensor {
  const n = x.rank - 2;
  if (w.rank !== x.rank) throw new Error(`conv: weight rank ${w.rank} ≠ input rank ${x.rank}`);
  if (w.shape[1] !== x.shape[1]) throw new Error(`conv: weight expects ${w.shape[1]} input channels, input has ${x.shape[1]}`);
  const k = w.shape.slice(2);
  const s = perAxis(opts.stride, n, 1), d = perAxis(opts.dilation, n, 1);
  const p = opts.padding === 'same' ? k.map((kk, i) => (d[i]! * (kk - 1)) / 2) : perAxis(opts.padding, n, 0);
  if (p.some((v) => !Number.isInteger(v))) throw new Error('conv: "same" padding needs odd kernels');
  const out = x.shape.slice(2).map((len, i) => windowOut(len, k[i]!, s[i]!, d[i]!, p[i]!, p[i]!));
  if (out.some((o) => o <= 0)) throw new Error(`conv: input [${x.shape.join(',')}] too small for kernel [${k.join(',')}]`);
  if (b && (b.rank !== 1 || b.shape[0] !== w.shape[0])) throw new Error(`conv: bias shape [${b.shape.join(',')}] ≠ [${w.shape[0]}]`);
  const inputs = b ? [x, w, b] : [x, w];
  return x.graph.node1('Conv', inputs, { kernel_shape: [...k], strides: s, dilations: d, pads: [...p, ...p] }, [x.shape[0]!, w.shape[0]!, ...out]);
}
export const conv3d = conv;

export interface PoolOptions { kernel: number | number[]; stride?: number | number[]; padding?: number | number[] }

export function maxPool(x: Tensor, opts: PoolOptions): Tensor {
  const n = x.rank - 2;
  const k = perAxis(opts.kernel, n, 2), s = perAxis(opts.stride ?? opts.kernel, n, 2), p = perAxis(opts.padding, n, 0);
  const out = x.shape.slice(2).map((len, i) => windowOut(len, k[i]!, s[i]!, 1, p[i]!, p[i]!));
  const shape = [x.shape[0]!, x.shape[1]!, ...out];
  // the int64 indices output is what the gradient (MaxUnpool / scatter) needs
  return x.graph.node('MaxPool', [x], { kernel_shape: k, strides: s, pads: [...p, ...p] }, [shape, shape], [x.dtype, 'int64'])[0]!;
}
export const maxPool3d = maxPool;

/** Average pooling over non-overlapping windows (stride = kernel, no padding). */
export function avgPool(x: Tensor, kernel: number | number[]): Tensor {
  const n = x.rank - 2;
  const k = perAxis(kernel, n, 2);
  const out = x.shape.slice(2).map((len, i) => Math.floor(len / k[i]!));
  return x.graph.node1('AveragePool', [x], { kernel_shape: k, strides: k }, [x.shape[0]!, x.shape[1]!, ...out]);
}
export const avgPool3d = avgPool;

/** Mean over all spatial positions → (N, C). */
export function globalAvgPool(x: Tensor): Tensor {
  return mean(x, x.shape.slice(2).map((_, i) => i + 2));
}

/** Nearest-neighbour upsampling by integer factors, as reshape + broadcast (exact, with a cheap block-sum adjoint). */
export function upsampleNearest(x: Tensor, factor: number | number[]): Tensor {
  const n = x.rank - 2;
  const f = perAxis(factor, n, 2);
  const sp = x.shape.slice(2);
  const inter: number[] = [x.shape[0]!, x.shape[1]!];
  const big: number[] = [x.shape[0]!, x.shape[1]!];
  sp.forEach((d, i) => { inter.push(d, 1); big.push(d, f[i]!); });
  const y = expand(reshape(x, inter), big);
  return reshape(y, [x.shape[0]!, x.shape[1]!, ...sp.map((d, i) => d * f[i]!)]);
}

/**
 * Linear (trilinear in 3D) resize to `size` with half-pixel centres, as ONNX Resize; its gradient
 * applies the transposed per-axis interpolation matrices (exact at the borders too).
 */
export function resizeLinear(x: Tensor, size: readonly number[]): Tensor {
  const n = x.rank - 2;
  if (size.length !== n) throw new Error(`resizeLinear: ${size.length} sizes for ${n} spatial axes`);
  // already that size: the identity (half_pixel keeps every voxel), without a copy through Resize
  if (size.every((v, i) => v === x.shape[i + 2])) return x;
  const g = x.graph;
  const full = [x.shape[0]!, x.shape[1]!, ...size];
  return g.node1('Resize', [x, null, null, g.ints(full)], { mode: 'linear', coordinate_transformation_mode: 'half_pixel' }, full);
}

/** The (out × in) matrix of 1D linear interpolation with half-pixel centres, clamped at the borders like ORT. */
export function linearResizeMatrix(inLen: number, outLen: number): Float64Array {
  const m = new Float64Array(outLen * inLen);
  const scale = outLen / inLen;
  for (let o = 0; o < outLen; o++) {
    const xc = Math.min(Math.max((o + 0.5) / scale - 0.5, 0), inLen - 1);
    const x0 = Math.floor(xc), x1 = Math.min(x0 + 1, inLen - 1);
    const f = xc - x0;
    m[o * inLen + x0]! += 1 - f;
    m[o * inLen + x1]! += f;
  }
  return m;
}

/**
 * `resizeLinear` of a 5-D (N, C, D, H, W) tensor done as a bilinear Resize over (H, W), D taken as
 * channels, then one MatMul with the (out × in) interpolation matrix along D: the same half-pixel,
 * border-clamped values up to float rounding. For a large factor (the attention's 12 maps 4³ → 32³)
 * it runs ~3.6× faster in ORT than the 3-D Resize, for a decoder step ×2 at 16 channels ~1.2×
 * (`npm run bench -- engine`); only the attention uses it so far.
 */
export function resizeLinearSeparable(x: Tensor, size: readonly [number, number, number]): Tensor {
  if (x.rank !== 5) throw new Error('resizeLinearSeparable: expects (N, C, D, H, W)');
  const [N, C, D, H, W] = x.shape as [number, number, number, number, number];
  const g = x.graph;
  const plane = resizeLinear(reshape(x, [N * C, D, H, W]), [size[1], size[2]]);
  const along = D === size[0] ? null : linearResizeMatrix(D, size[0]);
  const m = along ? g.constant(x.dtype === 'float64' ? along : Float32Array.from(along), [size[0], D]) : null;
  const out = m ? matmul(m, reshape(plane, [N * C, D, size[1] * size[2]])) : plane;
  return reshape(out, [N, C, ...size]);
}

// ---- normalization ----
/**
 * Layer norm over the last axis with affine gamma/beta (D), as ONE ONNX LayerNormalization node
 * whose saved mean and inverse std feed a compact gradient rule (grad.ts) instead of the ~20 nodes
 * the composed form differentiates into.
 */
export function layerNorm(x: Tensor, gamma: Tensor | null, beta: Tensor | null, eps = 1e-5): Tensor {
  // ORT's CPU LayerNormalization is float-only; float64 graphs (gradient checks) use the composed form
  if (x.dtype === 'float64') return layerNormComposed(x, gamma, beta, eps);
  const g = x.graph;
  const D = x.shape[x.rank - 1]!;
  const scale = gamma ?? g.constant(new Float32Array(D).fill(1), [D]);
  const stats = [...x.shape.slice(0, -1), 1];
  const inputs = beta ? [x, scale, beta] : [x, scale];
  return g.node('LayerNormalization', inputs, { axis: -1, epsilon: { f: eps }, stash_type: onnxType[x.dtype] }, [x.shape, stats, stats])[0]!;
}

/** The same layer norm composed from primitive ops (kept as the reference the fused one is checked against). */
export function layerNormComposed(x: Tensor, gamma: Tensor | null, beta: Tensor | null, eps = 1e-5): Tensor {
  const mu = mean(x, [-1], true);
  const xc = sub(x, mu);
  const v = mean(mul(xc, xc), [-1], true);
  let y = div(xc, sqrt(add(v, eps)));
  if (gamma) y = mul(y, gamma);
  if (beta) y = add(y, beta);
  return y;
}

/**
 * Group norm on (N, C, ...spatial) with per-channel gamma/beta (C); groups = C is instance norm.
 * The normalization is one ONNX InstanceNormalization over (N, groups, rest) with a compact
 * gradient rule (grad.ts); float64 graphs use the composed form (no float64 CPU kernel).
 */
export function groupNorm(x: Tensor, groups: number, gamma: Tensor | null, beta: Tensor | null, eps = 1e-5): Tensor {
  if (x.dtype === 'float64') return groupNormComposed(x, groups, gamma, beta, eps);
  const [N, C] = x.shape as [number, number];
  if (C % groups !== 0) throw new Error(`groupNorm: ${C} channels not divisible into ${groups} groups`);
  const g = x.graph;
  const r = reshape(x, [N, groups, -1]);
  const ones = g.constant(new Float32Array(groups).fill(1), [groups]);
  const zeros = g.constant(new Float32Array(groups), [groups]);
  let y = reshape(g.node1('InstanceNormalization', [r, ones, zeros], { epsilon: { f: eps } }, r.shape), x.shape);
  const bshape = [C, ...x.shape.slice(2).map(() => 1)];
  if (gamma) y = mul(y, reshape(gamma, bshape));
  if (beta) y = add(y, reshape(beta, bshape));
  return y;
}

/** Group norm composed from primitive ops (the reference the fused form is checked against). */
export function groupNormComposed(x: Tensor, groups: number, gamma: Tensor | null, beta: Tensor | null, eps = 1e-5): Tensor {
  const [N, C] = x.shape as [number, number];
  if (C % groups !== 0) throw new Error(`groupNorm: ${C} channels not divisible into ${groups} groups`);
  const r = reshape(x, [N, groups, -1]);
  const mu = mean(r, [2], true);
  const xc = sub(r, mu);
  const v = mean(mul(xc, xc), [2], true);
  let y = reshape(div(xc, sqrt(add(v, eps))), x.shape);
  const bshape = [C, ...x.shape.slice(2).map(() => 1)];
  if (gamma) y = mul(y, reshape(gamma, bshape));
  if (beta) y = add(y, reshape(beta, bshape));
  return y;
}
export const instanceNorm = (x: Tensor, gamma: Tensor | null, beta: Tensor | null, eps = 1e-5): Tensor => groupNorm(x, x.shape[1]!, gamma, beta, eps);

// ---- dropout ----
/**
 * Inverted dropout whose mask is a counter-based hash of the element index and a per-step seed
 * input: the Trainer feeds a seed derived from (its seed, step), so a run resumed from a
 * checkpoint draws the same masks. Inference graphs feed no seed and get the identity (see
 * compile.ts), keeping expectation equal because kept values are scaled by 1/(1-p) in training.
 */
export function dropout(x: Tensor, p: number): Tensor {
  if (p <= 0) return x;
  if (p >= 1) throw new Error('dropout: p must be < 1');
  const g = x.graph;
  const seed = g.seedInput();
  // the element counter comes from Range in the graph rather than a stored constant: dropout sites
  // in a text encoder are megabytes each
  const f32 = (v: number) => g.scalar(v, 'float32');
  const counter = reshape(g.node1('Range', [f32(0), f32(x.size), f32(1)], {}, [x.size], 'float32'), x.shape);
  // fract(sin(a·i + b·seed) · 43758.5453) is the classic shader hash; its statistics are ample for
  // a Bernoulli mask, and it runs in float32 on any execution provider
  const wave = g.node1('Sin', [add(mul(counter, 12.9898), mul(seed, 78.233))], {}, x.shape, 'float32');
  const h = mul(wave, 43758.5453);
  const u = sub(h, g.node1('Floor', [h], {}, x.shape, 'float32'));
  const keep = compare('GreaterOrEqual', u, p);
  return g.node1('__Dropout', [x, keep], { scale: { f: 1 / (1 - p) } }, x.shape);
}

// ---- LSTM ----
export interface LstmParams {
  /** (in, 4H) input weights, gate order i, f, g, o */
  wx: Tensor;
  /** (H, 4H) recurrent weights */
  wh: Tensor;
  /** (4H) */
  b: Tensor;
}

/**
 * An LSTM unrolled over T steps of x (B, T, in). `lengths` (B, int64) masks each sequence: past
 * its length a sequence's state stops changing and its outputs are zero. Returns all hidden
 * states (B, T, H) and the last valid hidden state (B, H).
 */
export function lstm(x: Tensor, p: LstmParams, lengths: Tensor | null): { outputs: Tensor; last: Tensor } {
  const [B, T, I] = x.shape as [number, number, number];
  const H = p.wh.shape[0]!;
  if (p.wx.shape[0] !== I || p.wx.shape[1] !== 4 * H) throw new Error(`lstm: wx shape [${p.wx.shape.join(',')}] ≠ [${I},${4 * H}]`);
  const g = x.graph;
  // the input projection of all steps is one MatMul
  const xp = add(matmul(reshape(x, [B * T, I]), p.wx), p.b);
  const xs = reshape(xp, [B, T, 4 * H]);
  let h = g.constant(x.dtype === 'float64' ? new Float64Array(B * H) : new Float32Array(B * H), [B, H]);
  let c = h;
  const outs: Tensor[] = [];
  for (let t = 0; t < T; t++) {
    const z = add(reshape(slice(xs, [t], [t + 1], [1]), [B, 4 * H]), matmul(h, p.wh));
    const ig = sigmoid(slice(z, [0], [H], [1]));
    const fg = sigmoid(slice(z, [H], [2 * H], [1]));
    const gg = tanh(slice(z, [2 * H], [3 * H], [1]));
    const og = sigmoid(slice(z, [3 * H], [4 * H], [1]));
    let cn = add(mul(fg, c), mul(ig, gg));
    let hn = mul(og, tanh(cn));
    let out = hn;
    if (lengths) {
      const live = reshape(compare('Less', g.scalar(t, 'int64'), lengths), [B, 1]);
      cn = where(live, cn, c);
      hn = where(live, hn, h);
      out = where(live, out, 0);
    }
    c = cn;
    h = hn;
    outs.push(reshape(out, [B, 1, H]));
  }
  return { outputs: concat(outs, 1), last: h };
}

/**
 * The same LSTM's last valid hidden state (B, H) as ONE ONNX LSTM node, for inference graphs: the
 * unrolled form is ~20 small nodes per step, whose dispatch cost more than the arithmetic at these
 * sizes. No gradient rule: training graphs use `lstm`. Needs `lengths` ≥ 1; float32 only (ORT's kernel).
 */
export function lstmLast(x: Tensor, p: LstmParams, lengths: Tensor): Tensor {
  if (x.dtype !== 'float32') throw new Error(`lstmLast: ONNX Runtime's LSTM is float32 only, got ${x.dtype}`);
  const [B, T, I] = x.shape as [number, number, number];
  const H = p.wh.shape[0]!;
  if (p.wx.shape[0] !== I || p.wx.shape[1] !== 4 * H) throw new Error(`lstmLast: wx shape [${p.wx.shape.join(',')}] ≠ [${I},${4 * H}]`);
  // ONNX orders the gates i, o, f, c; ours are i, f, g(=c), o
  const gates = (w: Tensor, axis: number) => concat([0, 3, 1, 2].map((k) => slice(w, [k * H], [(k + 1) * H], [axis])), axis);
  const W = reshape(transpose(gates(p.wx, 1), [1, 0]), [1, 4 * H, I]);
  const R = reshape(transpose(gates(p.wh, 1), [1, 0]), [1, 4 * H, H]);
  const bias = reshape(concat([gates(p.b, 0), x.graph.constant(new Float32Array(4 * H), [4 * H])], 0), [1, 8 * H]);
  const seq = transpose(x, [1, 0, 2]);
  const lens = cast(lengths, 'int32');
  const outs = x.graph.node('LSTM', [seq, W, R, bias, lens], { hidden_size: H }, [[T, 1, B, H], [1, B, H]], [x.dtype, x.dtype]);
  return reshape(outs[1]!, [B, H]);
}

// ---- losses (each returns a scalar) ----
/**
 * Soft Dice loss 1 − (2Σpy + ε)/(Σp + Σy + ε), computed per sample (and channel) over the
 * spatial axes and averaged, as in the paper's segmentation objective.
 */
export function diceLoss(prob: Tensor, target: Tensor, eps = 1): Tensor {
  if (prob.shape.join() !== target.shape.join()) throw new Error(`diceLoss: prob [${prob.shape.join(',')}] vs target [${target.shape.join(',')}]`);
  const axes = prob.shape.slice(2).map((_, i) => i + 2);
  const inter = sum(mul(prob, target), axes);
  const denom = add(add(sum(prob, axes), sum(target, axes)), eps);
  return sub(1, mean(div(add(mul(inter, 2), eps), denom)));
}

/** Mean binary cross-entropy on logits: softplus(x) − xy, which is overflow-free with our softplus. */
export function bceWithLogits(logits: Tensor, target: Tensor): Tensor {
  const l = sub(softplus(logits), mul(logits, target));
  return mean(l);
}

/**
 * Mean cross-entropy over the tokens where `mask` is 1: logits (..., V), targets int64 (...),
 * mask float (...). Used for masked-language-model pretraining.
 */
export function maskedCrossEntropy(logits: Tensor, targets: Tensor, mask: Tensor): Tensor {
  const lp = logSoftmax(logits, -1);
  const picked = reshape(gatherElements(lp, reshape(targets, [...targets.shape, 1]), lp.rank - 1), targets.shape);
  const total = sum(mul(picked, mask));
  return div(neg(total), add(sum(mask), 1e-9));
}
