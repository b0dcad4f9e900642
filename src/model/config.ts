import { fileError, isThreshold, THRESHOLD_RULE } from '../common/index.ts';
import { DEFAULT_CROP, type CropConfig } from './crop.ts';

/** The paper's ablation axes (Table 1) plus the one-stage comparison model. */
export type Variant = 'full' | 'anatomy-only' | 'structure-only' | 'baseline' | 'transvg3d';
export const VARIANTS: readonly Variant[] = ['full', 'anatomy-only', 'structure-only', 'baseline', 'transvg3d'];

export interface GroundingConfig {
  variant: Variant;
  crop: CropConfig;
  /** channel width of each of the four encoder stages (three max-pools between them) */
  widths: [number, number, number, number];
  /** convolutions per stage; the paper's VGG-like encoder has 15 in all */
  convsPerStage: [number, number, number, number];
  /** groups of the group normalization after each convolution (0: none, plain VGG) */
  normGroups: number;
  /** source-target attention width d_n */
  attnDim: number;
  /** also attend on the stage-2 features (2× pooled) and add those logits: sharper maps for small lesions */
  fineAttention: boolean;
  /**
   * fine keys from a light decoder instead of stage 2 alone: the coarse stages are upsampled and
   * merged back stage by stage (3×3×3 convs at 1/4 and 1/2, a 1×1×1 merge at full crop
   * resolution), so the fine map is at crop resolution and every fine key knows its context.
   * false: the stage-2 keys of the first models.
   */
  decoder: boolean;
  /**
   * add a term of the voxel's position inside the anomaly's organ box to the fine keys, so the
   * report's location words ("segment 8", "upper pole", "head of the pancreas") can steer the map:
   * convolutions alone cannot tell where in the crop a voxel is. The position comes from the
   * label map, so only the variants with anatomy use it. false: the models trained before it.
   */
  positional: boolean;
  lstmHidden: number;
  /** token budget of a report (longer reports are cut; counted in WordPiece tokens) */
  maxTokens: number;
  /** length of the aggregator's input sequence [v_organ; p_1; e_1; …] */
  maxAggregate: number;
  /** text encoder folder relative to the model folder, or absolute; null: a fresh small encoder */
  textEncoder: string | null;
  /**
   * SHA-256 of the text encoder's model.safetensors this model was trained with: loading refuses a
   * different encoder (its token states would not be what the head learned to read)
   */
  textEncoderSha256?: string;
  /** the first K text encoder layers stay frozen (the paper freezes 8 of 12) */
  frozenTextLayers: number;
  /**
   * weight of a binary cross-entropy term added to the Dice loss. Dice alone on lesions that are
   * 0.1 % of a crop collapsed to all-zero maps (saturated sigmoid, no gradient) in our runs; the
   * BCE term keeps the logits in range. 0 gives the paper's pure Dice loss.
   */
  bceWeight: number;
  /**
   * weight of a localization term: cross-entropy of a softmax over the crop's voxels against the
   * normalized target, −Σ t̂·log softmax(z). Dice and BCE both let a lesion of a few voxels go
   * (predicting nothing costs almost nothing); this term weighs a 1-voxel stone like a 5 cm mass,
   * so every anomaly pulls its peak onto itself. 0: off (models trained before it).
   */
  locWeight: number;
  /** smoothing ε of the Dice loss 1 − (2Σpt + ε)/(Σp + Σt + ε); ε = 1 made a 1-voxel target's Dice nearly free */
  diceSmooth: number;
  /**
   * The report says the anomaly is there, so its map must point somewhere: when a map's peak is
   * below this probability, its logits are shifted up until the peak reaches it (shape kept).
   * 0: maps as the sigmoid gives them (models trained before it).
   */
  minPeak: number;
  /**
   * Calibration of the maps: logits are divided by it before the sigmoid (and the minPeak rule),
   * chosen on validation data like minPeak; under 1 sharpens a map around its peak. Absent: 1.
   */
  temperature?: number;
  /**
   * The size cap: when the report states the finding's size (a type whose size measures the finding,
   * taxonomy `sizeIsExtent`), its map's support (p ≥ 0.1) is sharpened about the peak until it holds
   * at most sizeCap × the stated volume (`sizeCappedCalibration`). Chosen on validation data
   * (`ctground calibrate`). Absent: no cap.
   */
  sizeCap?: number;
  /**
   * The size cap for a finding whose report states no size: its support may hold at most this ×
   * `typicalMm3` of its organ and type (`mapCapMm3`). Chosen on validation data with the typical
   * volumes (`ctground calibrate`). Absent: no cap without a stated size.
   */
  typicalSizeCap?: number;
  /** median gold volume, mm³, of the calibration data's findings per "organ:type" and per type */
  typicalMm3?: Record<string, number>;
  /**
   * where `ground`/`label` cut this model's maps into regions (boxes, label maps) unless the user
   * gives --threshold: chosen on validation data for a trained model (its maps' calibration depends
   * on the loss and minPeak). Absent: 0.5.
   */
  regionThreshold?: number;
  /**
   * The place prior: where the report names a part of the organ (data/anatomy/places.json: "segment
   * 7", "upper pole", "ascending colon"), map logits beyond that part of the organ box lose up to
   * this much (full at the table's margin past the part's faces). Chosen on validation data
   * (`ctground calibrate`). Absent: no prior — the maps are the network's alone.
   */
  placePrior?: number;
  /**
   * The contrast gate (model/contrast.ts): of a density-defined finding's map, only voxels at least
   * this many robust spreads of HU from its organ's median are kept. Chosen on validation data
   * (`ctground calibrate --contrast-gates`). Absent: no gate.
   */
  contrastGate?: number;
  /**
   * The contrast gate and typical-size cap of single kinds of finding, "organ:type" → settings (0:
   * none for that kind), over `contrastGate` and `typicalSizeCap`: chosen per kind on validation
   * data where a kind has enough findings there (`ctground calibrate`'s per-kind stage). A kind's
   * maps depend on its own settings alone, so the per-kind choices add up. Absent: the global ones.
   */
  kindCalibration?: Record<string, KindCalibration>;
  /**
   * The zoom stage: a finding expected to be small (its stated volume, else its kind's typical
   * volume, at most `maxMm3`) is grounded again by a second network, trained on finer tiles, on one
   * tile of that network's `crop.maxSpacingMm` centred at the first map's peak, and the tile's map
   * replaces the first one (same calibration). The first look finds where, at 4 mm tiles; a
   * 1–2-voxel duct or a nodule's edge needs the finer one. `model`: its folder, relative to this
   * one. `maxMm3` chosen on validation data (`ctground calibrate --zoom-sizes`); 0: no zoom.
   */
  zoom?: ZoomConfig;
  /** transformer size of transvg3d */
  transformer: { dim: number; layers: number; heads: number };
}

