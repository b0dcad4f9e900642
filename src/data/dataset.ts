import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { UserError, writeFileAtomic } from '../common/index.ts';
import { writeNifti } from '../volume/index.ts';
import type { SynthStudy } from './synth.ts';
import type { Span } from './report.ts';

/** One anomaly line of the manifest (contract: data/ owns the format). */
export interface ManifestAnomaly {
  id: string;
  organ: string;
  type: string;
  certainty: 'present' | 'uncertain' | 'absent';
  spans: Span[];
  mask?: string;
  box?: [[number, number, number], [number, number, number]];
  /** generator facts (synthetic data only) */
  synth?: { kind: string; target: string; extentMm: number[]; lesionVoxels: number; organVoxels: number };
  /** where a real lesion came from (transplanted LIDC-IDRI nodules: patient, nodule, ratings) */
  source?: Record<string, unknown>;
}

export interface ManifestStudy {
  id: string;
  ct: string;
  labels: string;
  report: string;
  split: string;
  anomalies: ManifestAnomaly[];
  difficulty?: string;
  background?: string;
}

const round3 = (v: number): number => Math.round(v * 1000) / 1000;

/** Where study `id`'s files go inside a dataset folder (relative paths, as the manifest states them). */
export function studyPaths(id: string): { dir: string; ct: string; labels: string; report: string; record: string; mask: (aid: string) => string } {
  const dir = `studies/${id}`;
  return { dir, ct: `${dir}/ct.nii.gz`, labels: `${dir}/labels.nii.gz`, report: `${dir}/report.txt`, record: `${dir}/record.json`, mask: (aid) => `${dir}/${aid}.nii.gz` };
}

/**
 * Writes one study's files, its record last: a study whose record exists is complete, which is
 * what a resumed run checks.
 */
export async function writeStudy(root: string, s: SynthStudy, background: string): Promise<ManifestStudy> {
  const p = studyPaths(s.id);
  // A run killed mid-write leaves temporary files (writeFileAtomic's) behind; the study is redone.
  const dir = join(root, p.dir);
  if (existsSync(dir)) for (const f of readdirSync(dir)) if (f.startsWith('.') && f.endsWith('.tmp')) rmSync(join(dir, f), { force: true });
  await writeNifti(join(root, p.ct), s.ct);
  await writeNifti(join(root, p.labels), s.labels);
  writeFileAtomic(join(root, p.report), s.report);
  const anomalies: ManifestAnomaly[] = [];
  for (const a of s.anomalies) {
    const m: ManifestAnomaly = { id: a.id, organ: a.organ, type: a.type, certainty: a.certainty, spans: a.spans };
    if (a.mask) {
      m.mask = p.mask(a.id);
      await writeNifti(join(root, m.mask), a.mask);
    }
    if (a.box) m.box = [a.box[0].map(round3) as [number, number, number], a.box[1].map(round3) as [number, number, number]];
    if (a.kind) m.synth = { kind: a.kind, target: a.target!, extentMm: a.extentMm!.map(round3), lesionVoxels: a.lesionVoxels!, organVoxels: a.organVoxels! };
    if (a.source) m.source = a.source;
    anomalies.push(m);
  }
  const rec: ManifestStudy = { id: s.id, ct: p.ct, labels: p.labels, report: p.report, split: s.split, difficulty: s.difficulty, background, anomalies };
  writeFileAtomic(join(root, p.record), JSON.stringify(rec));
  return rec;
}

export function readRecord(root: string, id: string): ManifestStudy | null {
  const f = join(root, studyPaths(id).record);
  if (!existsSync(f)) return null;
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as ManifestStudy;
  } catch {
    return null; // a torn record means the study is redone
  }
}

/** Writes manifest.jsonl from the studies' records, in id order. */
export function writeManifest(root: string, records: ManifestStudy[]): void {
  writeFileAtomic(join(root, 'manifest.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

/**
 * The generation options of a dataset folder. A resumed run must use the same ones, or its
 * studies would silently mix two datasets.
 */
export function checkOrWriteOptions(root: string, opts: Record<string, unknown>): void {
  const f = join(root, 'synth.json');
  const text = JSON.stringify(opts, null, 1) + '\n';
  if (existsSync(f)) {
    let old: Record<string, unknown>;
    try { old = JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>; } catch { throw new UserError(`${f}: not valid JSON (delete the folder or pick another --out)`); }
    const diff = Object.keys(opts).filter((k) => k !== 'cases' && JSON.stringify(old[k]) !== JSON.stringify(opts[k]));
    if (diff.length) throw new UserError(`${f}: this folder was generated with other options (${diff.map((k) => `${k}=${JSON.stringify(old[k])}`).join(', ')}); use the same options to resume or another --out`);
  }
  writeFileAtomic(f, text);
}
