import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileError } from '../common/index.ts';
import { readVolume, resampleToGrid, voxelBoxToWorld, type Geometry, type Volume, type WorldBox } from '../volume/index.ts';
import { estimateAnatomy } from './estimate.ts';
import { fallbackAnatomy } from './fallback.ts';
import { loadOrganScheme, organsForReportClass, organValue } from './scheme.ts';
import { detectTotalSegmentatorVersion, totalSegmentatorLut, totalSegmentatorStructures, type TotalSegmentatorVersion } from './totalsegmentator.ts';

/**
 * Where an organ map came from: TotalSegmentator's output (completed by the estimate where it says
 * nothing), a map already in our scheme (a dataset's labels), or estimated from the CT alone.
 */
export type OrganMapSource = 'totalsegmentator' | 'ctground' | 'estimated';
/** Where one organ (or one finding's organ) came from. */
export type OrganOrigin = 'given' | 'estimated';

export interface OrganMap {
  /** the organ label map in our scheme, on the CT's grid */
  labels: Volume<Uint8Array>;
  source: OrganMapSource;
  /** organs (scheme names) the given map holds, in scheme order */
  given: string[];
  /** organs taken from the estimate, in scheme order */
  estimated: string[];
  /** how the given map was read, for messages: "v2 multi-label", "folder, 12 masks", "resampled from 3×3×3 mm" */
  notes: string[];
  /** the labels are the given file's voxels unchanged (a map in our scheme on the CT's grid) */
  asGiven: boolean;
}

export interface OrganMapOptions {
  /** TotalSegmentator's `total` file, its folder of per-structure masks, or a map in our scheme */
  labels?: string;
  /** what `labels` holds; 'auto' (default) takes values above our scheme's largest as TotalSegmentator's */
  scheme?: 'auto' | 'totalsegmentator' | 'ctground';
  /** the TotalSegmentator numbering; default: detected from the values and the CT */
  version?: TotalSegmentatorVersion;
}

const MASK_EXT = /\.(nii\.gz|nii|nrrd|nhdr|mha|mhd)$/i;

/** The world box a grid's voxels fill (centres ± half a voxel along each index axis). */
const voxelExtent = (g: Geometry): WorldBox => voxelBoxToWorld(g, { min: [-0.5, -0.5, -0.5], max: [g.size[0] - 0.5, g.size[1] - 0.5, g.size[2] - 0.5] });

const fmtBox = (b: WorldBox): string => `(${b[0].map((v) => v.toFixed(0)).join(', ')})..(${b[1].map((v) => v.toFixed(0)).join(', ')}) mm`;

function sameGridLoose(a: Geometry, b: Geometry): boolean {
  for (let d = 0; d < 3; d++) {
    if (a.size[d] !== b.size[d]) return false;
    if (Math.abs(a.spacing[d]! - b.spacing[d]!) > 1e-3 * Math.max(1, Math.abs(a.spacing[d]!))) return false;
    if (Math.abs(a.origin[d]! - b.origin[d]!) > 1e-2) return false;
  }
  for (let d = 0; d < 9; d++) if (Math.abs(a.direction[d]! - b.direction[d]!) > 1e-4) return false;
  return true;
}

/**
 * Brings a label map onto the CT's grid by world coordinates (nearest), with the CT voxels it covers.
 * The map may be another grid of the same scan (TotalSegmentator's `--fast` 3 mm output, a map of a
 * cropped CT, rows stored in another order); a map whose world box misses the CT's is of another
 * scan and refused.
 */
function ontoCt(map: Volume, ct: Volume, file: string, notes: string[]): { map: Volume; covered: Uint8Array | null } {
  if (sameGridLoose(ct, map)) return { map: { ...map, size: [...ct.size], spacing: [...ct.spacing], origin: [...ct.origin], direction: [...ct.direction] }, covered: null };
  const a = voxelExtent(ct), b = voxelExtent(map);
  for (let d = 0; d < 3; d++) {
    if (a[1][d]! <= b[0][d]! || b[1][d]! <= a[0][d]!) throw fileError(file, `label map's world box ${fmtBox(b)} misses the CT's ${fmtBox(a)}: a map of another scan?`);
  }
  const ones: Volume<Uint8Array> = { ...map, data: new Uint8Array(map.data.length).fill(1) };
  const covered = resampleToGrid(ones, ct, 'nearest', { fill: 0 }).data;
  let n = 0;
  for (let p = 0; p < covered.length; p++) n += covered[p]!;
  notes.push(`resampled onto the CT from ${map.size.join('×')} at ${map.spacing.map((v) => +v.toFixed(2)).join('×')} mm (${((100 * n) / covered.length).toFixed(0)} % of the CT covered)`);
  return { map: resampleToGrid(map, ct, 'nearest', { fill: 0 }), covered: n === covered.length ? null : covered };
}

