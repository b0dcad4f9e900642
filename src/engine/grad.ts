/**
 * Reverse-mode automatic differentiation. One table maps each ONNX op to its gradient rule,
 * written in the same builder calls as the forward ops (so the backward pass is plain ONNX too);
 * `gradients` walks the recorded nodes in reverse order, which is a reverse topological order
 * because a node can only consume tensors made before it.
 */
import { shapeSize, type Node, type Tensor } from './graph.ts';
import {
  add, cast, linearResizeMatrix, compare, concat, div, erf, exp, expand, matmul, mean, mul, neg, pad, reshape, sqrt, slice, sub, sum, transpose, where,
} from './ops.ts';

type Rule = (node: Node, dys: readonly (Tensor | null)[], need: readonly boolean[]) => (Tensor | null)[];

const inp = (node: Node, i: number): Tensor => node.inputs[i]!;
const out = (node: Node, i = 0): Tensor => node.outputs[i]!;

/** Sums `dy` down to `shape`, undoing numpy-style broadcasting. */
export function unbroadcast(dy: Tensor, shape: readonly number[]): Tensor {
  if (dy.rank === shape.length && dy.shape.every((d, i) => d === shape[i])) return dy;
  const lead = dy.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < dy.rank; i++) if (i < lead || (shape[i - lead] === 1 && dy.shape[i] !== 1)) axes.push(i);
  return reshape(axes.length ? sum(dy, axes, true) : dy, shape);
}

function swapLast2(t: Tensor): Tensor {
  const perm = t.shape.map((_, i) => i);
  [perm[t.rank - 2], perm[t.rank - 1]] = [perm[t.rank - 1]!, perm[t.rank - 2]!];
  return transpose(t, perm);
}

function attrInts(node: Node, name: string): number[] {
  return (node.attrs[name] as number[] | undefined) ?? [];
}

/** data of a constant tensor (exponents, sizes) */
function constValue(t: Tensor): number[] {
  const d = t.graph.constants.get(t);
  if (!d) throw new Error(`expected ${t.name} to be a constant`);
  return Array.from(d as ArrayLike<number | bigint>, Number);
}

function zerosLike(shape: readonly number[], ref: Tensor): Tensor {
  return expand(ref.graph.scalar(0, ref.dtype), shape);
}

// ---- convolution adjoints (the fast forms from engine-notes.md) ----

/**
 * dX of a convolution as another Conv: dY with zeros inserted for the stride, convolved with the
 * kernel flipped in every spatial axis and its in/out channels swapped. Negative "padding" of that
 * conv (when the forward padding exceeds the dilated kernel reach) becomes a crop.
 */
