import type { Volume } from '../volume/index.ts';
import { connectedComponents, connectedToBorder } from './morph.ts';
import { organValue } from './scheme.ts';

/** HU thresholds of the fallback anatomy (standard CT windows for air, fat and bone). */
const AIR_HU = -400, FAT_LO = -190, FAT_HI = -30, BONE_HU = 180, TRACHEA_HU = -900;

function worldAxes(v: Volume): { x: (i: number, j: number, k: number) => number; y: (i: number, j: number, k: number) => number; z: (i: number, j: number, k: number) => number } {
  const d = v.direction, s = v.spacing, o = v.origin;
  const row = (r: number) => (i: number, j: number, k: number) => o[r]! + d[r * 3]! * s[0] * i + d[r * 3 + 1]! * s[1] * j + d[r * 3 + 2]! * s[2] * k;
  return { x: row(0), y: row(1), z: row(2) };
}

/**
 * An organ label map from HU alone, for a CT that comes without one: body, lungs (split into
 * lobes by an approximate oblique/horizontal fissure model, not by real fissures), airway, bone
 * (spine near the posterior midline, the rest as other bone), fat and soft tissue. Air outside the
 * body and anything not connected to the largest body part (the table, sheets) stay 0.
 */
export function fallbackAnatomy(ct: Volume): Volume<Uint8Array> {
  const [nx, ny, nz] = ct.size;
  const n = nx * ny * nz;
  const hu = ct.data;
  const air = new Uint8Array(n);
  for (let p = 0; p < n; p++) air[p] = hu[p]! < AIR_HU ? 1 : 0;
  const outside = connectedToBorder(air, ct.size);
  const notOutside = new Uint8Array(n);
  for (let p = 0; p < n; p++) notOutside[p] = outside[p] ? 0 : 1;
  const bodyCc = connectedComponents(notOutside, ct.size);
  let bodyId = 0;
  for (let c = 1; c < bodyCc.sizes.length; c++) if (bodyId === 0 || bodyCc.sizes[c]! > bodyCc.sizes[bodyId]!) bodyId = c;
  const body = new Uint8Array(n);
  for (let p = 0; p < n; p++) body[p] = bodyId && bodyCc.labels[p] === bodyId ? 1 : 0;

  const W = worldAxes(ct);
  // Body midline and extent in world mm, for sides and the spine.
  let sx = 0, sy = 0, cnt = 0;
  for (let k = 0, p = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, p++) {
    if (!body[p]) continue;
    sx += W.x(i, j, k); sy += W.y(i, j, k); cnt++;
  }
  const midX = cnt ? sx / cnt : 0, midY = cnt ? sy / cnt : 0;

  // Lungs: enclosed air components big enough and with parenchymal (not pure gas) density.
  const innerAir = new Uint8Array(n);
  for (let p = 0; p < n; p++) innerAir[p] = body[p] && air[p] ? 1 : 0;
  const airCc = connectedComponents(innerAir, ct.size);
  const voxMl = (ct.spacing[0] * ct.spacing[1] * ct.spacing[2]) / 1000;
  const huSum = new Float64Array(airCc.sizes.length);
  for (let p = 0; p < n; p++) if (airCc.labels[p]) huSum[airCc.labels[p]!] += hu[p]!;
  const isLung = airCc.sizes.map((s, c) => c > 0 && s * voxMl > 20 && huSum[c]! / s > -975);
  // Enclosed air that is not lung: the trachea and main bronchi when they lie near the midline,
  // otherwise bowel gas (left as soft tissue: the scheme has no label for gas).
  const cx = new Float64Array(airCc.sizes.length);
  for (let k = 0, p = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, p++) {
    const c = airCc.labels[p]!;
    if (c && !isLung[c]) cx[c] += W.x(i, j, k);
  }
  const isAirway = airCc.sizes.map((s, c) => c > 0 && !isLung[c] && huSum[c]! / s < -900 && Math.abs(cx[c]! / s - midX) < 25);

  const out = new Uint8Array(n);
  const L = {
    soft: organValue('soft_tissue'), fat: organValue('fat'), airway: organValue('airway'), spine: organValue('spine'), bone: organValue('other_bone'),
    rul: organValue('lung_upper_lobe_right'), rml: organValue('lung_middle_lobe_right'), rll: organValue('lung_lower_lobe_right'),
    lul: organValue('lung_upper_lobe_left'), lll: organValue('lung_lower_lobe_left'),
  };
  // Lung z range per side (world), for the approximate lobe split.
  const zr = { right: [Infinity, -Infinity], left: [Infinity, -Infinity] };
  for (let k = 0, p = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, p++) {
    if (!isLung[airCc.labels[p]!]) continue;
    const side = W.x(i, j, k) > midX ? zr.right : zr.left;
    const z = W.z(i, j, k);
    if (z < side[0]!) side[0] = z;
    if (z > side[1]!) side[1] = z;
  }
  for (let k = 0, p = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, p++) {
    if (!body[p]) continue;
    const v = hu[p]!;
    const x = W.x(i, j, k), y = W.y(i, j, k);
    if (airCc.labels[p] && isLung[airCc.labels[p]!]) {
      if (v < TRACHEA_HU && Math.abs(x - midX) < 20) { out[p] = L.airway; continue; }
      const right = x > midX;
      const [z0, z1] = right ? zr.right : zr.left;
      const t = ((W.z(i, j, k) - z0!) / Math.max(1, z1! - z0!));
      // Oblique fissure: lower lobe reaches higher posteriorly.
      const lower = t < 0.45 - (y - midY) / 300;
      if (right) out[p] = lower ? L.rll : t < 0.62 ? L.rml : L.rul;
      else out[p] = lower ? L.lll : L.lul;
    } else if (airCc.labels[p] && isAirway[airCc.labels[p]!]) {
      out[p] = L.airway;
    } else if (v >= BONE_HU) {
      out[p] = Math.abs(x - midX) < 30 && y < midY ? L.spine : L.bone;
    } else if (v >= FAT_LO && v <= FAT_HI) out[p] = L.fat;
    else out[p] = L.soft;
  }
  return { data: out, size: [...ct.size], spacing: [...ct.spacing], origin: [...ct.origin], direction: [...ct.direction] };
}
