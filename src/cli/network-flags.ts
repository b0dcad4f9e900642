import { UserError } from '../common/index.ts';
import { DEFAULT_CROP, GRID_RULE, WIDTHS_RULE, validGrid, validWidths, type GroundingConfig } from '../model/index.ts';
import { intFlag } from './args.ts';

// Apart from args.ts: it loads model/ (and with it ONNX Runtime), which `ctground info` must not pay for.
/** --grid and --widths: the network size of `train` and `ablation` (absent: the defaults). */
export function networkSizeFlags(values: { grid?: string; widths?: string }): Partial<GroundingConfig> {
  const config: Partial<GroundingConfig> = {};
  if (values.grid) {
    const grid = intFlag(values.grid, 'grid', 32);
    if (!validGrid(grid)) throw new UserError(`--grid ${GRID_RULE}`);
    config.crop = { ...DEFAULT_CROP, grid };
  }
  if (values.widths) {
    const w = values.widths.split(',').map(Number);
    if (!validWidths(w)) throw new UserError(`--widths ${WIDTHS_RULE}, e.g. 8,16,32,48`);
    config.widths = w;
  }
  return config;
}
