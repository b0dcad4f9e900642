import { join } from 'node:path';
import { Progress, type Rng } from '../common/index.ts';
import { readVolume, resampleToGrid, type Volume } from '../volume/index.ts';
import { loadOrganScheme } from '../anatomy/index.ts';
import {
  anomalyBox, anomalyText, cropChannels, cropTiles, groundsThroughTiles, inputChannels, isBoxModel, maskBox, maskWorldBox, organCrop, placeText, positionChannels,
  tileNear, usesAnatomy, POSITION_FEATURES, type AnomalyText, type CropGeometry, type GroundingConfig, type ReportTextEncoder,
} from '../model/index.ts';
import { goldReport, type ManifestStudy } from '../eval/index.ts';

/**
 * One training example: an anomaly's crop, stored quantized (bytes) with `pad` voxels of margin on
 * each side so every draw can shift it (augmentation without re-reading the CT), its soft target
 * mask and its text side.
 */
export interface Sample {
  study: string;
  id: string;
  /** (C, P, P, P) with P = grid + 2·pad: CT windows as 0..255, anatomy as the label value */
  image: Uint8Array;
  /** (P, P, P) lesion fraction 0..255 */
  target: Uint8Array;
  text: AnomalyText;
  /** the crop's organ-relative position (see CropGeometry) */
  positionScale: [number, number, number];
  positionOffset: [number, number, number];
}

export interface SampleSet { samples: Sample[]; pad: number; channels: number }

/**
 * Reads every anomaly with a mask of the given studies into samples (progress on stderr). An
 * anomaly of a tiled organ (`cropTiles`) gives the tile it is grounded through: with `rng`
 * (training) a tile around the lesion at a random place in it, plus one inference tile away from
 * the lesion (mostly no target: grounding runs every tile, so the network must learn to stay
 * quiet where the lesion is not); without (validation) the inference tile whose centre is
 * nearest the lesion's.
 */
export async function prepareSamples(dir: string, studies: ManifestStudy[], cfg: GroundingConfig, text: ReportTextEncoder, pad: number, label: string, quiet = false, rng: Rng | null = null): Promise<SampleSet & { anomalies: number }> {
  const samples: Sample[] = [];
  let anomalies = 0;
  const windows = cfg.crop.windows.length;
  const C = inputChannels(cfg);
  const progress = quiet ? null : new Progress(label, studies.length, 'studies');
  for (const study of studies) {
    const scored = study.anomalies.filter((a) => a.mask);
    if (scored.length === 0) { progress?.tick(); continue; }
    const ct = await readVolume(join(dir, study.ct));
    const labels = await readVolume(join(dir, study.labels));
    const report = goldReport(dir, study);
    const { tokens, states } = await text.encode(report.text);
    for (const a of scored) {
      anomalies++;
      const mask = asFloat(await readVolume(join(dir, a.mask!)));
      const atext = anomalyText(cfg, a, tokens, states, text.hiddenSize);
      for (const geom of sampleGrids(labels, mask, a, cfg, pad, rng)) {
        const ch = cropChannels(ct, labels, geom, cfg.crop, false);
        const n = geom.size[0] * geom.size[1] * geom.size[2];
        const image = new Uint8Array(C * n);
        for (let i = 0; i < windows * n; i++) image[i] = Math.round(ch[i]! * 255);
        if (usesAnatomy(cfg.variant)) image.set(resampleToGrid(labels, geom, 'nearest', { fill: 0 }).data as unknown as ArrayLike<number>, windows * n);
        const t = resampleToGrid(mask, geom, 'linear', { fill: 0 }).data;
        const target = new Uint8Array(n);
        for (let i = 0; i < n; i++) target[i] = Math.round(Math.min(1, Math.max(0, t[i]!)) * 255);
        samples.push({ study: study.id, id: a.id, image, target, text: atext, positionScale: geom.positionScale, positionOffset: geom.positionOffset });
      }
    }
    progress?.tick(1, `${anomalies} anomalies, ${samples.length} samples`);
  }
  progress?.finish();
  return { samples, pad, channels: C, anomalies };
}