function convInputGrad(node: Node, dy: Tensor): Tensor {
  const x = inp(node, 0), w = inp(node, 1);
  const n = x.rank - 2;
  const k = w.shape.slice(2), s = attrInts(node, 'strides'), d = attrInts(node, 'dilations'), p = attrInts(node, 'pads');
  let g = dy;
  const sp = dy.shape.slice(2);
  if (s.some((v) => v > 1)) {
    // zero insertion by reshape → pad → reshape, then trim the trailing zeros of the last block
    const inter = [dy.shape[0]!, dy.shape[1]!], padded = [dy.shape[0]!, dy.shape[1]!];
    const pads: number[] = [0, 0], padsEnd: number[] = [0, 0];
    sp.forEach((len, i) => { inter.push(len, 1); padded.push(len * s[i]!); pads.push(0, 0); padsEnd.push(0, s[i]! - 1); });
    const z = pad(reshape(dy, inter), [...pads, ...padsEnd]);
    const up = reshape(z, padded);
    g = slice(up, sp.map(() => 0), sp.map((len, i) => (len - 1) * s[i]! + 1), sp.map((_, i) => i + 2));
  }
  const glen = g.shape.slice(2);
  const pb: number[] = [], pe: number[] = [];
  for (let i = 0; i < n; i++) {
    const reach = d[i]! * (k[i]! - 1);
    const b = reach - p[i]!;
    pb.push(b);
    pe.push(x.shape[i + 2]! + reach - glen[i]! - b);
  }
  // crops for negative pads
  if (pb.some((v) => v < 0) || pe.some((v) => v < 0)) {
    const starts = pb.map((v) => Math.max(0, -v)), ends = pe.map((v, i) => glen[i]! - Math.max(0, -v));
    g = slice(g, starts, ends, starts.map((_, i) => i + 2));
  }
  const spatialAxes = k.map((_, i) => i + 2);
  const gr = x.graph;
  // a reversed Slice (step −1 from the last element past the first) flips each spatial axis
  const flipped = gr.node1('Slice', [w, gr.ints(k.map((kk) => kk - 1)), gr.ints(k.map(() => -Number.MAX_SAFE_INTEGER)), gr.ints(spatialAxes), gr.ints(k.map(() => -1))], {}, w.shape);
  const wt = transpose(flipped, [1, 0, ...spatialAxes]);
  const P = pb.map((v) => Math.max(0, v)), E = pe.map((v) => Math.max(0, v));
  return gr.node1('Conv', [g, wt], { kernel_shape: [...k], strides: k.map(() => 1), dilations: d, pads: [...P, ...E] }, x.shape);
}

/**
 * dW as im2col + MatMul, in two stages to keep the column buffer small: the input is shifted
 * along the last spatial axis only (kw views concatenated on channels, kw·Cin channels), then for
 * each offset of the other axes one strided slice of that is contracted with dY by one MatMul.
 * Measured on the 16→16 48³ layer (bench notes in docs/engine.md) this beats both the full
 * 27-view concatenation, whose 27·Cin-channel buffer costs more in memory traffic than the MatMul,
 * and 27 separate slice+MatMul pairs.
 */
function convWeightGrad(node: Node, dy: Tensor): Tensor {
  const x = inp(node, 0), w = inp(node, 1);
  const n = x.rank - 2;
  const [N, Cin] = x.shape as [number, number];
  const Cout = w.shape[0]!;
  const k = w.shape.slice(2), s = attrInts(node, 'strides'), d = attrInts(node, 'dilations'), p = attrInts(node, 'pads');
  const xp = pad(x, [0, 0, ...p.slice(0, n), 0, 0, ...p.slice(n)]);
  const outSp = dy.shape.slice(2);
  const P = shapeSize(outSp);
  const last = n - 1, lastAxis = n + 1;
  const kl = k[last]!;
  // stage 1: the kw shifts of the last axis (strided there), concatenated on channels
  const shifts: Tensor[] = [];
  for (let c = 0; c < kl; c++) {
    const st = c * d[last]!, en = st + (outSp[last]! - 1) * s[last]! + 1;
    shifts.push(st === 0 && en === xp.shape[lastAxis] && s[last] === 1 ? xp : slice(xp, [st], [en], [lastAxis], [s[last]!]));
  }
  const cw = concat(shifts, 1); // (N, kw·Cin, ...padded other axes, out_last)
  const dyT = transpose(reshape(dy, [N, Cout, P]), [0, 2, 1]);
  // stage 2: one MatMul per offset of the other axes
  const otherK = k.slice(0, last);
  const nOther = shapeSize(otherK);
  const parts: Tensor[] = [];
  for (let o = 0; o < nOther; o++) {
    const off: number[] = [];
    let r = o;
    for (let i = last - 1; i >= 0; i--) { off[i] = r % k[i]!; r = Math.floor(r / k[i]!); }
    const starts = off.map((v, i) => v * d[i]!);
    const ends = starts.map((st, i) => st + (outSp[i]! - 1) * s[i]! + 1);
    const axes = starts.map((_, i) => i + 2);
    const full = starts.every((st, i) => st === 0 && ends[i] === cw.shape[i + 2] && s[i] === 1);
    const view = full || axes.length === 0 ? cw : slice(cw, starts, ends, axes, s.slice(0, last));
    parts.push(matmul(reshape(view, [N, kl * Cin, P]), dyT)); // (N, kw·Cin, Cout)
  }
  let m = concat(parts, 1); // (N, K·Cin, Cout), offset-major like the weight's kernel order
  const K = shapeSize(k);
  m = N > 1 ? sum(m, [0]) : reshape(m, [K * Cin, Cout]);
  const kc = transpose(reshape(m, [K, Cin, Cout]), [2, 1, 0]);
  return reshape(kc, w.shape);
}

