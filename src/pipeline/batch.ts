import { copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { UserError, writeFileAtomic, writeOutputsAtomic, removePartialOutputs } from '../common/index.ts';
import { boxedMask, writeNifti } from '../volume/index.ts';
import type { GroundingModel } from '../model/index.ts';
import { groundStudy, writeGroundingOutputs, safeId, type StageTimes, type FindingsFile } from './study.ts';
import { writeFindingsSeg, SEG_FILE } from './seg.ts';
import { readReport } from '../report/index.ts';

/** One study of an archive to label. Paths are absolute. */
export interface BatchStudy {
  id: string;
  ct: string;
  report: string;
  /** TotalSegmentator `total` label map */
  totalSegmentator?: string;
  /** organ label map already in our scheme (a dataset's `labels`) */
  labels?: string;
  split?: string;
  /** the DICOM SEG of a study whose CT is a DICOM folder: binary (default), fractional, or off */
  dicomSeg?: 'binary' | 'fractional' | 'off';
}

const CT_EXT = /\.(nii\.gz|nii|nrrd|nhdr|mha|mhd)$/i;
const ID_OK = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function ctExtension(path: string): string {
  const m = CT_EXT.exec(path);
  return m ? m[0].toLowerCase() : '';
}

/**
 * Studies of a plain folder. Either one subfolder per study holding a CT (`ct.nii.gz`, `ct.nrrd`, …
 * or a DICOM folder `ct/`), `report.txt` and optionally TotalSegmentator's `seg.nii.gz` or its
 * `segmentations/` folder of masks; or flat
 * pairs `<id>.nii.gz` + `<id>.txt` with an optional `<id>.seg.nii.gz`.
 */
export function studiesFromFolder(dir: string): BatchStudy[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError(`${dir}: not a folder`);
  const out: BatchStudy[] = [];
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const files = readdirSync(p);
      const ctFile = files.find((f) => /^ct\./i.test(f) && CT_EXT.test(f)) ?? (files.includes('ct') ? 'ct' : undefined);
      if (!ctFile && !files.includes('report.txt')) continue;
      // TotalSegmentator's multi-label file, or its output folder of per-structure masks
      const seg = files.find((f) => /^seg\./i.test(f) && CT_EXT.test(f)) ?? (files.includes('segmentations') ? 'segmentations' : undefined);
      out.push({ id: e.name, ct: join(p, ctFile ?? 'ct.nii.gz'), report: join(p, 'report.txt'), ...(seg ? { totalSegmentator: join(p, seg) } : {}) });
    } else if (CT_EXT.test(e.name) && !/\.seg\./i.test(e.name)) {
      const stem = e.name.slice(0, e.name.length - ctExtension(e.name).length);
      const seg = entries.find((s) => s.name.startsWith(`${stem}.seg.`) && CT_EXT.test(s.name));
      out.push({ id: stem, ct: p, report: join(dir, `${stem}.txt`), ...(seg ? { totalSegmentator: join(dir, seg.name) } : {}) });
    }
  }
  if (out.length === 0) throw new UserError(`${dir}: no studies found (expected <id>.nii.gz + <id>.txt pairs, or one folder per study with ct.* and report.txt)`);
  return out;
}

/** Studies of a dataset folder (manifest.jsonl); its organ label maps are already in our scheme. */
export function studiesFromDataset(dir: string): BatchStudy[] {
  const file = join(dir, 'manifest.jsonl');
  if (!existsSync(file)) throw new UserError(`${file}: not found (is ${dir} a dataset folder?)`);
  return readFileSync(file, 'utf8').split('\n').map((l, n) => [l.trim(), n + 1] as const).filter(([l]) => l).map(([l, n]) => {
    let rec: { id?: unknown; ct?: unknown; report?: unknown; labels?: unknown; split?: unknown };
    try { rec = JSON.parse(l); } catch { throw new UserError(`${file}:${n}: not valid JSON`); }
    if (typeof rec.id !== 'string' || typeof rec.ct !== 'string' || typeof rec.report !== 'string') throw new UserError(`${file}:${n}: needs string fields id, ct and report`);
    return {
      id: rec.id, ct: resolve(dir, rec.ct), report: resolve(dir, rec.report),
      ...(typeof rec.labels === 'string' ? { labels: resolve(dir, rec.labels) } : {}),
      ...(typeof rec.split === 'string' ? { split: rec.split } : {}),
    };
  });
}

/** A dataset manifest line, as `label` writes it (paths relative to the output folder). */
export interface ManifestRecord {
  id: string;
  ct: string;
  labels: string;
  report: string;
  split: string;
  /** findings.json of the auto-labels, for the viewer */
  grounding: string;
  /** the DICOM Segmentation of the findings, when the CT was a DICOM series */
  seg?: string;
  anomalies: {
    id: string; organ: string; type: string; certainty: string;
    spans: { start: number; end: number; text: string; class: string }[];
    mask: string | null;
    box: [number[], number[]] | null;
    /** the map's peak, mean and volume; null for a negated finding (no map) */
    score: { peak: number; mean: number; volumeMl: number } | null;
  }[];
}

