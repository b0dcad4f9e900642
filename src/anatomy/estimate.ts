import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../common/index.ts';
import { fromItkImage, readVolume, reorient, resample, resampleToGrid, toItkImage, type Volume } from '../volume/index.ts';
import { fallbackAnatomy } from './fallback.ts';
import { connectedComponents } from './morph.ts';
import { loadOrganScheme, organsForReportClass, organValue } from './scheme.ts';

/** One shipped atlas: a real CT and its organ map (our scheme), from data/anatomy/atlases/. */
export interface Atlas {
  id: string;
  /** atlases of one patient share this; leave-one-patient-out drops them all */
  patient: string;
  ct: Volume;
  labels: Volume<Uint8Array>;
  /** its HU map (fallback.ts), computed once */
  hu?: Volume<Uint8Array>;
}

let atlasCache: Atlas[] | undefined;

/** The shipped atlases (data/anatomy/atlases/atlases.json), read once. */
export async function loadAtlases(): Promise<Atlas[]> {
  if (atlasCache) return atlasCache;
  const dir = join(projectRoot, 'data', 'anatomy', 'atlases');
  const raw = JSON.parse(readFileSync(join(dir, 'atlases.json'), 'utf8')) as { atlases: { id: string; patient: string }[] };
  const out: Atlas[] = [];
  for (const a of raw.atlases) {
    const labels = await readVolume(join(dir, `${a.id}.labels.nii.gz`));
    // RAS, so a slice is one world z (the profiles and the start transform assume it)
    out.push({ id: a.id, patient: a.patient, ct: reorient(await readVolume(join(dir, `${a.id}.ct.nii.gz`))), labels: reorient({ ...labels, data: Uint8Array.from(labels.data) }) });
  }
  atlasCache = out;
  return out;
}

/** How the atlases are brought onto the CT: anatomy alone, then elastix affine, then B-spline. */
export type Registration = 'anatomy' | 'affine' | 'bspline';

export interface EstimateOptions {
  /** atlases to use (default: all shipped) */
  atlases?: Atlas[];
  registration?: Registration;
  /** grid the registration runs on, mm (default 6) */
  mm?: number;
  /** B-spline control point spacing, mm (default 40) */
  gridMm?: number;
  /** optimizer iterations per resolution (default 100) */
  iterations?: number;
  /** how far (mm) the image-based z search may move the anatomical start (default 150) */
  zRange?: number;
  /** fit liver and spleen to the target's own HU after registration (fitToHu; default true) */
  fit?: boolean;
}

/** Per-slice measures of a CT from its HU map: areas (mm²) of body, lungs and bone, and body extents. */
interface Profile {
  z: number[];
  body: number[];
  lung: number[];
  bone: number[];
}

/** The label values of the five lobes (the scheme's own lung organs). */
const lungValues = (): number[] => organsForReportClass('lung', { primary: true });

function huClasses(): { lung: Uint8Array; bone: Uint8Array } {
  const lung = new Uint8Array(256), bone = new Uint8Array(256);
  for (const v of lungValues()) lung[v] = 1;
  for (const n of ['spine', 'other_bone', 'ribs', 'pelvis']) bone[organValue(n)] = 1;
  return { lung, bone };
}

/** World z of slice k of an axis-aligned (RAS, z along the third axis) grid. */
const sliceZ = (v: Volume, k: number): number => v.origin[2] + v.direction[8]! * v.spacing[2] * k;

function profileOf(v: Volume, fb: Volume<Uint8Array>): Profile {
  const [nx, ny, nz] = v.size;
  const { lung, bone } = huClasses();
  const px = v.spacing[0] * v.spacing[1];
  const p: Profile = { z: [], body: [], lung: [], bone: [] };
  for (let k = 0; k < nz; k++) {
    let b = 0, l = 0, o = 0;
    for (let q = k * nx * ny, e = q + nx * ny; q < e; q++) {
      const c = fb.data[q]!;
      if (!c) continue;
      b++;
      if (lung[c]) l++; else if (bone[c]) o++;
    }
    p.z.push(sliceZ(v, k)); p.body.push(b * px); p.lung.push(l * px); p.bone.push(o * px);
  }
  return p;
}

