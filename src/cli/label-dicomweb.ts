import { rmdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Progress, UserError, formatSeconds } from '../common/index.ts';
import { intFlag, queueAttempts, requireFlag } from './args.ts';
import { dicomSegMode } from './dicom-flags.ts';
import { DicomwebClient } from '../dicom/index.ts';
import { labelFromDicomweb, listPacsStudies, loadGrounder, loadQueue, readReportTable, reportRow, writePacsSummary, type BatchStudy, type PacsJob } from '../pipeline/index.ts';

export interface DicomwebFlags {
  dicomweb?: string; studies?: string; since?: string; reports?: string; store?: boolean; out?: string; model?: string;
  timeout?: string; jobs?: string; queue?: string; attempts?: string; data?: string; in?: string;
  'dicom-seg'?: boolean; 'no-dicom-seg'?: boolean; fractional?: boolean;
}

/** `label --dicomweb URL …`: the PACS as the study source (pipeline/pacs.ts), one study at a time. */
export async function runDicomwebLabel(v: DicomwebFlags, threshold: number | undefined): Promise<number> {
  const url = requireFlag(v.dicomweb, 'dicomweb');
  if (v.data || v.in) throw new UserError('give one study source: --dicomweb URL, --data DIR or --in FOLDER');
  if (v.jobs && !v.queue) throw new UserError('--dicomweb labels one study at a time here (--jobs is for folders; for many at once use --queue redis://… and `ctground worker --jobs N`)');
  const attempts = queueAttempts(v);
  if (!v.studies === !v.since) throw new UserError('with --dicomweb give exactly one of --studies UID,UID,… or --since YYYY-MM-DD');
  const out = resolve(requireFlag(v.out, 'out'));
  const dicomSeg = dicomSegMode(v);
  if (v.store && dicomSeg === 'off') throw new UserError('--store sends the DICOM SEG, which --no-dicom-seg turns off');
  const timeout = intFlag(v.timeout, 'timeout', 60);
  if (timeout < 1) throw new UserError(`--timeout must be at least 1 second, got ${timeout}`);
  const studies = v.studies?.split(',').map((s) => s.trim()).filter(Boolean);
  if (studies && !studies.length) throw new UserError('--studies: no Study Instance UID given');
  const t0 = Date.now();
  let bar: Progress | undefined;
  let now = 0, skipped = 0;
  const r = v.queue ? await viaQueue() : await labelFromDicomweb(out, {
    url, studies, since: v.since, reports: v.reports ? resolve(v.reports) : undefined, store: v.store,
    dicomSeg, threshold, timeoutMs: timeout * 1000,
    grounder: () => loadGrounder(v.model),
    onStudy: (id, status) => {
      if (status === 'skipped') { skipped++; return; }
      bar ??= new Progress('label', Math.max(1, (studies?.length ?? 1) - skipped), 'studies');
      if (status === 'labeled') now++;
      bar.tick(1, status === 'failed' ? `(${id} failed)` : '');
    },
  });
  async function viaQueue(): ReturnType<typeof labelFromDicomweb> {
    // listed once here; each job carries what its worker needs (the PACS root, the study, its CSV row, --store)
    const client = new DicomwebClient(url, { timeoutMs: timeout * 1000 });
    const table = v.reports ? readReportTable(resolve(v.reports)) : undefined;
    const { found, missing } = await listPacsStudies(client, { studies, since: v.since });
    const jobs = new Map<string, PacsJob>(found.map((s) => [s.id, { url, study: s, store: !!v.store, timeoutMs: timeout * 1000, ...(table ? { reports: reportRow(table, s) } : {}) }]));
    // the study's files are fetched by the worker; the stub names only its id and SEG setting
    const stubs: BatchStudy[] = found.map((s) => ({ id: s.id, ct: '', report: '', dicomSeg }));
    let stored = 0;
    const q = await (await loadQueue()).labelViaQueue(stubs, out, {
      queue: v.queue!, threshold, attempts, pacs: jobs, onStored: () => { stored++; },
      onStudy: (o) => {
        if (o.status === 'skipped') { skipped++; return; }
        bar ??= new Progress('label', Math.max(1, found.length - skipped), 'studies');
        if (o.status === 'labeled') now++;
        bar.tick(1, o.status === 'failed' ? `(${o.id} failed)` : '');
      },
      onQueued: (added, present) => {
        if (added + present) console.log(`${added} studies queued${present ? `, ${present} already in the queue` : ''}; waiting for workers (ctground worker --queue …)`);
      },
    });
    // each worker removes its study's retrieved series; the emptied work folder goes, as label --dicomweb's does
    try { rmdirSync(join(out, '.pacs')); } catch { /* absent, or a stalled attempt still writing there */ }
    return writePacsSummary(out, found, missing, [...missing, ...q.failed], stored);
  }
  bar?.finish();
  console.log(`${r.labeled}/${r.studies} studies labeled in ${out} (${now} now, ${skipped} already done)${v.store ? `, ${r.stored} SEG(s) stored` : ''} in ${formatSeconds((Date.now() - t0) / 1000)}`);
  if (r.failed.length) {
    console.log(`${r.failed.length} failed:`);
    for (const f of r.failed) console.log(`  ${f.id}: ${f.reason}`);
  }
  return r.failed.length ? 3 : 0;
}
