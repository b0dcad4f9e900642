import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot, writeFileAtomic } from '../common/index.ts';
import { boxedAt } from '../volume/index.ts';
import { readSourceSeries, encodeSegmentation, type SegmentInput } from '../dicom/index.ts';
import { labelMapOf } from './findings.ts';
import type { GroundingResult } from './study.ts';

export const SEG_FILE = 'findings.seg.dcm';

let version: string | undefined;
function softwareVersion(): string {
  version ??= (JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version;
  return `ctground ${version}`;
}

export interface SegWritten { file: string; segments: number; frames: number; sopInstanceUid: string; studyInstanceUid: string; seriesInstanceUid: string; derived: string[] }

/**
 * Writes the findings of a study grounded on a DICOM series as a DICOM Segmentation on that series:
 * one segment per finding present or uncertain. Binary segments are labels.nii.gz's regions (the
 * same highest-wins label map, so the two never disagree); fractional ones the maps' probabilities.
 * Null when no finding is present or uncertain (a SEG needs at least one segment).
 */
export function writeFindingsSeg(file: string, r: GroundingResult, ctDir: string, opts: { fractional?: boolean; series?: string } = {}): SegWritten | null {
  const shown = r.findings.filter((f) => f.certainty !== 'absent');
  if (!shown.length) return null;
  const src = readSourceSeries(ctDir, opts.series);
  const grid = r.ct;
  const [nx, ny] = grid.size;
  const labels = opts.fractional ? null : labelMapOf(r.findings.map((f) => (f.certainty === 'absent' ? null : r.maps.get(f.id)!)), r.threshold, r.ct).data;
  const segments: SegmentInput[] = shown.map((f) => {
    const map = r.maps.get(f.id)!;
    return {
      label: `${f.organ.replace(/_/g, ' ')} ${f.type.replace(/_/g, ' ')}${f.certainty === 'uncertain' ? ' (uncertain)' : ''}`,
      description: f.phrase,
      organ: f.organ, type: f.type, trackingId: f.id,
      value: labels ? (i, j, k) => (labels[i + nx * (j + ny * k)] === f.label ? 1 : 0) : (i, j, k) => boxedAt(map, i, j, k),
      box: labels ? f.box?.voxel ?? null : map.box,
    };
  });
  const enc = encodeSegmentation(src, grid, segments, {
    fractional: opts.fractional, algorithm: { name: `ctground ${r.model}`, version: softwareVersion() },
  });
  writeFileAtomic(file, enc.bytes);
  return { file, segments: segments.length, frames: enc.frames, sopInstanceUid: enc.sopInstanceUid, studyInstanceUid: enc.studyInstanceUid, seriesInstanceUid: enc.seriesInstanceUid, derived: src.derived };
}
