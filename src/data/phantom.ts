import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot, type Rng } from '../common/index.ts';
import { organValue } from '../anatomy/index.ts';
import type { Volume } from '../volume/index.ts';
import { ellipsoid, randomBumps, tube, type Shape, type V3 } from './shapes.ts';

export interface TissueTable {
  air: number;
  noiseStd: [number, number];
  corticalBone: number;
  tissues: Record<string, { plain: number; contrast: number; spread: number; texture: number }>;
}

let tissueCache: TissueTable | undefined;
export function loadTissues(): TissueTable {
  tissueCache ??= JSON.parse(readFileSync(join(projectRoot, 'data', 'synth', 'tissues.json'), 'utf8')) as TissueTable;
  return tissueCache;
}

/** Whole-organ changes decided before the anatomy is drawn (they change the organ's shape). */
export interface PhantomModifiers {
  /** organ name → scale of its size (swelling > 1, atrophy < 1) */
  organScale?: Record<string, number>;
  /** aortic aneurysm: position along the aorta (0 root … 1 bifurcation) and maximal radius in mm */
  aneurysm?: { t: number; radius: number; length: number };
}

export interface PhantomOptions {
  size: number;
  spacing: number;
  modifiers?: PhantomModifiers;
}

/** A phantom study before lesions: HU (float, noise-free), organ labels, and what the generator knows. */
export interface Phantom {
  hu: Volume<Float32Array>;
  labels: Volume<Uint8Array>;
  contrast: boolean;
  male: boolean;
  /** template frame → world: world = shift + scale ⊙ template */
  scale: V3;
  shift: V3;
  /** template z of the carina and the vertebra level names by template z */
  carinaZ: number;
  vertebraAt(zTemplate: number): string;
  /** rib number (1-based) and side at a template point, or null */
  ribAt(x: number, y: number, z: number): { n: number; side: 'right' | 'left' } | null;
  /** voxels of the aneurysm segment (set when modifiers.aneurysm) */
  aneurysmMask?: Uint8Array;
}

const THORACIC_H = 22, LUMBAR_H = 25, T1_Z = 180;

const sq = (v: number): number => v * v;

export function vertebraAtTemplateZ(z: number): string {
  const t = Math.round((T1_Z - z) / THORACIC_H);
  if (t <= 11) return t < 0 ? 'C7' : `T${t + 1}`;
  const l = Math.round((T1_Z - 11 * THORACIC_H - z) / LUMBAR_H);
  return l <= 5 ? `L${Math.max(1, l)}` : 'S1';
}

interface Grid { labels: Uint8Array; N: number; tx: Float64Array; ty: Float64Array; tz: Float64Array }

function axisRange(lo: number, hi: number, t: Float64Array, N: number): [number, number] {
  let a = 0, b = N - 1;
  while (a < N && t[a]! < lo) a++;
  while (b >= 0 && t[b]! > hi) b--;
  return [a, b];
}

// The voxel loops live in small module-level functions: V8 optimizes those once and for all,
// while loops inside one very long per-study function ran several times slower.

/** Paints `label` where the shape holds and `allow(current label)` is true. */
function paintShape(g: Grid, label: number, shape: Shape, allow?: (cur: number) => boolean): void {
  const { labels, N, tx, ty, tz } = g;
  const [i0, i1] = axisRange(shape.min[0], shape.max[0], tx, N), [j0, j1] = axisRange(shape.min[1], shape.max[1], ty, N), [k0, k1] = axisRange(shape.min[2], shape.max[2], tz, N);
  for (let k = k0; k <= k1; k++) for (let j = j0; j <= j1; j++) {
    let p = i0 + N * (j + N * k);
    for (let i = i0; i <= i1; i++, p++) {
      if (allow && !allow(labels[p]!)) continue;
      if (shape.inside(tx[i]!, ty[j]!, tz[k]!)) labels[p] = label;
    }
  }
}