/** The grids one anomaly is learned from (see `prepareSamples`). */
function sampleGrids(labels: Volume, mask: Volume<Float32Array>, a: ManifestStudy['anomalies'][number], cfg: GroundingConfig, pad: number, rng: Rng | null): CropGeometry[] {
  const box = anomalyBox(labels, a, cfg.crop.region);
  const lb = groundsThroughTiles(box, cfg) ? maskWorldBox(mask, mask.data) : null;
  if (!lb) return [organCrop(box, cfg.crop, pad)];
  const centre = [0, 1, 2].map((k) => (lb.min[k]! + lb.max[k]!) / 2) as [number, number, number];
  // per axis, how far a tile's centre is from the lesion's
  const offsets = (g: CropGeometry) => [0, 1, 2].map((k) => Math.abs(g.origin[k]! + ((g.size[k]! - 1) / 2) * g.spacing[k]! - centre[k]!));
  const tiles = cropTiles(box, cfg.crop, pad);
  if (!rng) return [tiles.reduce((b, g) => (Math.hypot(...offsets(g)) < Math.hypot(...offsets(b)) ? g : b))];
  const near = tileNear(box, cfg.crop, centre, [rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1)], pad);
  const half = ((cfg.crop.grid - 1) / 2) * cfg.crop.maxSpacingMm!;
  const away = tiles.filter((g) => offsets(g).some((d) => d > half));
  return away.length ? [near, rng.pick(away)] : [near];
}

function asFloat(v: Volume): Volume<Float32Array> {
  const data = new Float32Array(v.data.length);
  for (let i = 0; i < data.length; i++) data[i] = v.data[i]! > 0 ? 1 : 0;
  return { ...v, data };
}

export interface Batch { feeds: Record<string, Float32Array | BigInt64Array>; targets: Float32Array }

/**
 * Assembles a batch: each sample cut at a shift in [0, 2·pad]³ (the centred cut when `augment` is
 * off) and, with augmentation, a random contrast/brightness change of the CT channels. Never a
 * left-right flip: it would contradict "left kidney".
 */
export function makeBatch(set: SampleSet, picks: Sample[], cfg: GroundingConfig, d: number, rng: Rng | null): Batch {
  const G = cfg.crop.grid, A = cfg.maxAggregate, B = picks.length, P = G + 2 * set.pad, C = set.channels;
  const windows = cfg.crop.windows.length;
  const n = G * G * G;
  const image = new Float32Array(B * C * n), target = new Float32Array(B * n), rows = new Float32Array(B * A * d);
  const ids = new BigInt64Array(B * A), lengths = new BigInt64Array(B), rowMask = new Float32Array(B * A), box = new Float32Array(B * 6);
  const position = cfg.positional ? new Float32Array(B * POSITION_FEATURES * n) : null;
  const maxLabel = loadOrganScheme().maxValue;
  picks.forEach((s, b) => {
    const sh = [0, 1, 2].map(() => (rng ? rng.int(0, 2 * set.pad) : set.pad));
    const gain = rng ? rng.uniform(0.9, 1.1) : 1, bias = rng ? rng.uniform(-0.04, 0.04) : 0;
    for (let c = 0; c < C; c++) {
      const isCt = c < windows;
      const src = c * P * P * P, dst = (b * C + c) * n;
      for (let k = 0; k < G; k++) for (let j = 0; j < G; j++) {
        const so = src + sh[0]! + P * (j + sh[1]! + P * (k + sh[2]!)), dof = dst + G * (j + G * k);
        for (let i = 0; i < G; i++) {
          const v = s.image[so + i]!;
          image[dof + i] = isCt ? Math.min(1, Math.max(0, (v / 255) * gain + bias)) : Math.min(1, v / maxLabel);
        }
      }
    }
    for (let k = 0; k < G; k++) for (let j = 0; j < G; j++) {
      const so = sh[0]! + P * (j + sh[1]! + P * (k + sh[2]!)), dof = b * n + G * (j + G * k);
      for (let i = 0; i < G; i++) target[dof + i] = s.target[so + i]! / 255;
    }
    // the cut's first voxel is sh voxels into the stored crop
    if (position) positionChannels(G, s.positionScale, sh.map((v, k) => v + s.positionOffset[k]!) as [number, number, number], position.subarray(b * POSITION_FEATURES * n, (b + 1) * POSITION_FEATURES * n));
    rows.set(s.text.rows, b * A * d);
    placeText(cfg, s.text, b, B, ids, lengths, rowMask);
    if (isBoxModel(cfg)) box.set(maskBox(target.subarray(b * n, (b + 1) * n), G) ?? [0.5, 0.5, 0.5, 0.05, 0.05, 0.05], b * 6);
  });
  const feeds: Record<string, Float32Array | BigInt64Array> = isBoxModel(cfg)
    ? { image, rows, rowMask, box }
    : { image, rows, ids, lengths, target: target, ...(position ? { position } : {}) };
  return { feeds, targets: target };
}
