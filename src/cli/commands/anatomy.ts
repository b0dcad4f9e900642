import { join, resolve } from 'node:path';
import { projectRoot, UserError } from '../../common/index.ts';
import { parseFlags, requireFlag } from '../args.ts';
import { readVolume, writeNifti } from '../../volume/index.ts';
import { evaluateEstimate, organMapFor, organVolumes, EVAL_ORGANS, type Registration } from '../../anatomy/index.ts';

export const summary = 'the organ map ground and label use for a CT (TotalSegmentator\'s or estimated)';

export const USAGE = `usage: ctground anatomy --ct PATH [--labels PATH|DIR] --out FILE [--json]
       ctground anatomy --eval [--data DIR] [--registration anatomy|affine|bspline] [--json]
  --ct      CT volume (.nii/.nii.gz/.nrrd/.mha) or a DICOM series folder
  --labels  TotalSegmentator's output: its 'total' file (v1 or v2 numbering) or its folder of
            per-structure masks (any subset), on the CT's grid or another grid of the same scan
            (--fast); organs it does not hold are estimated from the CT. Without it, all are estimated
  --out     the organ label map in ctground's scheme, on the CT's grid (.nii.gz)
  --json    print the organs and their volumes as JSON
  --eval    leave-one-patient-out Dice of the estimated organs against TotalSegmentator's masks on the
            real CTs the atlases come from (--data: ../shared/data/totalsegmentator)
  --registration  how atlases are brought onto the CT (default affine; the others are what was tried)`;

/** `ctground anatomy`: the very organ map `ground` and `label` would ground in, with per-organ volumes. */
export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    ct: { type: 'string' }, labels: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    eval: { type: 'boolean' }, data: { type: 'string' }, registration: { type: 'string' },
  }, false);
  if (values.help) { console.log(USAGE); return 0; }
  const registration = (values.registration ?? 'affine') as Registration;
  if (!['anatomy', 'affine', 'bspline'].includes(registration)) throw new UserError(`--registration must be anatomy, affine or bspline, got '${values.registration}'`);
  if (values.eval) return evaluate(values.data ?? join(projectRoot, '..', 'shared', 'data', 'totalsegmentator'), registration, Boolean(values.json));
  const ctPath = requireFlag(values.ct, 'ct');
  const out = resolve(requireFlag(values.out, 'out'));
  const t0 = performance.now();
  const ct = await readVolume(ctPath);
  const t1 = performance.now();
  const m = await organMapFor(ct, values.labels ? { labels: values.labels, scheme: 'totalsegmentator' } : {});
  const t2 = performance.now();
  await writeNifti(out, m.labels);
  const given = new Set(m.given);
  const organs = organVolumes(m.labels).map((o) => ({ ...o, origin: given.has(o.organ) ? 'given' : 'estimated' }));
  const seconds = { read: +((t1 - t0) / 1000).toFixed(2), anatomy: +((t2 - t1) / 1000).toFixed(2) };
  if (values.json) {
    console.log(JSON.stringify({ out, source: m.source, given: m.given, estimated: m.estimated, notes: m.notes, organs, seconds }));
    return 0;
  }
  const w = Math.max(5, ...organs.map((o) => o.organ.length));
  console.log(`${'organ'.padEnd(w)}  ${'ml'.padStart(9)}  from`);
  for (const o of organs) console.log(`${o.organ.padEnd(w)}  ${o.ml.toFixed(1).padStart(9)}  ${o.origin}`);
  console.log(`\nanatomy from ${m.source}${m.notes.length ? ` (${m.notes.join('; ')})` : ''}; CT read ${seconds.read} s, organ map ${seconds.anatomy} s`);
  if (m.source === 'estimated') console.log('organs estimated from the CT; for TotalSegmentator\'s organs run `TotalSegmentator -i CT -o seg` and pass --labels seg');
  console.log(`wrote ${out}`);
  return 0;
}

/** `ctground anatomy --eval`: the leave-one-patient-out table, one column per target CT. */
async function evaluate(dir: string, registration: Registration, json: boolean): Promise<number> {
  const rows = await evaluateEstimate(dir, { registration }, (t) => { if (!json) console.error(`${t.name}: ${t.seconds.toFixed(1)} s`); });
  if (json) { console.log(JSON.stringify({ registration, targets: rows })); return 0; }
  const cell = (v: number | string): string => (typeof v === 'number' ? v.toFixed(3) : v);
  const w = 12;
  console.log(`leave-one-patient-out organ Dice (estimated vs TotalSegmentator), registration ${registration}`);
  console.log(['organ'.padEnd(13), ...rows.map((r) => `${r.patient}:${r.name.split(' ')[0]}`.padStart(w + 12))].join(''));
  for (const o of EVAL_ORGANS) console.log([o.padEnd(13), ...rows.map((r) => cell(r.dice[o]).padStart(w + 12))].join(''));
  console.log(['atlases'.padEnd(13), ...rows.map((r) => r.atlases.join('+').padStart(w + 12))].join(''));
  console.log(['seconds'.padEnd(13), ...rows.map((r) => r.seconds.toFixed(1).padStart(w + 12))].join(''));
  console.log("'no atlas': no other patient's atlas holds the organ; 'absent': TotalSegmentator finds none in the target");
  return 0;
}
