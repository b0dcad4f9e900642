/**
 * Transcribes (part of) a Graph into an ONNX ModelProto in memory. Only nodes needed for the
 * requested outputs are emitted; params become graph inputs (training: fed each step) or
 * initializers (inference/export: weights inside the model).
 */
import onnxPkg from 'onnx-proto';
import type { AttrValue, DType, Graph, Node, Tensor, TypedData } from './graph.ts';

const { onnx } = onnxPkg;

export const OPSET = 20;
export const IR_VERSION = 9;

export const onnxDType: Record<DType, number> = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float64: 11 };

export interface EmitOptions {
  /** graph output name → tensor */
  outputs: ReadonlyMap<string, Tensor>;
  /** 'train' feeds params as inputs; 'infer' bakes them in and turns dropout into identity */
  mode: 'train' | 'infer';
  /** in 'train' mode, params that stay initializers instead of inputs (none by default) */
  bakedParams?: ReadonlySet<Tensor>;
  name?: string;
}

function valueInfo(name: string, t: Tensor): onnxPkg.onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType: onnxDType[t.dtype], shape: { dim: t.shape.map((d) => ({ dimValue: d })) } } } };
}

function tensorProto(name: string, dtype: DType, shape: readonly number[], data: TypedData): onnxPkg.onnx.ITensorProto {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { name, dataType: onnxDType[dtype], dims: [...shape], rawData: bytes };
}

function attribute(name: string, v: AttrValue): onnxPkg.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') return { name, type: T.INT, i: v };
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ('f' in v) return { name, type: T.FLOAT, f: v.f };
  return { name, type: T.FLOATS, floats: v.fs };
}

/** Inputs a node really reads in this mode (an inference dropout reads only its data). */
function usedInputs(node: Node, mode: 'train' | 'infer'): readonly (Tensor | null)[] {
  if (node.op === '__Dropout' && mode === 'infer') return [node.inputs[0]!];
  return node.inputs;
}

/** The nodes needed for `outputs`, in graph order. */
export function neededNodes(graph: Graph, outputs: Iterable<Tensor>, mode: 'train' | 'infer'): Node[] {
  const seen = new Set<Node>();
  const stack: Tensor[] = [...outputs];
  while (stack.length) {
    const t = stack.pop()!;
    const p = t.producer;
    if (!p || seen.has(p)) continue;
    seen.add(p);
    for (const i of usedInputs(p, mode)) if (i) stack.push(i);
  }
  return [...seen].sort((a, b) => a.index - b.index);
}

export interface Emitted {
  bytes: Uint8Array;
  /** graph inputs in order (fed tensors, including params in train mode) */
  inputs: Tensor[];
}

export function emitModel(graph: Graph, opts: EmitOptions): Emitted {
  const nodes = neededNodes(graph, opts.outputs.values(), opts.mode);
  const used = new Set<Tensor>();
  for (const n of nodes) for (const i of usedInputs(n, opts.mode)) if (i) used.add(i);
  for (const t of opts.outputs.values()) used.add(t);

  const alias = new Map<Tensor, string>();
  const nodeProtos: onnxPkg.onnx.INodeProto[] = [];
  const extraInit: onnxPkg.onnx.ITensorProto[] = [];
  // outputs take their public name directly when the tensor is computed here and named once
  const identities: [Tensor, string][] = [];
  for (const [name, t] of opts.outputs) {
    const clash = graph.inputs.get(name) ?? graph.params.get(name)?.tensor;
    if (clash) throw new Error(`output name '${name}' is already the name of an input or parameter`);
    if (t.kind === 'op' && !alias.has(t)) alias.set(t, name);
    else identities.push([t, name]);
  }
  const nameOf = (t: Tensor): string => alias.get(t) ?? t.name;

  let extra = 0;
  const fresh = (base: string): string => `${base}__e${extra++}`;
  for (const n of nodes) {
    const ins = n.inputs.map((t) => (t ? nameOf(t) : ''));
    const outs = n.outputs.map(nameOf);
    if (n.op === '__Dropout') {
      if (opts.mode === 'infer') {
        nodeProtos.push({ opType: 'Identity', input: [ins[0]!], output: [outs[0]!] });
      } else {
        const x = n.inputs[0]!;
        const scale = fresh('drop_scale'), zero = fresh('drop_zero'), scaled = fresh('drop_scaled');
        const s = (n.attrs.scale as { f: number }).f;
        const mk = (v: number): TypedData => (x.dtype === 'float64' ? new Float64Array([v]) : new Float32Array([v]));
        extraInit.push(tensorProto(scale, x.dtype, [], mk(s)), tensorProto(zero, x.dtype, [], mk(0)));
        nodeProtos.push({ opType: 'Mul', input: [ins[0]!, scale], output: [scaled] });
        nodeProtos.push({ opType: 'Where', input: [ins[1]!, scaled, zero], output: [outs[0]!] });
      }
      continue;
    }
    nodeProtos.push({
      opType: n.op,
      domain: n.domain || undefined,
      input: ins,
      output: outs,
      attribute: Object.entries(n.attrs).map(([k, v]) => attribute(k, v)),
    });
  }
  for (const [t, name] of identities) nodeProtos.push({ opType: 'Identity', input: [nameOf(t)], output: [name] });

  const inputs: Tensor[] = [];
  const initializer: onnxPkg.onnx.ITensorProto[] = [...extraInit];
  for (const t of [...used].sort((a, b) => a.id - b.id)) {
    if (t.kind === 'input') inputs.push(t);
    else if (t.kind === 'param') {
      if (opts.mode === 'train' && !opts.bakedParams?.has(t)) inputs.push(t);
      else initializer.push(tensorProto(t.name, t.dtype, t.shape, graph.params.get(t.name)!.value));
    } else if (t.kind === 'const') initializer.push(tensorProto(t.name, t.dtype, t.shape, graph.constants.get(t)!));
  }

  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'ctground-engine',
    graph: {
      name: opts.name ?? 'ctground',
      node: nodeProtos,
      initializer,
      input: inputs.map((t) => valueInfo(t.name, t)),
      output: [...opts.outputs].map(([name, t]) => valueInfo(name, t)),
    },
  });
  return { bytes: onnx.ModelProto.encode(model).finish(), inputs };
}
