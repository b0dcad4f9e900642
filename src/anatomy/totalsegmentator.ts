import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../common/index.ts';
import type { Volume } from '../volume/index.ts';
import { fallbackAnatomy } from './fallback.ts';
import { organValue } from './scheme.ts';

/** The two numberings of TotalSegmentator's `total` task: v1 (104 classes) and v2 (117). */
export type TotalSegmentatorVersion = 'v1' | 'v2';

interface Table { lut: Uint8Array; names: Map<number, string>; maxValue: number }
const tables = new Map<TotalSegmentatorVersion, Table>();

function table(version: TotalSegmentatorVersion): Table {
  const hit = tables.get(version);
  if (hit) return hit;
  const file = join(projectRoot, 'data', 'anatomy', `totalsegmentator_${version}.json`);
  const raw = JSON.parse(readFileSync(file, 'utf8')) as { labels: Record<string, { ts: string; organ: string | null }> };
  const lut = new Uint8Array(256);
  const names = new Map<number, string>();
  for (const [k, v] of Object.entries(raw.labels)) {
    names.set(Number(k), v.ts);
    if (v.organ) lut[Number(k)] = organValue(v.organ);
  }
  const t = { lut, names, maxValue: Math.max(...names.keys()) };
  tables.set(version, t);
  return t;
}

/** TotalSegmentator 'total' label value → our label value (0 for values we have no organ for). */
export function totalSegmentatorLut(version: TotalSegmentatorVersion = 'v2'): Uint8Array {
  return table(version).lut;
}

/**
 * TotalSegmentator structure name (the stem of a mask in its output folder, e.g. `liver`) → our
 * label value, over both numberings (0 for a structure we know but have no organ for, e.g. `face`).
 */
export function totalSegmentatorStructures(): Map<string, number> {
  const out = new Map<string, number>();
  for (const version of ['v2', 'v1'] as const) {
    const t = table(version);
    for (const [value, name] of t.names) if (!out.has(name)) out.set(name, t.lut[value]!);
  }
  return out;
}

// Structures whose HU tells the numbering apart: v1 and v2 put lungs, bones and solid organs on
// different values, so the CT says which table a multi-label file was written with.
const AIRLIKE = new Set(['lung_upper_lobe_left', 'lung_lower_lobe_left', 'lung_upper_lobe_right', 'lung_middle_lobe_right', 'lung_lower_lobe_right', 'trachea']);
const BONY = /^(vertebrae_|rib_|sacrum$|hip_|femur_|humerus_|scapula_|clavicula_|skull$|sternum$)/;

/**
 * Which numbering a multi-label `total` map was written with. A value above v1's 104 means v2;
 * otherwise each table is scored by how many labelled CT voxels agree with what its structure is
 * (lungs and trachea below −400 HU, bones above 100 HU, everything else between −200 and 400 HU),
 * and v2 wins ties (it is what TotalSegmentator writes today).
 */
export function detectTotalSegmentatorVersion(labels: Volume, ct: Volume): TotalSegmentatorVersion {
  let max = 0;
  for (let p = 0; p < labels.data.length; p++) if (labels.data[p]! > max) max = labels.data[p]!;
  if (max > table('v1').maxValue) return 'v2';
  const score = (version: TotalSegmentatorVersion): number => {
    const names = table(version).names;
    const kind = new Int8Array(256); // 1 air-like, 2 bone, 3 soft
    for (const [v, n] of names) kind[v] = AIRLIKE.has(n) ? 1 : BONY.test(n) ? 2 : 3;
    let agree = 0;
    // every 7th voxel is plenty to tell two tables apart and keeps this cheap on 512² CTs
    for (let p = 0; p < labels.data.length; p += 7) {
      const v = labels.data[p]!;
      if (!v || v > 255) continue;
      const hu = ct.data[p]!, k = kind[v]!;
      if ((k === 1 && hu < -400) || (k === 2 && hu > 100) || (k === 3 && hu > -200 && hu < 400)) agree++;
    }
    return agree;
  };
  return score('v1') > score('v2') ? 'v1' : 'v2';
}

/**
 * Converts a TotalSegmentator 'total' label map to our scheme. TotalSegmentator does not label
 * body, fat or plain soft tissue; give the CT (on the same grid) and those voxels are filled from
 * the HU fallback, so the model sees a complete label image as it does on phantoms.
 */
export function fromTotalSegmentator(labelVol: Volume, ct?: Volume, version: TotalSegmentatorVersion = 'v2'): Volume<Uint8Array> {
  const map = totalSegmentatorLut(version);
  const src = labelVol.data;
  const out = new Uint8Array(src.length);
  for (let p = 0; p < src.length; p++) {
    const v = src[p]!;
    out[p] = v > 0 && v < 256 && Number.isInteger(v) ? map[v]! : 0;
  }
  if (ct) {
    if (ct.data.length !== src.length) throw new Error('fromTotalSegmentator: CT and label map are on different grids');
    const fb = fallbackAnatomy(ct).data;
    for (let p = 0; p < out.length; p++) if (!out[p]) out[p] = fb[p]!;
  }
  return { data: out, size: [...labelVol.size], spacing: [...labelVol.spacing], origin: [...labelVol.origin], direction: [...labelVol.direction] };
}
