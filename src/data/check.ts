import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTaxonomy } from '../common/index.ts';
import { loadOrganScheme } from '../anatomy/index.ts';
import { readVolume, type Volume } from '../volume/index.ts';
import type { ManifestStudy } from './dataset.ts';

function sameGrid(a: Volume, b: Volume): string | null {
  if (a.size.some((n, i) => n !== b.size[i])) return `size ${b.size.join('x')} differs from the CT's ${a.size.join('x')}`;
  const close = (x: readonly number[], y: readonly number[], tol: number): boolean => x.every((v, i) => Math.abs(v - y[i]!) <= tol * Math.max(1, Math.abs(v)));
  if (!close(a.spacing, b.spacing, 1e-3)) return `spacing ${b.spacing.map((v) => v.toFixed(3)).join(',')} differs from the CT's ${a.spacing.map((v) => v.toFixed(3)).join(',')}`;
  if (!close(a.origin, b.origin, 1e-3)) return `origin ${b.origin.map((v) => v.toFixed(2)).join(',')} differs from the CT's ${a.origin.map((v) => v.toFixed(2)).join(',')}`;
  if (!close(a.direction, b.direction, 1e-4)) return 'orientation differs from the CT\'s';
  return null;
}

/**
 * Validates a dataset folder against the manifest contract. Returns one line per problem,
 * `<file>: <problem>` (empty = the dataset is good). Reads every volume, so it also catches files
 * that exist but do not open.
 */