export interface BatchOptions {
  /** absent: each model's own region threshold */
  threshold?: number;
  jobs?: number;
  /** called after each study, labeled or failed */
  onStudy?: (r: StudyOutcome) => void;
  /** how to ground: in-process with this grounder (jobs = 1) or in worker threads that load their own */
  grounder?: GroundingModel;
  modelSpec?: string;
}

export type StudyOutcome = { id: string; status: 'labeled'; times: StageTimes } | { id: string; status: 'skipped' } | { id: string; status: 'failed'; reason: string };

export interface BatchSummary { studies: number; labeled: number; failed: { id: string; reason: string }[] }

/** Folder of one study in the output. */
const studyDir = (out: string, id: string): string => join(out, safeId(id));
const DONE = 'study.json';

/** A killed run leaves temporary siblings from writeFileAtomic behind; they are never valid files. */
function removeStaleTemps(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) removeStaleTemps(p);
    else if (e.name.startsWith('.') && e.name.endsWith('.tmp')) rmSync(p, { force: true });
  }
}

/** Whether a study's outputs in `out` are complete (its study.json is written last). */
export const isStudyDone = (out: string, id: string): boolean => existsSync(join(studyDir(out, id), DONE));

/**
 * What a killed attempt at one study left: its temporary folders beside the study's
 * (`.ID.partial-PID`, `.ID.old-PID`, from writeOutputsAtomic) and temporaries inside it. The queue's
 * worker clears them before it redoes the study; its job's lock makes them nobody else's.
 */
export function removeStudyTemps(out: string, id: string): void {
  const name = safeId(id);
  if (!existsSync(out)) return;
  for (const e of readdirSync(out)) {
    const m = /^\.(.+)\.(partial|old)-\d+$/.exec(e);
    if (m && m[1] === name) rmSync(join(out, e), { recursive: true, force: true });
  }
  removeStaleTemps(studyDir(out, id));
}

/** Study ids become folder names: refused in one line when unsafe or repeated. */
export function checkStudyIds(studies: BatchStudy[]): void {
  const seen = new Set<string>();
  for (const s of studies) {
    if (!ID_OK.test(s.id)) throw new UserError(`study id '${s.id}': use letters, digits, '.', '_' and '-' only`);
    if (seen.has(safeId(s.id))) throw new UserError(`study id '${s.id}' appears twice`);
    seen.add(safeId(s.id));
  }
}

/** Hard link when possible (an archive's CTs are big), else a copy; either way renamed into place. */
function placeFile(src: string, dest: string): void {
  mkdirSync(dirname(dest), { recursive: true });
  const tmp = join(dirname(dest), `.${basename(dest)}.${process.pid}.tmp`);
  rmSync(tmp, { force: true });
  try { linkSync(src, tmp); } catch { copyFileSync(src, tmp); }
  renameSync(tmp, dest);
}

/**
 * Labels one study into `out/<id>/`: the CT (linked), report.txt, the organ label map, grounding
 * outputs, one mask per anomaly, and last study.json (its manifest line): its presence marks the
 * study finished, so a restarted run skips it and redoes anything half-done.
 */
export async function labelOneStudy(s: BatchStudy, out: string, grounder: GroundingModel, threshold: number | undefined): Promise<{ record: ManifestRecord; times: StageTimes }> {
  // written into a temporary folder that takes the study's place at the end (writeOutputsAtomic): a
  // kill at any point leaves the old folder or none, never a mix, so a restart is byte-identical
  return writeOutputsAtomic(studyDir(out, s.id), (dir) => labelStudyInto(dir, s, out, grounder, threshold));
}