/** The zoom stage's network and which findings it serves (`GroundingConfig.zoom`). */
export interface ZoomConfig { model: string; maxMm3: number }

/** One kind of finding's own map calibration (`GroundingConfig.kindCalibration`); 0: none. */
export interface KindCalibration { contrastGate: number; typicalSizeCap: number }

export function usesAnatomy(v: Variant): boolean {
  return v === 'full' || v === 'anatomy-only';
}

export function usesStructure(v: Variant): boolean {
  return v === 'full' || v === 'structure-only';
}

export function defaultConfig(variant: Variant): GroundingConfig {
  return {
    variant,
    crop: { ...DEFAULT_CROP, windows: DEFAULT_CROP.windows.map((w) => [...w] as [number, number]) },
    widths: [8, 16, 32, 48],
    convsPerStage: [3, 4, 4, 4],
    normGroups: 4,
    attnDim: 32,
    fineAttention: true,
    decoder: true,
    positional: usesAnatomy(variant),
    lstmHidden: 96,
    maxTokens: 160,
    maxAggregate: 48,
    textEncoder: null,
    frozenTextLayers: 3,
    bceWeight: 1,
    locWeight: 1,
    diceSmooth: 0.1,
    minPeak: 0.5,
    transformer: { dim: 64, layers: 2, heads: 4 },
  };
}

export function inputChannels(c: GroundingConfig): number {
  return c.crop.windows.length + (usesAnatomy(c.variant) ? 1 : 0);
}

/** The crop grid's rule (three 2× poolings), for config files and --grid alike. */
export const GRID_RULE = 'must be a multiple of 8, at least 16';
export function validGrid(grid: unknown): grid is number {
  return Number.isInteger(grid) && (grid as number) % 8 === 0 && (grid as number) >= 16;
}

function positiveNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0;
}

/** The tiling spacing's rule (`crop.maxSpacingMm`), for config files and --max-spacing alike. */
export const MAX_SPACING_RULE = 'must be a positive number of mm';
export const validMaxSpacing = positiveNumber;

/** The CT windows' rule (`crop.windows`), for config files and --windows alike. */
export const WINDOWS_RULE = 'must be one or more HU windows LO:HI with LO < HI';
export function validWindows(w: unknown): w is [number, number][] {
  return Array.isArray(w) && w.length > 0 && w.every((x) => Array.isArray(x) && x.length === 2 && x.every(Number.isFinite) && (x[0] as number) < (x[1] as number));
}

/** The stage widths' rule, for config files and --widths alike. */
export const WIDTHS_RULE = 'must be four positive integers';
export function validWidths(w: unknown): w is [number, number, number, number] {
  return Array.isArray(w) && w.length === 4 && w.every((x) => Number.isInteger(x) && x > 0);
}

