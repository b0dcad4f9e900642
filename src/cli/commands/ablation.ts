import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { UserError, writeFileAtomic } from '../../common/index.ts';
import { parseFlags, requireFlag, intFlag, numFlag } from '../args.ts';
import { networkSizeFlags } from '../network-flags.ts';
import { readVolume } from '../../volume/index.ts';
import {
  readManifest, splitOf, evaluateStudies, medianLesionMm3, evalJson, oracleGrounder, schemeOrganLookup, ORACLE_NAMES, type OracleName,
} from '../../eval/index.ts';
import { DEFAULT_CROP, DEFAULT_TEXT_ENCODER_DIR, VARIANTS, anomalyBox, loadGroundingModel, usesAnatomy, usesStructure, type CropRegion, type GroundingModel, type Variant } from '../../model/index.ts';
import { trainGroundingModel } from '../../train/index.ts';

export const summary = 'train and evaluate every variant and the oracles: the paper\'s Table 1 as markdown';

export const USAGE = `usage: ctground ablation --data DIR[,DIR…] --test DIR[,DIR…] --out DIR [--steps 2500] [--seed 1] [--variants LIST] [--crops shared|paper]
  --data, --test   training and test dataset folders
  --out DIR        one folder per variant and oracle, and ablation.md (the paper's Table 1); a rerun resumes
  --variants LIST  which of full, anatomy-only, structure-only, baseline, transvg3d (default all)
  --crops shared   every variant gets the organ crop; paper: only full (the others see the body)
  --steps N --batch N --lr X --seed S --validate-every N   training settings per variant
  --grid N --widths A,B,…   network size; --text DIR: the text encoder`;

interface Row { method: string; anatomy: string; structuring: string; crop: string; steps: string; scores: Map<string, Record<string, unknown>> }

const pct = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? (100 * x).toFixed(1) : '–');

/**
 * Every step leaves its result on disk (a trained variant folder, one eval JSON per test set), and a
 * rerun skips what is there: a killed ablation resumes where it stopped.
 */
