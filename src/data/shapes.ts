/**
 * Implicit shapes in the phantom's template frame (mm; x → patient right, y → anterior,
 * z → superior, matching RAS). Each has a bounding box so painting visits only nearby voxels.
 */
export type V3 = [number, number, number];
export interface Shape {
  min: V3;
  max: V3;
  inside(x: number, y: number, z: number): boolean;
}

export interface Bumps {
  /** relative radius change by direction: sum of a few low-order waves */
  waves: { k: V3; phase: number; amp: number }[];
}

export function randomBumps(rand: () => number, amp: number, n = 4): Bumps {
  const waves: Bumps['waves'] = [];
  for (let w = 0; w < n; w++) {
    const k: V3 = [rand() * 2 - 1, rand() * 2 - 1, rand() * 2 - 1];
    const f = (1 + rand() * 2) / Math.hypot(...k);
    waves.push({ k: [k[0] * f, k[1] * f, k[2] * f], phase: rand() * Math.PI * 2, amp: (amp * (0.5 + rand())) / n });
  }
  return { waves };
}

function bump(b: Bumps | undefined, ux: number, uy: number, uz: number): number {
  if (!b) return 0;
  let s = 0;
  const waves = b.waves;
  for (let i = 0; i < waves.length; i++) {
    const w = waves[i]!;
    s += w.amp * Math.sin(w.k[0] * ux + w.k[1] * uy + w.k[2] * uz + w.phase);
  }
  return s;
}

/**
 * Ellipsoid centred at c with semi-axes a, rotated by `yaw` about z then `pitch` about x, with a
 * bumpy surface. `field` (optional) gives the normalized radius |q| for soft lesion margins.
 */
export function ellipsoid(c: V3, a: V3, opts: { yaw?: number; pitch?: number; bumps?: Bumps } = {}): Shape & { radius(x: number, y: number, z: number): number } {
  const cy = Math.cos(opts.yaw ?? 0), sy = Math.sin(opts.yaw ?? 0), cp = Math.cos(opts.pitch ?? 0), sp = Math.sin(opts.pitch ?? 0);
  const r = Math.max(...a) * (1 + (opts.bumps ? opts.bumps.waves.reduce((s, w) => s + Math.abs(w.amp), 0) : 0));
  const radius = (x: number, y: number, z: number): number => {
    const dx = x - c[0], dy = y - c[1], dz = z - c[2];
    // inverse rotation: yaw about z, then pitch about x
    const x1 = cy * dx + sy * dy, y1 = -sy * dx + cy * dy;
    const y2 = cp * y1 + sp * dz, z2 = -sp * y1 + cp * dz;
    const qx = x1 / a[0], qy = y2 / a[1], qz = z2 / a[2];
    const q = Math.sqrt(qx * qx + qy * qy + qz * qz);
    if (!opts.bumps || q === 0) return q;
    return q / (1 + bump(opts.bumps, qx / q, qy / q, qz / q));
  };
  return { min: [c[0] - r, c[1] - r, c[2] - r], max: [c[0] + r, c[1] + r, c[2] + r], inside: (x, y, z) => radius(x, y, z) <= 1, radius };
}

/** Distance from p to the polyline and the interpolated radius there; a tube of varying radius. */
export function tube(points: V3[], radii: number[]): Shape & { depth(x: number, y: number, z: number): { d: number; r: number; t: number } } {
  const rmax = Math.max(...radii);
  const min: V3 = [Infinity, Infinity, Infinity], max: V3 = [-Infinity, -Infinity, -Infinity];
  for (const p of points) for (let a = 0; a < 3; a++) { min[a] = Math.min(min[a]!, p[a]! - rmax); max[a] = Math.max(max[a]!, p[a]! + rmax); }
  const segLen = points.slice(1).map((p, i) => Math.hypot(p[0] - points[i]![0], p[1] - points[i]![1], p[2] - points[i]![2]));
  const total = segLen.reduce((s, l) => s + l, 0);
  const depth = (x: number, y: number, z: number): { d: number; r: number; t: number } => {
    let best = Infinity, br = 0, bt = 0, acc = 0;
    for (let s = 0; s < points.length - 1; s++) {
      const p = points[s]!, q = points[s + 1]!;
      const vx = q[0] - p[0], vy = q[1] - p[1], vz = q[2] - p[2];
      const L2 = vx * vx + vy * vy + vz * vz;
      let t = L2 > 0 ? ((x - p[0]) * vx + (y - p[1]) * vy + (z - p[2]) * vz) / L2 : 0;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const dx = x - p[0] - t * vx, dy = y - p[1] - t * vy, dz = z - p[2] - t * vz;
      const d = Math.sqrt(dx * dx + dy * dy + dz * dz);
      const r = radii[s]! + t * (radii[s + 1]! - radii[s]!);
      if (d - r < best - br) { best = d; br = r; bt = (acc + t * segLen[s]!) / total; }
      acc += segLen[s]!;
    }
    return { d: best, r: br, t: bt };
  };
  // Allocation-free test for painting (called for every voxel of the box).
  const n = points.length - 1;
  const P = new Float64Array(points.flat()), R = Float64Array.from(radii);
  const inside = (x: number, y: number, z: number): boolean => {
    for (let s = 0; s < n; s++) {
      const px = P[s * 3]!, py = P[s * 3 + 1]!, pz = P[s * 3 + 2]!;
      const vx = P[s * 3 + 3]! - px, vy = P[s * 3 + 4]! - py, vz = P[s * 3 + 5]! - pz;
      const L2 = vx * vx + vy * vy + vz * vz;
      let t = L2 > 0 ? ((x - px) * vx + (y - py) * vy + (z - pz) * vz) / L2 : 0;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const dx = x - px - t * vx, dy = y - py - t * vy, dz = z - pz - t * vz;
      const r = R[s]! + t * (R[s + 1]! - R[s]!);
      if (dx * dx + dy * dy + dz * dz <= r * r) return true;
    }
    return false;
  };
  return { min, max, inside, depth };
}