async function labelStudyInto(dir: string, s: BatchStudy, out: string, grounder: GroundingModel, threshold: number | undefined): Promise<{ record: ManifestRecord; times: StageTimes }> {
  if (!existsSync(s.ct)) throw new UserError(`${s.ct}: CT not found`);
  if (!existsSync(s.report)) throw new UserError(`${s.report}: report not found`);
  const text = readReport(s.report);
  const r = await groundStudy({ ct: s.ct, report: text, reportName: s.report, totalSegmentator: s.totalSegmentator, labels: s.labels }, grounder, { threshold });
  const t0 = performance.now();
  const ctName = statSync(s.ct).isDirectory() || !ctExtension(s.ct) ? 'ct.nii.gz' : `ct${ctExtension(s.ct)}`;
  if (statSync(s.ct).isDirectory()) await writeNifti(join(dir, ctName), r.ct);
  else placeFile(s.ct, join(dir, ctName));
  writeFileAtomic(join(dir, 'report.txt'), text);
  // a map in our scheme already on the CT's grid is linked as it is; anything read, resampled or estimated is written
  const linkLabels = r.anatomySource === 'given' && r.organs.asGiven && s.labels && ctExtension(s.labels);
  if (linkLabels) placeFile(s.labels!, join(dir, `anatomy${ctExtension(s.labels!)}`));
  else await writeNifti(join(dir, 'anatomy.nii.gz'), r.anatomy);
  const anatomyName = linkLabels ? `anatomy${ctExtension(s.labels!)}` : 'anatomy.nii.gz';
  r.times.io += (performance.now() - t0) / 1000;
  const findings: FindingsFile = await writeGroundingOutputs(join(dir, 'grounding'), r, { overview: false });
  const t1 = performance.now();
  for (const f of findings.anomalies) if (f.box && f.certainty !== 'absent') await writeNifti(join(dir, 'masks', `${safeId(f.id)}.nii.gz`), boxedMask(r.maps.get(f.id)!, r.threshold));
  // the SEG goes where the study's grounding goes, before study.json marks the study done
  const seg = s.dicomSeg !== 'off' && statSync(s.ct).isDirectory() ? writeFindingsSeg(join(dir, 'grounding', SEG_FILE), r, s.ct, { fractional: s.dicomSeg === 'fractional' }) : null;
  const rel = (p: string): string => relative(out, join(studyDir(out, s.id), p)).split('\\').join('/');
  const record: ManifestRecord = {
    id: s.id, ct: rel(ctName), labels: rel(anatomyName), report: rel('report.txt'), split: s.split ?? 'unlabeled',
    grounding: rel('grounding/findings.json'),
    ...(seg ? { seg: rel(`grounding/${SEG_FILE}`) } : {}),
    anomalies: findings.anomalies.map((f) => ({
      id: f.id, organ: f.organ, type: f.type, certainty: f.certainty, spans: f.spans,
      mask: f.box && f.certainty !== 'absent' ? rel(`masks/${safeId(f.id)}.nii.gz`) : null,
      box: f.box && f.certainty !== 'absent' ? f.box.world : null,
      score: f.map === null ? null : { peak: f.peak, mean: f.mean, volumeMl: f.volumeMl },
    })),
  };
  writeFileAtomic(join(dir, DONE), JSON.stringify(record) + '\n');
  r.times.outputs += (performance.now() - t1) / 1000;
  return { record, times: r.times };
}

/** manifest.jsonl of the output: the finished studies, in input order. */
export function writeManifest(out: string, studies: BatchStudy[]): number {
  const lines: string[] = [];
  for (const s of studies) {
    const f = join(studyDir(out, s.id), DONE);
    if (existsSync(f)) lines.push(readFileSync(f, 'utf8').trim());
  }
  writeFileAtomic(join(out, 'manifest.jsonl'), lines.length ? lines.join('\n') + '\n' : '');
  return lines.length;
}

/** One line, whatever the error: the summary shows it next to the study id. */
export function oneLineReason(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0]!.slice(0, 300);
}

/**
 * Labels every study not yet finished in `out`. A study's failure is recorded with a one-line
 * reason and the batch goes on. With jobs > 1 the studies run in worker threads.
 */
export async function labelStudies(studies: BatchStudy[], out: string, opts: BatchOptions): Promise<BatchSummary> {
  checkStudyIds(studies);
  mkdirSync(out, { recursive: true });
  removeStaleTemps(out);
  removePartialOutputs(out);
  const failed: { id: string; reason: string }[] = [];
  const todo = studies.filter((s) => {
    if (isStudyDone(out, s.id)) { opts.onStudy?.({ id: s.id, status: 'skipped' }); return false; }
    return true;
  });
  const jobs = Math.max(1, Math.min(opts.jobs ?? 1, todo.length || 1));
  let lastManifest = Date.now();
  const finished = (o: StudyOutcome): void => {
    if (o.status === 'failed') failed.push({ id: o.id, reason: o.reason });
    opts.onStudy?.(o);
    if (Date.now() - lastManifest > 10_000) { writeManifest(out, studies); lastManifest = Date.now(); }
  };
  if (jobs === 1) {
    const grounder = opts.grounder ?? (await (await import('./grounder.ts')).loadGrounder(opts.modelSpec));
    for (const s of todo) {
      try {
        const { times } = await labelOneStudy(s, out, grounder, opts.threshold);
        finished({ id: s.id, status: 'labeled', times });
      } catch (e) {
        finished({ id: s.id, status: 'failed', reason: oneLineReason(e) });
      }
    }
  } else {
    const { runInWorkers } = await import('./workers.ts');
    await runInWorkers(todo, out, { jobs, threshold: opts.threshold, modelSpec: opts.modelSpec }, finished);
  }
  return writeBatchSummary(out, studies, failed);
}

/** manifest.jsonl and summary.json of a batch: what `label` writes at its end, with or without the queue. */
export function writeBatchSummary(out: string, studies: BatchStudy[], failed: { id: string; reason: string }[]): BatchSummary {
  const labeled = writeManifest(out, studies);
  // in input order, so an interrupted and an uninterrupted run write the same summary
  const order = new Map(studies.map((s, n) => [s.id, n]));
  const sorted = [...failed].sort((a, b) => order.get(a.id)! - order.get(b.id)!);
  const summary: BatchSummary = { studies: studies.length, labeled, failed: sorted };
  writeFileAtomic(join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  return summary;
}

