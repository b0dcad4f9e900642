import { Progress, UserError } from '../../common/index.ts';
import { checkDataset, importLidc, importRexGrounding, importStudy, type LidcSplit } from '../../data/index.ts';
import { intFlag, numFlag, parseFlags, requireFlag } from '../args.ts';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { projectRoot } from '../../common/index.ts';

export const summary = 'dataset tools: check DIR, import-lidc --out DIR --seed S --splits S, import-rexgrounding SRC --out DIR, import --ct --mask --findings --out DIR';

export const USAGE = `usage: ctground dataset check DIR
       ctground dataset import-rexgrounding SRC --out DIR [--ct-dir DIR] [--json FILE] [--limit N]
       ctground dataset import-lidc --out DIR --seed S --splits test|val|train[,...] [--findings 1|2] [--split-seed S] [--spacing MM] [--lidc-dir DIR] [--real-dir DIR] [--limit N]
       ctground dataset import --ct CT --findings FINDINGS.json --out DIR [--mask MASK] [--labels LABELS] [--labels-scheme auto|totalsegmentator|ctground] [--id ID] [--split train|val|test]`;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  // progress rates count from here: the first callback comes only when a study is done
  const started = Date.now();
  if (!sub || sub === '--help' || sub === '-h') { console.log(USAGE); return sub ? 0 : 1; }
  if (sub === 'check') {
    const { positionals } = parseFlags(rest, {});
    const dir = positionals[0];
    if (!dir || positionals.length > 1) throw new UserError('usage: ctground dataset check DIR');
    let bar: Progress | undefined;
    const r = await checkDataset(dir, (done, total) => { bar ??= new Progress('check', total, 'studies', 0, { since: started }); bar.set(done); });
    bar?.finish();
    for (const p of r.problems) console.log(p);
    console.log(r.problems.length ? `${dir}: ${r.problems.length} problem(s) in ${r.studies} studies` : `${dir}: OK, ${r.studies} studies, ${r.anomalies} anomalies`);
    return r.problems.length ? 1 : 0;
  }
  if (sub === 'import-lidc') {
    const { values } = parseFlags(rest, {
      out: { type: 'string' }, seed: { type: 'string' }, splits: { type: 'string' }, findings: { type: 'string' }, 'split-seed': { type: 'string' },
      spacing: { type: 'string' }, 'lidc-dir': { type: 'string' }, 'real-dir': { type: 'string' }, limit: { type: 'string' },
    });
    const shared = join(process.env.CTGROUND_SHARED ?? resolve(projectRoot, '..', 'shared'), 'data');
    const lidcDir = values['lidc-dir'] ?? join(shared, 'lidc-nodules'), realDir = values['real-dir'] ?? join(shared, 'totalsegmentator');
    if (!existsSync(join(lidcDir, 'nodules.csv'))) throw new UserError(`${lidcDir}: no nodules.csv here (give --lidc-dir, the LIDC nodule folder with nodules.csv, image/, mask/)`);
    if (!existsSync(join(realDir, 'example_ct_sm.nii.gz')) || !existsSync(join(realDir, 'example_seg.nii.gz'))) throw new UserError(`${realDir}: no example_ct_sm.nii.gz + example_seg.nii.gz here (give --real-dir)`);
    const splits = requireFlag(values.splits, 'splits').split(',').filter(Boolean);
    for (const s of splits) if (!['train', 'val', 'test'].includes(s)) throw new UserError(`--splits takes train, val and test, got '${s}'`);
    const findings = intFlag(values.findings, 'findings', 1);
    if (findings !== 1 && findings !== 2) throw new UserError(`--findings must be 1 or 2, got ${findings}`);
    const spacing = numFlag(values.spacing, 'spacing', 1.5);
    if (!(spacing >= 0.5 && spacing <= 4)) throw new UserError(`--spacing must be between 0.5 and 4 mm, got ${spacing}`);
    const out = requireFlag(values.out, 'out');
    let bar: Progress | undefined;
    const r = await importLidc({
      lidcDir, realDir, out, seed: intFlag(requireFlag(values.seed, 'seed'), 'seed', 0), splitSeed: intFlag(values['split-seed'], 'split-seed', 27),
      splits: splits as LidcSplit[], findings, spacing, limit: values.limit ? intFlag(values.limit, 'limit', 0) : undefined,
      onStudy: (d, t) => { bar ??= new Progress('import-lidc', t, 'studies', 0, { since: started }); bar.set(d); },
    });
    bar?.finish();
    for (const s of r.skipped) console.log(`skipped ${s}`);
    const nodules = r.records.reduce((s, x) => s + x.anomalies.filter((a) => a.mask).length, 0);
    console.log(`${out}: ${r.records.length} studies, ${nodules} transplanted LIDC-IDRI nodules${r.skipped.length ? `, ${r.skipped.length} skipped (listed above)` : ''}${r.resumed ? `, ${r.resumed} kept from an earlier run` : ''}`);
    return 0;
  }
  if (sub === 'import-rexgrounding') {
    const { values, positionals } = parseFlags(rest, { out: { type: 'string' }, 'ct-dir': { type: 'string' }, json: { type: 'string' }, limit: { type: 'string' } });
    const src = positionals[0];
    if (!src) throw new UserError('usage: ctground dataset import-rexgrounding SRC --out DIR [--ct-dir DIR]');
    let bar: Progress | undefined;
    const r = await importRexGrounding(src, requireFlag(values.out, 'out'), {
      ctDir: values['ct-dir'], json: values.json, limit: values.limit ? intFlag(values.limit, 'limit', 0) : undefined,
      onStudy: (d, t) => { bar ??= new Progress('import', t, 'studies', 0, { since: started }); bar.set(d); },
    });
    bar?.finish();
    for (const s of r.skipped) console.log(s);
    console.log(`${values.out}: ${r.imported} studies imported${r.skipped.length ? `, ${r.skipped.length} notes above` : ''}`);
    return 0;
  }
  if (sub === 'import') {
    const { values } = parseFlags(rest, {
      ct: { type: 'string' }, mask: { type: 'string' }, findings: { type: 'string' }, out: { type: 'string' }, labels: { type: 'string' },
      'labels-scheme': { type: 'string' }, id: { type: 'string' }, split: { type: 'string' },
    }, false);
    const scheme = values['labels-scheme'] ?? 'auto';
    if (!['auto', 'totalsegmentator', 'ctground'].includes(scheme)) throw new UserError(`--labels-scheme must be auto, totalsegmentator or ctground, got '${scheme}'`);
    if (values.split && !['train', 'val', 'test'].includes(values.split)) throw new UserError(`--split must be train, val or test, got '${values.split}'`);
    const rec = await importStudy({
      ct: requireFlag(values.ct, 'ct'), findings: requireFlag(values.findings, 'findings'), out: requireFlag(values.out, 'out'),
      mask: values.mask, labels: values.labels, labelScheme: scheme as 'auto', id: values.id, split: values.split,
    });
    console.log(`${values.out}: imported study ${rec.id} with ${rec.anomalies.length} anomalies`);
    return 0;
  }
  throw new UserError(`unknown dataset subcommand '${sub}'`, 2, USAGE);
}
