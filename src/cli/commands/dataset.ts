import { Progress, UserError } from '../../common/index.ts';
import { checkDataset, importRexGrounding, importStudy } from '../../data/index.ts';
import { intFlag, parseFlags, requireFlag } from '../args.ts';

export const summary = 'dataset tools: check DIR, import-rexgrounding SRC --out DIR, import --ct --mask --findings --out DIR';

export const USAGE = `usage: ctground dataset check DIR
       ctground dataset import-rexgrounding SRC --out DIR [--ct-dir DIR] [--json FILE] [--limit N]
       ctground dataset import --ct CT --findings FINDINGS.json --out DIR [--mask MASK] [--labels LABELS] [--labels-scheme auto|totalsegmentator|ctground] [--id ID] [--split train|val|test]`;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h') { console.log(USAGE); return sub ? 0 : 1; }
  if (sub === 'check') {
    const { positionals } = parseFlags(rest, {});
    const dir = positionals[0];
    if (!dir || positionals.length > 1) throw new UserError('usage: ctground dataset check DIR');
    let bar: Progress | undefined;
    const r = await checkDataset(dir, (done, total) => { bar ??= new Progress('check', total, 'studies'); bar.set(done); });
    bar?.finish();
    for (const p of r.problems) console.log(p);
    console.log(r.problems.length ? `${dir}: ${r.problems.length} problem(s) in ${r.studies} studies` : `${dir}: OK, ${r.studies} studies, ${r.anomalies} anomalies`);
    return r.problems.length ? 1 : 0;
  }
  if (sub === 'import-rexgrounding') {
    const { values, positionals } = parseFlags(rest, { out: { type: 'string' }, 'ct-dir': { type: 'string' }, json: { type: 'string' }, limit: { type: 'string' } });
    const src = positionals[0];
    if (!src) throw new UserError('usage: ctground dataset import-rexgrounding SRC --out DIR [--ct-dir DIR]');
    let bar: Progress | undefined;
    const r = await importRexGrounding(src, requireFlag(values.out, 'out'), {
      ctDir: values['ct-dir'], json: values.json, limit: values.limit ? intFlag(values.limit, 'limit', 0) : undefined,
      onStudy: (d, t) => { bar ??= new Progress('import', t, 'studies'); bar.set(d); },
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