/** Validates a parsed config.json; every problem names the file. */
export function checkConfig(c: GroundingConfig, file: string): GroundingConfig {
  // fields added after the first shipped models: absent means the behaviour those models were trained with
  c.locWeight ??= 0;
  c.decoder ??= false;
  c.positional ??= false;
  c.diceSmooth ??= 1;
  c.minPeak ??= 0;
  if (c.positional && !(c.fineAttention && c.decoder)) throw fileError(file, 'positional needs fineAttention and decoder (the position term is added to the crop-resolution keys)');
  if (!(c.minPeak >= 0 && c.minPeak < 1)) throw fileError(file, 'minPeak must be in [0, 1)');
  if (c.temperature !== undefined && !positiveNumber(c.temperature)) throw fileError(file, 'temperature must be a positive number');
  if (c.sizeCap !== undefined && !positiveNumber(c.sizeCap)) throw fileError(file, 'sizeCap must be a positive number');
  if (c.placePrior !== undefined && !positiveNumber(c.placePrior)) throw fileError(file, 'placePrior must be a positive number');
  if (c.contrastGate !== undefined && !positiveNumber(c.contrastGate)) throw fileError(file, 'contrastGate must be a positive number');
  const atLeast0 = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
  if (c.kindCalibration !== undefined && !(typeof c.kindCalibration === 'object' && c.kindCalibration !== null && Object.entries(c.kindCalibration).every(([k, v]) => k.includes(':') && typeof v === 'object' && v !== null && atLeast0(v.contrastGate) && atLeast0(v.typicalSizeCap)))) throw fileError(file, 'kindCalibration must map "organ:type" to { contrastGate, typicalSizeCap }, each at least 0');
  if (c.kindCalibration !== undefined && c.typicalMm3 === undefined && Object.values(c.kindCalibration).some((k) => k.typicalSizeCap > 0)) throw fileError(file, 'kindCalibration\'s typicalSizeCap needs typicalMm3');
  if (c.typicalSizeCap !== undefined && !positiveNumber(c.typicalSizeCap)) throw fileError(file, 'typicalSizeCap must be a positive number');
  if (c.typicalMm3 !== undefined && !(typeof c.typicalMm3 === 'object' && c.typicalMm3 !== null && Object.values(c.typicalMm3).every(positiveNumber))) throw fileError(file, 'typicalMm3 must map "organ:type" and type to positive volumes');
  if (c.typicalSizeCap !== undefined && c.typicalMm3 === undefined) throw fileError(file, 'typicalSizeCap needs typicalMm3');
  if (c.zoom !== undefined && !(typeof c.zoom === 'object' && c.zoom !== null && typeof c.zoom.model === 'string' && c.zoom.model.length > 0 && atLeast0(c.zoom.maxMm3))) throw fileError(file, 'zoom must be { model: a folder, maxMm3: a volume of at least 0 }');
  if (c.regionThreshold !== undefined && !isThreshold(c.regionThreshold)) throw fileError(file, `regionThreshold ${THRESHOLD_RULE}`);
  // a map lifted by the minPeak rule peaks at minPeak on the crop grid and a little under it on the CT grid
  if (c.regionThreshold !== undefined && c.minPeak > 0 && c.regionThreshold >= c.minPeak) throw fileError(file, `regionThreshold ${c.regionThreshold} must be below minPeak ${c.minPeak} (else a described finding whose map was lifted can get no region)`);
  if (!VARIANTS.includes(c.variant)) throw fileError(file, `unknown variant '${String(c.variant)}' (have: ${VARIANTS.join(', ')})`);
  if (!c.crop || !validGrid(c.crop.grid)) throw fileError(file, `crop.grid ${GRID_RULE}`);
  if (!validWindows(c.crop.windows)) throw fileError(file, `crop.windows ${WINDOWS_RULE}`);
  if (c.crop.maxSpacingMm !== undefined && !validMaxSpacing(c.crop.maxSpacingMm)) throw fileError(file, `crop.maxSpacingMm ${MAX_SPACING_RULE}`);
  if (c.crop.region !== undefined && c.crop.region !== 'organ' && c.crop.region !== 'body') throw fileError(file, `crop.region must be 'organ' or 'body', got '${String(c.crop.region)}'`);
  if (c.crop.region === 'body' && c.crop.maxSpacingMm === undefined) throw fileError(file, 'crop.region \'body\' needs crop.maxSpacingMm (the body is seen through tiles)');
  if (!validWidths(c.widths)) throw fileError(file, `widths ${WIDTHS_RULE}`);
  if (!Array.isArray(c.convsPerStage) || c.convsPerStage.length !== 4 || c.convsPerStage.some((w) => !Number.isInteger(w) || w <= 0)) throw fileError(file, 'convsPerStage must be four positive integers');
  for (const k of ['attnDim', 'lstmHidden', 'maxTokens', 'maxAggregate'] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) throw fileError(file, `${k} must be a positive integer`);
  }
  if (c.normGroups) for (const w of c.widths) if (w % c.normGroups !== 0) throw fileError(file, `width ${w} is not divisible into ${c.normGroups} norm groups`);
  return c;
}
