/** A map threshold or region cut: a probability in (0, 1] (0 would select every voxel). */
export function isThreshold(t: unknown): t is number {
  return typeof t === 'number' && t > 0 && t <= 1;
}

export const THRESHOLD_RULE = 'must be in (0, 1]';

/** The median of `xs` (the mean of the middle two for an even count; NaN when empty). */
export function median(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const s = Float64Array.from(xs).sort();
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/**
 * The value that would sit at index k (0-based) if `a` were sorted ascending. Reorders `a` in
 * place (Hoare's selection, middle pivot): linear on average where a sort is n log n.
 */
export function selectKth(a: Float32Array | Float64Array, k: number): number {
  if (!(k >= 0 && k < a.length)) throw new RangeError(`selectKth: index ${k} outside 0..${a.length - 1}`);
  let lo = 0, hi = a.length - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1]!;
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) { const t = a[i]!; a[i] = a[j]!; a[j] = t; i++; j--; }
    }
    if (k <= j) hi = j; else if (k >= i) lo = i; else return a[k]!;
  }
  return a[k]!;
}
