import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { fileError, projectRoot } from '../common/index.ts';
import { InferenceModel, readSafetensors, type Graph, type SessionOptions } from '../engine/index.ts';
import { emptyBoxed, indexToWorld, mergeBoxedMax, resampleToGrid, sameGrid, voxelBoxSize, voxelBoxToWorld, worldBoxToVoxel, type BoxedVolume, type Geometry, type Vec3, type Volume } from '../volume/index.ts';
import { loadPlaces } from '../anatomy/index.ts';
import { loadTextEncoder, type ReportTextEncoder } from './text/index.ts';
import { checkConfig, usesAnatomy, type GroundingConfig } from './config.ts';
import { cropChannels, placePenalized, positionChannels, POSITION_FEATURES, type CropGeometry } from './crop.ts';
import { anomalyText, boxMap, placeText } from './feed.ts';
import { applyCalibration, buildHeadGraph, mapCalibration, buildImageGraph, buildImageLogitsGraph, buildQueryGraph, isBoxModel, sizeCappedCalibration } from './graphs.ts';
import { expectedVolumeMm3, mapCapMm3 } from './size.ts';
import { backgroundBox, contrastGated, contrastGateFor, organDensity, type OrganDensity } from './contrast.ts';
import { anomalyPlace, anomalyTiles, cropKey, cropLabels, zoomTile } from './prepare.ts';
import { WeightMismatch, type Weights } from './network.ts';
import type { GroundingMap, GroundingModel, GroundingStudy } from './types.ts';

export const DEFAULT_MODEL_DIR = join(projectRoot, 'models', 'grounding-default');

/** Files every model folder has. */
export const MODEL_FILES = ['config.json', 'model.safetensors'] as const;

export function readModelConfig(dir: string): GroundingConfig {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) throw fileError(path, 'missing (a grounding model folder needs config.json and model.safetensors; train one with `ctground train`)');
  let raw: { model?: GroundingConfig };
  try { raw = JSON.parse(readFileSync(path, 'utf8')) as { model?: GroundingConfig }; } catch { throw fileError(path, 'corrupt (not valid JSON)'); }
  if (!raw || typeof raw !== 'object' || !raw.model) throw fileError(path, 'corrupt (no "model" section)');
  return checkConfig(raw.model, path);
}

export function readWeights(path: string): Weights {
  if (!existsSync(path)) throw fileError(path, 'missing (the trained weights of the model)');
  let t;
  try { t = readSafetensors(path).tensors; } catch (e) {
    throw fileError(path, `corrupt safetensors file (${(e as Error).message.split('\n')[0]})`);
  }
  const w: Weights = new Map();
  for (const [name, a] of t) w.set(name, a.data instanceof Float32Array ? a.data : Float32Array.from(a.data));
  return w;
}

/** Every parameter a graph built from `weights` needs must be there with the right size. */
function checkAllLoaded(graphs: Graph[], weights: Weights, file: string): void {
  const used = new Set<string>();
  for (const g of graphs) for (const [name, p] of g.params) {
    const w = weights.get(name);
    if (!w) throw fileError(file, `parameter '${name}' is missing`);
    if (w.length !== p.value.length) throw fileError(file, `parameter '${name}' has ${w.length} values, the model needs ${p.value.length}`);
    used.add(name);
  }
  for (const name of weights.keys()) if (!used.has(name)) throw fileError(file, `unexpected parameter '${name}' (built for another variant or size?)`);
}

/** Text encoder folder named by a model config: relative to the model folder, else to the project. */
export function resolveTextDir(dir: string, cfg: GroundingConfig): string {
  const t = cfg.textEncoder ?? join('models', 'text-default');
  if (isAbsolute(t)) return t;
  const local = resolve(dir, t);
  return existsSync(local) ? local : resolve(projectRoot, t);
}