/** Body extent in x (median) and y (2nd–98th percentile) over slices whose world z lies in [z0, z1]. */
function bodyFrame(v: Volume, fb: Volume<Uint8Array>, z0: number, z1: number): { cx: number; cy: number; depth: number } {
  const [nx, ny, nz] = v.size;
  const xs: number[] = [], ys: number[] = [];
  for (let k = 0; k < nz; k++) {
    const z = sliceZ(v, k);
    if (z < z0 || z > z1) continue;
    for (let j = 0; j < ny; j += 1) for (let i = 0; i < nx; i += 1) {
      if (!fb.data[i + nx * (j + ny * k)]) continue;
      xs.push(v.origin[0] + v.direction[0]! * v.spacing[0] * i);
      ys.push(v.origin[1] + v.direction[4]! * v.spacing[1] * j);
    }
  }
  if (xs.length < 50) return { cx: 0, cy: 0, depth: 0 };
  xs.sort((a, b) => a - b); ys.sort((a, b) => a - b);
  const q = (a: number[], f: number): number => a[Math.min(a.length - 1, Math.floor(f * a.length))]!;
  return { cx: q(xs, 0.5), cy: (q(ys, 0.02) + q(ys, 0.98)) / 2, depth: q(ys, 0.98) - q(ys, 0.02) };
}

/** target world → atlas world: x' = s(x − cx) + cx', y' = s(y − cy) + cy', z' = s·z + tz. */
interface Start { s: number; cx: number; cy: number; ax: number; ay: number; tz: number; cost: number }

/**
 * Where the atlas lies on the target, from anatomy rather than the image centres: the z shift that
 * best matches the slice profiles of lung, bone and body area (lung bases and the diaphragm, the
 * vertebral column, the body outline), at the in-plane scale of the two bodies' AP depth; then the
 * body midline and AP centre over the matched slices.
 */
function anatomicalStart(t: Volume, tfb: Volume<Uint8Array>, a: Volume, afb: Volume<Uint8Array>): Start | null {
  const pt = profileOf(t, tfb), pa = profileOf(a, afb);
  const whole = (v: Volume) => [Math.min(sliceZ(v, 0), sliceZ(v, v.size[2] - 1)), Math.max(sliceZ(v, 0), sliceZ(v, v.size[2] - 1))] as const;
  const [t0, t1] = whole(t), [a0, a1] = whole(a);
  let s = 1;
  const ft = bodyFrame(t, tfb, t0, t1), fa = bodyFrame(a, afb, a0, a1);
  if (ft.depth > 0 && fa.depth > 0) s = Math.min(1.4, Math.max(0.7, fa.depth / ft.depth));
  const at = (p: Profile, key: 'body' | 'lung' | 'bone', z: number): number | undefined => {
    const dz = p.z[1]! - p.z[0]!;
    const f = (z - p.z[0]!) / dz;
    if (f < -0.5 || f > p.z.length - 0.5) return undefined;
    const i = Math.max(0, Math.min(p.z.length - 1, Math.round(f)));
    return p[key][i];
  };
  const minOverlap = Math.min(t1 - t0, (a1 - a0) / s) * 0.8;
  const step = Math.min(Math.abs(t.spacing[2]), 4) / 2;
  let best: Start | null = null;
  // every shift that overlaps the two fields of view by at least 80 % of the shorter one
  for (let tz = a0 - s * t1; tz <= a1 - s * t0; tz += step) {
    let cost = 0, n = 0;
    const lo = Math.max(t0, (a0 - tz) / s), hi = Math.min(t1, (a1 - tz) / s);
    if (hi - lo < minOverlap) continue;
    for (let k = 0; k < pt.z.length; k++) {
      const z = pt.z[k]!;
      if (z < lo || z > hi) continue;
      const s2 = s * s;
      const b = at(pa, 'body', s * z + tz), l = at(pa, 'lung', s * z + tz), o = at(pa, 'bone', s * z + tz);
      if (b === undefined || l === undefined || o === undefined) continue;
      const norm = Math.max(1, (pt.body[k]! * s2 + b) / 2);
      cost += Math.abs(pt.lung[k]! * s2 - l) / norm * 3 + Math.abs(pt.bone[k]! * s2 - o) / norm * 4 + Math.abs(pt.body[k]! * s2 - b) / norm;
      n++;
    }
    if (!n) continue;
    cost /= n;
    if (!best || cost < best.cost) best = { s, cx: 0, cy: 0, ax: 0, ay: 0, tz, cost };
  }
  if (!best) return null;
  const lo = Math.max(t0, (a0 - best.tz) / s), hi = Math.min(t1, (a1 - best.tz) / s);
  const ft2 = bodyFrame(t, tfb, lo, hi), fa2 = bodyFrame(a, afb, s * lo + best.tz, s * hi + best.tz);
  return { ...best, cx: ft2.cx, cy: ft2.cy, ax: fa2.cx, ay: fa2.cy };
}

/**
 * The z shift refined by the images themselves: every shift (2 mm steps) within ±`range` mm of the
 * anatomical start, scored by the correlation of soft-tissue-windowed HU over the target's body
 * voxels the placed atlas covers. Profiles alone confuse bowel gas with lung bases and arms with
 * bone; the organs' own contrast does not.
 */