export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    data: { type: 'string' }, test: { type: 'string' }, out: { type: 'string' }, steps: { type: 'string' }, seed: { type: 'string' },
    variants: { type: 'string' }, crops: { type: 'string' }, grid: { type: 'string' }, widths: { type: 'string' }, batch: { type: 'string' }, lr: { type: 'string' }, text: { type: 'string' }, 'validate-every': { type: 'string' },
  }, false);
  const data = requireFlag(values.data, 'data').split(',').filter(Boolean);
  const tests = requireFlag(values.test, 'test').split(',').filter(Boolean);
  const out = resolve(requireFlag(values.out, 'out'));
  for (const d of [...data, ...tests]) if (!existsSync(join(d, 'manifest.jsonl'))) throw new UserError(`${d}: not a dataset folder (no manifest.jsonl)`);
  const variants = (values.variants ?? VARIANTS.join(',')).split(',') as Variant[];
  for (const v of variants) if (!VARIANTS.includes(v)) throw new UserError(`unknown variant '${v}' (have: ${VARIANTS.join(', ')})`);
  const steps = intFlag(values.steps, 'steps', 2500), seed = intFlag(values.seed, 'seed', 1);
  const textDir = values.text ?? DEFAULT_TEXT_ENCODER_DIR;
  // network size (default: the shipped models'); small sizes keep tests and quick looks cheap
  const config = networkSizeFlags(values);
  // --crops shared: every variant gets the organ crop, so variants differ in their inputs alone;
  // --crops paper: a crop around the organ needs both the organ (structuring) and where it is
  // (anatomy), so only `full` has one and the others see the body, as the paper's baseline sees the whole CT
  const crops = values.crops ?? 'shared';
  if (crops !== 'shared' && crops !== 'paper') throw new UserError(`--crops must be 'shared' or 'paper', not '${crops}'`);
  const region = (v: Variant): CropRegion => (crops === 'paper' && v !== 'full' ? 'body' : 'organ');
  const configOf = (v: Variant) => (region(v) === 'body' ? { ...config, crop: { ...DEFAULT_CROP, ...config.crop, region: 'body' as const } } : config);
  mkdirSync(out, { recursive: true });
  const command = ['ctground', 'ablation', ...argv].join(' ');
  const read = (p: string) => readVolume(p);

  const evalInto = async (dir: string, model: GroundingModel) => {
    const scores = new Map<string, Record<string, unknown>>();
    for (const t of tests) {
      const file = join(dir, `eval-${basename(resolve(t))}.json`);
      if (!existsSync(file)) {
        const r = await evaluateStudies(model, t, splitOf(readManifest(t), 'all'), { read, organs: schemeOrganLookup, groundingBox: anomalyBox, split: 'all' });
        writeFileAtomic(file, JSON.stringify(evalJson(r)) + '\n');
      }
      scores.set(t, JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>);
    }
    return scores;
  };

  const rows: Row[] = [];
  const priorMm3 = await medianLesionMm3(data[0]!, splitOf(readManifest(data[0]!), 'train'), read);
  for (const name of ORACLE_NAMES) {
    const dir = join(out, `oracle-${name}`);
    mkdirSync(dir, { recursive: true });
    rows.push({ method: `oracle: ${name}`, anatomy: 'labels', structuring: 'gold', crop: '–', steps: '–', scores: await evalInto(dir, oracleGrounder(name as OracleName, { organs: schemeOrganLookup, priorVolumeMm3: priorMm3 })) });
  }
  for (const v of variants) {
    const dir = join(out, v);
    const cfgPath = join(dir, 'config.json');
    const done = existsSync(cfgPath) ? (JSON.parse(readFileSync(cfgPath, 'utf8')) as { training?: { stepsDone?: number } }).training?.stepsDone ?? 0 : 0;
    if (done < steps) {
      process.stderr.write(`ablation: training ${v} (${done} → ${steps} steps)\n`);
      // evaluations of the shorter run are stale once it trains on
      for (const f of existsSync(dir) ? readdirSync(dir) : []) if (/^eval-.*\.json$/.test(f)) rmSync(join(dir, f));
      await trainGroundingModel({
        data, variant: v, out: dir, steps, seed, textDir, resume: true, config: configOf(v), quiet: Boolean(process.env.CTGROUND_QUIET),
        batch: intFlag(values.batch, 'batch', 2), lr: numFlag(values.lr, 'lr', 2e-3),
        validateEvery: intFlag(values['validate-every'], 'validate-every', 500), command: `${command}  (variant ${v})`,
      });
    }
    const model = await loadGroundingModel(dir);
    try {
      rows.push({ method: v, anatomy: usesAnatomy(v) ? '✓' : '✗', structuring: usesStructure(v) ? '✓' : '✗', crop: region(v), steps: String(steps), scores: await evalInto(dir, model) });
    } finally {
      await model.dispose();
    }
  }

  const lines = [`# Ablation (paper Table 1 layout)`, '', `Made by \`${command}\` (seed ${seed}); training data ${data.join(' + ')}; every variant trained from scratch for the same number of steps; crops ${crops === 'paper' ? 'as each variant\'s inputs allow (organ: full only; the others the body, tiled)' : 'around the named organ for every variant'}. Synthetic data: not clinical figures.`, ''];
  for (const t of tests) {
    lines.push(`## Test set ${t} (all studies)`, '', '| method | anatomy | structuring | crop | steps | Dice % | mIoU % | accuracy % | focal accuracy % | focal Dice % | n |', '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const r of rows) {
      const s = r.scores.get(t)!;
      const focal = s.focal as Record<string, number>;
      lines.push(`| ${r.method} | ${r.anatomy} | ${r.structuring} | ${r.crop} | ${r.steps} | ${pct(s.dice)} | ${pct(s.miou)} | ${pct(s.accuracy)} | ${pct(focal.accuracy)} | ${pct(focal.dice)} | ${String(s.n)} |`);
    }
    lines.push('');
  }
  writeFileAtomic(join(out, 'ablation.md'), lines.join('\n'));
  console.log(lines.join('\n'));
  return 0;
}
