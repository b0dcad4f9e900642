import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { UserError, fileError, writeFileAtomic } from '../common/index.ts';
import { parseCsv, readText, checkReportText } from '../report/index.ts';
import { DicomwebClient, jsonValue, jsonValues, readPart10Header, srText, type DicomJson } from '../dicom/index.ts';
import type { GroundingModel } from '../model/index.ts';
import { labelOneStudy, isStudyDone, writeManifest, oneLineReason, type BatchStudy, type ManifestRecord } from './batch.ts';

/**
 * `label --dicomweb`: studies come from a PACS. Listing (listPacsStudies) is kept apart from the
 * work on one study (fetchPacsStudy, then labelOneStudy, then storePacsSeg), so a job queue can list
 * once and hand the studies to workers.
 */

/** One study of the PACS to label. Its id (the output folder) is its Study Instance UID. */
export interface PacsStudy { id: string; studyUid: string; accession: string }

const TAG = {
  StudyInstanceUID: '0020000D', AccessionNumber: '00080050', StudyDate: '00080020', Modality: '00080060',
  SeriesInstanceUID: '0020000E', SOPInstanceUID: '00080018', SliceThickness: '00180050', ImageOrientationPatient: '00200037',
  ImageType: '00080008', NumberOfSeriesRelatedInstances: '00201209',
};
const UID_RE = /^[0-9]+(\.[0-9]+)*$/;

/** --since DATE: YYYY-MM-DD or YYYYMMDD, as QIDO's open date range "YYYYMMDD-". */
export function sinceRange(date: string): string {
  const m = /^(\d{4})-?(\d{2})-?(\d{2})$/.exec(date.trim());
  const d = m ? new Date(`${m[1]}-${m[2]}-${m[3]}T00:00:00Z`) : null;
  if (!m || !d || Number.isNaN(d.getTime()) || d.getUTCDate() !== Number(m[3])) throw new UserError(`--since ${date}: expected a date YYYY-MM-DD`);
  return `${m[1]}${m[2]}${m[3]}-`;
}

/**
 * The studies to label: each UID of `studies` looked up (one the PACS does not have comes back in
 * `missing`, a line of the summary), or every study dated `since` or later.
 */
export async function listPacsStudies(client: DicomwebClient, sel: { studies?: string[]; since?: string }): Promise<{ found: PacsStudy[]; missing: { id: string; reason: string }[] }> {
  const found: PacsStudy[] = [], missing: { id: string; reason: string }[] = [];
  const add = (d: DicomJson): void => {
    const uid = jsonValue(d, TAG.StudyInstanceUID);
    if (UID_RE.test(uid) && !found.some((f) => f.studyUid === uid)) found.push({ id: uid, studyUid: uid, accession: jsonValue(d, TAG.AccessionNumber) });
  };
  if (sel.studies) {
    for (const uid of sel.studies) {
      if (!UID_RE.test(uid)) { missing.push({ id: uid.replace(/[^0-9A-Za-z._-]/g, '_').slice(0, 64) || '_', reason: 'not a Study Instance UID (digits and dots)' }); continue; }
      try {
        const r = await client.searchStudies({ StudyInstanceUID: uid });
        if (r.length) add(r[0]!);
        else missing.push({ id: uid, reason: 'the PACS has no such study' });
      } catch (e) {
        missing.push({ id: uid, reason: oneLineReason(e) });
      }
    }
  } else {
    for (const d of await client.searchStudies({ StudyDate: sinceRange(sel.since ?? '') })) add(d);
  }
  return { found, missing };
}

/** Reports keyed by StudyInstanceUID and by AccessionNumber, from a CSV with a header row. */
export interface ReportTable { file: string; byStudy: Map<string, string>; byAccession: Map<string, string> }

const TEXT_COLUMNS = ['report', 'Report', 'text', 'Text', 'ReportText', 'report_text'];