function refineZ(t: Volume, tfb: Volume<Uint8Array>, a: Volume, st: Start, range: number): Start {
  const win = (h: number): number => (h < -150 ? -150 : h > 250 ? 250 : h);
  const tw = Float32Array.from(t.data, win);
  let best = st, bestScore = -Infinity;
  for (let dz = -range; dz <= range; dz += 2) {
    const cand = { ...st, tz: st.tz + dz };
    const m = resampleToGrid(placed(a, cand), t, 'linear', { fill: NaN }).data;
    let n = 0, sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    for (let p = 0; p < m.length; p += 2) {
      const y = m[p]!;
      if (!tfb.data[p] || Number.isNaN(y)) continue;
      const x = tw[p]!, yw = win(y);
      n++; sx += x; sy += yw; sxx += x * x; syy += yw * yw; sxy += x * yw;
    }
    if (n < 2000) continue;
    const cov = sxy / n - (sx / n) * (sy / n), vx = sxx / n - (sx / n) ** 2, vy = syy / n - (sy / n) ** 2;
    const score = cov / Math.sqrt(Math.max(1e-9, vx * vy));
    if (score > bestScore) { bestScore = score; best = cand; }
  }
  return best;
}

/**
 * The atlas volume given new geometry so that its world coordinates are the target's under the
 * start transform: no resampling, the inverse of x' = s(x − c) + c' moves origin and spacing only.
 */
function placed<T extends Volume>(v: T, st: Start): T {
  const inv = (w: number[]): [number, number, number] => [(w[0]! - st.ax) / st.s + st.cx, (w[1]! - st.ay) / st.s + st.cy, (w[2]! - st.tz) / st.s];
  return { ...v, origin: inv(v.origin), spacing: v.spacing.map((x) => x / st.s) as [number, number, number] };
}

/** The target's slices [lo, hi] (world z) plus a margin: the field of view both scans share. */
function cropZ<T extends Volume>(v: T, lo: number, hi: number): T {
  const [nx, ny, nz] = v.size;
  let k0 = nz, k1 = -1;
  for (let k = 0; k < nz; k++) { const z = sliceZ(v, k); if (z >= lo && z <= hi) { k0 = Math.min(k0, k); k1 = Math.max(k1, k); } }
  if (k1 < k0) return v;
  const n = nx * ny;
  const data = v.data.slice(k0 * n, (k1 + 1) * n);
  return { ...v, data, size: [nx, ny, k1 - k0 + 1], origin: [v.origin[0], v.origin[1], sliceZ(v, k0)] } as T;
}

type ItkIn = Parameters<Elastix['elastixNode']>[1] extends infer O ? NonNullable<O extends { fixed?: infer F } ? F : never> : never;
/** Our volume as elastix's image type (the same object; the two packages type it apart). */
const itk = (v: Volume): ItkIn => toItkImage(v) as unknown as ItkIn;
type Elastix = typeof import('@itk-wasm/elastix');
let elastixModule: Elastix | undefined;
async function elastix(): Promise<Elastix> {
  elastixModule ??= await import('@itk-wasm/elastix');
  return elastixModule;
}

const f32 = (v: Volume): Volume<Float32Array> => ({ ...v, data: v.data instanceof Float32Array ? v.data : Float32Array.from(v.data) });

/**
 * itk-wasm pipelines print through console.* on failure; keep a registration's noise off the
 * user's screen. Calls may overlap (several studies in one process): the console is saved by the
 * first and given back by the last, so an inner call never saves the silenced one.
 */
let quietDepth = 0;
let quietSaved: { log: typeof console.log; warn: typeof console.warn; error: typeof console.error; info: typeof console.info; exit: typeof process.exitCode } | undefined;
export async function quiet<T>(fn: () => Promise<T>): Promise<T> {
  if (quietDepth++ === 0) {
    quietSaved = { log: console.log, warn: console.warn, error: console.error, info: console.info, exit: process.exitCode };
    console.log = console.warn = console.error = console.info = () => {};
  }
  try { return await fn(); } finally {
    if (--quietDepth === 0 && quietSaved) {
      const { exit, ...saved } = quietSaved;
      Object.assign(console, saved);
      process.exitCode = exit;
      quietSaved = undefined;
    }
  }
}

