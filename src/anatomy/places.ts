import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../common/index.ts';
import { loadOrganScheme } from './scheme.ts';

/** Per axis, the [lo, hi] fraction of an organ's world box (x: 1 = patient right, y: 1 = anterior, z: 1 = superior); an absent axis is unconstrained. */
export type PlaceRegion = Partial<Record<'x' | 'y' | 'z', [number, number]>>;

interface PlaceEntry { organs: string[]; words: string[]; region: PlaceRegion }
export interface PlaceTable { marginFraction: number; places: PlaceEntry[] }

let cached: PlaceTable | undefined;

/** data/anatomy/places.json, validated once (unknown organ, bad fraction, upper-case word: a loud error). */
export function loadPlaces(): PlaceTable {
  if (cached) return cached;
  const file = join(projectRoot, 'data', 'anatomy', 'places.json');
  const raw = JSON.parse(readFileSync(file, 'utf8')) as PlaceTable;
  const scheme = loadOrganScheme();
  if (!(raw.marginFraction > 0 && raw.marginFraction < 1)) throw new Error(`${file}: marginFraction must be in (0, 1)`);
  for (const p of raw.places) {
    for (const o of p.organs) if (!scheme.byName.has(o)) throw new Error(`${file}: place '${p.words[0]}' names unknown organ '${o}'`);
    if (!p.words.length || p.words.some((w) => w !== normalizeWords(w))) throw new Error(`${file}: place words must be lower-case words separated by single spaces (${p.words.join(', ')})`);
    for (const [axis, r] of Object.entries(p.region)) {
      if (!['x', 'y', 'z'].includes(axis) || !Array.isArray(r) || !(r[0] >= 0 && r[0] < r[1] && r[1] <= 1)) throw new Error(`${file}: place '${p.words[0]}' has a bad ${axis} range`);
    }
  }
  cached = raw;
  return cached;
}

function normalizeWords(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim();
}

/**
 * The part of an organ's box that place words name: the intersection of every entry that lists the
 * organ and one of whose words the text holds as whole words. Null when no entry applies, or when
 * they contradict each other.
 */
export function placeRegion(organ: string, text: string): PlaceRegion | null {
  const padded = ` ${normalizeWords(text)} `;
  let region: PlaceRegion | null = null;
  for (const p of loadPlaces().places) {
    if (!p.organs.includes(organ) || !p.words.some((w) => padded.includes(` ${w} `))) continue;
    const next: PlaceRegion = { ...(region ?? {}) };
    for (const axis of ['x', 'y', 'z'] as const) {
      const r = p.region[axis];
      if (!r) continue;
      const lo = Math.max(r[0], next[axis]?.[0] ?? 0), hi = Math.min(r[1], next[axis]?.[1] ?? 1);
      if (lo >= hi) return null;
      next[axis] = [lo, hi];
    }
    region = next;
  }
  return region;
}

/**
 * Place words resolved on the anatomy itself, not on fractions of an organ's box. Which label map
 * a study carries decides what can be resolved: ctground's scheme has the lobes and each kidney;
 * TotalSegmentator's `total` map also has the gallbladder, the inferior vena cava, each vertebra
 * and each rib.
 */
export type PlaceScheme = 'ctground' | 'totalsegmentator';

/** A named part of an organ on a label map's grid, and the rule that found it. */
export interface AnatomyPart { mask: Uint8Array; rule: string }

let tsByName: Map<string, number> | undefined;
function tsValue(name: string): number {
  if (!tsByName) {
    const raw = JSON.parse(readFileSync(join(projectRoot, 'data', 'anatomy', 'totalsegmentator_v2.json'), 'utf8')) as { labels: Record<string, { ts: string }> };
    tsByName = new Map(Object.entries(raw.labels).map(([k, v]) => [v.ts, Number(k)]));
  }
  const v = tsByName.get(name);
  if (v === undefined) throw new Error(`totalsegmentator_v2.json: no label '${name}'`);
  return v;
}

interface Grid { data: ArrayLike<number>; size: readonly number[]; spacing: readonly number[]; origin: readonly number[]; direction: readonly number[] }