/** TotalSegmentator's output folder: one binary mask per structure, any subset; others ignored. */
async function readMaskFolder(dir: string, notes: string[]): Promise<Volume<Uint8Array>> {
  const structures = totalSegmentatorStructures();
  // v2 label order, so an overlap (there should be none) resolves as in the multi-label file
  const order = new Map<string, number>();
  for (const [name] of structures) order.set(name, order.size);
  const files = readdirSync(dir).filter((f) => MASK_EXT.test(f) && !f.startsWith('.'))
    .map((f) => ({ file: f, name: f.replace(MASK_EXT, '') }))
    .filter((f) => structures.get(f.name))
    .sort((x, y) => order.get(x.name)! - order.get(y.name)!);
  if (!files.length) throw fileError(dir, 'no structure ctground has an organ for (expected TotalSegmentator masks such as liver.nii.gz, spleen.nii.gz)');
  let out: Volume<Uint8Array> | undefined;
  for (const f of files) {
    const path = join(dir, f.file);
    let m = await readVolume(path);
    if (out && !sameGridLoose(out, m)) m = resampleToGrid(m, out, 'nearest', { fill: 0 });
    out ??= { data: new Uint8Array(m.data.length), size: [...m.size], spacing: [...m.spacing], origin: [...m.origin], direction: [...m.direction] };
    const value = structures.get(f.name)!;
    const src = m.data, dst = out.data;
    for (let p = 0; p < dst.length; p++) if (src[p]! > 0) dst[p] = value;
  }
  notes.push(`folder of ${files.length} TotalSegmentator mask(s)`);
  return out!;
}

/** Organ names holding any voxel, in scheme order. */
function organsIn(data: Uint8Array): Set<number> {
  const seen = new Uint8Array(256);
  for (let p = 0; p < data.length; p++) seen[data[p]!] = 1;
  const out = new Set<number>();
  for (let v = 1; v < 256; v++) if (seen[v]) out.add(v);
  return out;
}

// Tissue classes an HU threshold labels everywhere; no map "gives" them, so they never count.
const TISSUE = new Set(['soft_tissue', 'fat', 'muscle']);

/**
 * The organ map `ground`, `label` and `ctground anatomy` use for a CT: TotalSegmentator's output
 * as it comes (the multi-label `total` file in either numbering, or its folder of per-structure
 * masks, on the CT's grid or another grid of the same scan), a map already in our scheme, or, with
 * no map, organs estimated from the CT. Organs a TotalSegmentator map does not hold, and every voxel
 * it does not cover, come from the estimate, so a partial map is completed, not taken as empty.
 */