function parameterMap(kind: 'affine' | 'bspline', o: Required<Pick<EstimateOptions, 'gridMm' | 'iterations'>>, base: Record<string, string[]>): Record<string, string[]> {
  return {
    ...base,
    NumberOfResolutions: ['2'],
    MaximumNumberOfIterations: [String(o.iterations)],
    // A grid sampler, not elastix's random one: its random generator is one per process and is
    // not reseeded per registration, so the second study of a run would register differently
    // from the same study alone (label's restarts and --jobs must give the same bytes).
    ImageSampler: ['Grid'],
    SampleGridSpacing: ['2'],
    // the scans rarely share a field of view, so the metric samples the part the atlas covers
    ...(kind === 'bspline' ? { FinalGridSpacingInPhysicalUnits: [String(o.gridMm)] } : {}),
    ...(kind === 'affine' ? { AutomaticTransformInitialization: ['false'] } : {}),
    WriteResultImage: ['false'],
    // one metric: the default bending-energy penalty multiplies a B-spline's cost several times over
    ...(kind === 'bspline' ? { Metric: ['AdvancedMattesMutualInformation'], Registration: ['MultiResolutionRegistration'] } : {}),
    MaximumNumberOfSamplingAttempts: ['16'],
    RequiredRatioOfValidSamples: ['0.1'],
  };
}

/**
 * One atlas's organ map on the target's registration grid: placed by anatomy, then refined by
 * elastix on the slices both scans share. Voxels the atlas does not reach are 0.
 */
async function propagate(target: Volume, tfb: Volume<Uint8Array>, atlas: Atlas, afb: Volume<Uint8Array>, opts: Required<Omit<EstimateOptions, 'atlases'>>): Promise<Volume<Uint8Array> | null> {
  const st0 = anatomicalStart(target, tfb, atlas.ct, afb);
  if (!st0) return null;
  const st = refineZ(target, tfb, atlas.ct, st0, opts.zRange);
  const mct = placed(atlas.ct, st), mlab = placed(atlas.labels, st);
  if (opts.registration === 'anatomy') return resampleToGrid(mlab, target, 'nearest', { fill: 0 });
  // the shared field of view: the target's slices the placed atlas covers (a 20 mm margin)
  const az = [sliceZ(mct, 0), sliceZ(mct, mct.size[2] - 1)];
  const fixedV = cropZ(target, Math.min(...az) - 20, Math.max(...az) + 20);
  const tz = [sliceZ(fixedV, 0), sliceZ(fixedV, fixedV.size[2] - 1)];
  const movingV = cropZ(mct, Math.min(...tz) - 20, Math.max(...tz) + 20);
  if (fixedV.size[2] < 4 || movingV.size[2] < 4) return resampleToGrid(mlab, target, 'nearest', { fill: 0 });
  const ex = await elastix();
  const fixed = itk(f32(fixedV)), moving = itk(f32(movingV));
  const maps: Record<string, string[]>[] = [];
  const o = { gridMm: opts.gridMm, iterations: opts.iterations };
  maps.push(parameterMap('affine', o, (await ex.defaultParameterMapNode('affine', { numberOfResolutions: 2 })).parameterMap as Record<string, string[]>));
  if (opts.registration === 'bspline') maps.push(parameterMap('bspline', o, (await ex.defaultParameterMapNode('bspline', { numberOfResolutions: 2, finalGridSpacing: opts.gridMm })).parameterMap as Record<string, string[]>));
  let result;
  try {
    result = await quiet(() => ex.elastixNode(maps, { fixed, moving }));
  } catch {
    // a registration that fails to converge keeps the anatomical start, not nothing
    return resampleToGrid(mlab, target, 'nearest', { fill: 0 });
  }
  // labels move with the same transform, nearest neighbour, onto the whole registration grid
  const tpo = (result.transformParameterObject as Record<string, string[]>[]).map((m) => ({
    ...m, FinalBSplineInterpolationOrder: ['0'], ResampleInterpolator: ['FinalNearestNeighborInterpolator'], DefaultPixelValue: ['0'],
    Size: target.size.map(String), Origin: Array.from(toItkImage(target).origin, String), Spacing: target.spacing.map(String),
    Direction: Array.from(toItkImage(target).direction, String), ResultImagePixelType: ['unsigned char'],
  }));
  const warped = await quiet(() => ex.transformixNode(itk(mlab), tpo));
  const out = fromItkImage(warped.result as unknown as Parameters<typeof fromItkImage>[0], atlas.id);
  return { ...target, data: Uint8Array.from(out.data, (v) => Math.round(v)) };
}