function worldOf(g: Grid, p: number): [number, number, number] {
  const nx = g.size[0]!, ny = g.size[1]!;
  const i = p % nx, j = Math.floor(p / nx) % ny, k = Math.floor(p / (nx * ny));
  const d = g.direction, s = g.spacing, o = g.origin;
  return [0, 1, 2].map((r) => o[r]! + d[r * 3]! * s[0]! * i + d[r * 3 + 1]! * s[1]! * j + d[r * 3 + 2]! * s[2]! * k) as [number, number, number];
}

function voxelsOf(g: Grid, values: readonly number[]): number[] {
  const set = new Set(values), out: number[] = [];
  for (let p = 0; p < g.data.length; p++) if (set.has(g.data[p]!)) out.push(p);
  return out;
}

function centroidOf(g: Grid, vox: readonly number[]): [number, number, number] {
  const c = [0, 0, 0];
  for (const p of vox) { const w = worldOf(g, p); c[0] += w[0]; c[1] += w[1]; c[2] += w[2]; }
  return c.map((v) => v / vox.length) as [number, number, number];
}

/** The principal axis (unit, world) of a voxel set: power iteration on its covariance. */
export function principalAxis(g: Grid, vox: readonly number[]): { centre: [number, number, number]; axis: [number, number, number] } {
  const c = centroidOf(g, vox);
  const m = [0, 0, 0, 0, 0, 0, 0, 0, 0];
  for (const p of vox) {
    const w = worldOf(g, p), d = [w[0] - c[0], w[1] - c[1], w[2] - c[2]];
    for (let r = 0; r < 3; r++) for (let s = 0; s < 3; s++) m[r * 3 + s]! += d[r]! * d[s]!;
  }
  let v = [0.1, 0.2, 1];
  for (let it = 0; it < 100; it++) {
    const n = [0, 1, 2].map((r) => m[r * 3]! * v[0]! + m[r * 3 + 1]! * v[1]! + m[r * 3 + 2]! * v[2]!);
    const len = Math.hypot(...n) || 1;
    v = n.map((x) => x / len);
  }
  return { centre: c, axis: v as [number, number, number] };
}

const ORGAN_VALUES: Record<PlaceScheme, (name: string) => number[]> = {
  ctground: (name) => { const o = loadOrganScheme().byName.get(name); return o ? [o.value] : []; },
  totalsegmentator: (name) => {
    const ts: Record<string, string[]> = {
      kidney_right: ['kidney_right'], kidney_left: ['kidney_left'], liver: ['liver'],
      lung_upper_lobe_right: ['lung_upper_lobe_right'], lung_middle_lobe_right: ['lung_middle_lobe_right'], lung_lower_lobe_right: ['lung_lower_lobe_right'],
      lung_upper_lobe_left: ['lung_upper_lobe_left'], lung_lower_lobe_left: ['lung_lower_lobe_left'],
    };
    return (ts[name] ?? []).map(tsValue);
  },
};

const ORD_RE = /\b(right|left)\s+(\d{1,2})(?:st|nd|rd|th)?\s+ribs?\b/;
const LEVEL_RE = /\b([ctls])\s?(\d{1,2})\b/;

/**
 * The part of `organ` (our scheme's name, or 'spine' / 'ribs') that the place words of `text` name,
 * found on the label map `labels` (in `scheme`): kidney poles as thirds along the kidney's own long
 * axis (its principal axis, oriented upwards: a kidney lies oblique, so the box's z-thirds cut a
 * pole across); the right and left hepatic lobe by Cantlie's plane through the gallbladder's centre
 * (the fossa) and the inferior vena cava's centre where the liver is, containing the body's long
 * axis; a lung lobe as the map's lobe; a vertebral level or a numbered rib as that bone's label.
 * Null when the words name no such part or the map lacks what the rule needs.
 */
