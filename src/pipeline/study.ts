import { join } from 'node:path';
import { UserError, writeFileAtomic } from '../common/index.ts';
import { readVolume, writeNifti, quantizedProbabilities, PROBABILITY_SLOPE, type Geometry, type Volume } from '../volume/index.ts';
import { organMapFor, organOriginOf, type OrganMap, type OrganOrigin } from '../anatomy/index.ts';
import { checkReportText, structureReport, type StructuredReport } from '../report/index.ts';
import type { GroundingMap, GroundingModel } from '../model/index.ts';
import { summarizeMap, labelMapOf, type MapSummary, type FindingBox } from './findings.ts';
import { renderOverview } from './overview.ts';

/**
 * Where the organ label map came from: TotalSegmentator's output (completed by the estimate where it
 * says nothing), a map already in our scheme, or organs estimated from the CT alone.
 */
export type AnatomySource = 'totalsegmentator' | 'given' | 'estimated';

export interface Span { start: number; end: number; text: string; class: string }

/** One grounded anomaly, as written to findings.json. */
export interface Finding {
  id: string;
  organ: string;
  type: string;
  certainty: string;
  spans: Span[];
  /** the anomaly's phrases in report order, joined: what a reader recognises */
  phrase: string;
  /** value of this anomaly in labels.nii.gz */
  label: number;
  /** `maps/<id>.nii.gz`, relative to findings.json */
  map: string;
  peak: number;
  mean: number;
  voxels: number;
  volumeMl: number;
  box: FindingBox | null;
  peakVoxel: MapSummary['peakVoxel'];
  peakWorld: MapSummary['peakWorld'];
  bestSlice: MapSummary['bestSlice'];
  focusVoxel: MapSummary['focusVoxel'];
  focusWorld: MapSummary['focusWorld'];
  /** whether the organ map this finding was grounded in came from the given map or the estimate */
  organSource: OrganOrigin;
}

/** The parts of a finding that say where it is: a negated finding has none. */
type LocationKeys = 'map' | 'box' | 'peak' | 'mean' | 'voxels' | 'volumeMl' | 'peakVoxel' | 'peakWorld' | 'bestSlice' | 'focusVoxel' | 'focusWorld';

/**
 * A negated finding ("no ascites") as findings.json keeps it: what the report says, with its
 * certainty, and no location: the network grounds it with the others, but a map of what is not there
 * is no region (written only with --keep-negated-maps, then as a Finding).
 */
export type NegatedFinding = Omit<Finding, LocationKeys> & { map: null; box: null };

/** Seconds spent in each stage of one study; the label benchmark sums these. */
export interface StageTimes { io: number; anatomy: number; structuring: number; network: number; outputs: number }

export interface GroundingResult {
  ct: Volume;
  anatomy: Volume;
  anatomySource: AnatomySource;
  /** which organs the given map held and which were estimated, and how the map was read */
  organs: Pick<OrganMap, 'given' | 'estimated' | 'notes' | 'asGiven'>;
  report: StructuredReport;
  maps: Map<string, GroundingMap>;
  findings: Finding[];
  threshold: number;
  model: string;
  times: StageTimes;
}

export interface StudyInput {
  /** CT: a file or DICOM folder, or an already read volume */
  ct: string | Volume;
  /** report text (not a path) */
  report: string;
  /** a name for the report in error messages */
  reportName?: string;
  /**
   * TotalSegmentator's output: the `total` multi-label file (v1 or v2 numbering) or its folder of
   * per-structure masks, on the CT's grid or another grid of the same scan
   */
  totalSegmentator?: string;
  /** an organ label map already in our scheme (a dataset's `labels`) */
  labels?: string;
}

export const DEFAULT_THRESHOLD = 0.5;

const now = (): number => performance.now() / 1000;

function sameGeometry(a: Geometry, b: Geometry): string | null {
  for (let d = 0; d < 3; d++) if (a.size[d] !== b.size[d]) return `size ${b.size.join('×')} does not match the CT's ${a.size.join('×')}`;
  for (let d = 0; d < 3; d++) if (Math.abs(a.spacing[d] - b.spacing[d]) > 1e-3 * Math.max(1, Math.abs(a.spacing[d]))) return `spacing ${b.spacing.map((v) => v.toFixed(3)).join('×')} does not match the CT's ${a.spacing.map((v) => v.toFixed(3)).join('×')}`;
  for (let d = 0; d < 3; d++) if (Math.abs(a.origin[d] - b.origin[d]) > 1e-2) return `origin (${b.origin.map((v) => v.toFixed(2)).join(', ')}) does not match the CT's (${a.origin.map((v) => v.toFixed(2)).join(', ')})`;
  for (let d = 0; d < 9; d++) if (Math.abs(a.direction[d]! - b.direction[d]!) > 1e-4) return 'orientation does not match the CT';
  return null;
}

