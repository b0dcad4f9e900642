/**
 * ORT session creation and feeding. Threads default to 2 (these machines have 2 cores); the
 * execution provider is a choice, CPU by default.
 */
import * as ort from 'onnxruntime-node';
import type { DType, Tensor, TypedData } from './graph.ts';
import { shapeSize } from './graph.ts';

export interface SessionOptions {
  /** ORT intra-op threads (default 2) */
  threads?: number;
  /** e.g. ['cpu'] (default) or ['cuda', 'cpu'] where the installed onnxruntime-node has CUDA */
  executionProviders?: string[];
}

export async function createSession(bytes: Uint8Array, opts: SessionOptions = {}): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, {
    intraOpNumThreads: opts.threads ?? 2,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    executionProviders: opts.executionProviders ?? ['cpu'],
  });
}

export type FeedValue = TypedData | readonly number[];

function ortType(d: DType): 'float32' | 'float64' | 'int64' | 'int32' | 'uint8' | 'bool' {
  return d;
}

/** Wraps a fed value as an ORT tensor of `t`'s static shape and type, checking its length. */
export function toOrt(t: Tensor, v: FeedValue): ort.Tensor {
  const n = shapeSize(t.shape);
  let data: TypedData | Uint8Array;
  if (Array.isArray(v)) {
    const a = v as readonly number[];
    data = t.dtype === 'float64' ? Float64Array.from(a) : t.dtype === 'int64' ? BigInt64Array.from(a.map((x) => BigInt(x)))
      : t.dtype === 'int32' ? Int32Array.from(a) : t.dtype === 'uint8' || t.dtype === 'bool' ? Uint8Array.from(a) : Float32Array.from(a);
  } else {
    data = v as TypedData;
    const want = { float32: Float32Array, float64: Float64Array, int64: BigInt64Array, int32: Int32Array, uint8: Uint8Array, bool: Uint8Array }[t.dtype];
    if (!(data instanceof want)) throw new Error(`input '${t.name}': expected ${want.name}, got ${data.constructor.name}`);
  }
  if (data.length !== n) throw new Error(`input '${t.name}': ${data.length} values, shape [${t.shape.join(',')}] needs ${n}`);
  return new ort.Tensor(ortType(t.dtype), data as never, [...t.shape]);
}

export { ort };