/** Subcutaneous fat, body-wall muscle and the cavity (fat until organs fill it). */
function paintBodyLayers(g: Grid, bodyAz: (z: number) => number, bodyB: number, fatT: number, wallT: number, fat: number, muscle: number): void {
  const { labels, N, tx, ty, tz } = g;
  for (let k = 0, p = 0; k < N; k++) {
    const a0 = bodyAz(tz[k]!), a1 = a0 - fatT, a2 = a1 - wallT, b0 = bodyB, b1 = b0 - fatT, b2 = b1 - wallT;
    for (let j = 0; j < N; j++) {
      const y = ty[j]!;
      for (let i = 0; i < N; i++, p++) {
        const x = tx[i]!;
        if (sq(x / a0) + sq(y / b0) > 1) continue;
        labels[p] = sq(x / a2) + sq(y / b2) <= 1 ? fat : sq(x / a1) + sq(y / b1) <= 1 ? muscle : fat;
      }
    }
  }
}

function fillHu(labels: Uint8Array, tex: Float32Array, schemeHu: Float32Array, texAmp: Float32Array, air: number): Float32Array {
  const hu = new Float32Array(labels.length);
  for (let p = 0; p < labels.length; p++) {
    const l = labels[p]!;
    hu[p] = l ? schemeHu[l]! + texAmp[l]! * tex[p]! : air;
  }
  return hu;
}

/** Dependent density in the lungs; gas in colon, small bowel and the stomach's fundus. */
function lungsAndGas(g: Grid, hu: Float32Array, tex: Float32Array, L: { rul: number; lll: number; colon: number; si: number; stomach: number }, stomachTop: number): void {
  const { labels, N, ty, tz } = g;
  const gas = tex;
  for (let k = 0, p = 0; k < N; k++) for (let j = 0; j < N; j++) for (let i = 0; i < N; i++, p++) {
    const l = labels[p]!;
    if (l >= L.rul && l <= L.lll) hu[p] += (-ty[j]! / 90) * 25; // dependent lung is denser
    else if ((l === L.colon && gas[p]! > 0.1) || (l === L.si && gas[p]! > 0.75) || (l === L.stomach && tz[k]! > stomachTop - 50 && ty[j]! > 25 && gas[p]! > -0.3)) hu[p] = -950 + 30 * tex[p]!;
  }
}

/** Cortical bone: bone voxels next to non-bone. */
function cortex(labels: Uint8Array, N: number, hu: Float32Array, tex: Float32Array, bones: [number, number, number], cortical: number): void {
  const [b0, b1, b2] = bones;
  const isBone = (l: number): boolean => l === b0 || l === b1 || l === b2;
  for (let k = 1; k < N - 1; k++) for (let j = 1; j < N - 1; j++) for (let i = 1; i < N - 1; i++) {
    const p = i + N * (j + N * k);
    if (!isBone(labels[p]!)) continue;
    if (!isBone(labels[p - 1]!) || !isBone(labels[p + 1]!) || !isBone(labels[p - N]!) || !isBone(labels[p + N]!) || !isBone(labels[p - N * N]!) || !isBone(labels[p + N * N]!)) hu[p] = cortical + 80 * tex[p]!;
  }
}

/**
 * Draws a procedural torso (lung apices to the bladder) on an isotropic grid: random body habitus,
 * organ positions, sizes and shapes per case; organ labels in ctground's scheme and noise-free HU
 * with organ texture, lung vessels, cortical bone and bowel gas. Noise and partial-volume blur are
 * added after lesions are inserted (finishStudy), so lesions get them too.
 */
