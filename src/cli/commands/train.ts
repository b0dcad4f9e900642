import { existsSync } from 'node:fs';
import { UserError } from '../../common/index.ts';
import { parseFlags, requireFlag, intFlag, numFlag } from '../args.ts';
import { maxSpacingFlag, networkSizeFlags, windowsFlag } from '../network-flags.ts';
import { VARIANTS, DEFAULT_TEXT_ENCODER_DIR, type Variant, type GroundingConfig } from '../../model/index.ts';
import { trainGroundingModel } from '../../train/index.ts';

export const summary = 'train a grounding model';

export const USAGE = `usage: ctground train --data DIR[,DIR…] --out DIR [--variant full] [--steps 2000] [--batch 2] [--seed 1] [--resume]
  --data DIR[,DIR…]   dataset folders (their train and val splits pooled)
  --out DIR           the model folder (config.json, weights, training log)
  --variant V         full, anatomy-only, structure-only, baseline or transvg3d (the paper's Table 1)
  --steps N --batch N --lr X --seed S   optimizer steps (2000), batch (2), learning rate (2e-3), seed (1)
  --resume            continue the run in --out
  --init DIR          start from this model's weights (fine-tuning)
  --text DIR          the report text encoder (default models/text-default)
  --grid N --widths A,B,…   network size (default: the shipped model's)
  --validate-every N  validate (and keep the best weights) every N steps (0: at the end)
  --max-studies N     use the first N training studies only
  --no-fine           no fine attention stage
  --max-spacing MM    resample coarser than this (the zoom network: 2)
  --windows LO:HI,…   HU windows of the CT input channels, one channel each
  --balance ALPHA     class-balanced sampling in [0, 1] (0: uniform, 1: every kind equally often)`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    data: { type: 'string' }, variant: { type: 'string' }, out: { type: 'string' }, resume: { type: 'boolean' },
    steps: { type: 'string' }, seed: { type: 'string' }, batch: { type: 'string' }, lr: { type: 'string' },
    grid: { type: 'string' }, widths: { type: 'string' }, text: { type: 'string' }, 'validate-every': { type: 'string' },
    'max-studies': { type: 'string' }, 'no-fine': { type: 'boolean' }, init: { type: 'string' }, 'max-spacing': { type: 'string' },
    windows: { type: 'string' }, balance: { type: 'string' },
  }, false);
  // several dataset folders pool their splits: --data A,B
  const data = requireFlag(values.data, 'data').split(',').filter(Boolean);
  for (const d of data) if (!existsSync(d)) throw new UserError(`${d}: dataset folder not found`);
  if (values.init && !existsSync(values.init)) throw new UserError(`${values.init}: --init model folder not found`);
  const out = requireFlag(values.out, 'out');
  const variant = (values.variant ?? 'full') as Variant;
  if (!VARIANTS.includes(variant)) throw new UserError(`unknown variant '${variant}' (have: ${VARIANTS.join(', ')})`);
  const textDir = values.text ?? DEFAULT_TEXT_ENCODER_DIR;
  if (!existsSync(textDir)) throw new UserError(`${textDir}: text encoder folder not found (pretrain one with \`ctground pretrain-text\` or pass --text DIR)`);
  const config: Partial<GroundingConfig> = networkSizeFlags(values);
  if (values['no-fine']) config.fineAttention = false;
  const steps = intFlag(values.steps, 'steps', 2000);
  const batch = intFlag(values.batch, 'batch', 2);
  if (steps <= 0 || batch <= 0) throw new UserError('--steps and --batch must be positive');
  const r = await trainGroundingModel({
    data, variant, out, steps, batch, textDir, config, init: values.init, maxSpacingMm: maxSpacingFlag(values['max-spacing']), windows: windowsFlag(values.windows),
    seed: intFlag(values.seed, 'seed', 1),
    lr: numFlag(values.lr, 'lr', 2e-3),
    resume: Boolean(values.resume),
    validateEvery: intFlag(values['validate-every'], 'validate-every', 0),
    maxStudies: intFlag(values['max-studies'], 'max-studies', 0),
    balance: balanceFlag(values.balance),
    command: ['ctground', 'train', ...argv].join(' '),
  });
  console.log(`${variant}: best validation ${(100 * r.bestValHit).toFixed(1)}% crop hits, soft Dice ${r.bestValDice.toFixed(3)} at step ${r.bestStep}; ${r.stepsPerSecond.toFixed(2)} steps/s; ${r.anomalies} training anomalies (${r.samples} samples: tiled organs add a tile away from each lesion); written to ${out}`);
  return 0;
}

/** --balance ALPHA: class-balanced sampling exponent in [0, 1] (0: uniform). */
function balanceFlag(value: string | undefined): number {
  const v = numFlag(value, 'balance', 0);
  if (!(v >= 0 && v <= 1)) throw new UserError(`--balance must be in [0, 1] (0: uniform, 1: every kind equally often), got '${value}'`);
  return v;
}