/** Organ label classes: where an atlas organ may be pasted on the target's HU map. */
function pasteRules(): (organ: number, hu: number) => boolean {
  const scheme = loadOrganScheme();
  const v = (n: string) => organValue(n);
  const lung = new Set(lungValues());
  const bone = new Set(['spine', 'other_bone'].map(v));
  const soft = v('soft_tissue'), fat = v('fat'), muscle = v('muscle');
  const fatty = new Set(['pancreas', 'stomach', 'small_intestine', 'colon'].map(v));
  const rule = new Map<number, (hu: number) => boolean>();
  for (const o of scheme.organs) {
    const name = o.name;
    if (lung.has(o.value)) rule.set(o.value, (h) => lung.has(h));
    else if (['spine', 'ribs', 'pelvis', 'other_bone'].includes(name)) rule.set(o.value, (h) => bone.has(h));
    else if (name === 'airway' || name === 'soft_tissue' || name === 'fat') rule.set(o.value, () => false);
    else if (fatty.has(o.value)) rule.set(o.value, (h) => h === soft || h === fat || h === muscle);
    else rule.set(o.value, (h) => h === soft || h === muscle);
  }
  return (organ, h) => rule.get(organ)?.(h) ?? false;
}

/**
 * Bowel gas the HU map took for lung: an enclosed air body of lung density is lung only if it is
 * large (over 500 ml: a chest's lungs), or if it is widest in the scan's top three slices (lung
 * bases cut by an abdominal scan's field of view: domes that narrow downwards over the diaphragm).
 * Gas in the colon or stomach fails both and becomes soft tissue, as other bowel gas is.
 */
function dropGasLungs(hu: Volume<Uint8Array>): void {
  const [nx, ny, nz] = hu.size;
  const nxy = nx * ny;
  const lung = new Set(lungValues());
  const m = Uint8Array.from(hu.data, (v) => (lung.has(v) ? 1 : 0));
  const cc = connectedComponents(m, hu.size);
  const n = cc.sizes.length;
  const area = new Float64Array(n * nz);
  for (let p = 0; p < m.length; p++) { const c = cc.labels[p]!; if (c) area[c * nz + Math.floor(p / nxy)]! += 1; }
  // superior = larger world z; direction[8] < 0 means slice 0 is the top
  const up = hu.direction[8]! >= 0;
  const ml = (hu.spacing[0] * hu.spacing[1] * hu.spacing[2]) / 1000;
  const keep = new Uint8Array(n);
  for (let c = 1; c < n; c++) {
    if (cc.sizes[c]! * ml > 500) { keep[c] = 1; continue; }
    let best = 0, bestK = 0;
    for (let k = 0; k < nz; k++) { const a = area[c * nz + k]!; if (a > best) { best = a; bestK = k; } }
    // widest within the top slices of the scan: cut there by the field of view, as lung bases are
    if (up ? bestK >= nz - 3 : bestK <= 2) keep[c] = 1;
  }
  const soft = organValue('soft_tissue');
  for (let p = 0; p < m.length; p++) if (m[p] && !keep[cc.labels[p]!]) hu.data[p] = soft;
}

/** One 6-neighbourhood step of dilation (grow) or erosion (shrink) of a binary mask. */
function step(m: Uint8Array, size: readonly number[], grow: boolean): Uint8Array {
  const [nx, ny, nz] = size as [number, number, number];
  const nxy = nx * ny;
  const out = new Uint8Array(m.length);
  for (let k = 0, p = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, p++) {
    const n = [i > 0 ? m[p - 1]! : m[p]!, i < nx - 1 ? m[p + 1]! : m[p]!, j > 0 ? m[p - nx]! : m[p]!, j < ny - 1 ? m[p + nx]! : m[p]!, k > 0 ? m[p - nxy]! : m[p]!, k < nz - 1 ? m[p + nxy]! : m[p]!];
    out[p] = grow ? (m[p] || n.some(Boolean) ? 1 : 0) : (m[p] && n.every(Boolean) ? 1 : 0);
  }
  return out;
}

/**
 * An atlas organ fitted to the target's own HU: the voxels of the organ's intensity (median ± 3
 * MAD of its eroded prior, where the prior is soft tissue) that connect to the prior's core, inside
 * the prior grown by `growVoxels`, or, in slices no atlas reached (a short atlas covers only part
 * of a long liver), inside the prior's in-plane footprint up to 50 mm on; opened once so thin
 * bridges to a neighbour of the same density break.
 */
