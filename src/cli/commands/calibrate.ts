import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError, writeFileAtomic } from '../../common/index.ts';
import { numListFlag, parseFlags, requireFlag } from '../args.ts';
import { readVolume } from '../../volume/index.ts';
import { anomalyBox, loadGroundingModel } from '../../model/index.ts';
import {
  calibrationPoint, chooseCalibration, evaluateModels, typicalLesionVolumes, readManifest, schemeOrganLookup, splitOf, MIOU_THRESHOLDS, type AnomalyResult, type CalibrationPoint, type CalibrationSettings,
} from '../../eval/index.ts';

export const summary = "choose a model's map calibration (minPeak, temperature, size caps, place prior, contrast gate, region threshold) on validation data";

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    model: { type: 'string' }, data: { type: 'string' }, split: { type: 'string' },
    'min-peaks': { type: 'string' }, temperatures: { type: 'string' }, 'size-caps': { type: 'string' }, 'place-priors': { type: 'string' }, 'typical-caps': { type: 'string' }, 'contrast-gates': { type: 'string' }, write: { type: 'boolean' },
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
  const sets = data.map((d) => ({ dir: d, studies: splitOf(readManifest(d), split, join(d, 'manifest.jsonl')) }));

  const typicalMm3 = typicalCaps.some((c) => c > 0) ? await typicalLesionVolumes(sets, readVolume) : undefined;
  const model = await loadGroundingModel(dir);
  const points: CalibrationPoint[] = [];
  // each stage's grid points in one pass over the studies: the variants share the network's logits per study
  const score = async (grid: CalibrationSettings[]) => {
    // the region threshold does not change the maps: leave it out until one is chosen
    const variants = grid.map((p) => model.calibrated({ minPeak: p.minPeak, temperature: p.temperature, sizeCap: p.sizeCap || undefined, placePrior: p.placePrior || undefined, typicalSizeCap: p.typicalSizeCap || undefined, typicalMm3: p.typicalSizeCap ? typicalMm3 : undefined, contrastGate: p.contrastGate || undefined, regionThreshold: undefined }));
    const results: AnomalyResult[][] = grid.map(() => []);
    for (const s of sets) {
      const r = await evaluateModels(variants, s.dir, s.studies, { read: readVolume, organs: schemeOrganLookup, groundingBox: anomalyBox, split, quiet: false });
      r.forEach((e, k) => results[k]!.push(...e.anomalies));
    }
    grid.forEach((p, k) => points.push(calibrationPoint(p, results[k]!)));
  };
  const first: CalibrationSettings[] = minPeaks.flatMap((minPeak) => temperatures.map((temperature) => ({ minPeak, temperature, sizeCap: 0, placePrior: 0, typicalSizeCap: 0, contrastGate: 0 })));
  // the second stage: caps × priors × typical caps at one minPeak × temperature
  const positive = (l: number[]) => [0, ...l.filter((v) => v > 0)];
  const second = (at: { minPeak: number; temperature: number }): CalibrationSettings[] => positive(sizeCaps)
    .flatMap((sizeCap) => positive(placePriors).flatMap((placePrior) => positive(typicalCaps).map((typicalSizeCap) => ({ minPeak: at.minPeak, temperature: at.temperature, sizeCap, placePrior, typicalSizeCap, contrastGate: 0 }))))
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
    const { hits: _h, n: _n, miou: _m, iouAt: _i, ...settings } = at;
    if (gates.length) await score(gates.map((contrastGate) => ({ ...settings, contrastGate })));
  } finally {
    await model.dispose();
  }
  const { best, regionThreshold } = chooseCalibration(points);
  const rows = points.map((p) => `| ${p.minPeak} | ${p.temperature} | ${p.sizeCap || '-'} | ${p.placePrior || '-'} | ${p.typicalSizeCap || '-'} | ${p.contrastGate || '-'} | ${p.hits}/${p.n} | ${(100 * p.hits / p.n).toFixed(1)} | ${(100 * p.miou).toFixed(1)} | ${p.iouAt.map((v) => (100 * v).toFixed(1)).join(' | ')} |${p === best ? ' chosen' : ''}`);
  console.log(`| minPeak | temperature | size cap | place prior | typical cap | contrast gate | hits | accuracy % | mIoU % | ${MIOU_THRESHOLDS.map((t) => `IoU@${t} %`).join(' | ')} |`);
  console.log(`|---|---|---|---|---|---|---|---|---|${MIOU_THRESHOLDS.map(() => '---').join('|')}|`);
  for (const r of rows) console.log(r);
  const choice = `minPeak ${best.minPeak}, temperature ${best.temperature}, sizeCap ${best.sizeCap || 'none'}, placePrior ${best.placePrior || 'none'}, typicalSizeCap ${best.typicalSizeCap || 'none'}, contrastGate ${best.contrastGate || 'none'}, regionThreshold ${regionThreshold ?? 'none (no evaluated threshold is below minPeak)'}`;
  console.log(`chosen: ${choice} (most ${split} anomalies grounded, ties to mIoU; region threshold = best mean IoU below minPeak)`);
  if (values.write) {
    const path = join(dir, 'config.json');
    const raw = JSON.parse(readFileSync(path, 'utf8')) as { model: Record<string, unknown>; [k: string]: unknown };
    raw.model.minPeak = best.minPeak;
    raw.model.temperature = best.temperature;
    if (best.sizeCap) raw.model.sizeCap = best.sizeCap; else delete raw.model.sizeCap;
    if (best.placePrior) raw.model.placePrior = best.placePrior; else delete raw.model.placePrior;
    if (best.typicalSizeCap) { raw.model.typicalSizeCap = best.typicalSizeCap; raw.model.typicalMm3 = typicalMm3; } else { delete raw.model.typicalSizeCap; delete raw.model.typicalMm3; }
    if (best.contrastGate) raw.model.contrastGate = best.contrastGate; else delete raw.model.contrastGate;
    if (regionThreshold === undefined) delete raw.model.regionThreshold; else raw.model.regionThreshold = regionThreshold;
    raw.calibration = {
      command: ['ctground', 'calibrate', ...argv].join(' '), data, split, chosen: choice,
      grid: points.map((p) => ({ minPeak: p.minPeak, temperature: p.temperature, sizeCap: p.sizeCap, placePrior: p.placePrior, typicalSizeCap: p.typicalSizeCap, contrastGate: p.contrastGate, hits: p.hits, n: p.n, miou: p.miou, iouAt: p.iouAt })),
    };
    writeFileAtomic(path, JSON.stringify(raw, null, 2) + '\n');
    console.log(`written to ${path}`);
  }
  return 0;
}

