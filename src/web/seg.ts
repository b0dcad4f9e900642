import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadTaxonomy } from '../common/index.ts';
import { boxedVolume, readVolume, writeNifti, type Volume, type Vec3 } from '../volume/index.ts';
import { decodeSegmentation, segmentationOnGrid, organOfRegion, reviseSegmentation, type SegmentEdit } from '../dicom/index.ts';
import { summarizeMap, safeId } from '../pipeline/index.ts';
import type { DataFolder, StudyRecord } from './store.ts';

/** Where the viewer keeps a SEG's segments as NIfTI maps it can overlay (inside the data folder). */
const segMapDir = (rec: StudyRecord): string => `grounding/${safeId(rec.id)}/seg`;

/** The path of the study's DICOM SEG (its record's `seg`), or null when it names none or the file is gone. */
function segFile(data: DataFolder, rec: StudyRecord): string | null {
  if (typeof rec.seg !== 'string') return null;
  const p = data.inside(rec.seg);
  return existsSync(p) ? p : null;
}

/**
 * A study's DICOM SEG (its record's `seg`, as `label` writes it) as the findings the page lists:
 * one per segment, named by organ and type, described by the segment's description (the report's
 * phrase), each with a map on the study's CT grid. Maps are written once per SEG and reused.
 */
export async function segFindings(data: DataFolder, rec: StudyRecord): Promise<{ threshold: number; model: string; anomalies: Record<string, unknown>[] } | null> {
  const segPath = segFile(data, rec);
  if (!segPath) return null;
  const seg = decodeSegmentation(readFileSync(segPath));
  const ct: Volume = await readVolume(data.inside(rec.ct));
  const types = new Set(loadTaxonomy().anomalyTypes.map((t) => t.id));
  const dirRel = segMapDir(rec);
  const fresh = (p: string): boolean => existsSync(p) && statSync(p).mtimeMs >= statSync(segPath).mtimeMs;
  const anomalies: Record<string, unknown>[] = [];
  const placed = segmentationOnGrid(seg, ct);
  // a binary segment is the region itself; a fractional one is cut where the grounding would cut it
  const threshold = seg.type === 'BINARY' ? 0.5 : 0.1;
  for (const { segment, data: values } of placed) {
    const organ = organOfRegion(segment.region) ?? segment.region?.meaning.toLowerCase() ?? 'unknown';
    const uncertain = /\(uncertain\)\s*$/.test(segment.label);
    // the label leads with the organ's words ("liver cyst"); a region meaning is free text of whatever tool wrote the SEG, so it is matched as text, never as a pattern
    const words = organ.replace(/_/g, ' ');
    const bare = segment.label.replace(/\s*\(uncertain\)\s*$/, '');
    const rest = (bare.startsWith(words) && /^\s/.test(bare.slice(words.length)) ? bare.slice(words.length) : bare).trim().replace(/\s+/g, '_');
    const type = types.has(rest) ? rest : (segment.type?.meaning ?? rest).toLowerCase().replace(/\s+/g, '_');
    const id = segment.trackingId || `s${segment.number}`;
    const mapRel = `${dirRel}/${safeId(id)}.nii.gz`;
    const mapAbs = data.inside(mapRel);
    const vol: Volume<Float32Array> = { data: values, size: [...ct.size], spacing: [...ct.spacing], origin: [...ct.origin], direction: [...ct.direction] };
    if (!fresh(mapAbs)) await writeNifti(mapAbs, vol);
    const s = summarizeMap(boxedVolume(vol), threshold);
    anomalies.push({
      id, organ, type, certainty: uncertain ? 'uncertain' : 'present', spans: [], phrase: segment.description || segment.label,
      label: segment.number, map: mapRel, peak: s.peak, mean: s.mean, voxels: s.voxels, volumeMl: s.volumeMl,
      box: s.box, peakVoxel: s.peakVoxel, peakWorld: s.peakWorld, bestSlice: s.bestSlice, focusVoxel: s.focusVoxel, focusWorld: s.focusWorld,
      source: 'seg',
    });
  }
  return { threshold, model: `DICOM SEG ${join(String(rec.seg))}`, anomalies };
}

/**
 * The study's SEG as its review left it (the viewer writes the same SEG it reads): a rejected
 * finding's segment dropped, a redrawn one cut to the drawn box, accepted and unreviewed ones kept.
 * Null when the study has no SEG or no segment is left.
 */
export async function reviewedSeg(data: DataFolder, rec: StudyRecord): Promise<Buffer | null> {
  const segPath = segFile(data, rec);
  if (!segPath) return null;
  const edits = new Map<string, SegmentEdit>();
  for (const a of rec.anomalies ?? []) {
    const r = a.review;
    if (!r) continue;
    if (r.decision === 'rejected') edits.set(a.id, 'drop');
    else if (r.decision === 'redrawn' && r.voxelBox) edits.set(a.id, { min: [...r.voxelBox.min] as Vec3, max: [...r.voxelBox.max] as Vec3 });
  }
  const ct: Volume = await readVolume(data.inside(rec.ct));
  return reviseSegmentation(readFileSync(segPath), ct, edits);
}
