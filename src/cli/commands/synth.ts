import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Progress, UserError, projectRoot } from '../../common/index.ts';
import { checkOrWriteOptions, datasetStats, formatContrast, formatStats, lesionContrast, readRecord, studyId, synthStudy, writeManifest, writeStudy, writePreviews, type ManifestStudy } from '../../data/index.ts';
import { intFlag, numFlag, parseFlags, requireFlag } from '../args.ts';
import { readVolume } from '../../volume/index.ts';
import { loadOrganScheme } from '../../anatomy/index.ts';

export const summary = 'generate a synthetic dataset with exact ground truth';

export const USAGE = `usage: ctground synth --out DIR --cases N --seed S [--background phantom|real] [--size N] [--spacing MM] [--split-seed S] [--real-dir DIR]
       ctground synth --preview DIR [--png-dir DIR] [--limit N]
       ctground synth --stats DIR [--split S] [--json] [--contrast]`;

/** The TotalSegmentator example folder: --real-dir, else $CTGROUND_SHARED, else ../shared next to the project. */
function realDir(flag: string | undefined): string {
  const dir = flag ?? join(process.env.CTGROUND_SHARED ?? resolve(projectRoot, '..', 'shared'), 'data', 'totalsegmentator');
  if (!existsSync(join(dir, 'example_ct.nii.gz')) || !existsSync(join(dir, 'example_seg.nii.gz'))) {
    throw new UserError(`${dir}: no example_ct.nii.gz + example_seg.nii.gz here (the real background needs them; give --real-dir)`);
  }
  return dir;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    out: { type: 'string' }, cases: { type: 'string' }, seed: { type: 'string' }, background: { type: 'string' },
    size: { type: 'string' }, spacing: { type: 'string' }, 'split-seed': { type: 'string' }, 'real-dir': { type: 'string' },
    preview: { type: 'string' }, 'png-dir': { type: 'string' }, limit: { type: 'string' }, help: { type: 'boolean' },
    stats: { type: 'string' }, split: { type: 'string' }, json: { type: 'boolean' }, contrast: { type: 'boolean' },
  }, false);
  if (values.help) { console.log(USAGE); return 0; }
  if (values.stats) {
    const st = datasetStats(values.stats, values.split);
    // --contrast reads every CT and mask: how visible each kind of generated lesion is
    const contrast = values.contrast ? await lesionContrast(values.stats, values.split, readVolume, (n) => loadOrganScheme().byName.get(n)?.value) : null;
    console.log(values.json ? JSON.stringify(contrast ? { ...st, contrast } : st) : formatStats(st) + (contrast ? '\n' + formatContrast(contrast) : ''));
    return 0;
  }
  if (values.preview) {
    const n = await writePreviews(values.preview, values['png-dir'] ?? join(values.preview, 'preview'), intFlag(values.limit, "limit", 1_000_000));
    console.log(`wrote ${n} preview PNGs`);
    return 0;
  }
  const out = requireFlag(values.out, 'out');
  const cases = intFlag(requireFlag(values.cases, 'cases'), 'cases', 0);
  const seed = intFlag(requireFlag(values.seed, 'seed'), 'seed', 0);
  const background = values.background ?? 'phantom';
  if (background !== 'phantom' && background !== 'real') throw new UserError(`--background must be phantom or real, got '${background}'`);
  const size = intFlag(values.size, 'size', 96);
  const spacing = numFlag(values.spacing, 'spacing', background === 'phantom' ? 4 : 0);
  const splitSeed = intFlag(values['split-seed'], 'split-seed', seed);
  if (cases < 1) throw new UserError(`--cases must be at least 1, got ${cases}`);
  if (size < 32 || size > 512) throw new UserError(`--size must be between 32 and 512, got ${size}`);
  if (spacing < 0 || (background === 'phantom' && spacing < 0.5) || spacing > 20) throw new UserError(`--spacing must be between 0.5 and 20 mm, got ${spacing}`);
  const rd = background === 'real' ? realDir(values['real-dir']) : undefined;
  mkdirSync(out, { recursive: true });
  checkOrWriteOptions(out, { generator: 'ctground-synth-2', background, size: background === 'phantom' ? size : null, spacing, seed, splitSeed, cases });

  const records: ManifestStudy[] = [];
  let resumed = 0;
  const bar = new Progress('synth', cases, 'studies');
  for (let i = 0; i < cases; i++) {
    const id = studyId(i);
    let rec = readRecord(out, id);
    if (rec) resumed++;
    else {
      const study = await synthStudy(i, { background, size, spacing, seed, splitSeed }, rd);
      rec = await writeStudy(out, study, background);
    }
    records.push(rec);
    bar.tick(1, resumed ? `(${resumed} already there)` : '');
  }
  bar.finish();
  writeManifest(out, records);
  const bySplit = new Map<string, number>();
  for (const r of records) bySplit.set(r.split, (bySplit.get(r.split) ?? 0) + 1);
  const nAnom = records.reduce((s, r) => s + r.anomalies.filter((a) => a.mask).length, 0);
  console.log(`${out}: ${records.length} studies (${[...bySplit].map(([k, v]) => `${k} ${v}`).join(', ')}), ${nAnom} anomalies with masks${resumed ? `, ${resumed} kept from an earlier run` : ''}`);
  return 0;
}
