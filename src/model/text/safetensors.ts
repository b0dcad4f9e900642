import { readSafetensors as readEngine, writeSafetensors as writeEngine, floatToHalf } from '../../engine/index.ts';

/** One tensor of a text encoder checkpoint, as float32 (HF checkpoints may be F16/BF16/F64). */
export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

export { floatToHalf };

/**
 * A text encoder's safetensors through the engine's reader: every float tensor as float32;
 * integer tensors (HF's `position_ids` buffer) are skipped because an encoder has no use for them.
 */
export function readSafetensors(path: string): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  for (const [name, t] of readEngine(path, { skipOther: true }).tensors) {
    out.set(name, { shape: t.shape, data: t.data instanceof Float32Array ? t.data : Float32Array.from(t.data) });
  }
  return out;
}

/** Writes tensors in name order (as the reference implementation does), in F32 or F16. */
export function writeSafetensors(path: string, tensors: Map<string, NamedTensor>, metadata: Record<string, string> = {}, dtype: 'F32' | 'F16' = 'F32'): void {
  writeEngine(path, tensors, metadata, { dtype, sorted: true });
}