function fitToHu(lab: Volume<Uint8Array>, hu: Float32Array, tfb: Volume<Uint8Array>, organ: number, growVoxels: number): void {
  const [nx, ny, nz] = lab.size;
  const nxy = nx * ny;
  const prior = Uint8Array.from(lab.data, (x) => (x === organ ? 1 : 0));
  const core = step(prior, lab.size, false);
  const soft = organValue('soft_tissue'), muscle = organValue('muscle');
  const vals: number[] = [];
  for (let p = 0; p < core.length; p++) if (core[p] && (tfb.data[p] === soft || tfb.data[p] === muscle)) vals.push(hu[p]!);
  if (vals.length < 30) return;
  vals.sort((a, b) => a - b);
  const med = vals[vals.length >> 1]!;
  const mad = vals.map((v) => Math.abs(v - med)).sort((a, b) => a - b)[vals.length >> 1]!;
  const lo = med - 3 * mad - 5, hi = med + 3 * mad + 5;
  const covered = new Uint8Array(nz);
  for (let p = 0; p < lab.data.length; p++) if (lab.data[p]) covered[Math.floor(p / nxy)] = 1;
  let reach: Uint8Array = prior;
  for (let r = 0; r < growVoxels; r++) reach = step(reach, lab.size, true);
  // beyond the atlases' slices the organ may go on, but within the prior's in-plane footprint and
  // at most EXTEND_MM: the liver tapers inside its own outline, it does not turn into the bowel below
  const foot = new Uint8Array(nxy);
  for (let p = 0; p < prior.length; p++) if (reach[p]) foot[p % nxy] = 1;
  const EXTEND_MM = 50;
  let c0 = nz, c1 = -1;
  for (let k = 0; k < nz; k++) if (covered[k]) { c0 = Math.min(c0, k); c1 = Math.max(c1, k); }
  const ext = Math.round(EXTEND_MM / lab.spacing[2]);
  const beyond = (k: number): boolean => !covered[k] && k >= c0 - ext && k <= c1 + ext;
  let cand: Uint8Array = new Uint8Array(prior.length);
  for (let p = 0; p < cand.length; p++) {
    const other = lab.data[p] && lab.data[p] !== organ;
    if (other || (tfb.data[p] !== soft && tfb.data[p] !== muscle)) continue;
    if (hu[p]! < lo || hu[p]! > hi) continue;
    if (reach[p] || (beyond(Math.floor(p / nxy)) && foot[p % nxy])) cand[p] = 1;
  }
  cand = step(step(cand, lab.size, false), lab.size, true);
  const cc = connectedComponents(cand, lab.size);
  const hits = new Float64Array(cc.sizes.length);
  for (let p = 0; p < cand.length; p++) if (cc.labels[p] && prior[p]) hits[cc.labels[p]!]! += 1;
  let best = 0;
  for (let c = 1; c < hits.length; c++) if (hits[c]! > hits[best]!) best = c;
  if (!best) return;
  for (let p = 0; p < lab.data.length; p++) {
    if (cc.labels[p] === best) lab.data[p] = organ;
    else if (lab.data[p] === organ) lab.data[p] = 0;
  }
}

/**
 * Fills, slice by slice, what an organ encloses: a nodule in the lung, a cyst in the liver, the
 * vessels of both are the organ's, though their HU is not. A hole takes the value of the organ
 * voxel before it in its row (so a lobe's nodule stays in that lobe). Only tissue voxels (soft
 * tissue, fat, muscle, or the organ's own values) are filled, never another organ.
 */
function fillHoles(lab: Volume<Uint8Array>, values: Set<number>): void {
  const [nx, ny, nz] = lab.size;
  const nxy = nx * ny;
  const tissue = new Set(['soft_tissue', 'fat', 'muscle'].map(organValue));
  const seen = new Uint8Array(nxy);
  const queue = new Int32Array(nxy);
  for (let k = 0; k < nz; k++) {
    const base = k * nxy;
    let any = false;
    for (let q = 0; q < nxy && !any; q++) if (values.has(lab.data[base + q]!)) any = true;
    if (!any) continue;
    seen.fill(0);
    let head = 0, tail = 0;
    const push = (q: number): void => { if (!seen[q] && !values.has(lab.data[base + q]!)) { seen[q] = 1; queue[tail++] = q; } };
    for (let i = 0; i < nx; i++) { push(i); push(i + nx * (ny - 1)); }
    for (let j = 0; j < ny; j++) { push(j * nx); push(nx - 1 + j * nx); }
    while (head < tail) {
      const q = queue[head++]!, i = q % nx, j = (q - i) / nx;
      if (i > 0) push(q - 1); if (i < nx - 1) push(q + 1); if (j > 0) push(q - nx); if (j < ny - 1) push(q + nx);
    }
    for (let j = 0; j < ny; j++) {
      let last = 0;
      for (let i = 0; i < nx; i++) {
        const q = j * nx + i, v = lab.data[base + q]!;
        if (values.has(v)) { last = v; continue; }
        if (!seen[q] && last && tissue.has(v)) lab.data[base + q] = last;
      }
    }
  }
}