export async function checkDataset(dir: string, onStudy?: (done: number, total: number) => void): Promise<{ problems: string[]; studies: number; anomalies: number }> {
  const problems: string[] = [];
  const mf = join(dir, 'manifest.jsonl');
  if (!existsSync(mf)) return { problems: [`${mf}: not found`], studies: 0, anomalies: 0 };
  const tax = loadTaxonomy();
  const organs = new Set(tax.reportOrgans), types = new Set(tax.anomalyTypes.map((t) => t.id)), classes = new Set(tax.phraseClasses), certainties = new Set(tax.certainty);
  const maxLabel = loadOrganScheme().maxValue;
  const lines = readFileSync(mf, 'utf8').split('\n');
  const ids = new Set<string>();
  let nStudies = 0, nAnom = 0;
  const total = lines.filter((l) => l.trim()).length;
  for (let ln = 0; ln < lines.length; ln++) {
    const line = lines[ln]!;
    if (!line.trim()) continue;
    const where = `${mf}:${ln + 1}`;
    let s: ManifestStudy;
    try { s = JSON.parse(line) as ManifestStudy; } catch { problems.push(`${where}: not valid JSON`); continue; }
    nStudies++;
    const missingKeys = (['id', 'ct', 'labels', 'report', 'split'] as const).filter((k) => typeof s[k] !== 'string');
    if (missingKeys.length) { problems.push(`${where}: missing ${missingKeys.map((k) => `"${k}"`).join(', ')}`); continue; }
    if (!Array.isArray(s.anomalies)) { problems.push(`${where}: "anomalies" is not a list`); continue; }
    if (ids.has(s.id)) problems.push(`${where}: study id ${s.id} appears twice`);
    ids.add(s.id);
    // 'unlabeled': what label writes for studies of no split yet (auto-labels to review)
    if (!['train', 'val', 'test', 'unlabeled'].includes(s.split)) problems.push(`${where}: split '${s.split}' is not train, val, test or unlabeled`);
    const open = async (rel: string, what: string): Promise<Volume | null> => {
      const f = join(dir, rel);
      if (!existsSync(f)) { problems.push(`${f}: ${what} of study ${s.id} is missing`); return null; }
      try { return await readVolume(f); } catch (e) { problems.push(`${f}: ${what} of study ${s.id} does not open (${(e as Error).message.split('\n')[0]})`); return null; }
    };
    const ct = await open(s.ct, 'CT');
    const labels = await open(s.labels, 'label map');
    if (ct && labels) {
      const g = sameGrid(ct, labels);
      if (g) problems.push(`${join(dir, s.labels)}: label map of study ${s.id}: ${g}`);
      let bad = 0;
      for (let i = 0; i < labels.data.length; i++) { const v = labels.data[i]!; if (v < 0 || v > maxLabel || !Number.isInteger(v)) bad++; }
      if (bad) problems.push(`${join(dir, s.labels)}: ${bad} voxels with values outside ctground's organ scheme (0..${maxLabel}); convert TotalSegmentator labels with dataset import`);
    }
    let text: string | null = null;
    const rf = join(dir, s.report);
    if (!existsSync(rf)) problems.push(`${rf}: report of study ${s.id} is missing`);
    else text = readFileSync(rf, 'utf8');
    const aids = new Set<string>();
    for (const a of s.anomalies) {
      nAnom++;
      const at = `${where}: anomaly ${a.id ?? '?'}`;
      if (typeof a.id !== 'string') problems.push(`${at}: missing "id"`);
      else if (aids.has(a.id)) problems.push(`${at}: id appears twice in the study`);
      aids.add(a.id);
      if (!organs.has(a.organ)) problems.push(`${at}: organ '${a.organ}' is not a report organ class of the taxonomy`);
      if (!types.has(a.type)) problems.push(`${at}: type '${a.type}' is not an anomaly type of the taxonomy`);
      if (!certainties.has(a.certainty)) problems.push(`${at}: certainty '${a.certainty}' is not present, uncertain or absent`);
      if (!Array.isArray(a.spans)) problems.push(`${at}: "spans" is not a list`);
      else for (const sp of a.spans) {
        if (!classes.has(sp.class)) problems.push(`${at}: span class '${sp.class}' is not a phrase class`);
        if (!Number.isInteger(sp.start) || !Number.isInteger(sp.end) || sp.start < 0 || sp.end <= sp.start) { problems.push(`${at}: span [${sp.start}, ${sp.end}) is not a valid range`); continue; }
        if (text !== null) {
          if (sp.end > text.length) problems.push(`${at}: span [${sp.start}, ${sp.end}) '${sp.text}' runs past the end of the report (${text.length} characters)`);
          else if (text.slice(sp.start, sp.end) !== sp.text) problems.push(`${at}: span [${sp.start}, ${sp.end}) says '${sp.text}' but the report has '${text.slice(sp.start, sp.end)}' there`);
        }
      }
      // label writes "mask": null and "box": null for a negated finding or one below threshold: no mask, no box
      if (a.box !== undefined && a.box !== null) {
        const ok = Array.isArray(a.box) && a.box.length === 2 && a.box.every((c) => Array.isArray(c) && c.length === 3 && c.every((v) => Number.isFinite(v)));
        if (!ok) problems.push(`${at}: box must be [[xmin,ymin,zmin],[xmax,ymax,zmax]] in mm`);
        else if (a.box[0].some((v, k) => v > a.box![1][k]!)) problems.push(`${at}: box min exceeds max`);
      }
      if (a.mask !== undefined && a.mask !== null) {
        const m = await open(a.mask, `mask of anomaly ${a.id}`);
        if (m && ct) {
          const g = sameGrid(ct, m);
          if (g) problems.push(`${join(dir, a.mask)}: mask of study ${s.id} anomaly ${a.id}: ${g}`);
          else {
            let n = 0;
            for (let i = 0; i < m.data.length; i++) if (m.data[i]) n++;
            if (!n) problems.push(`${join(dir, a.mask)}: mask of study ${s.id} anomaly ${a.id} is empty`);
          }
        }
      }
      // null (label's "grounded, no region at the threshold") is an answer; only a missing field is a gap
      if (a.certainty !== 'absent' && a.mask === undefined && a.box === undefined) problems.push(`${at}: a ${a.certainty} anomaly needs a mask or a box`);
    }
    onStudy?.(nStudies, total);
  }
  if (nStudies === 0) problems.push(`${mf}: lists no studies`);
  return { problems, studies: nStudies, anomalies: nAnom };
}