export function buildPhantom(rng: Rng, opts: PhantomOptions): Phantom {
  const N = opts.size, s = opts.spacing;
  const n = N * N * N;
  const mods = opts.modifiers ?? {};
  const osc = (name: string): number => mods.organScale?.[name] ?? 1;
  const fov = N * s;
  const g0 = fov / 384;
  const scale: V3 = [g0 * rng.uniform(0.86, 1.0), g0 * rng.uniform(0.86, 1.0), g0 * rng.uniform(0.93, 1.0)];
  const shift: V3 = [rng.normal(0, 6) * g0, rng.normal(0, 6) * g0, rng.normal(0, 5) * g0];
  const origin: V3 = [-((N - 1) / 2) * s, -((N - 1) / 2) * s, -((N - 1) / 2) * s];
  const labels = new Uint8Array(n);
  const rand = (): number => rng.next();
  const jit = (v: number, sd: number): number => v + rng.normal(0, sd);
  const J = (c: V3, sd = 5): V3 => [jit(c[0], sd), jit(c[1], sd), jit(c[2], sd)];
  const Lv = (name: string): number => organValue(name);

  // Template coordinate of every voxel index along each axis (the grid is axis-aligned).
  const tx = new Float64Array(N), ty = new Float64Array(N), tz = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    tx[i] = (origin[0] + s * i - shift[0]) / scale[0];
    ty[i] = (origin[1] + s * i - shift[1]) / scale[1];
    tz[i] = (origin[2] + s * i - shift[2]) / scale[2];
  }
  const range = (lo: number, hi: number, t: Float64Array): [number, number] => axisRange(lo, hi, t, N);
  const grid: Grid = { labels, N, tx, ty, tz };
  const paint = (label: number, shape: Shape, allow?: (cur: number) => boolean): void => paintShape(grid, label, shape, allow);
  const box = (min: V3, max: V3, inside: Shape['inside']): Shape => ({ min, max, inside });
  const BIG = 400;

  const L = {
    soft: Lv('soft_tissue'), fat: Lv('fat'), muscle: Lv('muscle'), med: Lv('mediastinum'),
    rul: Lv('lung_upper_lobe_right'), rml: Lv('lung_middle_lobe_right'), rll: Lv('lung_lower_lobe_right'), lul: Lv('lung_upper_lobe_left'), lll: Lv('lung_lower_lobe_left'),
    airway: Lv('airway'), heart: Lv('heart'), aorta: Lv('aorta'), vessels: Lv('vessels'), eso: Lv('esophagus'), liver: Lv('liver'), gb: Lv('gallbladder'),
    spleen: Lv('spleen'), pancreas: Lv('pancreas'), stomach: Lv('stomach'), si: Lv('small_intestine'), colon: Lv('colon'), kr: Lv('kidney_right'), kl: Lv('kidney_left'),
    ar: Lv('adrenal_right'), al: Lv('adrenal_left'), bladder: Lv('bladder'), prostate: Lv('prostate'), spine: Lv('spine'), ribs: Lv('ribs'), pelvis: Lv('pelvis'),
  };
  const isLung = (v: number): boolean => v >= L.rul && v <= L.lll;
  const cavityOnly = (cur: number): boolean => cur === L.soft || cur === L.fat || cur === L.med;

  // Body habitus: an elliptic cylinder, wider at the shoulders and the pelvis.
  const bodyA = jit(160, 8), bodyB = jit(112, 7), fatT = rng.uniform(8, 30), wallT = rng.uniform(8, 14);
  const bodyAz = (z: number): number => bodyA * (1 + 0.04 * Math.cos(z / 60));
  const innerA = (z: number): number => bodyAz(z) - fatT - wallT, innerB = bodyB - fatT - wallT;
  const inCavity = (x: number, y: number, z: number): boolean => sq(x / innerA(z)) + sq(y / innerB) <= 1;
  paintBodyLayers(grid, bodyAz, bodyB, fatT, wallT, L.fat, L.muscle);

  // Diaphragm domes (template z of the dome surface), right higher than left.
  const dR = jit(62, 6), dL = jit(50, 6);
  const domeR = (x: number, y: number): number => 18 + (dR - 18) * Math.max(0, 1 - sq((x - 60) / 90) - sq((y + 5) / 100));
  const domeL = (x: number, y: number): number => 14 + (dL - 14) * Math.max(0, 1 - sq((x + 60) / 90) - sq((y + 5) / 100));
  // Dome height per (i, j) column, looked up by template coordinate (painting calls it per voxel).
  const domeTab = new Float64Array(N * N);
  for (let j = 0; j < N; j++) for (let i = 0; i < N; i++) domeTab[i + N * j] = tx[i]! >= 0 ? domeR(tx[i]!, ty[j]!) : domeL(tx[i]!, ty[j]!);
  const ix = (x: number): number => Math.max(0, Math.min(N - 1, Math.round((x * scale[0] + shift[0] - origin[0]) / s)));
  const iy = (y: number): number => Math.max(0, Math.min(N - 1, Math.round((y * scale[1] + shift[1] - origin[1]) / s)));
  const dome = (x: number, y: number): number => domeTab[ix(x) + N * iy(y)]!;
  // The thoracic cavity above the domes is mediastinal soft tissue until the lungs fill it.
  paint(L.med, box([-220, -160, 10], [220, 160, BIG], (x, y, z) => inCavity(x, y, z) && z > dome(x, y) + 2));

  // Paraspinal and psoas muscles.
  for (const sx of [1, -1]) {
    paint(L.muscle, box([sx * 38 - 30, -130, -BIG], [sx * 38 + 30, -70, BIG], (x, y) => sq((x - sx * 38) / 26) + sq((y + 100) / 19) <= 1));
    paint(L.muscle, tube([[sx * 30, -62, -30], [sx * 48, -45, -110], [sx * 58, -25, -180]], [9, 15, 18]), cavityOnly);
  }

  // Abdominal organs (below the domes).
  const below = (shape: Shape, margin = 3): Shape => ({ ...shape, inside: (x, y, z) => z < dome(x, y) - margin && inCavity(x, y, z) && shape.inside(x, y, z) });
  const liverS = osc('liver');
  const liverR = ellipsoid(J([58, 5, -8], 4), [78 * liverS, 86 * liverS, 75 * liverS], { yaw: rng.normal(0, 0.1), bumps: randomBumps(rand, 0.08) });
  const liverL = ellipsoid(J([-15, 38, 4], 5), [rng.uniform(40, 60) * liverS, 36 * liverS, 34 * liverS], { yaw: rng.normal(0, 0.1), bumps: randomBumps(rand, 0.08) });
  paint(L.liver, below({ min: liverL.min.map((v, a) => Math.min(v, liverR.min[a]!)) as V3, max: liverL.max.map((v, a) => Math.max(v, liverR.max[a]!)) as V3, inside: (x, y, z) => liverR.inside(x, y, z) || liverL.inside(x, y, z) }), cavityOnly);
  const spS = osc('spleen');
  paint(L.spleen, below(ellipsoid(J([-82, -40, 2], 5), [26 * spS, 50 * spS, 46 * spS], { yaw: 0.5 + rng.normal(0, 0.1), bumps: randomBumps(rand, 0.06) })), cavityOnly);
  const stomach = ellipsoid(J([-45, 30, -5], 6), [jit(42, 4), 36, jit(44, 5)], { yaw: -0.3, bumps: randomBumps(rand, 0.1) });
  paint(L.stomach, below(stomach), (c) => c === L.fat);
  paint(L.gb, ellipsoid(J([32, 48, -55], 4), [13, 27, 15], { yaw: 0.4, pitch: -0.4 }), (c) => c === L.liver || c === L.fat);
  const pS = osc('pancreas');
  paint(L.pancreas, tube([J([28, 8, -58], 3), J([2, -2, -46], 3), J([-38, -8, -36], 3), J([-68, -24, -26], 3)], [15 * pS, 12 * pS, 11 * pS, 9 * pS]), (c) => c === L.fat);
  const kidneyC: V3[] = [J([68, -45, -80], 4), J([-68, -45, -66], 4)];
  for (const [idx, side] of ([[0, 'kidney_right'], [1, 'kidney_left']] as const)) {
    const ks = osc(side), sx = idx === 0 ? 1 : -1;
    paint(idx === 0 ? L.kr : L.kl, ellipsoid(kidneyC[idx]!, [25 * ks, 25 * ks, 50 * ks], { yaw: sx * 0.3, pitch: 0.15, bumps: randomBumps(rand, 0.05) }), cavityOnly);
    paint(idx === 0 ? L.ar : L.al, ellipsoid([sx * 45, -36, kidneyC[idx]![2] + 58], [5, 13, 16], { yaw: sx * 0.5 }), cavityOnly);
  }
  const colonPts: V3[] = [[85, 20, -150], [88, 5, -90], [80, 30, -60], [30, 60, -64], [-40, 60, -58], [-86, 20, -40], [-92, -10, -80], [-88, 0, -140], [-40, 30, -168], [0, -68, -185], [0, -72, -210]].map((p) => J(p as V3, 5));
  paint(L.colon, tube(colonPts, colonPts.map(() => rng.uniform(16, 23))), (c) => c === L.fat);
  paint(L.si, ellipsoid(J([0, 28, -112], 5), [72, 50, 56], { bumps: randomBumps(rand, 0.1) }), (c) => c === L.fat);
  const blS = rng.uniform(0.75, 1.15);
  paint(L.bladder, ellipsoid(J([0, 38, -170], 4), [40 * blS, 33 * blS, 28 * blS]), (c) => c === L.fat || c === L.si);
  const male = rng.next() < 0.5;
  if (male) paint(L.prostate, ellipsoid([0, 18, -202], [18 * osc('prostate'), 15 * osc('prostate'), 14 * osc('prostate')]), (c) => c === L.fat || c === L.muscle);

  // Lungs and their lobes: fissure planes in the template frame.
  const fissO = jit(95, 6), fissH = jit(98, 5);
  const lungR = ellipsoid(J([72, -5, 108], 3), [62, 88, 100], { bumps: randomBumps(rand, 0.04) });
  const lungL = ellipsoid(J([-72, -5, 104], 3), [60, 88, 98], { bumps: randomBumps(rand, 0.04) });
  const lobeOf = (x: number, y: number, z: number): number => {
    const lower = z < fissO - 0.77 * y;
    if (x > 0) return lower ? L.rll : z < fissH && y > -35 ? L.rml : L.rul;
    return lower ? L.lll : L.lul;
  };
  for (const [lung, sx] of [[lungR, 1], [lungL, -1]] as const) {
    const [i0, i1] = range(lung.min[0], lung.max[0], tx), [j0, j1] = range(lung.min[1], lung.max[1], ty), [k0, k1] = range(lung.min[2], lung.max[2], tz);
    for (let k = k0; k <= k1; k++) for (let j = j0; j <= j1; j++) for (let i = i0; i <= i1; i++) {
      const p = i + N * (j + N * k), x = tx[i]!, y = ty[j]!, z = tz[k]!;
      if (labels[p] !== L.med || sx * x < 24 || z < dome(x, y) + 3 || !lung.inside(x, y, z)) continue;
      labels[p] = lobeOf(x, y, z);
    }
  }

  // Mediastinal organs.
  const hS = osc('heart');
  paint(L.heart, ellipsoid(J([-18, 30, 68], 4), [60 * hS, 46 * hS, 50 * hS], { yaw: -0.45, pitch: 0.3, bumps: randomBumps(rand, 0.04) }), (c) => c === L.med || isLung(c) || c === L.fat);
  paint(L.airway, tube([[0, -15, 200], [0, -20, 142], [32, -24, 122]], [9, 8, 5]));
  paint(L.airway, tube([[0, -20, 142], [-34, -24, 120]], [8, 5]));
  paint(L.eso, tube([[-4, -42, 200], [-10, -46, 60], [-35, -18, 2]], [7, 7, 8]), (c) => c !== L.airway);
  const aortaPts: V3[] = [[-6, 24, 92], [0, 20, 138], [-18, -4, 160], [-30, -38, 146], [-28, -48, 60], [-20, -52, -10], [-8, -54, -90], [-4, -48, -122]].map((p) => J(p as V3, 3));
  const aR = jit(14, 1.2);
  const aorta = tube(aortaPts, aortaPts.map((_, i) => (i < 4 ? aR : aR * 0.8)));
  let aneurysmShape: Shape | undefined;
  if (mods.aneurysm) {
    const an = mods.aneurysm;
    aneurysmShape = {
      min: aorta.min.map((v) => v - an.radius) as V3,
      max: aorta.max.map((v) => v + an.radius) as V3,
      inside: (x, y, z) => {
        const o = aorta.depth(x, y, z);
        const w = Math.max(0, 1 - sq((o.t - an.t) / an.length));
        return w > 0 && o.d <= o.r + (an.radius - o.r) * w;
      },
    };
  }
  paint(L.aorta, aorta, (c) => c !== L.airway && c !== L.spine);
  if (aneurysmShape) paint(L.aorta, aneurysmShape, (c) => c !== L.airway && c !== L.spine);
  for (const sx of [1, -1]) paint(L.vessels, tube([[-4, -48, -122], [sx * 42, -30, -182]], [7, 6]), (c) => c === L.fat || c === L.muscle || c === L.si);
  paint(L.vessels, tube([[25, -32, 66], [26, -36, -112]], [11, 10]), (c) => c !== L.aorta && c !== L.airway);
  paint(L.vessels, tube([[16, 14, 190], [14, 14, 100]], [9, 9]), (c) => c === L.med || isLung(c));
  paint(L.vessels, tube([[-6, 44, 98], [-10, 18, 126], [32, 4, 116]], [12, 11, 8]), (c) => c === L.med || isLung(c));
  paint(L.vessels, tube([[-10, 18, 126], [-38, 0, 118]], [11, 8]), (c) => c === L.med || isLung(c));

  // Bones last: they overwrite whatever they cross.
  const spineX = rng.normal(0, 3);
  paint(L.spine, box([-40, -130, -BIG], [40, -45, BIG], (x, y) => {
    const dx = x - spineX;
    if (sq(dx / 19) + sq((y + 72) / 18) <= 1) return true;
    const rr = Math.hypot(dx, y + 101);
    return (rr >= 8 && rr <= 16 && y < -91) || (Math.abs(dx) < 5 && y < -110 && y > -128);
  }));
  const ribs: { z0: number; drop: number; end: number }[] = [];
  for (let r = 0; r < 11; r++) ribs.push({ z0: 186 - 19 * r + rng.normal(0, 1.5), drop: 45 + 5 * r, end: r < 7 ? 2.9 : 2.9 - 0.25 * (r - 6) });
  const ribAt = (x: number, y: number, z: number): { n: number; side: 'right' | 'left' } | null => {
    const ra = innerA(z) + 4, rb = innerB + 4;
    const qa = x / ra, qb = y / rb;
    const q = Math.sqrt(qa * qa + qb * qb);
    if (q < 0.93 || q > 1.04) return null;
    const th = Math.atan2(Math.abs(x) / ra, -y / rb);
    for (let r = 0; r < ribs.length; r++) {
      const rib = ribs[r]!;
      if (th < 0.35 || th > rib.end) continue;
      const zc = rib.z0 - rib.drop * (1 - Math.cos(th)) / 2;
      if (Math.abs(z - zc) <= 4) return { n: r + 1, side: x >= 0 ? 'right' : 'left' };
    }
    return null;
  };
  paint(L.ribs, box([-220, -160, -40], [220, 160, BIG], (x, y, z) => ribAt(x, y, z) !== null));
  paint(L.ribs, box([-13, 80, 60], [13, 120, 175], (x, y) => y > innerB - 2 && y < innerB + 12 && Math.abs(x) < 13));
  for (const sx of [1, -1]) {
    const wing = ellipsoid(J([sx * 78, -30, -150], 3), [56, 34, 48], { yaw: sx * 0.4 });
    paint(L.pelvis, { ...wing, inside: (x, y, z) => { const r = wing.radius(x, y, z); return r <= 1 && r >= 0.84 && sx * x > 45 && z < -125; } });
  }
  paint(L.pelvis, ellipsoid([spineX, -86, -178], [42, 18, 30], { pitch: -0.5 }));

  // HU: organ means (per case), texture, lung vessels, bowel gas, cortical bone.
  const tissues = loadTissues();
  const contrast = rng.next() < 0.5;
  const schemeHu = new Float32Array(256).fill(tissues.air);
  const texAmp = new Float32Array(256);
  for (const [name, t] of Object.entries(tissues.tissues)) {
    const v = organValue(name);
    schemeHu[v] = (contrast ? t.contrast : t.plain) + rng.normal(0, t.spread);
    texAmp[v] = t.texture;
  }
  const tex = smoothNoise(rng.fork('texture'), N, 10);
  const hu = fillHu(labels, tex, schemeHu, texAmp, tissues.air);
  // Bowel gas where the (already drawn) texture field is high: one field serves both.
  lungsAndGas(grid, hu, tex, L, stomach.max[2]);
  cortex(labels, N, hu, tex, [L.spine, L.ribs, L.pelvis], tissues.corticalBone);
  // Intervertebral discs.
  for (let k = 0; k < N; k++) {
    const z = tz[k]!;
    const level = z > T1_Z - 11.5 * THORACIC_H ? (T1_Z - z) / THORACIC_H : (T1_Z - 11 * THORACIC_H - z) / LUMBAR_H;
    const frac = level - Math.floor(level);
    if (Math.abs(frac - 0.5) > 0.12 * Math.max(1, s / scale[2] / 8)) continue;
    for (let j = 0; j < N; j++) for (let i = 0; i < N; i++) {
      const p = i + N * (j + N * k);
      if (labels[p] === L.spine && ty[j]! > -91) hu[p] = 85;
    }
  }
  // Lung vessels: branching tubes from each hilum, drawn into HU only (the label stays lung).
  const vesselR = 2.2 * Math.max(1, s / scale[0] / 3);
  for (const sx of [1, -1]) {
    const hilum: V3 = [sx * 38, -2, 112];
    for (let b = 0; b < 9; b++) {
      const dir: V3 = [sx * rng.uniform(0.3, 1), rng.uniform(-1, 1), rng.uniform(-1.1, 1)];
      const len = rng.uniform(50, 90);
      const norm = Math.hypot(...dir);
      const mid: V3 = [hilum[0] + (dir[0] / norm) * len * 0.5, hilum[1] + (dir[1] / norm) * len * 0.5, hilum[2] + (dir[2] / norm) * len * 0.5];
      const end: V3 = [mid[0] + (dir[0] / norm) * len * 0.5 + rng.normal(0, 12), mid[1] + (dir[1] / norm) * len * 0.5 + rng.normal(0, 12), mid[2] + (dir[2] / norm) * len * 0.5 + rng.normal(0, 12)];
      const t = tube([hilum, mid, end], [vesselR * 1.6, vesselR, vesselR * 0.6]);
      const [i0, i1] = range(t.min[0], t.max[0], tx), [j0, j1] = range(t.min[1], t.max[1], ty), [k0, k1] = range(t.min[2], t.max[2], tz);
      for (let k = k0; k <= k1; k++) for (let j = j0; j <= j1; j++) for (let i = i0; i <= i1; i++) {
        const p = i + N * (j + N * k);
        if (!isLung(labels[p]!)) continue;
        const o = t.depth(tx[i]!, ty[j]!, tz[k]!);
        // Soft edge: a thin vessel only partly fills a voxel.
        const f = Math.max(0, Math.min(1, (o.r - o.d) / (s / scale[0]) + 0.5));
        if (f > 0) hu[p] = hu[p]! * (1 - f) + (contrast ? 150 : 40) * f;
      }
    }
  }

  const geom = { size: [N, N, N] as V3, spacing: [s, s, s] as V3, origin, direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] };
  let aneurysmMask: Uint8Array | undefined;
  if (aneurysmShape) {
    aneurysmMask = new Uint8Array(n);
    const an = mods.aneurysm!;
    for (let k = 0, p = 0; k < N; k++) for (let j = 0; j < N; j++) for (let i = 0; i < N; i++, p++) {
      if (labels[p] !== L.aorta) continue;
      const o = aorta.depth(tx[i]!, ty[j]!, tz[k]!);
      if (Math.abs(o.t - an.t) < an.length * 0.8) aneurysmMask[p] = 1;
    }
  }
  return {
    hu: { data: hu, ...geom, size: [...geom.size], spacing: [...geom.spacing], origin: [...origin], direction: [...geom.direction] },
    labels: { data: labels, size: [...geom.size], spacing: [...geom.spacing], origin: [...origin], direction: [...geom.direction] },
    contrast, male, scale, shift, carinaZ: 142, vertebraAt: vertebraAtTemplateZ, ribAt, aneurysmMask,
  };
}

