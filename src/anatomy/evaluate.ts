import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileError } from '../common/index.ts';
import { readVolume, resampleToGrid, type Volume } from '../volume/index.ts';
import { estimateAnatomy, loadAtlases, type EstimateOptions } from './estimate.ts';
import { organsForReportClass, organValue } from './scheme.ts';
import { totalSegmentatorLut } from './totalsegmentator.ts';

/** Organs the leave-one-patient-out evaluation scores (the lungs as one organ, all lobes together). */
export const EVAL_ORGANS = ['liver', 'spleen', 'kidney_right', 'kidney_left', 'pancreas', 'lungs'] as const;
export type EvalOrgan = typeof EVAL_ORGANS[number];

export interface EvalTarget {
  name: string;
  patient: string;
  /** per organ: Dice, or why there is none (`absent`: TotalSegmentator has no such voxel; `no atlas`: no other patient's atlas holds it) */
  dice: Record<EvalOrgan, number | 'absent' | 'no atlas'>;
  seconds: number;
  atlases: string[];
}

function isOrgan(o: EvalOrgan): (v: number) => boolean {
  if (o === 'lungs') { const s = new Set(organsForReportClass('lung', { primary: true })); return (v) => s.has(v); }
  const x = organValue(o);
  return (v) => v === x;
}

/**
 * Leave-one-patient-out Dice of the estimated organs against TotalSegmentator's masks, on the real
 * CTs the atlases were made from (`dir`: ../shared/data/totalsegmentator). Each target is estimated
 * with the atlases of the other patients only; the 30-slice slab is patient A's (example_ct's
 * slices 82–111), so it never has patient A's atlas either.
 */
export async function evaluateEstimate(dir: string, opts: EstimateOptions = {}, onTarget?: (t: EvalTarget) => void): Promise<EvalTarget[]> {
  if (!existsSync(join(dir, 'example_ct.nii.gz'))) throw fileError(dir, 'is not the TotalSegmentator test data folder (no example_ct.nii.gz)');
  const lut = totalSegmentatorLut('v2');
  const ts = (v: Volume): Uint8Array => Uint8Array.from(v.data, (x) => lut[x]!);
  // patient A, whole volume: the reference masks everywhere, the lungs only on the slab's slices
  const ctA = await readVolume(join(dir, 'example_ct.nii.gz'));
  const truthA = new Uint8Array(ctA.data.length);
  const slab = await readVolume(join(dir, 'example_seg.nii.gz'));
  const nxy = ctA.size[0] * ctA.size[1];
  const slabA = ts(slab);
  for (let p = 0; p < slabA.length; p++) if (isOrgan('lungs')(slabA[p]!)) truthA[p + 82 * nxy] = slabA[p]!;
  for (const o of ['liver', 'spleen', 'kidney_left', 'kidney_right', 'pancreas']) {
    const m = await readVolume(join(dir, 'example_ct_ref', `${o}.nii.gz`));
    for (let p = 0; p < m.data.length; p++) if (m.data[p]) truthA[p] = organValue(o);
  }
  // lungs are scored where A's truth knows them: the slab's slices
  const lungSlicesA = (p: number): boolean => p >= 82 * nxy;
  const dct = await readVolume(join(dir, 'example_ct_dicom'));
  const dseg = resampleToGrid(await readVolume(join(dir, 'example_seg_dicom.nii.gz')), dct, 'nearest');
  const targets: { name: string; patient: string; ct: Volume; truth: Uint8Array; within?: (p: number) => boolean }[] = [
    { name: 'example_ct (A, abdomen-pelvis, 112 sl.)', patient: 'A', ct: ctA, truth: truthA, within: lungSlicesA },
    { name: 'example_ct_sm (A, 30-slice slab)', patient: 'A', ct: await readVolume(join(dir, 'example_ct_sm.nii.gz')), truth: ts(slab) },
    { name: 'example_ct_dicom (B, upper abdomen, 20 sl.)', patient: 'B', ct: dct, truth: ts(dseg) },
  ];
  const all = opts.atlases ?? await loadAtlases();
  const out: EvalTarget[] = [];
  for (const t of targets) {
    const atlases = all.filter((a) => a.patient !== t.patient);
    const t0 = performance.now();
    const est = (await estimateAnatomy(t.ct, { ...opts, atlases })).data;
    const seconds = (performance.now() - t0) / 1000;
    const dice = {} as EvalTarget['dice'];
    for (const o of EVAL_ORGANS) {
      const is = isOrgan(o);
      let inter = 0, a = 0, b = 0;
      for (let p = 0; p < est.length; p++) {
        if (o === 'lungs' && t.within && !t.within(p)) continue;
        const x = is(est[p]!), y = is(t.truth[p]!);
        if (x) a++; if (y) b++; if (x && y) inter++;
      }
      const atlasHas = o === 'lungs' || atlases.some((at) => at.labels.data.some(is));
      dice[o] = !b ? 'absent' : !atlasHas ? 'no atlas' : (2 * inter) / (a + b);
    }
    const r = { name: t.name, patient: t.patient, dice, seconds, atlases: atlases.map((a) => a.id) };
    onTarget?.(r);
    out.push(r);
  }
  return out;
}
