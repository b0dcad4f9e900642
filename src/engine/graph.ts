/**
 * The graph builder. Its node set IS standard ONNX: every node is one ONNX operator with ONNX
 * attributes, so emitting a model is a direct transcription and gradient rules (grad.ts) are
 * written in the same builder calls as the forward pass. Shapes are static and inferred here, so a
 * shape mistake fails at build time with a readable message instead of inside ORT.
 */
import { createRng, type Rng } from '../common/index.ts';

export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'uint8' | 'bool';
export type Shape = readonly number[];
export type TypedData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

/** An ONNX attribute: plain numbers are INT/INTS, `{ f }`/`{ fs }` are FLOAT/FLOATS. */
export type AttrValue = number | number[] | string | { f: number } | { fs: number[] };

export type TensorKind = 'input' | 'param' | 'const' | 'op';

export class Tensor {
  constructor(
    readonly graph: Graph,
    readonly id: number,
    readonly name: string,
    readonly shape: Shape,
    readonly dtype: DType,
    readonly kind: TensorKind,
    /** the node that computes it, for kind 'op' */
    readonly producer: Node | null,
  ) {}
  get size(): number { return shapeSize(this.shape); }
  get rank(): number { return this.shape.length; }
  toString(): string { return `${this.name}[${this.shape.join('×')}] ${this.dtype}`; }
}

export interface Node {
  readonly index: number;
  readonly op: string;
  readonly domain: string;
  readonly inputs: readonly (Tensor | null)[];
  readonly attrs: Readonly<Record<string, AttrValue>>;
  readonly outputs: readonly Tensor[];
}

/** How a parameter is initialized; `he`/`xavier` read fan-in/fan-out from the shape (out, in, ...). */
export type Init =
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'constant'; value: number }
  | { kind: 'normal'; std: number; mean?: number }
  | { kind: 'uniform'; lo: number; hi: number }
  | { kind: 'he' }
  | { kind: 'xavier' }
  | { kind: 'values'; data: ArrayLike<number> };

export interface ParamInfo {
  readonly tensor: Tensor;
  /** current value, float32 or float64 like the graph */
  value: Float32Array | Float64Array;
  trainable: boolean;
}

export interface GraphOptions {
  /** seed for parameter initialization (each parameter draws from a stream forked by its name) */
  seed?: number;
  /** float type of inputs/params/constants made without an explicit dtype; float64 is for gradient checks */
  dtype?: 'float32' | 'float64';
}

