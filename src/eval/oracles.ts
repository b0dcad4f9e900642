import { boxedVolume, type Volume } from '../volume/index.ts';
import type { GroundingAnomaly, GroundingMap, GroundingModel, GroundingStudy } from '../model/index.ts';

/**
 * No-learning answers that read the structured report and the label map but nothing learned. They
 * say what a benchmark gives away for free: if "the whole organ" already passes IoU > 0.1, a
 * model's accuracy on that data cannot tell grounding from organ recognition.
 */
export type OracleName = 'organ' | 'organ-side' | 'prior';
export const ORACLE_NAMES: readonly OracleName[] = ['organ', 'organ-side', 'prior'];

/** The labels of the label map that make up a report organ class, with their names. */
export type OrganLookup = (reportOrgan: string) => { value: number; name: string; side?: string; lobe?: string }[];

export interface OracleOptions {
  organs: OrganLookup;
  /** `prior`: lesion volume in mm³ (the training split's median) */
  priorVolumeMm3?: number;
}

type Side = 'left' | 'right';
type Lobe = 'upper' | 'middle' | 'lower';

/** Side and lobe the anomaly's anatomy/location phrases name, if any. */
export function namedPlace(anomaly: GroundingAnomaly): { side?: Side; lobe?: Lobe } {
  const text = anomaly.spans.filter((s) => s.class === 'anatomy' || s.class === 'location').map((s) => s.text.toLowerCase()).join(' ');
  const right = /\bright\b/.test(text), left = /\bleft\b/.test(text);
  const side: Side | undefined = right && !left ? 'right' : left && !right ? 'left' : undefined;
  const lobe: Lobe | undefined = /\b(upper|superior)\b/.test(text) ? 'upper' : /\b(middle|lingula)/.test(text) ? 'middle' : /\b(lower|inferior)\b/.test(text) ? 'lower' : undefined;
  return { side, lobe };
}

function sameGrid(a: Volume, b: Volume): boolean {
  return a.size.every((n, i) => n === b.size[i]) && a.data.length === b.data.length;
}

function emptyLike(ct: Volume): Volume<Float32Array> {
  return { data: new Float32Array(ct.data.length), size: [...ct.size], spacing: [...ct.spacing], origin: [...ct.origin], direction: [...ct.direction] };
}

/** World coordinate (RAS mm) of voxel (i, j, k). */
function world(v: Volume, i: number, j: number, k: number): [number, number, number] {
  const d = v.direction, s = v.spacing;
  const a = i * s[0], b = j * s[1], c = k * s[2];
  return [v.origin[0] + d[0]! * a + d[1]! * b + d[2]! * c, v.origin[1] + d[3]! * a + d[4]! * b + d[5]! * c, v.origin[2] + d[6]! * a + d[7]! * b + d[8]! * c];
}

/** Mask (1/0) of the voxels whose label is in `values`. */
function labelMask(anatomy: Volume, values: Set<number>): Uint8Array {
  const m = new Uint8Array(anatomy.data.length);
  for (let i = 0; i < m.length; i++) if (values.has(anatomy.data[i]!)) m[i] = 1;
  return m;
}

function centroid(v: Volume, mask: Uint8Array): [number, number, number] | null {
  const [nx, ny] = v.size;
  let n = 0, x = 0, y = 0, z = 0;
  for (let o = 0; o < mask.length; o++) {
    if (!mask[o]) continue;
    const w = world(v, o % nx, Math.floor(o / nx) % ny, Math.floor(o / (nx * ny)));
    x += w[0]; y += w[1]; z += w[2]; n++;
  }
  return n === 0 ? null : [x / n, y / n, z / n];
}

/**
 * The organ cut to the named side or lobe. Labels that carry the side/lobe in their name are used
 * when the map has them; otherwise the organ is halved at its centroid (RAS: the patient's right is
 * +x, superior is +z) — a geometric guess, which is what an oracle without learning can do.
 */
export function organSideMask(anatomy: Volume, anomaly: GroundingAnomaly, organs: OrganLookup): Uint8Array {
  const labels = organs(anomaly.organ);
  const place = namedPlace(anomaly);
  let chosen = labels;
  let cutSide = place.side, cutLobe = place.lobe;
  if (place.side) {
    const bySide = chosen.filter((l) => (l.side ?? (new RegExp(`(^|_)${place.side}($|_)`).test(l.name) ? place.side : undefined)) === place.side);
    if (bySide.length) { chosen = bySide; cutSide = undefined; }
  }
  if (place.lobe) {
    const byLobe = chosen.filter((l) => (l.lobe ?? (l.name.includes(place.lobe!) ? place.lobe : undefined)) === place.lobe);
    if (byLobe.length) { chosen = byLobe; cutLobe = undefined; }
  }
  const mask = labelMask(anatomy, new Set(chosen.map((l) => l.value)));
  if (!cutSide && !cutLobe) return mask;
  const c = centroid(anatomy, mask);
  if (!c) return mask;
  const [nx, ny] = anatomy.size;
  for (let o = 0; o < mask.length; o++) {
    if (!mask[o]) continue;
    const w = world(anatomy, o % nx, Math.floor(o / nx) % ny, Math.floor(o / (nx * ny)));
    if (cutSide === 'right' && w[0] < c[0]) mask[o] = 0;
    if (cutSide === 'left' && w[0] > c[0]) mask[o] = 0;
    if (cutLobe === 'upper' && w[2] < c[2]) mask[o] = 0;
    if (cutLobe === 'lower' && w[2] > c[2]) mask[o] = 0;
  }
  return mask;
}

/** A ball of the given volume (mm³) centred at a world point, as a 0/1 map on `grid`. */
export function ballMap(grid: Volume, centre: [number, number, number], volumeMm3: number): Float32Array {
  const r = Math.cbrt((3 * volumeMm3) / (4 * Math.PI));
  const out = new Float32Array(grid.data.length);
  const [nx, ny, nz] = grid.size;
  for (let k = 0, o = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, o++) {
    const w = world(grid, i, j, k);
    const dx = w[0] - centre[0], dy = w[1] - centre[1], dz = w[2] - centre[2];
    if (dx * dx + dy * dy + dz * dz <= r * r) out[o] = 1;
  }
  return out;
}

export function oracleGrounder(name: OracleName, opts: OracleOptions): GroundingModel {
  if (name === 'prior' && !(opts.priorVolumeMm3 && opts.priorVolumeMm3 > 0)) throw new Error('oracle prior needs priorVolumeMm3 > 0');
  return {
    name: `oracle:${name}`,
    async ground(study: GroundingStudy) {
      const { ct, anatomy, report } = study;
      if (!sameGrid(ct, anatomy)) throw new Error('oracle: the label map must be on the CT grid');
      const out = new Map<string, GroundingMap>();
      for (const a of report.anomalies) {
        const map = emptyLike(ct);
        if (name === 'organ') {
          const m = labelMask(anatomy, new Set(opts.organs(a.organ).map((l) => l.value)));
          for (let i = 0; i < m.length; i++) map.data[i] = m[i]!;
        } else {
          // The side-cut region is the stronger guess for the blob's centre too.
          const m = organSideMask(anatomy, a, opts.organs);
          if (name === 'organ-side') for (let i = 0; i < m.length; i++) map.data[i] = m[i]!;
          else {
            const c = centroid(anatomy, m);
            if (c) map.data.set(ballMap(ct, c, opts.priorVolumeMm3!));
          }
        }
        out.set(a.id, boxedVolume(map));
      }
      return out;
    },
  };
}
