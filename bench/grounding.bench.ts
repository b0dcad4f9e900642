// The grounding model's costs, measured in one run on the real TotalSegmentator example CT:
//  1. training steps/s at the default size (batch 2), on crops of that CT;
//  2. grounding one study with 10 anomalies against the image encoder's forward alone: the text
//     encoder runs once per report and a small head once per anomaly, so with all 10 in one organ
//     the whole study should cost little more than the image forward over that organ's grids (one
//     crop, or its tiles when the organ is large). With the 10 spread over 5 organs the fair
//     reference is the forwards over the 5 organs' grids.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { denseVolume, readVolume, resampleToGrid } from '../src/volume/index.ts';
import { fromTotalSegmentator } from '../src/anatomy/index.ts';
import { Trainer, adam, saveParams } from '../src/engine/index.ts';
import {
  buildTrainGraph, cropChannels, anomalyCrop, anomalyTiles, cropKey, defaultConfig, inputChannels, loadGroundingModel, loadTextEncoder, readModelConfig,
  usesAnatomy, positionChannels, DEFAULT_MODEL_DIR, DEFAULT_TEXT_ENCODER_DIR, type GroundingAnomaly, type GroundingPhases, type GroundingConfig,
} from '../src/model/index.ts';
import { sharedPath } from '../test/helpers/shared.ts';
import { bestOf, bestOfInTurns } from './timing.ts';

/** A report of `n` findings, each a sentence naming an organ from the list in turn, with its spans. */
function report(organs: { cls: string; phrase: string }[], n: number): { text: string; anomalies: GroundingAnomaly[] } {
  let text = '';
  const anomalies: GroundingAnomaly[] = [];
  for (let i = 0; i < n; i++) {
    const o = organs[i % organs.length]!;
    const size = `${8 + i} mm`;
    const s = `A ${size} hypodense lesion is seen in the ${o.phrase}.`;
    const at = text.length;
    text += s + ' ';
    const span = (t: string, c: string) => ({ start: at + s.indexOf(t), end: at + s.indexOf(t) + t.length, text: t, class: c });
    anomalies.push({ id: `a${i}`, organ: o.cls, type: 'low_density_area', certainty: 'present', spans: [span('lesion', 'anomaly'), span('hypodense', 'density'), span(size, 'size'), span(o.phrase, 'anatomy')] });
  }
  return { text, anomalies };
}

/** Rounds of the forward-vs-grounding comparisons. */
const ROUNDS = 10;