// ---- linear resize adjoint ----
function resizeGrad(node: Node, dy: Tensor): Tensor {
  const x = inp(node, 0);
  const g = x.graph;
  const n = x.rank - 2;
  const NC = x.shape[0]! * x.shape[1]!;
  let cur = dy;
  const shape = [...dy.shape];
  for (let a = n - 1; a >= 0; a--) {
    const inLen = x.shape[a + 2]!, outLen = shape[a + 2]!;
    if (inLen === outLen) continue;
    const m64 = linearResizeMatrix(inLen, outLen);
    const prefix = NC * shapeSize(shape.slice(2, a + 2));
    const suffix = shapeSize(shape.slice(a + 3));
    if (a === n - 1) {
      // right-multiply by M (out × in): (…, out) · (out, in)
      const mt = g.constant(x.dtype === 'float64' ? m64 : Float32Array.from(m64), [outLen, inLen]);
      cur = matmul(reshape(cur, [prefix, outLen]), mt);
    } else {
      // left-multiply by Mᵀ (in × out) on (prefix, out, suffix)
      const t = new Float64Array(inLen * outLen);
      for (let o = 0; o < outLen; o++) for (let i = 0; i < inLen; i++) t[i * outLen + o] = m64[o * inLen + i]!;
      const mt = g.constant(x.dtype === 'float64' ? t : Float32Array.from(t), [inLen, outLen]);
      cur = matmul(mt, reshape(cur, [prefix, outLen, suffix]));
    }
    shape[a + 2] = inLen;
    cur = reshape(cur, shape);
  }
  return reshape(cur, x.shape);
}

function reduceGrad(node: Node, dy: Tensor, scaleByCount: boolean): Tensor {
  const x = inp(node, 0);
  const axes = constValue(inp(node, 1));
  const keep = x.shape.map((dd, i) => (axes.includes(i) ? 1 : dd));
  let g = expand(reshape(dy, keep), x.shape);
  if (scaleByCount) g = div(g, shapeSize(axes.map((a) => x.shape[a]!)));
  return g;
}

const SQRT_2PI = Math.sqrt(2 * Math.PI);