export function resolvePlace(organ: string, text: string, labels: Grid, scheme: PlaceScheme): AnatomyPart | null {
  const words = ` ${normalizeWords(text)} `;
  const mask = new Uint8Array(labels.data.length);
  if (organ === 'kidney_right' || organ === 'kidney_left') {
    const part = words.includes(' upper pole ') ? 2 : words.includes(' lower pole ') ? 0 : words.includes(' middle part ') || words.includes(' interpolar ') ? 1 : -1;
    if (part < 0) return null;
    const vox = voxelsOf(labels, ORGAN_VALUES[scheme](organ));
    if (vox.length < 10) return null;
    const { centre, axis } = principalAxis(labels, vox);
    const up = axis[2] < 0 ? axis.map((v) => -v) : axis;
    const t = vox.map((p) => { const w = worldOf(labels, p); return (w[0] - centre[0]) * up[0]! + (w[1] - centre[1]) * up[1]! + (w[2] - centre[2]) * up[2]!; });
    const lo = Math.min(...t), hi = Math.max(...t), third = (hi - lo) / 3;
    vox.forEach((p, n) => { const f = Math.min(2, Math.floor((t[n]! - lo) / third)); if (f === part) mask[p] = 1; });
    return { mask, rule: 'kidney thirds along its principal axis' };
  }
  if (organ === 'liver') {
    const right = words.includes(' right lobe '), left = words.includes(' left lobe ');
    if (right === left || scheme !== 'totalsegmentator') return null;
    const liver = voxelsOf(labels, [tsValue('liver')]), gb = voxelsOf(labels, [tsValue('gallbladder')]), ivcAll = voxelsOf(labels, [tsValue('inferior_vena_cava')]);
    if (liver.length < 10 || gb.length < 3 || ivcAll.length < 3) return null;
    // the IVC where it runs beside the liver (its intrahepatic part), not its infrarenal course
    const zs = liver.map((p) => worldOf(labels, p)[2]);
    const z0 = Math.min(...zs), z1 = Math.max(...zs);
    const ivc = ivcAll.filter((p) => { const z = worldOf(labels, p)[2]; return z >= z0 && z <= z1; });
    if (ivc.length < 3) return null;
    const g = centroidOf(labels, gb), v = centroidOf(labels, ivc);
    // normal of the plane through g and v that contains the z axis: (v − g) × ez, pointing to the patient's right (+x in RAS)
    let n = [v[1] - g[1], -(v[0] - g[0]), 0];
    const len = Math.hypot(n[0]!, n[1]!);
    if (len < 1e-6) return null;
    n = n.map((x) => x / len);
    if (n[0]! < 0) n = n.map((x) => -x);
    for (const p of liver) {
      const w = worldOf(labels, p);
      const s = (w[0] - g[0]) * n[0]! + (w[1] - g[1]) * n[1]!;
      if ((s > 0) === right) mask[p] = 1;
    }
    return { mask, rule: "Cantlie's plane through the gallbladder and the inferior vena cava" };
  }
  if (organ.startsWith('lung_')) {
    const o = loadOrganScheme().byName.get(organ);
    if (!o?.lobe || !o.side) return null;
    if (!words.includes(` ${o.side} ${o.lobe} lobe `) && !(words.includes(` ${o.lobe} lobe `) && words.includes(` ${o.side} `))) return null;
    for (const p of voxelsOf(labels, ORGAN_VALUES[scheme](organ))) mask[p] = 1;
    return { mask, rule: 'the lobe of the label map' };
  }
  if (scheme !== 'totalsegmentator') return null;
  if (organ === 'spine') {
    const m = LEVEL_RE.exec(words);
    return m ? boneOfMap(labels, `vertebrae_${m[1]!.toUpperCase()}${Number(m[2])}`, mask) : null;
  }
  if (organ === 'ribs') {
    const m = ORD_RE.exec(words);
    return m ? boneOfMap(labels, `rib_${m[1]}_${Number(m[2])}`, mask) : null;
  }
  return null;
}

/** TotalSegmentator's label `name` (a vertebra or a rib) marked in `mask`; null when the scheme has no such label or the map no voxel of it. */
function boneOfMap(labels: Grid, name: string, mask: Uint8Array): AnatomyPart | null {
  let value: number;
  try { value = tsValue(name); } catch { return null; }
  const vox = voxelsOf(labels, [value]);
  if (!vox.length) return null;
  for (const p of vox) mask[p] = 1;
  return { mask, rule: `the map's ${name}` };
}