/**
 * Lobes for lungs the field of view cuts (lung bases above an abdominal scan): the HU map splits a
 * lung into lobes by its height, which is right for a whole lung only. A cut lung smaller than
 * 600 ml is a base: its lower lobe, except the anterior third on the left (the lingula, part of
 * the upper lobe) and on the right (the middle lobe reaches down in front).
 */
function baseLobes(hu: Volume<Uint8Array>): void {
  const [nx, ny, nz] = hu.size;
  const nxy = nx * ny;
  const up = hu.direction[8]! >= 0;
  const right = new Set(['lung_upper_lobe_right', 'lung_middle_lobe_right', 'lung_lower_lobe_right'].map(organValue));
  const left = new Set(['lung_upper_lobe_left', 'lung_lower_lobe_left'].map(organValue));
  const ml = (hu.spacing[0] * hu.spacing[1] * hu.spacing[2]) / 1000;
  const anteriorUp = hu.direction[4]! >= 0;
  for (const [side, lower, front] of [[right, 'lung_lower_lobe_right', 'lung_middle_lobe_right'], [left, 'lung_lower_lobe_left', 'lung_upper_lobe_left']] as const) {
    let n = 0, topHit = false, jlo = ny, jhi = -1;
    for (let p = 0; p < hu.data.length; p++) {
      if (!side.has(hu.data[p]!)) continue;
      n++;
      const k = Math.floor(p / nxy), j = Math.floor((p % nxy) / nx);
      if (up ? k >= nz - 2 : k <= 1) topHit = true;
      jlo = Math.min(jlo, j); jhi = Math.max(jhi, j);
    }
    if (!n || !topHit || n * ml >= 600) continue;
    const lo = organValue(lower), fr = organValue(front);
    // the anterior third of the lung's AP extent
    const cut = anteriorUp ? jhi - (jhi - jlo) / 3 : jlo + (jhi - jlo) / 3;
    for (let p = 0; p < hu.data.length; p++) {
      if (!side.has(hu.data[p]!)) continue;
      const j = Math.floor((p % nxy) / nx);
      hu.data[p] = (anteriorUp ? j > cut : j < cut) ? fr : lo;
    }
  }
}

/**
 * Lung lesions against the pleura are lung: a nodule or mass that touches the chest wall is not
 * enclosed, so hole filling leaves it tissue, and grounding, cut to its lobe, misses it. A closing
 * in each slice (lobe labels grown `mm`, then the lung mask shrunk back) takes in the tissue such a
 * lesion leaves in the lung's outline; the lobe is the one that grew into it.
 */
function closeLungs(hu: Volume<Uint8Array>, mm: number): void {
  const [nx, ny, nz] = hu.size;
  const nxy = nx * ny;
  const lobes = new Set(lungValues());
  const tissue = new Set(['soft_tissue', 'fat'].map(organValue));
  const r = Math.max(1, Math.round(mm / Math.min(hu.spacing[0], hu.spacing[1])));
  const grown = new Uint8Array(nxy), next = new Uint8Array(nxy), mask = new Uint8Array(nxy), tmp = new Uint8Array(nxy);
  for (let k = 0; k < nz; k++) {
    const base = k * nxy;
    let any = false;
    for (let q = 0; q < nxy; q++) { const v = hu.data[base + q]!; grown[q] = lobes.has(v) ? v : 0; if (grown[q]) any = true; }
    if (!any) continue;
    for (let it = 0; it < r; it++) {
      next.set(grown);
      for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
        const q = j * nx + i;
        if (grown[q]) continue;
        const v = (i > 0 && grown[q - 1]) || (i < nx - 1 && grown[q + 1]) || (j > 0 && grown[q - nx]) || (j < ny - 1 && grown[q + nx]) || 0;
        if (v) next[q] = v;
      }
      grown.set(next);
    }
    for (let q = 0; q < nxy; q++) mask[q] = grown[q] ? 1 : 0;
    for (let it = 0; it < r; it++) {
      tmp.set(mask);
      for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
        const q = j * nx + i;
        if (!tmp[q]) continue;
        if (i === 0 || i === nx - 1 || j === 0 || j === ny - 1 || !tmp[q - 1] || !tmp[q + 1] || !tmp[q - nx] || !tmp[q + nx]) mask[q] = 0;
      }
    }
    for (let q = 0; q < nxy; q++) if (mask[q] && tissue.has(hu.data[base + q]!)) hu.data[base + q] = grown[q]!;
  }
}

