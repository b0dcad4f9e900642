import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../common/index.ts';
import type { Volume } from '../volume/types.ts';
import { fallbackAnatomy } from './fallback.ts';
import { organValue } from './scheme.ts';

let lut: Uint8Array | undefined;

/** TotalSegmentator v2 'total' label value → our label value (0 for unknown values). */
export function totalSegmentatorLut(): Uint8Array {
  if (lut) return lut;
  const raw = JSON.parse(readFileSync(join(projectRoot, 'data', 'anatomy', 'totalsegmentator_v2.json'), 'utf8')) as { labels: Record<string, { ts: string; organ: string }> };
  lut = new Uint8Array(256);
  for (const [k, v] of Object.entries(raw.labels)) lut[Number(k)] = organValue(v.organ);
  return lut;
}

/**
 * Converts a TotalSegmentator v2 'total' label map to our scheme. TotalSegmentator does not label
 * body, fat or plain soft tissue; give the CT (on the same grid) and those voxels are filled from
 * the HU fallback, so the model sees a complete label image as it does on phantoms.
 */
export function fromTotalSegmentator(labelVol: Volume, ct?: Volume): Volume<Uint8Array> {
  const map = totalSegmentatorLut();
  const src = labelVol.data;
  const out = new Uint8Array(src.length);
  for (let p = 0; p < src.length; p++) {
    const v = src[p]!;
    out[p] = v > 0 && v < 256 && Number.isInteger(v) ? map[v]! : 0;
  }
  if (ct) {
    if (ct.data.length !== src.length) throw new Error('fromTotalSegmentator: CT and label map are on different grids');
    const fb = fallbackAnatomy(ct).data;
    for (let p = 0; p < out.length; p++) if (!out[p]) out[p] = fb[p]!;
  }
  return { data: out, size: [...labelVol.size], spacing: [...labelVol.spacing], origin: [...labelVol.origin], direction: [...labelVol.direction] };
}
