import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { projectRoot, UserError } from '../../common/index.ts';
import { parseFlags, thresholdFlag } from '../args.ts';
import { denseVolume, readVolume } from '../../volume/index.ts';
import { iouAt, ACCURACY_THRESHOLD } from '../../eval/index.ts';
import { groundStudy, writeGroundingOutputs, findingsTable, loadGrounderWithFallback } from '../../pipeline/index.ts';

export const summary = 'ground the bundled example study end to end';

export const USAGE = `usage: ctground demo [--out DIR] [--model DIR|oracle:NAME] [--threshold T]
  --out        where the outputs go (default out/demo)
  --model      trained model folder (default models/grounding-default) or oracle:organ|organ-side|prior
  --threshold  probability at which a voxel belongs to a finding (default: the model's own)`;

export const DEMO_DIR = join(projectRoot, 'examples', 'demo');

interface DemoRecord { id: string; ct: string; report: string; labels?: string; anomalies?: { id: string; organ: string; type: string; mask?: string }[] }

/** The bundled example: the real CT of ../shared with inserted lesions, its report and organ label map (our scheme). */
export function demoStudy(): DemoRecord {
  const file = join(DEMO_DIR, 'manifest.jsonl');
  if (!existsSync(file)) throw new UserError(`${file}: the bundled example is missing`);
  return JSON.parse(readFileSync(file, 'utf8').split('\n')[0]!) as DemoRecord;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, { out: { type: 'string' }, model: { type: 'string' }, threshold: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, false);
  if (values.help) { console.log(USAGE); return 0; }
  const out = resolve(values.out ?? join(projectRoot, 'out', 'demo'));
  const threshold = thresholdFlag(values.threshold);
  const rec = demoStudy();
  const t0 = performance.now();
  const { grounder, note } = await loadGrounderWithFallback(values.model);
  if (note) console.log(note);
  const report = readFileSync(join(DEMO_DIR, rec.report), 'utf8');
  console.log(`report (${rec.report}):\n  ${report.trim().replace(/\n+/g, '\n  ')}\n`);
  const r = await groundStudy({ ct: join(DEMO_DIR, rec.ct), report, reportName: rec.report, labels: rec.labels && join(DEMO_DIR, rec.labels) }, grounder, { threshold });
  await writeGroundingOutputs(out, r);
  console.log(findingsTable(r.findings));
  // the example knows where its lesions were inserted: say how well each was found (the paper's criterion)
  const gold = (rec.anomalies ?? []).filter((a) => a.mask);
  if (gold.length) {
    console.log(`\ninserted lesions vs findings (IoU at threshold ${ACCURACY_THRESHOLD}):`);
    for (const g of gold) {
      const mask = await readVolume(join(DEMO_DIR, g.mask!));
      let best = { iou: 0, id: '-' };
      for (const f of r.findings) {
        const iou = iouAt(denseVolume(r.maps.get(f.id)!).data, mask.data, ACCURACY_THRESHOLD);
        if (iou > best.iou) best = { iou, id: f.id };
      }
      console.log(`  ${g.organ} ${g.type.replace(/_/g, ' ')}: IoU ${best.iou.toFixed(2)} (finding ${best.id})${best.iou > 0.1 ? '' : '  NOT FOUND'}`);
    }
  }
  const rel = (p: string): string => relative(process.cwd(), p) || '.';
  console.log(`\nmodel ${r.model}; grounded in ${((performance.now() - t0) / 1000).toFixed(1)} s. Files in ${rel(out)}/:`);
  console.log(`  findings.json      every anomaly: organ, type, certainty, phrases, box (voxel + RAS mm), peak/mean score, volume`);
  console.log(`  maps/<id>.nii.gz   probability map per finding, on the CT's grid (uint8 × scl_slope 1/255: NIfTI readers give probabilities); none for a negated one`);
  console.log(`  labels.nii.gz      thresholded findings, one label value per anomaly`);
  console.log(`  overview.png       each finding's best slice with its map, box and phrases`);
  console.log(`review them in the browser: npx ctground serve   (or node bin/ctground.js serve)`);
  return 0;
}
