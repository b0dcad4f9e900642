/**
 * ORT session creation and feeding. Threads default to 2 (these machines have 2 cores); the
 * execution provider is a choice, CPU by default.
 */
// first: turns ONNX Runtime's telemetry off before the library loads (see ort-env.ts)
import './ort-env.ts';
import * as ort from 'onnxruntime-node';
import { UserError } from '../common/index.ts';
import type { DType, Tensor, TypedData } from './graph.ts';
import { shapeSize } from './graph.ts';

export interface SessionOptions {
  /** ORT intra-op threads (default 2) */
  threads?: number;
  /** e.g. ['cpu'] (default) or ['cuda', 'cpu'] where the installed onnxruntime-node has CUDA */
  executionProviders?: string[];
  /**
   * Whether ORT's worker threads busy-wait for the next run (ORT's default, true). Off where several
   * sessions take turns in one process (grounding: text, image, heads), so the idle ones' spinning
   * threads do not take the cores from the one running.
   */
  spinning?: boolean;
}

/**
 * Session options from the environment, so every command that trains or runs a model honours the
 * same switches without plumbing: CTGROUND_EP (comma list, e.g. "cuda,cpu") and CTGROUND_THREADS.
 */
export function defaultSessionOptions(env: NodeJS.ProcessEnv = process.env): Required<Omit<SessionOptions, 'spinning'>> {
  const threads = env.CTGROUND_THREADS ? Number(env.CTGROUND_THREADS) : 2;
  if (!Number.isInteger(threads) || threads < 1) throw new UserError(`CTGROUND_THREADS: expected a positive integer, got '${env.CTGROUND_THREADS}'`);
  const eps = (env.CTGROUND_EP ?? 'cpu').split(',').map((s) => s.trim()).filter(Boolean);
  return { threads, executionProviders: eps };
}

/** Options from CLI flags (--ep cuda,cpu --threads N) over the environment defaults. */
export function sessionOptionsFromFlags(flags: Record<string, string | boolean | undefined>): SessionOptions {
  const env = { ...process.env };
  if (typeof flags.ep === 'string') env.CTGROUND_EP = flags.ep;
  if (typeof flags.threads === 'string') env.CTGROUND_THREADS = flags.threads;
  return defaultSessionOptions(env);
}

export async function createSession(bytes: Uint8Array, opts: SessionOptions = {}): Promise<ort.InferenceSession> {
  const d = defaultSessionOptions();
  const eps = opts.executionProviders ?? d.executionProviders;
  const known = new Map(ort.listSupportedBackends().map((b) => [b.name, b] as const));
  for (const ep of eps) {
    if (!known.has(ep)) throw new UserError(`execution provider '${ep}' is unknown to onnxruntime-node (known: ${[...known.keys()].join(', ')})`);
  }
  try {
    return await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: opts.threads ?? d.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      executionProviders: eps,
      ...(opts.spinning === false ? { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } } : {}),
    });
  } catch (e) {
    const msg = String((e as Error).message ?? e);
    if (eps.some((ep) => ep !== 'cpu') && /provider|cuda|library|\.so/i.test(msg)) {
      throw new UserError(`execution provider ${eps.join(',')} could not start (${msg.split('\n')[0]}); install an onnxruntime-node build with it or use --ep cpu`);
    }
    throw e;
  }
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
