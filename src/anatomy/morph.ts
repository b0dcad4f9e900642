/**
 * Small binary-image tools on a voxel grid (x fastest), used by the fallback anatomy and by lesion
 * placement. Masks are Uint8Array with 0 = outside, anything else = inside.
 */
export type Size3 = readonly [number, number, number];

/**
 * 6-connected components of `mask`. Returns the component id per voxel (0 = background, 1..n)
 * and each component's voxel count (index 0 unused).
 */
export function connectedComponents(mask: Uint8Array, size: Size3): { labels: Int32Array; sizes: number[] } {
  const [nx, ny, nz] = size;
  const nxy = nx * ny;
  const labels = new Int32Array(mask.length);
  const sizes = [0];
  const queue = new Int32Array(mask.length);
  for (let seed = 0; seed < mask.length; seed++) {
    if (!mask[seed] || labels[seed]) continue;
    const id = sizes.length;
    let head = 0, tail = 0;
    queue[tail++] = seed;
    labels[seed] = id;
    while (head < tail) {
      const p = queue[head++]!;
      const i = p % nx, j = ((p - i) / nx) % ny, k = (p - i - j * nx) / nxy;
      for (let n = 0; n < 6; n++) {
        let q: number;
        if (n === 0) { if (i === 0) continue; q = p - 1; } else if (n === 1) { if (i === nx - 1) continue; q = p + 1; }
        else if (n === 2) { if (j === 0) continue; q = p - nx; } else if (n === 3) { if (j === ny - 1) continue; q = p + nx; }
        else if (n === 4) { if (k === 0) continue; q = p - nxy; } else { if (k === nz - 1) continue; q = p + nxy; }
        if (mask[q] && !labels[q]) { labels[q] = id; queue[tail++] = q; }
      }
    }
    sizes.push(tail);
  }
  return { labels, sizes };
}

/**
 * Marks the voxels of `mask` that are connected (6-neighbourhood, within the mask) to the grid's
 * in-plane border, slice by slice in 3D. Used to tell outside air from air enclosed by the body.
 */
export function connectedToBorder(mask: Uint8Array, size: Size3): Uint8Array {
  const [nx, ny, nz] = size;
  const out = new Uint8Array(mask.length);
  const queue = new Int32Array(mask.length);
  let tail = 0;
  const nxy = nx * ny;
  const push = (q: number): void => {
    if (mask[q] && !out[q]) { out[q] = 1; queue[tail++] = q; }
  };
  // Only the four side faces are seeds: the top and bottom slices cut through the body, so air in
  // the lungs touching them is still inside.
  for (let k = 0; k < nz; k++) {
    for (let i = 0; i < nx; i++) { push(i + nxy * k); push(i + nx * (ny - 1) + nxy * k); }
    for (let j = 0; j < ny; j++) { push(nx * j + nxy * k); push(nx - 1 + nx * j + nxy * k); }
  }
  let head = 0;
  while (head < tail) {
    const p = queue[head++]!;
    const i = p % nx, j = ((p - i) / nx) % ny, k = (p - i - j * nx) / nxy;
    if (i > 0) push(p - 1);
    if (i < nx - 1) push(p + 1);
    if (j > 0) push(p - nx);
    if (j < ny - 1) push(p + nx);
    if (k > 0) push(p - nxy);
    if (k < nz - 1) push(p + nxy);
  }
  return out;
}

/**
 * Chamfer-free Euclidean-ish distance (in mm) from each inside voxel to the nearest outside voxel,
 * by a two-pass 3×3×3 chamfer with real spacings. Outside voxels get 0. Good to ~8 % of the true
 * distance, which is all lesion placement needs (it asks "does a ball of radius r fit here").
 */
export function insideDistance(mask: Uint8Array, size: Size3, spacing: readonly number[]): Float32Array {
  const [nx, ny, nz] = size;
  const nxy = nx * ny;
  const d = new Float32Array(mask.length);
  const BIG = 1e9;
  for (let p = 0; p < mask.length; p++) d[p] = mask[p] ? BIG : 0;
  const offs: { di: number; dj: number; dk: number; w: number }[] = [];
  for (let dk = -1; dk <= 1; dk++) for (let dj = -1; dj <= 1; dj++) for (let di = -1; di <= 1; di++) {
    if (!di && !dj && !dk) continue;
    offs.push({ di, dj, dk, w: Math.hypot(di * spacing[0]!, dj * spacing[1]!, dk * spacing[2]!) });
  }
  const forward = offs.filter((o) => o.dk < 0 || (o.dk === 0 && (o.dj < 0 || (o.dj === 0 && o.di < 0))));
  const backward = offs.filter((o) => !forward.includes(o));
  const pass = (list: typeof offs, dir: 1 | -1): void => {
    const k0 = dir > 0 ? 0 : nz - 1, j0 = dir > 0 ? 0 : ny - 1, i0 = dir > 0 ? 0 : nx - 1;
    for (let k = k0; k >= 0 && k < nz; k += dir) for (let j = j0; j >= 0 && j < ny; j += dir) for (let i = i0; i >= 0 && i < nx; i += dir) {
      const p = i + nx * j + nxy * k;
      if (!mask[p]) continue;
      let best = d[p]!;
      for (const o of list) {
        const ii = i + o.di, jj = j + o.dj, kk = k + o.dk;
        // Beyond the grid counts as outside: a ball must not poke out of the image either.
        const q = ii < 0 || jj < 0 || kk < 0 || ii >= nx || jj >= ny || kk >= nz ? -1 : ii + nx * jj + nxy * kk;
        const v = (q < 0 ? 0 : d[q]!) + o.w;
        if (v < best) best = v;
      }
      d[p] = best;
    }
  };
  pass(forward, 1);
  pass(backward, -1);
  return d;
}

/** Voxel bounding box of the nonzero voxels, or null for an empty mask. */
export function maskBounds(mask: ArrayLike<number>, size: Size3): { min: [number, number, number]; max: [number, number, number]; count: number } | null {
  const [nx, ny] = size;
  let count = 0;
  const min: [number, number, number] = [Infinity, Infinity, Infinity], max: [number, number, number] = [-1, -1, -1];
  for (let p = 0; p < mask.length; p++) {
    if (!mask[p]) continue;
    count++;
    const i = p % nx, j = Math.floor(p / nx) % ny, k = Math.floor(p / (nx * ny));
    if (i < min[0]) min[0] = i; if (i > max[0]) max[0] = i;
    if (j < min[1]) min[1] = j; if (j > max[1]) max[1] = j;
    if (k < min[2]) min[2] = k; if (k > max[2]) max[2] = k;
  }
  return count ? { min, max, count } : null;
}