/** Keeps the largest 6-connected piece of each solid organ: a vote's stray islands are not organ. */
function largestPieces(lab: Volume<Uint8Array>): void {
  for (const name of ['liver', 'spleen', 'kidney_right', 'kidney_left', 'pancreas', 'gallbladder', 'stomach']) {
    const v = organValue(name);
    const m = Uint8Array.from(lab.data, (x) => (x === v ? 1 : 0));
    const cc = connectedComponents(m, lab.size);
    if (cc.sizes.length <= 2) continue;
    let best = 1;
    for (let c = 2; c < cc.sizes.length; c++) if (cc.sizes[c]! > cc.sizes[best]!) best = c;
    for (let p = 0; p < m.length; p++) if (m[p] && cc.labels[p] !== best) lab.data[p] = 0;
  }
}

/**
 * Organs estimated from the CT alone, for a CT that comes without TotalSegmentator's map: what HU
 * gives reliably (body outline, lungs, airway, bone, fat, soft tissue; fallback.ts), with the
 * organs of real atlases (data/anatomy/atlases) carried over by registration: each atlas placed by
 * anatomy (lung bases, spine, body outline; field of view matched), refined by elastix on a coarse
 * grid, the atlases' labels fused by vote, and each organ kept only where HU allows it (liver on
 * soft tissue, lobes on lung, ...).
 */
export async function estimateAnatomy(ct: Volume, opts: EstimateOptions = {}): Promise<Volume<Uint8Array>> {
  // A clinical CT (512² × 300: 78 M voxels) is estimated on a grid of at least WORK_MM and brought
  // back by nearest neighbour, fat and soft tissue re-split by each voxel's own HU: the connected
  // components of the HU map cost 15 s of CPU at full size, and organs at 1.5 mm are fine enough
  // for grounding, which runs on coarser crops.
  const WORK_MM = 1.5, WORK_VOXELS = 12e6;
  if (ct.size[0] * ct.size[1] * ct.size[2] > WORK_VOXELS && ct.spacing.some((v) => v < WORK_MM)) {
    const work = resample(ct, ct.spacing.map((v) => Math.max(v, WORK_MM)) as [number, number, number], 'linear');
    const est = await estimateAnatomy(work, opts);
    const up = resampleToGrid(est, ct, 'nearest', { fill: 0 });
    const soft = organValue('soft_tissue'), fat = organValue('fat');
    for (let p = 0; p < up.data.length; p++) {
      const v = up.data[p]!;
      if (v !== soft && v !== fat) continue;
      const h = ct.data[p]!;
      up.data[p] = h >= -190 && h <= -30 ? fat : soft;
    }
    return up;
  }
  const o = { registration: opts.registration ?? 'affine', mm: opts.mm ?? 6, gridMm: opts.gridMm ?? 40, iterations: opts.iterations ?? 100, zRange: opts.zRange ?? 150, fit: opts.fit ?? true } as const;
  const atlases = opts.atlases ?? await loadAtlases();
  const hu = fallbackAnatomy(ct);
  dropGasLungs(hu);
  baseLobes(hu);
  fillHoles(hu, new Set(lungValues()));
  closeLungs(hu, 10);
  if (!atlases.length) return hu;
  const target = resample(reorient(ct), o.mm, 'linear');
  const tfb = fallbackAnatomy(target);
  const votes: Volume<Uint8Array>[] = [];
  for (const a of atlases) {
    a.hu ??= fallbackAnatomy(a.ct);
    const afb = a.hu;
    const lab = await propagate(target, tfb, a, afb, o);
    if (lab) votes.push(lab);
  }
  if (!votes.length) return hu;
  // a vote per voxel among the atlases that say anything there
  const fused = new Uint8Array(target.data.length);
  const count = new Uint8Array(256);
  for (let p = 0; p < fused.length; p++) {
    let best = 0, bestN = 0;
    for (const v of votes) { const x = v.data[p]!; if (x) { count[x]!++; if (count[x]! > bestN) { best = x; bestN = count[x]!; } } }
    for (const v of votes) count[v.data[p]!] = 0;
    fused[p] = best;
  }
  const fusedVol: Volume<Uint8Array> = { ...target, data: fused };
  largestPieces(fusedVol);
  if (o.fit) {
    const thu = target.data instanceof Float32Array ? target.data : Float32Array.from(target.data);
    for (const name of ['liver', 'spleen']) fitToHu(fusedVol, thu, tfb, organValue(name), 2);
  }
  const onCt = resampleToGrid(fusedVol, ct, 'nearest', { fill: 0 }).data;
  const allowed = pasteRules();
  const out = hu.data;
  for (let p = 0; p < out.length; p++) {
    const a = onCt[p]!;
    if (a && allowed(a, out[p]!)) out[p] = a;
  }
  for (const name of ['liver', 'spleen', 'kidney_right', 'kidney_left']) fillHoles(hu, new Set([organValue(name)]));
  return hu;
}
