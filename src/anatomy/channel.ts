import type { Volume } from '../volume/index.ts';
import { loadOrganScheme } from './scheme.ts';

/**
 * The anatomy channel the grounding model reads (paper Sec. 4.2): one label per voxel, scaled to
 * [0, 1] by the scheme's largest value so every organ keeps one fixed intensity across studies.
 * `into` (as many values as the label map) is written instead of a new array.
 */
export function normalizedAnatomyChannel(labels: Volume, into?: Float32Array): Float32Array {
  const max = loadOrganScheme().maxValue;
  const src = labels.data;
  const out = into ?? new Float32Array(src.length);
  const inv = 1 / max;
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    out[i] = v <= 0 ? 0 : v >= max ? 1 : v * inv;
  }
  return out;
}
