import { existsSync } from 'node:fs';
import { UserError } from '../../common/index.ts';
import { parseFlags, requireFlag, intFlag, numFlag } from '../args.ts';
import { VARIANTS, DEFAULT_TEXT_ENCODER_DIR, type Variant, type GroundingConfig } from '../../model/index.ts';
import { trainGroundingModel } from '../../train/index.ts';

export const summary = 'train a grounding model';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    data: { type: 'string' }, variant: { type: 'string' }, out: { type: 'string' }, resume: { type: 'boolean' },
    steps: { type: 'string' }, seed: { type: 'string' }, batch: { type: 'string' }, lr: { type: 'string' },
    grid: { type: 'string' }, widths: { type: 'string' }, text: { type: 'string' }, 'validate-every': { type: 'string' },
    'max-studies': { type: 'string' }, 'no-fine': { type: 'boolean' }, init: { type: 'string' },
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
  const config: Partial<GroundingConfig> = {};
  if (values.grid) {
    const grid = intFlag(values.grid, 'grid', 32);
    if (grid % 8 !== 0 || grid < 16) throw new UserError('--grid must be a multiple of 8, at least 16');
    config.crop = { ...(await import('../../model/index.ts')).DEFAULT_CROP, grid };
  }
  if (values.widths) {
    const w = values.widths.split(',').map(Number);
    if (w.length !== 4 || w.some((x) => !Number.isInteger(x) || x <= 0)) throw new UserError('--widths takes four positive integers, e.g. 8,16,32,48');
    config.widths = w as [number, number, number, number];
  }
  if (values['no-fine']) config.fineAttention = false;
  const steps = intFlag(values.steps, 'steps', 2000);
  const batch = intFlag(values.batch, 'batch', 2);
  if (steps <= 0 || batch <= 0) throw new UserError('--steps and --batch must be positive');
  const r = await trainGroundingModel({
    data, variant, out, steps, batch, textDir, config, init: values.init,
    seed: intFlag(values.seed, 'seed', 1),
    lr: numFlag(values.lr, 'lr', 2e-3),
    resume: Boolean(values.resume),
    validateEvery: intFlag(values['validate-every'], 'validate-every', 0),
    maxStudies: intFlag(values['max-studies'], 'max-studies', 0),
    command: ['ctground', 'train', ...argv].join(' '),
  });
  console.log(`${variant}: best validation ${(100 * r.bestValHit).toFixed(1)}% crop hits, soft Dice ${r.bestValDice.toFixed(3)} at step ${r.bestStep}; ${r.stepsPerSecond.toFixed(2)} steps/s; ${r.samples} training anomalies; written to ${out}`);
  return 0;
}
