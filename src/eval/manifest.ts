import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileError, UserError } from '../common/index.ts';
import type { GroundingAnomaly, GroundingReport } from '../model/index.ts';
import type { Box } from './metrics.ts';

/**
 * The dataset manifest as the contract defines it (data/ writes it): one study per line of
 * `manifest.jsonl`, paths relative to the dataset folder. Read here with the checks evaluation and
 * training need, so a broken dataset fails with one line naming the file and the line.
 */
export interface ManifestAnomaly extends GroundingAnomaly {
  mask?: string;
  box?: Box;
  /** what the data engine knows of a generated lesion: its kind and the scheme organ it was put in */
  synth?: { kind: string; target: string };
}
export interface ManifestStudy { id: string; ct: string; labels: string; report: string; split: string; anomalies: ManifestAnomaly[]; background?: string }

export function readManifest(dir: string): ManifestStudy[] {
  const path = join(dir, 'manifest.jsonl');
  if (!existsSync(path)) throw fileError(path, 'no manifest.jsonl in the dataset folder (make one with `ctground synth`)');
  const studies: ManifestStudy[] = [];
  const lines = readFileSync(path, 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let s: ManifestStudy;
    try { s = JSON.parse(line) as ManifestStudy; } catch { throw fileError(path, `line ${i + 1} is not valid JSON`); }
    for (const k of ['id', 'ct', 'labels', 'report', 'split'] as const) {
      if (typeof s[k] !== 'string') throw fileError(path, `line ${i + 1}: missing "${k}"`);
    }
    if (!Array.isArray(s.anomalies)) throw fileError(path, `line ${i + 1}: missing "anomalies"`);
    studies.push(s);
  });
  if (studies.length === 0) throw fileError(path, 'the manifest lists no studies');
  return studies;
}

/** The studies of one split; 'all' takes every study (a dataset generated only for testing). */
export function splitOf(studies: ManifestStudy[], split: string, file = 'manifest.jsonl'): ManifestStudy[] {
  const chosen = split === 'all' ? studies : studies.filter((s) => s.split === split);
  if (chosen.length === 0) {
    const have = [...new Set(studies.map((s) => s.split))].join(', ');
    throw new UserError(`${file}: no studies in split '${split}' (have: ${have})`);
  }
  return chosen;
}

export function readReportText(dir: string, study: ManifestStudy): string {
  const path = join(dir, study.report);
  if (!existsSync(path)) throw fileError(path, `report of study ${study.id} not found`);
  return readFileSync(path, 'utf8');
}

/** The gold structured report of a study: its text and the manifest's anomalies. */
export function goldReport(dir: string, study: ManifestStudy): GroundingReport {
  return { text: readReportText(dir, study), anomalies: study.anomalies.map(({ id, organ, type, certainty, spans }) => ({ id, organ, type, certainty, spans })) };
}
