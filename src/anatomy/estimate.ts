import type { Volume } from '../volume/types.ts';
import { fallbackAnatomy } from './fallback.ts';

/** Organs estimated from the CT alone, for a CT that comes without TotalSegmentator's map. */
export function estimateAnatomy(ct: Volume): Volume<Uint8Array> {
  return fallbackAnatomy(ct);
}
