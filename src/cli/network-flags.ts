import { UserError } from '../common/index.ts';
import { DEFAULT_CROP, GRID_RULE, MAX_SPACING_RULE, WIDTHS_RULE, WINDOWS_RULE, validGrid, validMaxSpacing, validWidths, validWindows, type GroundingConfig } from '../model/index.ts';
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

/** --max-spacing MM|none: the coarsest spacing before an organ is tiled (none: one cube per organ); absent: undefined. */
export function maxSpacingFlag(value: string | undefined): number | null | undefined {
  if (value === undefined) return undefined;
  if (value === 'none') return null;
  const v = Number(value);
  if (!validMaxSpacing(v)) throw new UserError(`--max-spacing ${MAX_SPACING_RULE} or 'none', not '${value}'`);
  return v;
}

/** --windows LO:HI,LO:HI,…: the CT windows, one input channel each (absent: undefined). */
export function windowsFlag(value: string | undefined): [number, number][] | undefined {
  if (value === undefined) return undefined;
  const w = value.split(',').map((p) => p.split(':').map((x) => (x.trim() === '' ? NaN : Number(x))));
  if (!validWindows(w)) throw new UserError(`--windows ${WINDOWS_RULE}, e.g. --windows=-1000:400,-160:240,-200:1200; got '${value}'`);
  return w;
}