export async function organMapFor(ct: Volume, opts: OrganMapOptions = {}): Promise<OrganMap> {
  const scheme = loadOrganScheme();
  const notes: string[] = [];
  const names = (vals: Iterable<number>): string[] => [...vals].sort((a, b) => a - b).map((v) => scheme.byValue.get(v)?.name).filter((n): n is string => !!n && !TISSUE.has(n));
  if (!opts.labels) {
    const labels = await estimateAnatomy(ct);
    return { labels, source: 'estimated', given: [], estimated: names(organsIn(labels.data)), notes, asGiven: false };
  }
  const path = opts.labels;
  if (!existsSync(path)) throw fileError(path, 'not found');
  const isDir = statSync(path).isDirectory();
  let raw: Volume;
  let ts: boolean;
  if (isDir && !existsSync(join(path, 'DICOMDIR')) && readdirSync(path).some((f) => MASK_EXT.test(f))) {
    if (opts.scheme === 'ctground') throw fileError(path, 'a folder of masks is TotalSegmentator output, not a map in ctground\'s scheme');
    raw = await readMaskFolder(path, notes);
    ts = true;
  } else {
    raw = await readVolume(path);
    let max = 0;
    for (let p = 0; p < raw.data.length; p++) if (raw.data[p]! > max) max = raw.data[p]!;
    ts = opts.scheme === 'totalsegmentator' || (opts.scheme !== 'ctground' && max > scheme.maxValue);
    if (!ts && max > scheme.maxValue) throw fileError(path, `label value ${max} is outside ctground's organ scheme (a TotalSegmentator map?)`);
  }
  const { map, covered } = ontoCt(raw, ct, path, notes);
  if (!ts || isDir) {
    // already our values (a scheme map, or the folder's masks written as our values)
    const labels: Volume<Uint8Array> = { ...map, data: map.data instanceof Uint8Array ? map.data : Uint8Array.from(map.data) };
    if (!ts) return { labels, source: 'ctground', given: names(organsIn(labels.data)), estimated: [], notes, asGiven: !notes.length };
    return complete(labels, covered, ct, notes, names, true);
  }
  const version = opts.version ?? detectTotalSegmentatorVersion(map, ct);
  notes.unshift(`TotalSegmentator ${version} multi-label map`);
  const lut = totalSegmentatorLut(version);
  const data = new Uint8Array(map.data.length);
  for (let p = 0; p < data.length; p++) {
    const v = map.data[p]!;
    data[p] = v > 0 && v < 256 && Number.isInteger(v) ? lut[v]! : 0;
  }
  // a whole `total` map has labelled every structure it found; only a partial one needs the atlases
  return complete({ ...map, data }, covered, ct, notes, names, covered !== null);
}

/**
 * A TotalSegmentator map completed: where it covers the CT and labels nothing, an estimated organ
 * it does not hold fills in, else the HU tissue class (TotalSegmentator labels no fat or soft
 * tissue); where it does not cover the CT at all, the estimate is taken whole. `atlases`: estimate
 * organs by atlas registration too (a subset of masks, a map of part of the scan), or HU alone (a
 * whole multi-label map, whose missing organs are not in the scan).
 */
async function complete(given: Volume<Uint8Array>, covered: Uint8Array | null, ct: Volume, notes: string[], names: (v: Iterable<number>) => string[], atlases: boolean): Promise<OrganMap> {
  const givenOrgans = organsIn(given.data);
  const est = (await estimateAnatomy(ct, atlases ? {} : { atlases: [] })).data;
  const hu = fallbackAnatomy(ct).data;
  const soft = organValue('soft_tissue');
  const out = given.data;
  const fromEstimate = new Set<number>();
  for (let p = 0; p < out.length; p++) {
    if (out[p]) continue;
    const e = est[p]!;
    if (covered && !covered[p]) { out[p] = e; if (e) fromEstimate.add(e); continue; }
    if (e && !givenOrgans.has(e)) { out[p] = e; fromEstimate.add(e); continue; }
    // a given organ's estimate outside the given organ is whatever tissue HU says (never the organ)
    const h = hu[p]!;
    out[p] = h && givenOrgans.has(h) ? soft : h;
  }
  const givenNames = names(givenOrgans);
  return { labels: given, source: 'totalsegmentator', given: givenNames, estimated: names(fromEstimate).filter((n) => !givenNames.includes(n)), notes, asGiven: false };
}

/**
 * Where a finding's organ comes from: `given` when the map holds an organ of its report class
 * (liver for a liver finding, any lobe for a lung finding), else `estimated`.
 */
export function organOriginOf(reportClass: string, m: Pick<OrganMap, 'source' | 'given'>): OrganOrigin {
  if (m.source === 'ctground') return 'given';
  const scheme = loadOrganScheme();
  const given = new Set(m.given);
  return organsForReportClass(reportClass, { primary: true }).some((v) => given.has(scheme.byValue.get(v)!.name)) ? 'given' : 'estimated';
}

/** Volume in ml of each organ of a label map, in scheme order (organs with no voxel left out). */
export function organVolumes(labels: Volume): { organ: string; value: number; ml: number }[] {
  const counts = new Float64Array(256);
  for (let p = 0; p < labels.data.length; p++) counts[labels.data[p]!]! += 1;
  const ml = (labels.spacing[0] * labels.spacing[1] * labels.spacing[2]) / 1000;
  return loadOrganScheme().organs.filter((o) => counts[o.value]! > 0).map((o) => ({ organ: o.name, value: o.value, ml: Math.round(counts[o.value]! * ml * 10) / 10 }));
}