/** The gradient rules: one entry per ONNX op; each returns one gradient (or null) per input. */
export const gradRules: Record<string, Rule> = {
  Add: (n, [dy]) => [unbroadcast(dy!, inp(n, 0).shape), unbroadcast(dy!, inp(n, 1).shape)],
  Sub: (n, [dy]) => [unbroadcast(dy!, inp(n, 0).shape), unbroadcast(neg(dy!), inp(n, 1).shape)],
  Mul: (n, [dy], need) => [
    need[0] ? unbroadcast(mul(dy!, inp(n, 1)), inp(n, 0).shape) : null,
    need[1] ? unbroadcast(mul(dy!, inp(n, 0)), inp(n, 1).shape) : null,
  ],
  Div: (n, [dy], need) => [
    need[0] ? unbroadcast(div(dy!, inp(n, 1)), inp(n, 0).shape) : null,
    need[1] ? unbroadcast(neg(div(mul(dy!, out(n)), inp(n, 1))), inp(n, 1).shape) : null,
  ],
  Neg: (_n, [dy]) => [neg(dy!)],
  Identity: (_n, [dy]) => [dy!],
  Relu: (n, [dy]) => [where(compare('Greater', out(n), 0), dy!, 0)],
  Sigmoid: (n, [dy]) => [mul(dy!, mul(out(n), sub(1, out(n))))],
  Tanh: (n, [dy]) => [mul(dy!, sub(1, mul(out(n), out(n))))],
  Exp: (n, [dy]) => [mul(dy!, out(n))],
  Log: (n, [dy]) => [div(dy!, inp(n, 0))],
  Sqrt: (n, [dy]) => [div(mul(dy!, 0.5), out(n))],
  Abs: (n, [dy]) => [mul(dy!, inp(n, 0).graph.node1('Sign', [inp(n, 0)], {}, inp(n, 0).shape))],
  Erf: (n, [dy]) => { const x = inp(n, 0); return [mul(dy!, mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI)))]; },
  Gelu: (n, [dy]) => {
    const x = inp(n, 0);
    const cdf = mul(add(erf(mul(x, Math.SQRT1_2)), 1), 0.5);
    const pdf = div(exp(mul(mul(x, x), -0.5)), SQRT_2PI);
    return [mul(dy!, add(cdf, mul(x, pdf)))];
  },
  Pow: (n, [dy]) => {
    const x = inp(n, 0);
    const p = constValue(inp(n, 1))[0]!;
    return [mul(dy!, p === 2 ? mul(x, 2) : mul(x.graph.node1('Pow', [x, x.graph.scalar(p - 1, x.dtype)], {}, x.shape), p)), null];
  },
  Cast: (n, [dy]) => [inp(n, 0).dtype.startsWith('float') ? cast(dy!, inp(n, 0).dtype) : null],
  MatMul: (n, [dy], need) => {
    const a = inp(n, 0), b = inp(n, 1);
    return [
      need[0] ? unbroadcast(matmul(dy!, swapLast2(b)), a.shape) : null,
      need[1] ? unbroadcast(matmul(swapLast2(a), dy!), b.shape) : null,
    ];
  },
  Conv: (n, [dy], need) => [
    need[0] ? convInputGrad(n, dy!) : null,
    need[1] ? convWeightGrad(n, dy!) : null,
    n.inputs[2] && need[2] ? sum(dy!, [0, ...dy!.shape.slice(2).map((_, i) => i + 2)]) : null,
  ],
  MaxPool: (n, [dy]) => {
    const x = inp(n, 0), idx = out(n, 1);
    const k = attrInts(n, 'kernel_shape'), s = attrInts(n, 'strides'), p = attrInts(n, 'pads');
    const g = x.graph;
    if (k.every((kk, i) => kk === s[i]) && p.every((v) => v === 0)) {
      return [g.node1('MaxUnpool', [dy!, idx, g.ints(x.shape)], { kernel_shape: k, strides: s }, x.shape)];
    }
    // overlapping windows can pick one voxel twice: scatter-add over the flat indices
    const flat = g.node1('ScatterElements', [zerosLike([x.size], dy!), reshape(idx, [-1]), reshape(dy!, [-1])], { axis: 0, reduction: 'add' }, [x.size]);
    return [reshape(flat, x.shape)];
  },
  AveragePool: (n, [dy]) => {
    const x = inp(n, 0);
    const k = attrInts(n, 'kernel_shape');
    const sp = dy!.shape.slice(2);
    const inter = [dy!.shape[0]!, dy!.shape[1]!], big = [dy!.shape[0]!, dy!.shape[1]!];
    sp.forEach((d, i) => { inter.push(d, 1); big.push(d, k[i]!); });
    let g = reshape(expand(reshape(div(dy!, shapeSize(k)), inter), big), [dy!.shape[0]!, dy!.shape[1]!, ...sp.map((d, i) => d * k[i]!)]);
    const rem = x.shape.slice(2).map((d, i) => d - sp[i]! * k[i]!);
    if (rem.some((r) => r > 0)) g = pad(g, [0, 0, ...rem.map(() => 0), 0, 0, ...rem]);
    return [g];
  },
  Resize: (n, [dy]) => [resizeGrad(n, dy!), null, null, null],
  Softmax: (n, [dy]) => {
    const y = out(n), axis = n.attrs.axis as number;
    return [mul(y, sub(dy!, sum(mul(dy!, y), [axis], true)))];
  },
  LogSoftmax: (n, [dy]) => {
    const y = out(n), axis = n.attrs.axis as number;
    return [sub(dy!, mul(exp(y), sum(dy!, [axis], true)))];
  },
  Concat: (n, [dy]) => {
    const axis = n.attrs.axis as number;
    let at = 0;
    return n.inputs.map((t) => {
      const len = t!.shape[axis]!;
      const r = slice(dy!, [at], [at + len], [axis]);
      at += len;
      return r;
    });
  },
  Slice: (n, [dy]) => {
    const x = inp(n, 0);
    if (n.inputs.length > 4) throw new Error('no gradient for strided Slice');
    const starts = constValue(inp(n, 1)), axes = constValue(inp(n, 3));
    const pads = Array(2 * x.rank).fill(0) as number[];
    axes.forEach((a, i) => { pads[a] = starts[i]!; pads[a + x.rank] = x.shape[a]! - starts[i]! - dy!.shape[a]!; });
    return [pad(dy!, pads), null, null, null];
  },
  Pad: (n, [dy]) => {
    const x = inp(n, 0);
    const pads = constValue(inp(n, 1));
    const axes = x.shape.map((_, i) => i).filter((i) => pads[i] !== 0 || pads[i + x.rank] !== 0);
    return [slice(dy!, axes.map((a) => pads[a]!), axes.map((a) => pads[a]! + x.shape[a]!), axes), null, null];
  },
  Reshape: (n, [dy]) => [reshape(dy!, inp(n, 0).shape), null],
  Transpose: (n, [dy]) => {
    const perm = n.attrs.perm as number[];
    const inv = perm.map((_, i) => perm.indexOf(i));
    return [transpose(dy!, inv)];
  },
  Expand: (n, [dy]) => [unbroadcast(dy!, inp(n, 0).shape), null],
  ReduceSum: (n, [dy]) => [reduceGrad(n, dy!, false), null],
  ReduceMean: (n, [dy]) => [reduceGrad(n, dy!, true), null],
  ReduceMax: (n, [dy]) => {
    // the gradient goes to the maximal elements (to each of them on exact ties)
    const x = inp(n, 0);
    const axes = constValue(inp(n, 1));
    const keep = x.shape.map((dd, i) => (axes.includes(i) ? 1 : dd));
    return [where(compare('Equal', x, reshape(out(n), keep)), reduceGrad(n, dy!, false), 0), null];
  },
  Gather: (n, [dy]) => {
    const table = inp(n, 0), ids = inp(n, 1);
    const g = table.graph;
    const idx = reshape(ids, [...ids.shape, 1]);
    return [g.node1('ScatterND', [zerosLike(table.shape, dy!), idx, dy!], { reduction: 'add' }, table.shape), null];
  },
  GatherElements: (n, [dy]) => {
    const x = inp(n, 0), idx = inp(n, 1);
    return [x.graph.node1('ScatterElements', [zerosLike(x.shape, dy!), idx, dy!], { axis: n.attrs.axis as number, reduction: 'add' }, x.shape), null];
  },
  Where: (n, [dy], need) => [
    null,
    need[1] ? unbroadcast(where(inp(n, 0), dy!, 0), inp(n, 1).shape) : null,
    need[2] ? unbroadcast(where(inp(n, 0), 0, dy!), inp(n, 2).shape) : null,
  ],
  LayerNormalization: (n, [dy], need) => {
    // y = x̂·γ + β with x̂ = (x − μ)·σ⁻¹ over the last axis; μ and σ⁻¹ are the node's saved outputs
    const x = inp(n, 0), gamma = inp(n, 1);
    const xh = mul(sub(x, out(n, 1)), out(n, 2));
    const gdy = mul(dy!, gamma);
    const dx = mul(out(n, 2), sub(sub(gdy, mean(gdy, [-1], true)), mul(xh, mean(mul(gdy, xh), [-1], true))));
    return [
      need[0] ? dx : null,
      need[1] ? unbroadcast(mul(dy!, xh), gamma.shape) : null,
      n.inputs[2] && need[2] ? unbroadcast(dy!, inp(n, 2).shape) : null,
    ];
  },
  InstanceNormalization: (n, [dy], need) => {
    // per (sample, channel) statistics over the spatial axes, recomputed (the op saves none)
    const x = inp(n, 0), scale = inp(n, 1);
    const eps = (n.attrs.epsilon as { f: number }).f;
    const axes = x.shape.slice(2).map((_, i) => i + 2);
    const bshape = [x.shape[1]!, ...axes.map(() => 1)];
    const xc = sub(x, mean(x, axes, true));
    const inv = div(1, sqrt(add(mean(mul(xc, xc), axes, true), eps)));
    const xh = mul(xc, inv);
    const unitScale = scale.kind === 'const' && constValue(scale).every((v) => v === 1);
    const gdy = unitScale ? dy! : mul(dy!, reshape(scale, bshape));
    const dx = mul(inv, sub(sub(gdy, mean(gdy, axes, true)), mul(xh, mean(mul(gdy, xh), axes, true))));
    return [
      need[0] ? dx : null,
      need[1] ? sum(mul(dy!, xh), [0, ...axes]) : null,
      need[2] ? sum(dy!, [0, ...axes]) : null,
    ];
  },
  __Dropout: (n, [dy]) => [dy!.graph.node1('__Dropout', [dy!, inp(n, 1)], n.attrs, dy!.shape), null],
};