/** Smooth random field in about [-1, 1]: a coarse random grid, trilinearly upsampled. */
export function smoothNoise(rng: Rng, N: number, coarse: number): Float32Array {
  const c = coarse + 1;
  const g = new Float32Array(c * c * c);
  for (let i = 0; i < g.length; i++) g[i] = rng.uniform(-1, 1);
  const out = new Float32Array(N * N * N);
  const f = (coarse) / Math.max(1, N - 1);
  const i0 = new Int32Array(N), w = new Float32Array(N);
  for (let i = 0; i < N; i++) { const u = i * f; i0[i] = Math.min(coarse - 1, Math.floor(u)); w[i] = u - i0[i]!; }
  for (let k = 0, p = 0; k < N; k++) {
    const a = i0[k]!, wc = w[k]!;
    for (let j = 0; j < N; j++) {
      const b = i0[j]!, wb = w[j]!;
      for (let i = 0; i < N; i++, p++) {
        const q = i0[i]!, wa = w[i]!;
        const o00 = q + c * (b + c * a), o10 = o00 + c, o01 = o00 + c * c, o11 = o01 + c;
        const c00 = g[o00]! * (1 - wa) + g[o00 + 1]! * wa;
        const c10 = g[o10]! * (1 - wa) + g[o10 + 1]! * wa;
        const c01 = g[o01]! * (1 - wa) + g[o01 + 1]! * wa;
        const c11 = g[o11]! * (1 - wa) + g[o11 + 1]! * wa;
        out[p] = (c00 * (1 - wb) + c10 * wb) * (1 - wc) + (c01 * (1 - wb) + c11 * wb) * wc;
      }
    }
  }
  return out;
}
