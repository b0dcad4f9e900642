import { resolve } from 'node:path';
import { Progress, UserError, formatSeconds } from '../../common/index.ts';
import { parseFlags, requireFlag, intFlag, queueAttempts, thresholdFlag } from '../args.ts';
import { DICOM_SEG_FLAGS, dicomSegMode } from '../dicom-flags.ts';
import { runDicomwebLabel } from '../label-dicomweb.ts';
import { studiesFromDataset, studiesFromFolder, labelStudies, loadQueue, type StageTimes, type StudyOutcome } from '../../pipeline/index.ts';

export const summary = 'auto-label a whole archive of studies (resumable)';

export const USAGE = `usage: ctground label (--data DIR | --in FOLDER) --out DIR [--jobs N] [--model DIR|oracle:NAME] [--threshold T]
       ctground label (--data DIR | --in FOLDER) --out DIR --queue redis://HOST:PORT[/DB] [--attempts N] [--threshold T]
  --data  a dataset folder (manifest.jsonl; its organ label maps are used)
  --in    a folder of studies: <id>.nii.gz + <id>.txt (+ <id>.seg.nii.gz, TotalSegmentator), or one
          folder per study with ct.* (or a DICOM folder ct/), report.txt and optionally TotalSegmentator's
          seg.nii.gz or segmentations/ (its folder of masks); without either, organs are estimated
  --out   output dataset folder (manifest.jsonl + one folder per study); rerun to resume
  --jobs  studies in parallel, each in its own worker thread (default 1)
  --queue enqueue one job per study in Redis (BullMQ) for \`ctground worker\` on any number of machines,
          follow them to the end and write the same manifest and summary; the model and --jobs are the
          workers'; --out must be a folder every worker sees at the same path
  --attempts  tries per study before it lands in the queue's failed list (default 3)
       ctground label --dicomweb URL (--studies UID,… | --since YYYY-MM-DD) [--reports CSV] --out DIR [--store] [--timeout S]
                      [--queue redis://HOST:PORT[/DB] [--attempts N]]
  --dicomweb  a PACS's DICOMweb root (e.g. http://host:8042/dicom-web): studies found by QIDO-RS, the CT
          series retrieved by WADO-RS (rule: CT, axial, not a localizer; the thinnest slices, then the most)
  --reports  CSV with a header row: StudyInstanceUID and/or AccessionNumber, and report (or text); a study
          without a row takes the text of an SR in the study
  --store  send each study's findings.seg.dcm back into its study (STOW-RS), once, resumably
  --timeout  seconds per PACS request (default 60)
  with --queue, one job per PACS study (its Study Instance UID): each \`ctground worker\` fetches the
          study over DICOMweb, grounds it, writes its outputs and (--store) stores its SEG; the job carries
          the PACS root, the study, its --reports row and --store, so workers need the PACS and --out only
  --dicom-seg / --no-dicom-seg  findings.seg.dcm for studies whose CT is a DICOM folder (default on)
  --fractional  the SEG's segments carry the maps' probabilities instead of the binary regions`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    data: { type: 'string' }, in: { type: 'string' }, out: { type: 'string' }, jobs: { type: 'string' },
    model: { type: 'string' }, threshold: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    queue: { type: 'string' }, attempts: { type: 'string' },
    dicomweb: { type: 'string' }, studies: { type: 'string' }, since: { type: 'string' }, reports: { type: 'string' }, store: { type: 'boolean' }, timeout: { type: 'string' },
    ...DICOM_SEG_FLAGS,
  }, false);
  if (values.help) { console.log(USAGE); return 0; }
  if (values.dicomweb !== undefined) return runDicomwebLabel(values, thresholdFlag(values.threshold));
  for (const f of ['studies', 'since', 'reports', 'store', 'timeout'] as const) if (values[f] !== undefined) throw new UserError(`--${f} goes with --dicomweb URL`);
  const dicomSeg = dicomSegMode(values);
  if (!values.data === !values.in) throw new UserError('give exactly one of --data DIR or --in FOLDER');
  const out = resolve(requireFlag(values.out, 'out'));
  const jobs = intFlag(values.jobs, 'jobs', 1);
  if (jobs < 1) throw new UserError(`--jobs must be at least 1, got ${jobs}`);
  const threshold = thresholdFlag(values.threshold);
  const attempts = queueAttempts(values);
  const studies = (values.data ? studiesFromDataset(resolve(values.data)) : studiesFromFolder(resolve(values.in!))).map((s) => ({ ...s, dicomSeg } as const));

  let bar: Progress | undefined;
  let skipped = 0, labeled = 0;
  const total: StageTimes = { io: 0, anatomy: 0, structuring: 0, network: 0, outputs: 0 };
  const t0 = Date.now();
  const onStudy = (o: StudyOutcome): void => {
    if (o.status === 'skipped') { skipped++; return; }
    bar ??= new Progress('label', studies.length - skipped, 'studies', 0, { since: t0 });
    if (o.status === 'labeled') { labeled++; for (const k of Object.keys(total) as (keyof StageTimes)[]) total[k] += o.times[k]; }
    bar.tick(1, o.status === 'failed' ? `(${o.id} failed)` : '');
  };
  // the queue: progress comes from the queue's events as the workers finish studies
  const result = values.queue
    ? await (await loadQueue()).labelViaQueue(studies, out, {
      queue: values.queue, threshold, attempts, onStudy,
      onQueued: (added, present) => {
        if (!(added + present)) return;
        console.log(`${added} studies queued${present ? `, ${present} already in the queue` : ''}; waiting for workers (ctground worker --queue …)`);
        bar ??= new Progress('label', studies.length - skipped, 'studies', 0, { since: t0 });
      },
    })
    : await labelStudies(studies, out, { threshold, jobs, modelSpec: values.model, onStudy });
  bar?.finish();
  const secs = (Date.now() - t0) / 1000;
  console.log(`${result.labeled}/${result.studies} studies labeled in ${out} (${labeled} now, ${skipped} already done) in ${formatSeconds(secs)}`);
  if (labeled) {
    const sum = Object.values(total).reduce((a, b) => a + b, 0) || 1;
    console.log(`time share: ${(Object.entries(total) as [string, number][]).map(([k, v]) => `${k} ${((100 * v) / sum).toFixed(0)}%`).join(', ')}`);
  }
  if (result.failed.length) {
    console.log(`${result.failed.length} failed:`);
    for (const f of result.failed) console.log(`  ${f.id}: ${f.reason}`);
  }
  return result.failed.length ? 3 : 0;
}