export async function run({ json }: { json: boolean }): Promise<Record<string, unknown>> {
  const ctFull = await readVolume(sharedPath('data', 'totalsegmentator', 'example_ct_sm.nii.gz'));
  const seg = await readVolume(sharedPath('data', 'totalsegmentator', 'example_seg.nii.gz'));
  const anatomy = fromTotalSegmentator(resampleToGrid(seg, ctFull, 'nearest'));
  const ct = ctFull;

  // The shipped model when there is one; otherwise the default configuration, untrained (timings do not depend on weights).
  let dir = DEFAULT_MODEL_DIR, tmp: string | null = null;
  let cfg: GroundingConfig;
  const text = loadTextEncoder(DEFAULT_TEXT_ENCODER_DIR);
  if (existsSync(join(dir, 'config.json'))) cfg = readModelConfig(dir);
  else {
    tmp = mkdtempSync(join(tmpdir(), 'ctg-bench-'));
    dir = tmp;
    cfg = { ...defaultConfig('full'), textEncoder: DEFAULT_TEXT_ENCODER_DIR };
    const { graph } = buildTrainGraph(cfg, 1, text.hiddenSize, 1);
    saveParams(graph, join(dir, 'model.safetensors'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model: cfg }));
  }

  // 1. training steps/s, batch 2, at the model's size
  const B = 2, G = cfg.crop.grid, A = cfg.maxAggregate, d = text.hiddenSize;
  const { graph, loss } = buildTrainGraph(cfg, B, d, 1);
  const trainer = await Trainer.create(graph, { loss, optimizer: adam(1e-3) });
  const liver = report([{ cls: 'liver', phrase: 'liver' }], 10);
  const geom = anomalyCrop(anatomy, liver.anomalies[0]!, cfg);
  const chans = cropChannels(ct, anatomy, geom, cfg.crop, usesAnatomy(cfg.variant));
  const image = new Float32Array(B * inputChannels(cfg) * G ** 3);
  for (let b = 0; b < B; b++) image.set(chans, b * chans.length);
  const feeds = {
    image, rows: new Float32Array(B * A * d).map((_, i) => Math.sin(i)), ids: new BigInt64Array(B * A).map((_, i) => BigInt(i % A)),
    lengths: new BigInt64Array(B).fill(BigInt(A)), target: new Float32Array(B * G ** 3).map((_, i) => (i % 97 === 0 ? 1 : 0)),
    rowMask: new Float32Array(B * A).fill(1), box: new Float32Array(B * 6).fill(0.5),
    ...(cfg.positional ? { position: (() => {
      const one = positionChannels(G, geom.positionScale, geom.positionOffset), all = new Float32Array(B * one.length);
      for (let b = 0; b < B; b++) all.set(one, b * one.length);
      return all;
    })() } : {}),
  };
  await trainer.step(feeds);
  const stepMs = await bestOf(() => trainer.step(feeds), 5);
  await trainer.dispose();

  // 2. one study with 10 anomalies vs the image encoder's forward alone
  const full = await loadGroundingModel(dir);
  // the target is the first look's overhead over its forwards; a zoom stage adds forwards of its own, timed apart below
  const model = full.config.zoom ? full.calibrated({ zoom: undefined }) : full;
  // steady state, as in a labeling run: a session's first runs grow its memory arena
  for (let i = 0; i < 3; i++) await model.ground({ ct, anatomy, report: liver });
  // the image side alone: every grid grounding uses for these anomalies' organs, resampled beforehand
  const imageInputs = (anomalies: GroundingAnomaly[]) => [...new Map(anomalies.map((a) => [cropKey(a, cfg.crop.region), a])).values()]
    .flatMap((a) => anomalyTiles(anatomy, a, cfg)).map((g) => ({ g, ch: cropChannels(ct, anatomy, g, cfg.crop, usesAnatomy(cfg.variant)) }));
  const forwards = async (inputs: ReturnType<typeof imageInputs>) => { for (const { g, ch } of inputs) await model.encodeCrop(ch, g); };
  const liverGrids = imageInputs(liver.anomalies);
  const forwardMs = await bestOf(() => model.encodeCrop(chans, geom), 5);
  const [liverForwardMs, oneOrganMs] = await bestOfInTurns([() => forwards(liverGrids), () => model.ground({ ct, anatomy, report: liver })], ROUNDS);
  // where the time goes, averaged over 3 more calls
  const phases: GroundingPhases = { text: 0, crop: 0, image: 0, head: 0, maps: 0 };
  for (let i = 0; i < 3; i++) await model.ground({ ct, anatomy, report: liver }, phases);
  for (const k of Object.keys(phases) as (keyof GroundingPhases)[]) phases[k] /= 3;
  const spread = report([{ cls: 'liver', phrase: 'liver' }, { cls: 'spleen', phrase: 'spleen' }, { cls: 'kidney', phrase: 'right kidney' }, { cls: 'kidney', phrase: 'left kidney' }, { cls: 'pancreas', phrase: 'pancreas' }], 10);
  const spreadGrids = imageInputs(spread.anomalies);
  for (let i = 0; i < 3; i++) await model.ground({ ct, anatomy, report: spread });
  const [fiveForwardMs, fiveOrganMs] = await bestOfInTurns([() => forwards(spreadGrids), () => model.ground({ ct, anatomy, report: spread })], ROUNDS);
  // what writing the maps adds: each made a whole-grid array (grounding keeps them over their boxes)
  const liverMaps = [...(await model.ground({ ct, anatomy, report: liver })).values()];
  const denseMs = await bestOf(() => liverMaps.map((m) => denseVolume(m)), 5);
  // the zoom stage: the same study with it, and how many of its findings it takes (stated sizes 8–17 mm)
  let zoom: { oneOrganMs: number; withoutMs: number; zoomed: number; maxMm3: number } | undefined;
  const zc = full.config.zoom;
  if (zc && zc.maxMm3 > 0) {
    for (let i = 0; i < 3; i++) await full.ground({ ct, anatomy, report: liver });
    const [plainMs, zoomMs] = await bestOfInTurns([() => model.ground({ ct, anatomy, report: liver }), () => full.ground({ ct, anatomy, report: liver })], ROUNDS);
    zoom = { oneOrganMs: zoomMs, withoutMs: plainMs, zoomed: liver.anomalies.filter((a) => full.zooms(a)).length, maxMm3: zc.maxMm3 };
  }
  await full.dispose();
  await text.dispose();
  if (tmp) rmSync(tmp, { recursive: true, force: true });

  const r = {
    data: 'TotalSegmentator example_ct_sm (real CT, 30 slices) with its labels',
    model: tmp ? 'default config, untrained weights' : 'models/grounding-default',
    grid: G, widths: cfg.widths,
    trainStepMs: stepMs, trainStepsPerSecond: 1000 / stepMs, batch: B,
    imageForwardMs: forwardMs, liverGrids: liverGrids.length, liverForwardMs,
    ground10OneOrganMs: oneOrganMs, ratioOneOrgan: oneOrganMs / liverForwardMs, ground10OneOrganPhasesMs: phases,
    // the call's ratio times its share outside the maps (phases are means of other calls than the best one)
    ratioOneOrganNetwork: (oneOrganMs / liverForwardMs) * (1 - phases.maps / Object.values(phases).reduce((x, y) => x + y, 0)),
    fiveOrganGrids: spreadGrids.length, fiveOrganForwardMs: fiveForwardMs,
    ground10FiveOrgansMs: fiveOrganMs, ratioFiveOrgansVsForwards: fiveOrganMs / fiveForwardMs,
    denseMapsMs: denseMs, rounds: ROUNDS, zoom,
  };
  if (!json) {
    console.log(`training: ${r.trainStepsPerSecond.toFixed(2)} steps/s (batch ${B}, grid ${G}³, widths ${cfg.widths.join('-')}; best of 5)`);
    console.log(`image encoder forward: one crop ${forwardMs.toFixed(0)} ms; the liver's ${liverGrids.length} grid(s) ${liverForwardMs.toFixed(0)} ms`);
    console.log(`ground 10 anomalies in one organ: ${oneOrganMs.toFixed(0)} ms = ${r.ratioOneOrgan.toFixed(2)}× the image forward over its grids (target ≤ 1.5×; best of ${ROUNDS}, the two taken in turns, after 3 warm-up calls)`);
    console.log(`  of which: ${Object.entries(phases).map(([k, v]) => `${k} ${v.toFixed(1)} ms`).join(', ')} (mean of 3)`);
    console.log(`  without the maps (calibration and paste onto the CT grid: output, not network): ${r.ratioOneOrganNetwork.toFixed(2)}× (the ratio times the phases' share outside the maps)`);
    console.log(`ground 10 anomalies in 5 organs: ${fiveOrganMs.toFixed(0)} ms = ${r.ratioFiveOrgansVsForwards.toFixed(2)}× the image forward over their ${spreadGrids.length} grids (${fiveForwardMs.toFixed(0)} ms)`);
    if (zoom) console.log(`with the zoom stage (findings expected ≤ ${zoom.maxMm3} mm³: ${zoom.zoomed} of the 10): ${zoom.oneOrganMs.toFixed(0)} ms against ${zoom.withoutMs.toFixed(0)} ms without (one more 32³ forward per zoomed finding; best of ${ROUNDS}, in turns)`);
    console.log(`the one-organ study's 10 maps made whole-grid arrays (as writing them does; not part of grounding): ${denseMs.toFixed(1)} ms`);
  }
  return r;
}
