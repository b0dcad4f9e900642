import { UserError } from '../common/index.ts';
import { DEFAULT_CROP, type GroundingConfig } from '../model/index.ts';
import { intFlag } from './args.ts';

// Apart from args.ts: it loads model/ (and with it ONNX Runtime), which `ctground info` must not pay for.
/** --grid and --widths: the network size of `train` and `ablation` (absent: the defaults). */
export function networkSizeFlags(values: { grid?: string; widths?: string }): Partial<GroundingConfig> {
  const config: Partial<GroundingConfig> = {};
  if (values.grid) {
    const grid = intFlag(values.grid, 'grid', 32);
    if (grid % 8 !== 0 || grid < 16) throw new UserError('--grid must be a multiple of 8, at least 16');
    config.crop = { ...DEFAULT_CROP, grid };
  }
  if (values.widths) {
    const w = values.widths.split(',').map(Number);
    if (w.length !== 4 || w.some((x) => !Number.isInteger(x) || x <= 0)) throw new UserError('--widths takes four positive integers, e.g. 8,16,32,48');
    config.widths = w as [number, number, number, number];
  }
  return config;
}
