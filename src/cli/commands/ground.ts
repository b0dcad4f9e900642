import { statSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { UserError, writeOutputsAtomic } from '../../common/index.ts';
import { readReport as readReportFile } from '../../report/index.ts';
import { parseFlags, requireFlag, thresholdFlag } from '../args.ts';
import { dicomSegFor } from '../dicom-flags.ts';
import { groundStudy, writeGroundingOutputs, findingsTable, loadGrounder, DEFAULT_THRESHOLD, writeFindingsSeg, SEG_FILE, type SegWritten } from '../../pipeline/index.ts';

export const summary = 'ground every finding of a report in its CT';

/** What `ground` writes into --out: an earlier run's copies go when a new run does not write them. */
const GROUNDING_OUTPUTS = ['findings.json', 'maps', 'masks', 'labels.nii.gz', 'overview.png', 'findings.seg.dcm'];

const ESTIMATED_NOTE = 'organs estimated from the CT (no organ map given); for TotalSegmentator\'s organs run `TotalSegmentator -i CT -o seg` and pass --labels seg';

export const USAGE = `usage: ctground ground --ct PATH --report FILE|- [--labels PATH | --anatomy PATH] [--model DIR|oracle:NAME] [--threshold T] --out DIR
  --ct         CT volume (.nii/.nii.gz/.nrrd/.mha) or a DICOM series folder
  --report     the report as a text file, or - for stdin
  --labels     TotalSegmentator's output: its 'total' file (v1 or v2) or its folder of masks, on the CT's
               grid or another grid of the same scan (--fast); else organs are estimated from the CT
  --anatomy    an organ label map already in ctground's scheme (a dataset's labels), instead of --labels
  --model      trained model folder (default models/grounding-default) or oracle:organ|organ-side|prior
  --threshold  probability at which a voxel belongs to a finding (default: the model's own, from its config.json; ${DEFAULT_THRESHOLD} for oracles)
  --keep-negated-maps  also write the maps of negated findings (findings.json lists them, with no location, either way)
  --dicom-seg / --no-dicom-seg  write findings.seg.dcm, a DICOM Segmentation on the source series (default: when --ct is a DICOM folder)
  --fractional  the SEG's segments carry the maps' probabilities instead of the binary regions
writes findings.json, maps/<id>.nii.gz, labels.nii.gz and overview.png into --out`;

/** The report: strict UTF-8 text, not binary, at most 1 MB (report/'s readReport), or one line saying why not. */
function readReport(arg: string): { text: string; name: string } {
  return { text: readReportFile(arg), name: arg === '-' ? '<stdin>' : arg };
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    ct: { type: 'string' }, report: { type: 'string' }, labels: { type: 'string' }, anatomy: { type: 'string' }, model: { type: 'string' },
    out: { type: 'string' }, threshold: { type: 'string' }, 'keep-negated-maps': { type: 'boolean' }, 'dicom-seg': { type: 'boolean' }, 'no-dicom-seg': { type: 'boolean' }, fractional: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  }, false);
  if (values.help) { console.log(USAGE); return 0; }
  const ct = requireFlag(values.ct, 'ct');
  const out = resolve(requireFlag(values.out, 'out'));
  const report = readReport(requireFlag(values.report, 'report'));
  const threshold = thresholdFlag(values.threshold);
  if (values.labels && values.anatomy) throw new UserError('give --labels (TotalSegmentator) or --anatomy (our scheme), not both');
  // the SEG flags are checked before any work: a wrong one costs nothing and writes nothing
  const seg = dicomSegFor(values, statSync(ct, { throwIfNoEntry: false })?.isDirectory() === true);
  const grounder = await loadGrounder(values.model);
  const r = await groundStudy({ ct, report: report.text, reportName: report.name, totalSegmentator: values.labels, labels: values.anatomy }, grounder, { threshold });
  // built beside --out and moved in, findings.json last; an earlier run's maps and masks go (writeOutputsAtomic)
  const segWritten = await writeOutputsAtomic(out, async (dir): Promise<SegWritten | null> => {
    await writeGroundingOutputs(dir, r, { keepNegatedMaps: values['keep-negated-maps'] });
    return seg ? writeFindingsSeg(join(dir, SEG_FILE), r, ct, { fractional: values.fractional }) : null;
  }, { mode: 'merge', stale: GROUNDING_OUTPUTS, last: 'findings.json' });
  console.log(findingsTable(r.findings));
  console.log(`\n${r.findings.length} finding(s), model ${r.model}, anatomy from ${r.anatomySource}, threshold ${r.threshold}`);
  if (r.anatomySource === 'estimated') console.log(ESTIMATED_NOTE);
  else if (r.organs.estimated.length) console.log(`organs not in the given map, estimated from the CT: ${r.organs.estimated.join(', ')}`);
  console.log(`wrote ${join(out, 'findings.json')}, maps/, labels.nii.gz, overview.png${segWritten ? `, ${SEG_FILE} (${segWritten.segments} segment(s))` : ''}`);
  if (seg && !segWritten) console.log(`no ${SEG_FILE}: no finding is present or uncertain`);
  if (segWritten?.derived.length) console.log(`note: the DICOM series has no ${segWritten.derived.join(', ')} (de-identified?); ${SEG_FILE} names derived ones`);
  return 0;
}