/**
 * Gradients of scalar `loss` with respect to each tensor of `wrt` (null where `loss` does not
 * depend on it). Only nodes on a path from some `wrt` to `loss` are differentiated.
 */
export function gradients(loss: Tensor, wrt: readonly Tensor[]): (Tensor | null)[] {
  if (loss.size !== 1) throw new Error(`gradients: loss must be a scalar, got [${loss.shape.join(',')}]`);
  const g = loss.graph;
  const last = loss.producer ? loss.producer.index : -1;
  // forward: which tensors depend on a wrt tensor
  const depends = new Set<Tensor>(wrt);
  for (let i = 0; i <= last; i++) {
    const node = g.nodes[i]!;
    if (node.inputs.some((t) => t && depends.has(t))) for (const o of node.outputs) depends.add(o);
  }
  const grads = new Map<Tensor, Tensor>();
  grads.set(loss, loss.rank === 0 ? g.scalar(1, loss.dtype) : expand(g.scalar(1, loss.dtype), loss.shape));
  for (let i = last; i >= 0; i--) {
    const node = g.nodes[i]!;
    const dys = node.outputs.map((o) => grads.get(o) ?? null);
    if (dys.every((d) => d === null)) continue;
    const need = node.inputs.map((t) => t !== null && depends.has(t) && t.dtype.startsWith('float'));
    if (!need.some(Boolean)) continue;
    const rule = gradRules[node.op];
    if (!rule) throw new Error(`no gradient rule for ONNX op ${node.op}`);
    const dxs = rule(node, dys, need);
    node.inputs.forEach((t, k) => {
      const dx = dxs[k];
      if (!t || !dx || !need[k]) return;
      const prev = grads.get(t);
      grads.set(t, prev ? add(prev, dx) : dx);
    });
  }
  return wrt.map((t) => grads.get(t) ?? null);
}