export function readReportTable(file: string): ReportTable {
  const rows = parseCsv(readText(file), file);
  const header = rows[0]?.map((h) => h.trim());
  if (!header) throw fileError(file, 'empty CSV (expected a header row: StudyInstanceUID and/or AccessionNumber, and report)');
  const su = header.indexOf('StudyInstanceUID'), an = header.indexOf('AccessionNumber');
  const tx = header.findIndex((h) => TEXT_COLUMNS.includes(h));
  if (su < 0 && an < 0) throw fileError(file, `CSV has neither a StudyInstanceUID nor an AccessionNumber column (header: ${header.join(', ')})`);
  if (tx < 0) throw fileError(file, `CSV has no report column (one of ${TEXT_COLUMNS.join(', ')}; header: ${header.join(', ')})`);
  const byStudy = new Map<string, string>(), byAccession = new Map<string, string>();
  for (const row of rows.slice(1)) {
    const text = (row[tx] ?? '').trim();
    if (!text) continue;
    if (su >= 0 && row[su]?.trim()) byStudy.set(row[su]!.trim(), text);
    if (an >= 0 && row[an]?.trim()) byAccession.set(row[an]!.trim(), text);
  }
  return { file, byStudy, byAccession };
}

interface SeriesChoice { series: string; instances: string[]; thickness: number }

/**
 * The CT series to ground, by a stated rule: CT, axial (slice normal within 25° of the body's
 * long axis), not a localizer, at least 2 slices; of those the thinnest slices, then the most slices.
 */
export async function chooseCtSeries(client: DicomwebClient, study: string): Promise<SeriesChoice> {
  const series = await client.searchSeries(study);
  const ct = series.filter((s) => jsonValue(s, TAG.Modality) === 'CT');
  if (!ct.length) {
    const mods = series.map((s) => jsonValue(s, TAG.Modality) || '?');
    throw new UserError(`no CT series in the study (${mods.length ? `series found: ${[...new Set(mods)].map((m) => `${m} ×${mods.filter((x) => x === m).length}`).join(', ')}` : 'it has no series'})`);
  }
  const candidates: SeriesChoice[] = [];
  for (const s of ct) {
    const uid = jsonValue(s, TAG.SeriesInstanceUID);
    const inst = (await client.searchInstances(study, uid)).map((i) => jsonValue(i, TAG.SOPInstanceUID)).filter((u) => UID_RE.test(u));
    if (inst.length < 2) continue;
    const meta = await client.instanceMetadata(study, uid, inst[0]!);
    const o = jsonValues(meta, TAG.ImageOrientationPatient).map(Number);
    const type = jsonValues(meta, TAG.ImageType).map(String);
    if (o.length !== 6 || type.includes('LOCALIZER')) continue;
    const nz = o[0]! * o[4]! - o[1]! * o[3]!;
    if (Math.abs(nz) < Math.cos((25 * Math.PI) / 180)) continue;
    const t = Number(jsonValue(meta, TAG.SliceThickness));
    candidates.push({ series: uid, instances: inst, thickness: t > 0 ? t : Infinity });
  }
  if (!candidates.length) throw new UserError(`no axial CT series with at least 2 slices in the study (${ct.length} CT series, none axial)`);
  candidates.sort((a, b) => a.thickness - b.thickness || b.instances.length - a.instances.length);
  return candidates[0]!;
}

/** The CSV's report for a study: its row by Study Instance UID, else by Accession Number. */
const csvReport = (table: ReportTable, s: PacsStudy): string | undefined => table.byStudy.get(s.studyUid) ?? (s.accession ? table.byAccession.get(s.accession) : undefined);

