/** A map threshold or region cut: a probability in (0, 1] (0 would select every voxel). */
export function isThreshold(t: unknown): t is number {
  return typeof t === 'number' && t > 0 && t <= 1;
}

export const THRESHOLD_RULE = 'must be in (0, 1]';
