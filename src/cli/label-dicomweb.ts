import { resolve } from 'node:path';
import { Progress, UserError, formatSeconds } from '../common/index.ts';
import { intFlag, requireFlag } from './args.ts';
import { dicomSegFor } from './dicom-flags.ts';
import { labelFromDicomweb, loadGrounder } from '../pipeline/index.ts';

export interface DicomwebFlags {
  dicomweb?: string; studies?: string; since?: string; reports?: string; store?: boolean; out?: string; model?: string;
  timeout?: string; jobs?: string; queue?: string; data?: string; in?: string;
  'dicom-seg'?: boolean; 'no-dicom-seg'?: boolean; fractional?: boolean;
}

/** `label --dicomweb URL …`: the PACS as the study source (pipeline/pacs.ts), one study at a time. */
export async function runDicomwebLabel(v: DicomwebFlags, threshold: number | undefined): Promise<number> {
  const url = requireFlag(v.dicomweb, 'dicomweb');
  if (v.data || v.in) throw new UserError('give one study source: --dicomweb URL, --data DIR or --in FOLDER');
  if (v.jobs || v.queue) throw new UserError('--dicomweb labels one study at a time (--jobs and --queue read folders)');
  if (!v.studies === !v.since) throw new UserError('with --dicomweb give exactly one of --studies UID,UID,… or --since YYYY-MM-DD');
  const out = resolve(requireFlag(v.out, 'out'));
  const seg = dicomSegFor(v, true);
  if (v.store && !seg) throw new UserError('--store sends the DICOM SEG, which --no-dicom-seg turns off');
  const timeout = intFlag(v.timeout, 'timeout', 60);
  if (timeout < 1) throw new UserError(`--timeout must be at least 1 second, got ${timeout}`);
  const studies = v.studies?.split(',').map((s) => s.trim()).filter(Boolean);
  if (studies && !studies.length) throw new UserError('--studies: no Study Instance UID given');
  const t0 = Date.now();
  let bar: Progress | undefined;
  let now = 0, skipped = 0;
  const r = await labelFromDicomweb(out, {
    url, studies, since: v.since, reports: v.reports ? resolve(v.reports) : undefined, store: v.store,
    dicomSeg: !seg ? 'off' : v.fractional ? 'fractional' : 'binary', threshold, timeoutMs: timeout * 1000,
    grounder: () => loadGrounder(v.model),
    onStudy: (id, status) => {
      if (status === 'skipped') { skipped++; return; }
      bar ??= new Progress('label', Math.max(1, (studies?.length ?? 1) - skipped), 'studies');
      if (status === 'labeled') now++;
      bar.tick(1, status === 'failed' ? `(${id} failed)` : '');
    },
  });
  bar?.finish();
  console.log(`${r.labeled}/${r.studies} studies labeled in ${out} (${now} now, ${skipped} already done)${v.store ? `, ${r.stored} SEG(s) stored` : ''} in ${formatSeconds((Date.now() - t0) / 1000)}`);
  if (r.failed.length) {
    console.log(`${r.failed.length} failed:`);
    for (const f of r.failed) console.log(`  ${f.id}: ${f.reason}`);
  }
  return r.failed.length ? 3 : 0;
}