/** The study's report: the CSV's row (by Study Instance UID, else Accession Number), else a text SR in the study. */
async function reportFor(client: DicomwebClient, s: PacsStudy, table: ReportTable | undefined): Promise<string> {
  const fromCsv = table && csvReport(table, s);
  if (fromCsv) return fromCsv;
  for (const se of (await client.searchSeries(s.studyUid)).filter((x) => jsonValue(x, TAG.Modality) === 'SR')) {
    const seriesUid = jsonValue(se, TAG.SeriesInstanceUID);
    for (const i of await client.searchInstances(s.studyUid, seriesUid)) {
      const text = srText(await client.retrieveInstance(s.studyUid, seriesUid, jsonValue(i, TAG.SOPInstanceUID)));
      if (text.trim()) return text;
    }
  }
  throw new UserError(`no report: ${table ? `${table.file} has no row for this study${s.accession ? ' (nor its accession number)' : ''}` : 'no --reports CSV given'} and the study holds no text SR`);
}

const workDir = (out: string, id: string): string => join(out, '.pacs', id);

/** Removes the series and report a study's fetch left in `out` (after labeling, or a failed fetch). */
export function removePacsWork(out: string, id: string): void {
  rmSync(workDir(out, id), { recursive: true, force: true });
}

/**
 * The one row of the report table a queue job carries: the text the CSV gives this study (by UID,
 * else accession), or none, so a worker finds the same report, or fails with the same reason, without
 * reading the CSV itself. rowTable turns it back into the table fetchPacsStudy takes.
 */
export function reportRow(table: ReportTable, s: PacsStudy): { file: string; text?: string } {
  const text = csvReport(table, s);
  return { file: table.file, ...(text ? { text } : {}) };
}

export function rowTable(row: { file: string; text?: string }, s: PacsStudy): ReportTable {
  return { file: row.file, byStudy: new Map(row.text ? [[s.studyUid, row.text]] : []), byAccession: new Map() };
}

/** Retrieves a study's CT series and report into a work folder: the BatchStudy labelOneStudy takes. */
export async function fetchPacsStudy(client: DicomwebClient, s: PacsStudy, out: string, table: ReportTable | undefined, dicomSeg: BatchStudy['dicomSeg']): Promise<BatchStudy> {
  const work = workDir(out, s.id);
  rmSync(work, { recursive: true, force: true });
  const report = checkReportText(await reportFor(client, s, table), `report of study ${s.id}`);
  const choice = await chooseCtSeries(client, s.studyUid);
  const ct = join(work, 'ct');
  mkdirSync(ct, { recursive: true });
  for (const [n, uid] of choice.instances.entries()) {
    const bytes = await client.retrieveInstance(s.studyUid, choice.series, uid);
    const h = readPart10Header(bytes);
    if (h.modality !== 'CT') throw new UserError(`series ${choice.series} holds a non-CT instance (Modality ${h.modality || 'missing'})`);
    writeFileAtomic(join(ct, `${String(n).padStart(5, '0')}.dcm`), bytes);
  }
  writeFileAtomic(join(work, 'report.txt'), report);
  return { id: s.id, ct, report: join(work, 'report.txt'), dicomSeg };
}

/** Marks a study's SEG as stored: written after the PACS said so. */
const STORED = 'stored.json';

/** Whether a study's SEG has been stored (or found in the PACS) and marked so. */
export const isSegStored = (out: string, id: string): boolean => existsSync(join(out, id, STORED));

/**
 * Sends a labeled study's SEG into its study (STOW-RS), once: a SEG the PACS already holds (a run
 * killed after storing and before marking) is not sent again. 'none' when the study has no SEG.
 */
