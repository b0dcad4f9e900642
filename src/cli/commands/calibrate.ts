import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { UserError, writeFileAtomic } from '../../common/index.ts';
import { intFlag, numListFlag, parseFlags, requireFlag } from '../args.ts';
import { readVolume } from '../../volume/index.ts';
import { anomalyBox, isDensityDefined, loadGroundingModel, readModelConfig, resolveTextDir, MODEL_FILES } from '../../model/index.ts';
import {
  calibrationPoint, chooseCalibration, chooseKindCalibration, evaluateModels, findingsByKind, typicalLesionVolumes, readManifest, schemeOrganLookup, splitOf, MIOU_THRESHOLDS, type AnomalyResult, type CalibrationPoint, type CalibrationSettings, type KindChoice,
} from '../../eval/index.ts';

export const summary = "choose a model's map calibration (minPeak, temperature, size caps, place prior, contrast gate, region threshold, which findings its zoom network grounds; opt-in: per kind of finding) on validation data";

export const USAGE = `usage: ctground calibrate --model DIR --data DIR[,DIR…] [--split val] [--write]
  --model DIR      the model folder whose calibration is chosen
  --data DIR,…     validation datasets; --split S (default val): never the held-out test sets
  --write          write the chosen settings into DIR/config.json (else only print the grid)
  grids (comma-separated): --min-peaks --temperatures --size-caps --place-priors --typical-caps --contrast-gates
  --kind-min N     a kind of finding with at least N validation findings may get its own gate and cap (0: off); --kind-typical-caps LIST
  --zoom-model DIR --zoom-sizes LIST   the zoom network, and the largest expected sizes (mm³) it grounds`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    model: { type: 'string' }, data: { type: 'string' }, split: { type: 'string' },
    'min-peaks': { type: 'string' }, temperatures: { type: 'string' }, 'size-caps': { type: 'string' }, 'place-priors': { type: 'string' }, 'typical-caps': { type: 'string' }, 'contrast-gates': { type: 'string' }, 'kind-min': { type: 'string' }, 'kind-typical-caps': { type: 'string' }, 'zoom-model': { type: 'string' }, 'zoom-sizes': { type: 'string' }, write: { type: 'boolean' },
  }, false);
  const dir = requireFlag(values.model, 'model');
  const data = requireFlag(values.data, 'data').split(',').filter(Boolean);
  for (const d of data) if (!existsSync(d)) throw new UserError(`${d}: dataset folder not found`);
  const split = values.split ?? 'val';
  const minPeaks = numListFlag(values['min-peaks'], 'min-peaks', [0.3, 0.5], (v) => v >= 0 && v < 1, 'in [0, 1)');
  const temperatures = numListFlag(values.temperatures, 'temperatures', [1, 0.5, 0.33], (v) => v > 0, 'above 0');
  // 0 = no cap; the caps are tried at the best minPeak × temperature (a second, smaller grid)
  const sizeCaps = numListFlag(values['size-caps'], 'size-caps', [0, 2, 4, 8], (v) => v >= 0, 'at least 0 (0: no cap)');
  // 0 = no prior; tried with the caps, at the best minPeak × temperature
  const placePriors = numListFlag(values['place-priors'], 'place-priors', [0, 6, 12], (v) => v >= 0, 'at least 0 (0: no place prior)');
  // 0 = no cap without a stated size; the caps are × the typical volume of the finding's organ and type on these splits
  const typicalCaps = numListFlag(values['typical-caps'], 'typical-caps', [0, 2, 4], (v) => v >= 0, 'at least 0 (0: no cap without a stated size)');
  // 0 = no gate; tried last, at the best point of the stages before
  const contrastGates = numListFlag(values['contrast-gates'], 'contrast-gates', [0, 0.5, 1], (v) => v >= 0, 'at least 0 (0: no contrast gate)');
  // a kind of finding with at least this many validation findings may get a gate and a typical cap
  // of its own; off by default (0): on this project's data the kinds' choices did not carry over to
  // the held-out sets (docs/model.md, per-kind calibration)
  const kindMin = intFlag(values['kind-min'], 'kind-min', 0);
  if (kindMin < 0) throw new UserError(`--kind-min must be at least 0 (0: no per-kind calibration), got '${values['kind-min']}'`);
  // the typical caps a kind may take besides the global one (default: the typical-caps list)
  const kindCaps = numListFlag(values['kind-typical-caps'], 'kind-typical-caps', typicalCaps, (v) => v >= 0, 'at least 0 (0: no cap without a stated size)');
  // the zoom network: --zoom-model, else the model's own (config.json "zoom"); its sizes are tried last
  const modelConfig = readModelConfig(dir), ownZoom = modelConfig.zoom;
  const zoomDir = values['zoom-model'] ? resolve(values['zoom-model']) : ownZoom ? resolve(dir, ownZoom.model) : undefined;
  if (zoomDir && !existsSync(join(zoomDir, 'config.json'))) throw new UserError(`${zoomDir}: not a zoom network folder (no config.json; train one with \`ctground train --init ${dir} --max-spacing 2\`)`);
  // 0 = no zoom; a finding expected to be at most this many mm³ (stated size, else its kind's typical volume) is grounded by the zoom network
  const zoomSizes = numListFlag(values['zoom-sizes'], 'zoom-sizes', zoomDir ? [0, 250, 500, 1000, 2000, 4000, 8000] : [], (v) => v >= 0, 'at least 0 (0: no zoom)');
  if (!zoomDir && zoomSizes.some((v) => v > 0)) throw new UserError(`--zoom-sizes: ${dir} has no zoom network (give one with --zoom-model DIR)`);
  const sets = data.map((d) => ({ dir: d, studies: splitOf(readManifest(d), split, join(d, 'manifest.jsonl')) }));

  // the zoom stage decides by the typical volumes too
  const typicalMm3 = [...typicalCaps, ...(kindMin > 0 ? kindCaps : []), ...zoomSizes].some((c) => c > 0) ? await typicalLesionVolumes(sets, readVolume) : undefined;
  const model = await loadGroundingModel(dir, {}, { zoomModel: zoomDir });
  const points: CalibrationPoint[] = [];
  // each point's per-anomaly results: the per-kind stage recombines the gate stage's
  const resultsOf = new Map<CalibrationPoint, AnomalyResult[]>();
  let kinds: KindChoice[] = [];
  // each stage's grid points in one pass over the studies: the variants share the network's logits per study
  const score = async (grid: CalibrationSettings[]) => {
    // the region threshold does not change the maps: leave it out until one is chosen
    const variants = grid.map((p) => model.calibrated({ minPeak: p.minPeak, temperature: p.temperature, sizeCap: p.sizeCap || undefined, placePrior: p.placePrior || undefined, typicalSizeCap: p.typicalSizeCap || undefined, typicalMm3, contrastGate: p.contrastGate || undefined, kindCalibration: p.kindCalibration, zoom: p.zoomMaxMm3 ? { model: zoomDir!, maxMm3: p.zoomMaxMm3 } : undefined, regionThreshold: undefined }));
    const results: AnomalyResult[][] = grid.map(() => []);
    for (const s of sets) {
      const r = await evaluateModels(variants, s.dir, s.studies, { read: readVolume, organs: schemeOrganLookup, groundingBox: anomalyBox, split, quiet: false });
      r.forEach((e, k) => results[k]!.push(...e.anomalies));
    }
    grid.forEach((p, k) => {
      const point = calibrationPoint(p, results[k]!);
      points.push(point);
      resultsOf.set(point, results[k]!);
    });
  };
  const first: CalibrationSettings[] = minPeaks.flatMap((minPeak) => temperatures.map((temperature) => ({ minPeak, temperature, sizeCap: 0, placePrior: 0, typicalSizeCap: 0, contrastGate: 0, zoomMaxMm3: 0 })));
  // the second stage: caps × priors × typical caps at one minPeak × temperature
  const positive = (l: number[]) => [0, ...l.filter((v) => v > 0)];
  const second = (at: { minPeak: number; temperature: number }): CalibrationSettings[] => positive(sizeCaps)
    .flatMap((sizeCap) => positive(placePriors).flatMap((placePrior) => positive(typicalCaps).map((typicalSizeCap) => ({ minPeak: at.minPeak, temperature: at.temperature, sizeCap, placePrior, typicalSizeCap, contrastGate: 0, zoomMaxMm3: 0 }))))
    .filter((p) => p.sizeCap > 0 || p.placePrior > 0 || p.typicalSizeCap > 0);
  try {
    // with one first-stage point both stages share one pass over the studies
    if (first.length === 1) await score([...first, ...second(first[0]!)]);
    else {
      await score(first);
      const later = second(chooseCalibration(points).best);
      if (later.length) await score(later);
    }
    // the third stage: contrast gates at the best point so far (a pass of its own: the logits are per study object)
    const at = chooseCalibration(points).best, gates = contrastGates.filter((g) => g > 0);
    if (gates.length) await score(gates.map((contrastGate) => ({ ...settingsOf(at), contrastGate })));
    // the fourth stage: each kind of finding with enough validation findings takes its own gate and
    // typical cap among these (a pass for the pairs not scored yet; no new pass when none is missing)
    const global = chooseCalibration(points).best, g = settingsOf(global);
    // no pass for a stage no kind qualifies for
    if (kindMin > 0 && [...findingsByKind(resultsOf.get(global)!).values()].some((l) => l.length >= kindMin)) {
      const pairs = [...new Set([0, ...gates])].flatMap((contrastGate) => [...new Set([g.typicalSizeCap, ...kindCaps])].map((typicalSizeCap) => ({ ...g, contrastGate, typicalSizeCap })));
      const scored = (s: CalibrationSettings) => points.find((p) => !p.kindCalibration && samePoint(p, s));
      const missing = pairs.filter((s) => !scored(s));
      if (missing.length) await score(missing);
      const base = settingsOf(chooseCalibration(points).best);
      const chosen = chooseKindCalibration(pairs.map((s) => ({ contrastGate: s.contrastGate, typicalSizeCap: s.typicalSizeCap, results: resultsOf.get(scored(s)!)! })), base, kindMin, (_organ: string, type: string) => isDensityDefined(type));
      kinds = chosen.kinds;
      if (Object.keys(chosen.overrides).length) points.push(calibrationPoint({ ...base, kindCalibration: chosen.overrides }, chosen.results));
    }
    // the fifth stage: which findings the zoom network grounds, at the best point so far (its maps
    // replace the first look's, so it comes after the calibration those maps share)
    const sizes = zoomSizes.filter((v) => v > 0);
    if (sizes.length) await score(sizes.map((zoomMaxMm3) => ({ ...settingsOf(chooseCalibration(points).best), zoomMaxMm3 })));
  } finally {
    await model.dispose();
  }
  const { best, regionThreshold } = chooseCalibration(points);
  const kindsCell = (p: CalibrationSettings, v: number) => `${v || '-'}${p.kindCalibration ? ` + ${Object.keys(p.kindCalibration).length} kinds` : ''}`;
  const rows = points.map((p) => `| ${p.minPeak} | ${p.temperature} | ${p.sizeCap || '-'} | ${p.placePrior || '-'} | ${kindsCell(p, p.typicalSizeCap)} | ${kindsCell(p, p.contrastGate)} | ${p.zoomMaxMm3 || '-'} | ${p.hits}/${p.n} | ${(100 * p.hits / p.n).toFixed(1)} | ${(100 * p.miou).toFixed(1)} | ${p.iouAt.map((v) => (100 * v).toFixed(1)).join(' | ')} |${p === best ? ' chosen' : ''}`);
  console.log(`| minPeak | temperature | size cap | place prior | typical cap | contrast gate | zoom ≤ mm³ | hits | accuracy % | mIoU % | ${MIOU_THRESHOLDS.map((t) => `IoU@${t} %`).join(' | ')} |`);
  console.log(`|---|---|---|---|---|---|---|---|---|---|${MIOU_THRESHOLDS.map(() => '---').join('|')}|`);
  for (const r of rows) console.log(r);
  if (kinds.length) {
    console.log('');
    console.log(`| kind (≥ ${kindMin} ${split} findings) | n | own gate | own typical cap | hits | mIoU % | hits at the global settings | mIoU % |`);
    console.log('|---|---|---|---|---|---|---|---|');
    for (const k of kinds) console.log(`| ${k.kind} | ${k.n} | ${k.contrastGate || 'none'} | ${k.typicalSizeCap || 'none'} | ${k.hits} | ${(100 * k.miou).toFixed(1)} | ${k.baseHits} | ${(100 * k.baseMiou).toFixed(1)} |`);
  }
  const kindText = best.kindCalibration ? `; per kind (gate, typical cap): ${Object.entries(best.kindCalibration).map(([k, c]) => `${k} ${c.contrastGate || 'none'}, ${c.typicalSizeCap || 'none'}`).join('; ')}` : '';
  const choice = `minPeak ${best.minPeak}, temperature ${best.temperature}, sizeCap ${best.sizeCap || 'none'}, placePrior ${best.placePrior || 'none'}, typicalSizeCap ${best.typicalSizeCap || 'none'}, contrastGate ${best.contrastGate || 'none'}, zoom ${best.zoomMaxMm3 ? `≤ ${best.zoomMaxMm3} mm³` : 'none'}, regionThreshold ${regionThreshold ?? 'none (no evaluated threshold is below minPeak)'}${kindText}`;
  console.log(`chosen: ${choice} (most ${split} anomalies grounded, ties to mIoU; region threshold = best mean IoU below minPeak)`);
  if (values.write) {
    const path = join(dir, 'config.json');
    const raw = JSON.parse(readFileSync(path, 'utf8')) as { model: Record<string, unknown>; [k: string]: unknown };
    raw.model.minPeak = best.minPeak;
    raw.model.temperature = best.temperature;
    if (best.sizeCap) raw.model.sizeCap = best.sizeCap; else delete raw.model.sizeCap;
    if (best.placePrior) raw.model.placePrior = best.placePrior; else delete raw.model.placePrior;
    if (best.typicalSizeCap) raw.model.typicalSizeCap = best.typicalSizeCap; else delete raw.model.typicalSizeCap;
    // the typical volumes stay with a typical cap, or with a zoom network (its sizes are compared with them)
    if (best.typicalSizeCap || zoomDir || Object.values(best.kindCalibration ?? {}).some((k) => k.typicalSizeCap > 0)) raw.model.typicalMm3 = typicalMm3; else delete raw.model.typicalMm3;
    if (zoomDir) {
      // the model folder keeps its zoom network in zoom/ (a copy of --zoom-model), so it travels whole
      const own = resolve(dir, 'zoom');
      if (zoomDir !== own) {
        mkdirSync(own, { recursive: true });
        for (const f of MODEL_FILES) copyFileSync(join(zoomDir, f), join(own, f));
        // its text encoder named from where it now lies (it reads the first look's, but loads alone too)
        const zc = JSON.parse(readFileSync(join(own, 'config.json'), 'utf8')) as { model: Record<string, unknown> };
        zc.model.textEncoder = relative(own, resolveTextDir(dir, modelConfig));
        writeFileAtomic(join(own, 'config.json'), JSON.stringify(zc, null, 2) + '\n');
      }
      raw.model.zoom = { model: 'zoom', maxMm3: best.zoomMaxMm3 };
    }
    if (best.contrastGate) raw.model.contrastGate = best.contrastGate; else delete raw.model.contrastGate;
    if (best.kindCalibration) raw.model.kindCalibration = best.kindCalibration; else delete raw.model.kindCalibration;
    if (regionThreshold === undefined) delete raw.model.regionThreshold; else raw.model.regionThreshold = regionThreshold;
    raw.calibration = {
      command: ['ctground', 'calibrate', ...argv].join(' '), data, split, chosen: choice,
      grid: points.map((p) => ({ minPeak: p.minPeak, temperature: p.temperature, sizeCap: p.sizeCap, placePrior: p.placePrior, typicalSizeCap: p.typicalSizeCap, contrastGate: p.contrastGate, zoomMaxMm3: p.zoomMaxMm3, ...(p.kindCalibration ? { kindCalibration: p.kindCalibration } : {}), hits: p.hits, n: p.n, miou: p.miou, iouAt: p.iouAt })),
    };
    writeFileAtomic(path, JSON.stringify(raw, null, 2) + '\n');
    console.log(`written to ${path}`);
  }
  return 0;
}

/** A point's settings without its scores. */
function settingsOf(p: CalibrationPoint): CalibrationSettings {
  const { hits: _h, n: _n, miou: _m, iouAt: _i, ...settings } = p;
  return settings;
}

/** Two points with the same global settings (every numeric setting, whatever settings are added later). */
function samePoint(a: CalibrationSettings, b: CalibrationSettings): boolean {
  return (Object.keys(b) as (keyof CalibrationSettings)[]).every((k) => k === 'kindCalibration' || a[k] === b[k]);
}