/** SHA-256 of a text encoder folder's weights: what a grounding model records and checks. */
export function textEncoderSha256(textDir: string): string {
  const path = join(textDir, 'model.safetensors');
  if (!existsSync(path)) throw fileError(path, 'missing (the text encoder weights)');
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function checkTextEncoder(textDir: string, cfg: GroundingConfig, configPath: string): void {
  if (!cfg.textEncoderSha256) return;
  const got = textEncoderSha256(textDir);
  if (got !== cfg.textEncoderSha256) throw fileError(configPath, `the text encoder at ${textDir} is not the one this model was trained with (sha256 ${got.slice(0, 12)}…, expected ${cfg.textEncoderSha256.slice(0, 12)}…)`);
}

function volumeOn(geom: Geometry, data: Float32Array): Volume<Float32Array> {
  return { data, size: [...geom.size], spacing: [...geom.spacing], origin: [...geom.origin], direction: [...geom.direction] };
}

/** Anomalies of one crop grounded by one head run (larger groups are split). */
const HEAD_BATCH = 16;

/**
 * Batch sizes of the image+logits sessions: each is a copy of the image encoder with its own memory
 * arena and build time, so B anomalies run at the next size up (at most a fifth of the rows
 * padding) rather than one session per B.
 */
const FUSED_BATCHES = [1, 2, 3, 4, 6, 8, 10, 12, HEAD_BATCH];

/** Below this a map value is 0 on the CT grid: far under every evaluated threshold (≥ 0.1). */
const MAP_FLOOR = 0.01;

/**
 * A crop's map on the CT grid, kept over the box it covers there. Only the CT voxels under the part
 * of the crop where the map is at least MAP_FLOOR (plus one crop voxel for interpolation) are
 * resampled; the rest are 0. Maps of focal findings cover a small part of a crop, so this is most
 * of the per-anomaly cost saved. With `into` (a map on the CT grid, e.g. from another tile) the two
 * are merged by maximum (in place when the new part lies inside its box).
 */
export function pasteToGrid(crop: Volume<Float32Array>, ct: Geometry, mode: 'linear' | 'nearest', into?: BoxedVolume, candidates?: Int32Array): BoxedVolume {
  const [n0, n1, n2] = crop.size;
  let i0 = n0, j0 = n1, k0 = n2, i1 = -1, j1 = -1, k1 = -1;
  const m = crop.data;
  // `candidates`: the only crop voxels that may be at or over the floor (the box comes from them alone)
  if (candidates) for (let q = 0; q < candidates.length; q++) {
    const o = candidates[q]!;
    if (m[o]! < MAP_FLOOR) continue;
    const i = o % n0, j = ((o - i) / n0) % n1, k = (o - i - n0 * j) / (n0 * n1);
    if (i < i0) i0 = i; if (i > i1) i1 = i;
    if (j < j0) j0 = j; if (j > j1) j1 = j;
    if (k < k0) k0 = k; if (k > k1) k1 = k;
  }
  else for (let k = 0, o = 0; k < n2; k++) for (let j = 0; j < n1; j++, o += n0) {
    // the row's first and last voxels at or over the floor
    let a = 0, b = n0 - 1;
    while (a < n0 && m[o + a]! < MAP_FLOOR) a++;
    if (a === n0) continue;
    while (m[o + b]! < MAP_FLOOR) b--;
    if (a < i0) i0 = a; if (b > i1) i1 = b;
    if (j < j0) j0 = j; if (j > j1) j1 = j;
    if (k < k0) k0 = k; if (k > k1) k1 = k;
  }
  const lo = [i0, j0, k0], hi = [i1, j1, k1];
  const out = into ?? emptyBoxed(ct);
  if (hi[0]! < 0) return out;
  const vbox = { min: lo.map((v) => Math.max(0, v - 1)) as [number, number, number], max: hi.map((v, a) => Math.min(crop.size[a]! - 1, v + 1)) as [number, number, number] };
  const box = worldBoxToVoxel(ct, voxelBoxToWorld(crop, vbox));
  if (!box) return out;
  const size = voxelBoxSize(box);
  const sub: Geometry = { size, spacing: [...ct.spacing], origin: indexToWorld(ct, box.min), direction: [...ct.direction] };
  return mergeBoxedMax(out, resampleToGrid(crop, sub, mode, { fill: 0 }).data as Float32Array, box);
}

const NONE = new Int32Array(0);

let scratch = new Int32Array(0);

/** Indices of the values at or over `t`, in order (one pass into a reused buffer, then copied out). */
function indicesAtOrOver(z: Float32Array, t: number): Int32Array {
  if (scratch.length < z.length) scratch = new Int32Array(z.length);
  let n = 0;
  for (let i = 0; i < z.length; i++) if (z[i]! >= t) scratch[n++] = i;
  return scratch.slice(0, n);
}

function gather(z: Float32Array, at: Int32Array): Float32Array {
  const out = new Float32Array(at.length);
  for (let q = 0; q < at.length; q++) out[q] = z[at[q]!]!;
  return out;
}

/** Where one `ground` call spends its time, ms: text encoder, crop resampling, image encoder (with the map logits), text heads, maps onto the CT grid. */
export interface GroundingPhases { text: number; crop: number; image: number; head: number; maps: number }

/** A chunk of at most HEAD_BATCH anomalies of one crop group and its text-side feeds. */
type Chunk = { from: number; B: number; feeds: Record<string, Float32Array | BigInt64Array> };

/** One crop group's map logits: per grid k and chunk, the B maps' logits (B·G³) and each one's peak. */
interface GroupLogits {
  anomalies: GroundingStudy['report']['anomalies'];
  tiles: CropGeometry[];
  runs: { k: number; from: number; B: number; logits: Float32Array; peak: Float32Array }[];
}

/** A report's token states from the text encoder (the first look's, read by the zoom network too). */
type ReportText = Awaited<ReturnType<ReportTextEncoder['encode']>>;

/** The first look's network output for one study: the report's token states and every crop group's map logits. */
interface StudyLogits { text: ReportText; groups: GroupLogits[] }

/** The zoom network's look at one anomaly: its tile and the map logits there. */
interface ZoomLogits { geom: CropGeometry; logits: Float32Array; peak: number }

/** The index of the first largest value. */
function argmax(z: Float32Array): number {
  let best = 0;
  for (let i = 1; i < z.length; i++) if (z[i]! > z[best]!) best = i;
  return best;
}

/** The world position of a crop voxel given by its index in the flattened grid. */
function voxelWorld(geom: Geometry, index: number): Vec3 {
  const [nx, ny] = geom.size, i = index % nx, j = Math.floor(index / nx) % ny, k = Math.floor(index / (nx * ny));
  return indexToWorld(geom, [i, j, k]);
}

/** The trained model behind `GroundingModel`: image once per grid, text once per report, a small head per anomaly. */
export class TrainedGrounder implements GroundingModel {
  private positionBuffer: Float32Array | undefined;
  private positionBusy = false;

  private constructor(
    readonly name: string, readonly config: GroundingConfig, private readonly text: ReportTextEncoder, private readonly image: InferenceModel,
    private readonly weights: Weights, private readonly imageShapes: Record<string, readonly number[]>, private readonly opts: Pick<SessionOptions, 'threads' | 'spinning'>,
    /** the zoom stage's network (`GroundingConfig.zoom`), sharing this one's text encoder */
    private readonly zoomNet: TrainedGrounder | undefined,
    /** false for a zoom network: its text encoder is its first look's, disposed there */
    private readonly ownsText: boolean,
    /** sessions by batch size (all anomalies of a crop go through one run): box models' whole head; mask models' query half and image+logits graph */
    private readonly heads = new Map<string, Promise<InferenceModel>>(),
    /**
     * the map logits of the studies being grounded, by study object: the calibrated variants of one
     * network share it, so a calibration grid grounds each study through the network once
     */
    private readonly logitCache = new WeakMap<GroundingStudy, Promise<StudyLogits>>(),
    /** a zoom network's looks per study object, by anomaly and tile: calibrated variants share them too */
    private readonly zoomCache = new WeakMap<GroundingStudy, Map<string, Promise<ZoomLogits>>>(),
  ) {}

  private head(part: 'whole' | 'query' | 'imageLogits', batch: number): Promise<InferenceModel> {
    const key = `${part}${batch}`;
    let h = this.heads.get(key);
    if (!h) {
      const cfg = this.config, d = this.text.hiddenSize;
      if (part === 'imageLogits') {
        const built = buildImageLogitsGraph(cfg, this.weights, batch);
        h = InferenceModel.create(built.graph, { out: built.output, peak: built.peak }, this.opts);
      } else {
        const built = part === 'whole' ? buildHeadGraph(cfg, d, this.weights, this.imageShapes, batch) : buildQueryGraph(cfg, d, this.weights, batch);
        h = InferenceModel.create(built.graph, { out: built.output }, this.opts);
      }
      this.heads.set(key, h);
    }
    return h;
  }

  /**
   * The same network with other map calibration (minPeak, temperature, size cap, place prior, contrast gate, region threshold): it shares
   * this one's sessions, so a calibration grid costs no new load, and its map logits: the same study
   * object grounded by several variants runs the network once. Dispose only the original.
   */
  calibrated(c: Partial<Pick<GroundingConfig, 'minPeak' | 'temperature' | 'regionThreshold' | 'sizeCap' | 'placePrior' | 'typicalSizeCap' | 'typicalMm3' | 'contrastGate' | 'kindCalibration' | 'zoom'>>): TrainedGrounder {
    const cfg = checkConfig({ ...this.config, crop: { ...this.config.crop }, ...c }, `calibration of ${this.name}`);
    if (cfg.zoom && cfg.zoom.maxMm3 > 0 && !this.zoomNet) throw new Error(`calibration of ${this.name}: zoom needs the model's zoom network (config.json "zoom")`);
    return new TrainedGrounder(this.name, cfg, this.text, this.image, this.weights, this.imageShapes, this.opts, this.zoomNet, this.ownsText, this.heads, this.logitCache, this.zoomCache);
  }

  /** Whether the zoom stage grounds this anomaly: the model has one and the finding is expected to be at most its size. */
  zooms(a: GroundingStudy['report']['anomalies'][number]): boolean {
    const z = this.config.zoom;
    if (!z || !this.zoomNet || z.maxMm3 <= 0) return false;
    const v = expectedVolumeMm3(this.config, a);
    return v !== undefined && v <= z.maxMm3;
  }

  /**
   * This network's look at one anomaly on its zoom tile centred at `point`, reading the first look's
   * token states `text` (cached per study object, anomaly and tile).
   */
  private zoomLogits(study: GroundingStudy, a: GroundingStudy['report']['anomalies'][number], point: Vec3, text: ReportText): Promise<ZoomLogits> {
    const cfg = this.config, geom = zoomTile(study.anatomy, a, cfg, point);
    let looks = this.zoomCache.get(study);
    if (!looks) { looks = new Map(); this.zoomCache.set(study, looks); }
    const key = `${a.id}@${geom.origin.join(',')}`;
    let look = looks.get(key);
    if (!look) {
      look = (async () => {
        const [chunk] = await this.textFeeds(cfg, [a], text.tokens, text.states);
        const channels = cropChannels(study.ct, study.anatomy, geom, cfg.crop, usesAnatomy(cfg.variant));
        const r = await this.runOnCrop(await this.head('imageLogits', 1), channels, geom, { L: chunk!.feeds.L as Float32Array });
        return { geom, logits: r.out!, peak: r.peak![0]! };
      })();
      looks.set(key, look);
    }
    return look;
  }

  get threshold(): number | undefined {
    return this.config.regionThreshold;
  }

  /**
   * `spinning` defaults to off: text, image and head sessions take turns (see SessionOptions.spinning).
   * `firstLook`: loading a zoom network, the model it serves (its text encoder is shared). `zoomModel`:
   * this zoom network folder instead of the config's (its sizes stay the config's, none when it has no zoom).
   */
  static async load(dir: string, options: Pick<SessionOptions, 'threads' | 'spinning'> = {}, firstLook?: { text: ReportTextEncoder; config: GroundingConfig; dir: string }, zoomModel?: string): Promise<TrainedGrounder> {
    const opts = { spinning: false, ...options };
    const cfg = readModelConfig(dir);
    if (zoomModel) cfg.zoom = { model: resolve(zoomModel), maxMm3: cfg.zoom?.maxMm3 ?? 0 };
    const wpath = join(dir, 'model.safetensors');
    const weights = readWeights(wpath);
    let text: ReportTextEncoder;
    if (firstLook) {
      // a zoom network reads the first look's token states: the same text encoder
      const cpath = join(dir, 'config.json');
      if (isBoxModel(cfg) || !cfg.crop.maxSpacingMm) throw fileError(cpath, 'a zoom network must be a mask model with crop.maxSpacingMm (the spacing of its tiles)');
      if (cfg.zoom) throw fileError(cpath, 'a zoom network cannot have a zoom stage of its own');
      if (cfg.textEncoderSha256 !== firstLook.config.textEncoderSha256) throw fileError(cpath, `the zoom network was trained with another text encoder than the model in ${firstLook.dir}`);
      text = firstLook.text;
    } else {
      const textDir = resolveTextDir(dir, cfg);
      checkTextEncoder(textDir, cfg, join(dir, 'config.json'));
      text = loadTextEncoder(textDir, opts);
    }
    let img, head, shapes: Record<string, readonly number[]>;
    try {
      img = buildImageGraph(cfg, weights);
      shapes = Object.fromEntries(Object.entries(img.outputs).map(([k, t]) => [k, t.shape]));
      head = buildHeadGraph(cfg, text.hiddenSize, weights, shapes);
    } catch (e) {
      if (e instanceof WeightMismatch) throw fileError(wpath, e.message);
      throw e;
    }
    checkAllLoaded([img.graph, head.graph], weights, wpath);
    let zoomNet: TrainedGrounder | undefined;
    if (cfg.zoom) {
      const zdir = resolve(dir, cfg.zoom.model);
      if (isBoxModel(cfg)) throw fileError(join(dir, 'config.json'), 'zoom needs a mask model');
      if (!existsSync(zdir)) throw fileError(zdir, 'zoom network folder not found (config.json "zoom.model")');
      zoomNet = await TrainedGrounder.load(zdir, opts, { text, config: cfg, dir });
    }
    const image = await InferenceModel.create(img.graph, img.outputs, opts);
    return new TrainedGrounder(cfg.variant, cfg, text, image, weights, shapes, opts, zoomNet, !firstLook);
  }

  /** The image encoder's forward on one crop (exposed for the benchmark's reference timing). */
  async encodeCrop(channels: Float32Array, geom?: CropGeometry): Promise<Record<string, Float32Array>> {
    return this.runOnCrop(this.image, channels, geom, {});
  }

  /** Runs a session whose inputs are one crop's image (and position features) plus `extra`. */
  private async runOnCrop(session: InferenceModel, channels: Float32Array, geom: CropGeometry | undefined, extra: Record<string, Float32Array>): Promise<Record<string, Float32Array>> {
    const feeds: Record<string, Float32Array> = { ...extra, image: channels };
    // One position buffer reused across forwards: allocating and collecting a fresh 2 MB array per
    // crop costs more than filling it. A concurrent call gets its own.
    let own = false;
    if (this.config.positional) {
      if (!geom) throw new Error('encodeCrop: a positional model needs the crop geometry');
      own = !this.positionBusy;
      if (own) { this.positionBusy = true; this.positionBuffer ??= new Float32Array(POSITION_FEATURES * this.config.crop.grid ** 3); }
      feeds.position = positionChannels(this.config.crop.grid, geom.positionScale, geom.positionOffset, own ? this.positionBuffer : undefined);
    }
    try {
      return (await session.run(feeds)) as Record<string, Float32Array>;
    } finally {
      if (own) this.positionBusy = false;
    }
  }

  /**
   * `phases`, when given, gains the milliseconds spent in each part (the benchmark's breakdown). A
   * study object is taken as it is at its first call: its logits are kept while the object lives
   * (see `calibrated`).
   */
  async ground(study: GroundingStudy, phases?: GroundingPhases): Promise<Map<string, GroundingMap>> {
    const cfg = this.config, n = cfg.crop.grid ** 3;
    if (isBoxModel(cfg)) return this.groundBoxes(study, phases);
    let pending = this.logitCache.get(study);
    if (!pending) {
      pending = this.gridLogits(study, phases);
      this.logitCache.set(study, pending);
    }
    const { text, groups } = await pending;
    const t = performance.now();
    const out = new Map<string, GroundingMap>();
    // zero but for the voxels one map is writing (reset after each)
    const buf = new Float32Array(n);
    const margin = cfg.placePrior ? loadPlaces().marginFraction : 0;
    const wholeOrgans = new Map<string, OrganDensity | null>();
    let zoomMs = 0;
    for (const { anomalies, tiles, runs } of groups) {
      for (const [i, a] of anomalies.entries()) {
        // its logits and peak on each of its runs' grids (the place prior applied where the report names a part of the organ)
        const region = cfg.placePrior ? anomalyPlace(study.anatomy, a, cfg) : null;
        const penalized = (geom: CropGeometry, z: Float32Array, peak: number) => ({ geom, ...(region ? placePenalized(z, geom, region, cfg.placePrior!, margin) : { logits: z, peak }) });
        let mine = runs.filter((r) => i >= r.from && i < r.from + r.B).map((r) => {
          const b = i - r.from;
          return penalized(tiles[r.k]!, r.logits.subarray(b * n, (b + 1) * n), r.peak[b]!);
        });
        if (this.zooms(a)) {
          // the first look says where; the zoom network's tile there gives the map
          const z0 = performance.now();
          const top = mine.reduce((x, y) => (y.peak > x.peak ? y : x));
          const look = await this.zoomNet!.zoomLogits(study, a, voxelWorld(top.geom, argmax(top.logits)), text);
          mine = [penalized(look.geom, look.logits, look.peak)];
          zoomMs += performance.now() - z0;
        }
        const voxelMm3 = mine[0]!.geom.spacing.reduce((p, v) => p * v, 1);
        const peak = Math.max(...mine.map((v) => v.peak));
        // Only logits at or over the uncapped map's floor logit can come out at MAP_FLOOR or more (a
        // size cap only sharpens the map, raising that logit; its support level is higher still):
        // one pass per grid picks them, and the calibration, sigmoid and box see those alone.
        const reach = mapCalibration(cfg, peak, MAP_FLOOR).below;
        const near = mine.map((v) => (v.peak < reach ? NONE : indicesAtOrOver(v.logits, reach)));
        // the calibration from all of its grids: the peak over them, the size cap over their support
        const cal = sizeCappedCalibration(cfg, mine.map((v, k) => gather(v.logits, near[k]!)), voxelMm3, peak, mapCapMm3(cfg, a), MAP_FLOOR);
        let map: GroundingMap | undefined;
        for (const [k, v] of mine.entries()) {
          // a map whose every value on this grid is under MAP_FLOOR gains nothing from it: no sigmoid, no resampling
          if (v.peak < cal.below) continue;
          const into = v.logits.length === n ? buf : new Float32Array(v.logits.length);
          applyCalibration(v.logits, cal, into, near[k]);
          map = pasteToGrid(volumeOn(v.geom, into), study.ct, 'linear', map, near[k]);
          for (const j of near[k]!) into[j] = 0;
        }
        out.set(a.id, map ? this.gated(study, a, map, wholeOrgans) : emptyBoxed(study.ct));
      }
    }
    if (phases) { phases.image += zoomMs; phases.maps += performance.now() - t - zoomMs; }
    return out;
  }

  /**
   * A map through the contrast gate (model/contrast.ts) when the calibration has one and the finding
   * is density-defined. Its background: the labels its crop was cut around within BACKGROUND_MM of
   * the map, or the whole organ (once per label set in `wholeOrgans`) when too little of it is there.
   */
  private gated(study: GroundingStudy, a: GroundingStudy['report']['anomalies'][number], map: GroundingMap, wholeOrgans: Map<string, OrganDensity | null>): GroundingMap {
    const gate = contrastGateFor(this.config, a.organ, a.type);
    if (!gate || !map.box) return map;
    const labels = cropLabels(a), anatomy = anatomyOnCtGrid(study), key = labels.join(',');
    let density = organDensity(study.ct, anatomy, labels, backgroundBox(map.box, study.ct.spacing));
    if (!density) {
      if (!wholeOrgans.has(key)) wholeOrgans.set(key, organDensity(study.ct, anatomy, labels));
      density = wholeOrgans.get(key)!;
    }
    return density ? contrastGated(map, study.ct, density, gate) : map;
  }

  /** The text side once per anomaly (token rows; for mask models L_t), in chunks of at most HEAD_BATCH. */
  private async textFeeds(cfg: GroundingConfig, anomalies: GroundingStudy['report']['anomalies'], tokens: Parameters<typeof anomalyText>[2], states: Float32Array): Promise<Chunk[]> {
    const A = cfg.maxAggregate, d = this.text.hiddenSize;
    const chunks: Chunk[] = [];
    for (let c = 0; c < anomalies.length; c += HEAD_BATCH) {
      const chunk = anomalies.slice(c, c + HEAD_BATCH), B = chunk.length;
      const rows = new Float32Array(B * A * d), ids = new BigInt64Array(B * A), lengths = new BigInt64Array(B), rowMask = new Float32Array(B * A);
      chunk.forEach((a, b) => {
        const t = anomalyText(cfg, a, tokens, states, d);
        rows.set(t.rows, b * A * d);
        placeText(cfg, t, b, B, ids, lengths, rowMask);
      });
      const feeds: Record<string, Float32Array | BigInt64Array> = isBoxModel(cfg) ? { rows, rowMask } : { L: (await (await this.head('query', B)).run({ rows, ids, lengths })).out as Float32Array };
      chunks.push({ from: c, B, feeds });
    }
    return chunks;
  }

  /** The anomalies sharing a crop (one organ, or the body), in report order. */
  private cropGroups(study: GroundingStudy): GroundingStudy['report']['anomalies'][] {
    const groups = new Map<string, GroundingStudy['report']['anomalies']>();
    for (const a of study.report.anomalies) {
      const key = cropKey(a, this.config.crop.region), group = groups.get(key);
      if (group) group.push(a); else groups.set(key, [a]);
    }
    return [...groups.values()];
  }

  /** A mask model's map logits on every grid of every crop group: the network's whole part of grounding. */
  private async gridLogits(study: GroundingStudy, phases?: GroundingPhases): Promise<StudyLogits> {
    const cfg = this.config;
    let t = performance.now();
    const lap = (k: keyof GroundingPhases) => { if (phases) { const now = performance.now(); phases[k] += now - t; t = now; } };
    const text = await this.text.encode(study.report.text), { tokens, states } = text;
    lap('text');
    const groups: GroupLogits[] = [];
    for (const anomalies of this.cropGroups(study)) {
      // a large organ is seen through several tiles; each anomaly's map is their union
      const tiles = anomalyTiles(study.anatomy, anomalies[0]!, cfg);
      const chunks = await this.textFeeds(cfg, anomalies, tokens, states);
      lap('head');
      const runs: GroupLogits['runs'] = [];
      for (const [k, geom] of tiles.entries()) {
        const channels = cropChannels(study.ct, study.anatomy, geom, cfg.crop, usesAnatomy(cfg.variant));
        lap('crop');
        // image and logits in one run per grid (a second chunk of > HEAD_BATCH anomalies re-runs the image)
        for (const { from, B, feeds } of chunks) {
          // the batch rounded up to one of FUSED_BATCHES, padded with zero queries: each size is a session holding a copy of the image encoder
          const Bp = FUSED_BATCHES.find((b) => b >= B)!, L = feeds.L as Float32Array;
          const padded = new Float32Array(Bp * cfg.lstmHidden);
          padded.set(L);
          const r = await this.runOnCrop(await this.head('imageLogits', Bp), channels, geom, { L: padded });
          runs.push({ k, from, B, logits: r.out!, peak: r.peak! });
          lap('image');
        }
      }
      groups.push({ anomalies, tiles, runs });
    }
    return { text, groups };
  }

  /** transvg3d: a box per anomaly from its crop's visual tokens, painted on the CT grid. */
  private async groundBoxes(study: GroundingStudy, phases?: GroundingPhases): Promise<Map<string, GroundingMap>> {
    const cfg = this.config, G = cfg.crop.grid;
    let t = performance.now();
    const lap = (k: keyof GroundingPhases) => { if (phases) { const now = performance.now(); phases[k] += now - t; t = now; } };
    const { tokens, states } = await this.text.encode(study.report.text);
    lap('text');
    const out = new Map<string, GroundingMap>();
    for (const anomalies of this.cropGroups(study)) {
      const geom = anomalyTiles(study.anatomy, anomalies[0]!, cfg)[0]!;
      const chunks = await this.textFeeds(cfg, anomalies, tokens, states);
      lap('head');
      const channels = cropChannels(study.ct, study.anatomy, geom, cfg.crop, usesAnatomy(cfg.variant));
      lap('crop');
      const keys = await this.encodeCrop(channels, geom);
      lap('image');
      for (const { from, B, feeds } of chunks) {
        const box = (await (await this.head('whole', B)).run({ ...feeds, ...keys })).out as Float32Array;
        lap('head');
        anomalies.slice(from, from + B).forEach((a, b) => out.set(a.id, pasteToGrid(volumeOn(geom, boxMap(box.subarray(b * 6, b * 6 + 6), G)), study.ct, 'nearest')));
        lap('maps');
      }
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.image.dispose();
    for (const h of this.heads.values()) await (await h).dispose();
    await this.zoomNet?.dispose();
    if (this.ownsText) await this.text.dispose();
  }
}

/** Loads a trained grounding model folder (default models/grounding-default/); a UserError names any missing or corrupt file. */
export async function loadGroundingModel(dir: string = DEFAULT_MODEL_DIR, opts: Pick<SessionOptions, 'threads' | 'spinning'> = {}, override: { zoomModel?: string } = {}): Promise<TrainedGrounder> {
  if (!existsSync(dir)) throw fileError(dir, 'model folder not found');
  return TrainedGrounder.load(dir, opts, undefined, override.zoomModel);
}

// The pipeline puts the label map on the CT's grid; a caller that did not gets it resampled once per study object.
const anatomyOnGrid = new WeakMap<GroundingStudy, Volume>();
function anatomyOnCtGrid(study: GroundingStudy): Volume {
  if (sameGrid(study.anatomy, study.ct)) return study.anatomy;
  let v = anatomyOnGrid.get(study);
  if (!v) { v = resampleToGrid(study.anatomy, study.ct, 'nearest'); anatomyOnGrid.set(study, v); }
  return v;
}