/** A file-name-safe form of an anomaly id (ids come from report structuring, not from users, but may change). */
export function safeId(id: string): string {
  const s = id.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
  return s || '_';
}

/**
 * Grounds one study: reads the CT, builds the organ label map (TotalSegmentator's, a given one in
 * our scheme, or the HU fallback), structures the report, runs the grounder and measures each map.
 * Everything returned lives on the CT's own grid, so maps can be written with its geometry as is.
 */
export async function groundStudy(input: StudyInput, grounder: GroundingModel, opts: { threshold?: number } = {}): Promise<GroundingResult> {
  // the user's choice, else where this model's maps are meant to be cut (its config), else 0.5
  const threshold = opts.threshold ?? grounder.threshold ?? DEFAULT_THRESHOLD;
  const times: StageTimes = { io: 0, anatomy: 0, structuring: 0, network: 0, outputs: 0 };
  const reportName = input.reportName ?? 'report';
  if (!input.report.trim()) throw new UserError(`${reportName}: report is empty`);
  // text, not binary, and not over the size a report can have (a 200 KB "report" took 4 GB to structure)
  checkReportText(input.report, reportName);

  let t = now();
  const ct = typeof input.ct === 'string' ? await readVolume(input.ct) : input.ct;
  times.io += now() - t; t = now();
  // one code path with `label` and `ctground anatomy`: TotalSegmentator's output as it comes, a map
  // in our scheme, or organs estimated from the CT
  const om = await organMapFor(ct, input.totalSegmentator ? { labels: input.totalSegmentator, scheme: 'totalsegmentator' } : input.labels ? { labels: input.labels, scheme: 'ctground' } : {});
  const anatomy: Volume = om.labels;
  const anatomySource: AnatomySource = om.source === 'ctground' ? 'given' : om.source;
  times.anatomy += now() - t; t = now();

  const report = structureReport(input.report);
  times.structuring += now() - t; t = now();

  const maps = await grounder.ground({ ct, anatomy, report });
  times.network += now() - t; t = now();

  const findings: Finding[] = report.anomalies.map((a, n) => {
    const map = maps.get(a.id);
    if (!map) throw new Error(`grounder ${grounder.name} returned no map for anomaly ${a.id}`);
    if (sameGeometry(ct, map.grid)) throw new Error(`grounder ${grounder.name}: map of ${a.id} is not on the CT grid`);
    const s = summarizeMap(map, threshold);
    const spans = [...a.spans].sort((x, y) => x.start - y.start);
    return {
      id: a.id, organ: a.organ, type: a.type, certainty: a.certainty,
      spans: spans.map((sp) => ({ start: sp.start, end: sp.end, text: sp.text, class: sp.class })),
      phrase: spans.map((sp) => sp.text).join(' … '),
      label: n + 1,
      map: `maps/${safeId(a.id)}.nii.gz`,
      peak: round(s.peak, 4), mean: round(s.mean, 4), voxels: s.voxels, volumeMl: round(s.volumeMl, 3),
      box: s.box && { voxel: s.box.voxel, world: [s.box.world[0].map((v) => round(v, 2)), s.box.world[1].map((v) => round(v, 2))] as FindingBox['world'] },
      peakVoxel: s.peakVoxel, peakWorld: s.peakWorld.map((v) => round(v, 2)) as Finding['peakWorld'], bestSlice: s.bestSlice,
      focusVoxel: s.focusVoxel, focusWorld: s.focusWorld.map((v) => round(v, 2)) as Finding['focusWorld'],
      organSource: organOriginOf(a.organ, om),
    };
  });
  times.outputs += now() - t;
  const organs = { given: om.given, estimated: om.estimated, notes: om.notes, asGiven: om.asGiven };
  return { ct, anatomy, anatomySource, organs, report, maps, findings, threshold, model: grounder.name, times };
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export interface FindingsFile {
  model: string;
  threshold: number;
  anatomy: AnatomySource;
  /** organs (scheme names) the given map held, and those estimated from the CT */
  organs: { given: string[]; estimated: string[] };
  ct: { size: number[]; spacing: number[]; origin: number[]; direction: number[] };
  anomalies: (Finding | NegatedFinding)[];
}

/** findings.json's entry of a finding: a negated one without its location unless its map is kept. */
export function fileFinding(f: Finding, keepNegatedMaps = false): Finding | NegatedFinding {
  if (f.certainty !== 'absent' || keepNegatedMaps) return f;
  const { map: _m, box: _b, peak: _p, mean: _mn, voxels: _v, volumeMl: _ml, peakVoxel: _pv, peakWorld: _pw, bestSlice: _bs, focusVoxel: _fv, focusWorld: _fw, ...rest } = f;
  return { ...rest, map: null, box: null };
}

/**
 * Writes findings.json, maps/<id>.nii.gz (probability, on the CT grid), labels.nii.gz (one value per
 * anomaly) and, unless turned off, overview.png into `dir`. Each file is written atomically and
 * findings.json last, so its presence means the whole set is there. A negated finding gets no map
 * file unless `keepNegatedMaps`, and never a label value, a box or a tile in the overview.
 */
export async function writeGroundingOutputs(dir: string, r: GroundingResult, opts: { overview?: boolean; keepNegatedMaps?: boolean } = {}): Promise<FindingsFile> {
  const t = now();
  // "no ascites" is grounded like any anomaly, but a negated finding is no region to label or show
  const shown = r.findings.filter((f) => f.certainty !== 'absent');
  const order = r.findings.map((f) => (f.certainty === 'absent' ? null : r.maps.get(f.id)!));
  const entries = r.findings.map((f) => fileFinding(f, opts.keepNegatedMaps));
  // one whole-grid map at a time, uint8 with the slope that makes it read as probabilities (to 1/510):
  // a quarter of float32's bytes, and runs of zeros outside the box that compress fast
  for (const f of entries) if (f.map) await writeNifti(join(dir, f.map), quantizedProbabilities(r.maps.get(f.id)!), { sclSlope: PROBABILITY_SLOPE });
  await writeNifti(join(dir, 'labels.nii.gz'), labelMapOf(order, r.threshold, r.ct));
  if (opts.overview !== false) {
    const items = shown.map((f) => ({
      // two caption lines of 20 characters: the size goes early so wrapping never drops it
      title: `${f.id} ${f.organ}${f.box ? ` ${f.volumeMl.toFixed(1)}ml` : ''} ${f.type.replace(/_/g, ' ')}${f.certainty === 'present' ? '' : ` (${f.certainty})`}`,
      caption: f.phrase.replace(/…/g, '/'),
      map: r.maps.get(f.id)!,
      summary: summarizeMap(r.maps.get(f.id)!, r.threshold),
    }));
    const negated = r.findings.filter((f) => f.certainty === 'absent').map((f) => `${f.id} ${f.organ} ${f.type.replace(/_/g, ' ')}: absent`);
    writeFileAtomic(join(dir, 'overview.png'), renderOverview(r.ct, items, { negated }));
  }
  const file: FindingsFile = {
    model: r.model, threshold: r.threshold, anatomy: r.anatomySource, organs: { given: r.organs.given, estimated: r.organs.estimated },
    ct: { size: [...r.ct.size], spacing: [...r.ct.spacing], origin: [...r.ct.origin], direction: [...r.ct.direction] },
    anomalies: entries,
  };
  writeFileAtomic(join(dir, 'findings.json'), JSON.stringify(file, null, 2) + '\n');
  r.times.outputs += now() - t;
  return file;
}

/** The readable table `ground` prints; a negated finding is listed with its certainty and no location. */
export function findingsTable(findings: (Finding | NegatedFinding)[]): string {
  const rows = [['id', 'organ', 'type', 'certainty', 'peak', 'ml', 'box (world mm, RAS)', 'phrase']];
  for (const f of findings) {
    const phrase = f.phrase.length > 48 ? f.phrase.slice(0, 47) + '…' : f.phrase;
    if (f.certainty === 'absent' || f.map === null) { rows.push([f.id, f.organ, f.type, f.certainty, '–', '–', '(negated: no location)', phrase]); continue; }
    const b = f.box ? `[${f.box.world[0].map((v) => v.toFixed(0)).join(',')}]–[${f.box.world[1].map((v) => v.toFixed(0)).join(',')}]` : '(below threshold)';
    rows.push([f.id, f.organ, f.type, f.certainty, f.peak.toFixed(2), f.volumeMl.toFixed(1), b, phrase]);
  }
  const w = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(w[c]!))).join('  ')).join('\n');
}