export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function broadcastShapes(a: Shape, b: Shape, what = 'broadcast'): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1, db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`${what}: shapes [${a.join(',')}] and [${b.join(',')}] do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

function fans(shape: Shape): [number, number] {
  if (shape.length === 1) return [shape[0]!, shape[0]!];
  const receptive = shapeSize(shape.slice(2));
  // conv weights are (out, in, k...); linear weights in this engine are (in, out) as in x·W
  if (shape.length === 2) return [shape[0]!, shape[1]!];
  return [shape[1]! * receptive, shape[0]! * receptive];
}

export class Graph {
  readonly nodes: Node[] = [];
  readonly tensors: Tensor[] = [];
  readonly params = new Map<string, ParamInfo>();
  readonly inputs = new Map<string, Tensor>();
  readonly constants = new Map<Tensor, TypedData>();
  readonly dtype: 'float32' | 'float64';
  private readonly rng: Rng;
  private readonly constCache = new Map<string, Tensor>();
  private readonly names = new Set<string>();
  /** a per-step seed input, created by the first dropout */
  stepSeed: Tensor | null = null;

  constructor(opts: GraphOptions = {}) {
    this.rng = createRng(opts.seed ?? 0);
    this.dtype = opts.dtype ?? 'float32';
  }

  private newTensor(name: string | null, shape: Shape, dtype: DType, kind: TensorKind, producer: Node | null): Tensor {
    const id = this.tensors.length;
    const n = name ?? `%${id}`;
    if (this.names.has(n)) throw new Error(`graph: duplicate tensor name '${n}'`);
    this.names.add(n);
    for (const d of shape) if (!Number.isInteger(d) || d < 0) throw new Error(`graph: bad dimension ${d} in shape of '${n}'`);
    const t = new Tensor(this, id, n, [...shape], dtype, kind, producer);
    this.tensors.push(t);
    return t;
  }

  /** A fed tensor with a static shape. */
  input(name: string, shape: Shape, dtype: DType = this.dtype): Tensor {
    const t = this.newTensor(name, shape, dtype, 'input', null);
    this.inputs.set(name, t);
    return t;
  }

  /** A learnable tensor, initialized now from the graph's seed forked by `name`. */
  param(name: string, shape: Shape, init: Init = { kind: 'he' }, opts: { trainable?: boolean } = {}): Tensor {
    const t = this.newTensor(name, shape, this.dtype, 'param', null);
    const n = shapeSize(shape);
    const value = this.dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
    const r = this.rng.fork(name);
    switch (init.kind) {
      case 'zeros': break;
      case 'ones': value.fill(1); break;
      case 'constant': value.fill(init.value); break;
      case 'normal': for (let i = 0; i < n; i++) value[i] = r.normal(init.mean ?? 0, init.std); break;
      case 'uniform': for (let i = 0; i < n; i++) value[i] = r.uniform(init.lo, init.hi); break;
      case 'he': { const std = Math.sqrt(2 / fans(shape)[0]); for (let i = 0; i < n; i++) value[i] = r.normal(0, std); break; }
      case 'xavier': { const [fi, fo] = fans(shape); const a = Math.sqrt(6 / (fi + fo)); for (let i = 0; i < n; i++) value[i] = r.uniform(-a, a); break; }
      case 'values':
        if (init.data.length !== n) throw new Error(`param '${name}': ${init.data.length} values for shape [${shape.join(',')}]`);
        for (let i = 0; i < n; i++) value[i] = init.data[i]!;
        break;
    }
    this.params.set(name, { tensor: t, value, trainable: opts.trainable ?? true });
    return t;
  }

  /** Marks parameters (by exact name or a predicate) trainable or frozen; frozen ones get no gradient graph. */
  setTrainable(which: string | ((name: string) => boolean), trainable: boolean): void {
    for (const [name, p] of this.params) if (typeof which === 'string' ? name === which : which(name)) p.trainable = trainable;
  }

  constant(data: TypedData, shape: Shape, name: string | null = null): Tensor {
    const dtype: DType = data instanceof Float32Array ? 'float32' : data instanceof Float64Array ? 'float64'
      : data instanceof BigInt64Array ? 'int64' : data instanceof Int32Array ? 'int32' : 'uint8';
    if (data.length !== shapeSize(shape)) throw new Error(`constant: ${data.length} values for shape [${shape.join(',')}]`);
    const t = this.newTensor(name, shape, dtype, 'const', null);
    this.constants.set(t, data);
    return t;
  }

  /** A cached scalar (or given-shape fill) constant in the graph's float type unless told. */
  scalar(v: number, dtype: DType = this.dtype): Tensor {
    const key = `${dtype}:${v}`;
    let t = this.constCache.get(key);
    if (!t) {
      const data = dtype === 'float64' ? new Float64Array([v]) : dtype === 'int64' ? new BigInt64Array([BigInt(v)])
        : dtype === 'int32' ? new Int32Array([v]) : new Float32Array([v]);
      t = this.constant(data, []);
      this.constCache.set(key, t);
    }
    return t;
  }

  /** A cached int64 vector constant (shapes, axes, pads for ONNX ops that take them as inputs). */
  ints(values: readonly number[]): Tensor {
    const key = `i64v:${values.join(',')}`;
    let t = this.constCache.get(key);
    if (!t) {
      t = this.constant(BigInt64Array.from(values.map((v) => BigInt(v))), [values.length]);
      this.constCache.set(key, t);
    }
    return t;
  }

  /**
   * Appends one ONNX node. `outShapes` are inferred by the caller (each op method below); the
   * output dtypes default to the first input's.
   */
  node(op: string, inputs: (Tensor | null)[], attrs: Record<string, AttrValue>, outShapes: Shape[], outDtypes?: DType[], domain = ''): Tensor[] {
    for (const t of inputs) if (t && t.graph !== this) throw new Error(`${op}: input ${t.name} belongs to another graph`);
    const outputs: Tensor[] = [];
    const node: Node = { index: this.nodes.length, op, domain, inputs, attrs, outputs };
    outShapes.forEach((s, i) => outputs.push(this.newTensor(null, s, outDtypes?.[i] ?? inputs[0]!.dtype, 'op', node)));
    this.nodes.push(node);
    return outputs;
  }

  node1(op: string, inputs: (Tensor | null)[], attrs: Record<string, AttrValue>, outShape: Shape, outDtype?: DType): Tensor {
    return this.node(op, inputs, attrs, [outShape], outDtype ? [outDtype] : undefined)[0]!;
  }

  /** The per-step seed input dropout masks are derived from (fed by the Trainer). */
  seedInput(): Tensor {
    if (!this.stepSeed) this.stepSeed = this.input('__step_seed', [], 'float32');
    return this.stepSeed;
  }
}