export async function storePacsSeg(client: DicomwebClient, s: PacsStudy, out: string): Promise<'stored' | 'present' | 'none'> {
  const dir = join(out, s.id);
  if (existsSync(join(dir, STORED))) return 'present';
  const record = JSON.parse(readFileSync(join(dir, 'study.json'), 'utf8')) as ManifestRecord;
  if (!record.seg) return 'none';
  const bytes = readFileSync(join(out, record.seg));
  const { sopInstanceUid, studyInstanceUid } = readPart10Header(bytes);
  if (studyInstanceUid !== s.studyUid) throw new UserError(`the SEG names study ${studyInstanceUid}, not this one`);
  const there = await client.searchInstances(s.studyUid, undefined, { SOPInstanceUID: sopInstanceUid });
  const already = there.some((i) => jsonValue(i, TAG.SOPInstanceUID) === sopInstanceUid);
  if (!already) await client.store(s.studyUid, bytes);
  writeFileAtomic(join(dir, STORED), JSON.stringify({ sopInstanceUid, study: s.studyUid }) + '\n');
  return already ? 'present' : 'stored';
}

export interface PacsSummary { studies: number; labeled: number; stored: number; failed: { id: string; reason: string }[] }

export interface PacsOptions {
  url: string;
  studies?: string[];
  since?: string;
  reports?: string;
  store?: boolean;
  dicomSeg?: BatchStudy['dicomSeg'];
  threshold?: number;
  timeoutMs?: number;
  grounder: () => Promise<GroundingModel>;
  onStudy?: (id: string, status: 'labeled' | 'skipped' | 'failed', reason?: string) => void;
}

/**
 * Labels the PACS's studies into `out`, resumably: a study with study.json is not fetched again, a
 * stored SEG is not stored again. Each study's problem (not in the PACS, no CT series, no report, the
 * PACS refusing or silent) is one line of the summary, and the batch goes on.
 */
export async function labelFromDicomweb(out: string, opts: PacsOptions): Promise<PacsSummary> {
  const client = new DicomwebClient(opts.url, { timeoutMs: opts.timeoutMs });
  const table = opts.reports ? readReportTable(opts.reports) : undefined;
  const { found, missing } = await listPacsStudies(client, opts);
  mkdirSync(out, { recursive: true });
  const failed = [...missing];
  for (const m of missing) opts.onStudy?.(m.id, 'failed', m.reason);
  let grounder: GroundingModel | undefined;
  let stored = 0;
  for (const s of found) {
    try {
      if (isStudyDone(out, s.id)) opts.onStudy?.(s.id, 'skipped');
      else {
        const b = await fetchPacsStudy(client, s, out, table, opts.dicomSeg);
        grounder ??= await opts.grounder();
        await labelOneStudy(b, out, grounder, opts.threshold);
        removePacsWork(out, s.id);
        opts.onStudy?.(s.id, 'labeled');
      }
    } catch (e) {
      removePacsWork(out, s.id);
      failed.push({ id: s.id, reason: oneLineReason(e) });
      opts.onStudy?.(s.id, 'failed', oneLineReason(e));
      continue;
    }
    if (opts.store) {
      try {
        if ((await storePacsSeg(client, s, out)) === 'stored') stored++;
      } catch (e) {
        failed.push({ id: s.id, reason: `store: ${oneLineReason(e)}` });
      }
    }
  }
  rmSync(join(out, '.pacs'), { recursive: true, force: true });
  return writePacsSummary(out, found, missing, failed, stored);
}

/**
 * manifest.jsonl and summary.json of a PACS run: the studies not found first, then each failure in
 * the listing's order (so `label --dicomweb` and its `--queue` form write the same summary).
 */
export function writePacsSummary(out: string, found: PacsStudy[], missing: { id: string; reason: string }[], failed: { id: string; reason: string }[], stored: number): PacsSummary {
  const all = [...found.map((s) => ({ id: s.id })), ...missing.map((m) => ({ id: m.id }))] as BatchStudy[];
  const labeled = writeManifest(out, all);
  const order = new Map([...missing.map((m, n) => [m.id, n - missing.length] as const), ...found.map((s, n) => [s.id, n] as const)]);
  const sorted = [...failed].sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
  const summary: PacsSummary = { studies: found.length + missing.length, labeled, stored, failed: sorted };
  writeFileAtomic(join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  return summary;
}
