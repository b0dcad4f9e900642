import { UserError } from '../../common/index.ts';
import { parseFlags, requireFlag, intFlag } from '../args.ts';
import { readVolume, type Volume } from '../../volume/index.ts';
import {
  readManifest, splitOf, evaluateStudies, medianLesionMm3, formatEval, evalJson, oracleGrounder, schemeOrganLookup, ORACLE_NAMES, type OracleName,
  setKind, realFirst, formatSetTable, type EvalResult, type SetKind,
} from '../../eval/index.ts';
import { anomalyBox, loadGroundingModel } from '../../model/index.ts';

export const summary = 'evaluate a model or an oracle on a dataset';

export const USAGE = `usage: ctground eval --data DIR[,DIR…] (--model DIR | --oracle organ|organ-side|prior) [--split test] [--limit N] [--json]
  --data         dataset folder (manifest.jsonl); several: each evaluated, real-lesion sets first, then a table of all
  --model        trained model folder, or --oracle NAME: an oracle that knows the organs (the bounds a model is read against)
  --split        train, val, test or all (default test)
  --limit N      the first N studies of the split
  --json         the metrics as one JSON object
  --prior-data DIR --prior-split S   where the prior oracle's lesion size comes from (default: --data, train)
  --anatomy dataset|estimated|hu   the organ map grounded in: the study's labels (default), estimated from the CT
                 as \`ground\` does without --labels, or HU alone (the former fallback);
                 --leave-out-patient P drops patient P's atlases (for a set made from them)
prints Dice, mIoU at 0.1–0.5 and grounding accuracy (IoU > 0.1 at threshold 0.1)`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    model: { type: 'string' }, oracle: { type: 'string' }, data: { type: 'string' }, split: { type: 'string' },
    json: { type: 'boolean' }, limit: { type: 'string' }, 'prior-split': { type: 'string' }, 'prior-data': { type: 'string' },
    anatomy: { type: 'string' }, 'leave-out-patient': { type: 'string' },
  }, false);
  const anatomyMode = values.anatomy ?? 'dataset';
  if (!['dataset', 'estimated', 'hu'].includes(anatomyMode)) throw new UserError(`--anatomy must be dataset, estimated or hu, got '${anatomyMode}'`);
  if (values['leave-out-patient'] && anatomyMode !== 'estimated') throw new UserError('--leave-out-patient needs --anatomy estimated');
  let anatomy: ((ct: Volume) => Promise<Volume>) | undefined;
  if (anatomyMode === 'estimated') {
    const { estimateAnatomy, loadAtlases } = await import('../../anatomy/index.ts');
    const atlases = (await loadAtlases()).filter((a) => a.patient !== values['leave-out-patient']);
    anatomy = (ct) => estimateAnatomy(ct, { atlases });
  } else if (anatomyMode === 'hu') {
    // the HU-only map `ground` used before the atlases: kept measurable beside the estimate
    const { fallbackAnatomy } = await import('../../anatomy/index.ts');
    anatomy = async (ct) => fallbackAnatomy(ct);
  }
  const dirs = requireFlag(values.data, 'data').split(',').filter(Boolean);
  if (Boolean(values.model) === Boolean(values.oracle)) throw new UserError('give exactly one of --model DIR or --oracle NAME (organ, organ-side, prior)');
  const split = values.split ?? 'test';
  const limit = intFlag(values.limit, 'limit', 0);
  // real lesions decide: their sets are evaluated and listed first, generated ones after
  const sets = realFirst(dirs.map((dir) => { const studies = readManifest(dir); return { dir, studies, kind: setKind(studies) as SetKind }; }));
  const read = (p: string) => readVolume(p);
  let model;
  if (values.oracle) {
    const name = values.oracle as OracleName;
    if (!ORACLE_NAMES.includes(name)) throw new UserError(`unknown oracle '${values.oracle}' (have: ${ORACLE_NAMES.join(', ')})`);
    // the blob size comes from a TRAINING split: of --prior-data (the training set) when the evaluated set is a separate test set
    const priorData = values['prior-data'] ?? dirs[0]!;
    const priorVolumeMm3 = name === 'prior' ? await medianLesionMm3(priorData, splitOf(readManifest(priorData), values['prior-split'] ?? 'train'), read) : undefined;
    model = oracleGrounder(name, { organs: schemeOrganLookup, priorVolumeMm3 });
  } else {
    model = await loadGroundingModel(values.model);
  }
  const rows: { kind: SetKind; result: EvalResult }[] = [];
  for (const { dir, studies, kind } of sets) {
    let chosen = splitOf(studies, split);
    if (limit > 0) chosen = chosen.slice(0, limit);
    const result = await evaluateStudies(model, dir, chosen, { read, organs: schemeOrganLookup, groundingBox: anomalyBox, split, quiet: values.json, anatomy });
    if (values.json) console.log(JSON.stringify(evalJson(result)));
    else console.log((rows.length ? '\n' : '') + formatEval(result));
    rows.push({ kind, result });
  }
  if (!values.json && rows.length > 1) console.log('\n' + formatSetTable(rows));
  return 0;
}
