import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseKindCalibration, type AnomalyResult, type KindCandidate } from '../src/eval/index.ts';
import { contrastGateFor, mapCapMm3, defaultConfig, type GroundingAnomaly } from '../src/model/index.ts';

// a result with just what the per-kind choice reads: which finding, its kind, hit and mIoU
const result = (study: string, id: string, organ: string, type: string, hit: boolean, miou: number): AnomalyResult => ({
  study, id, organ, type, diffuse: false,
  score: { dice: miou, ious: [miou, miou, miou, miou, miou], miou, hit, overlap: { inter: 0, pred: 0, gt: 0 } },
  instances: { predInstances: 0, predMatched: 0, gtInstances: 0, gtMatched: 0 },
  lesionMm3: 0, organMm3: 0, diameterMm: 0, peakDistanceMm: 0, organExtentMm: NaN, cnr: NaN,
});

// kidney cysts (3 findings), pancreas ducts (3), lung atelectasis (2: not density-defined), one liver
// mass (below the minimum count); study ids repeat, as they do across datasets
const findings = [
  ['s1', 'a1', 'kidney', 'cyst'], ['s2', 'a1', 'kidney', 'cyst'], ['s1', 'a1', 'kidney', 'cyst'],
  ['s1', 'a2', 'pancreas', 'duct_dilation'], ['s2', 'a2', 'pancreas', 'duct_dilation'], ['s3', 'a1', 'pancreas', 'duct_dilation'],
  ['s3', 'a2', 'lung', 'atelectasis'], ['s4', 'a2', 'lung', 'atelectasis'],
  ['s4', 'a1', 'liver', 'mass'],
] as const;
// per (gate, typical cap), per finding above: hit and mIoU
const outcomes: [number, number, [boolean, number][]][] = [
  [0.5, 4, [[true, 0.4], [true, 0.5], [false, 0.05], [false, 0.02], [true, 0.2], [false, 0.01], [false, 0.05], [true, 0.3], [true, 0.3]]],
  // kidney cysts: same hits, better mIoU; ducts: one more hit; the liver mass better too (but too few)
  [1, 4, [[true, 0.5], [true, 0.6], [false, 0.06], [true, 0.15], [true, 0.25], [false, 0.02], [false, 0.05], [true, 0.3], [true, 0.6]]],
  // ducts: the most hits, but kidney cysts lose one
  [2, 4, [[true, 0.5], [false, 0.05], [false, 0.06], [true, 0.2], [true, 0.3], [true, 0.12], [true, 0.5], [true, 0.6], [true, 0.6]]],
  // a smaller typical cap: atelectasis gains at the base gate; ducts tie with (2, 4) in hits, lower mIoU
  [0.5, 2, [[true, 0.4], [true, 0.5], [false, 0.05], [true, 0.2], [true, 0.2], [true, 0.1], [true, 0.2], [true, 0.4], [true, 0.3]]],
];
const candidates: KindCandidate[] = outcomes.map(([contrastGate, typicalSizeCap, o]) => ({
  contrastGate, typicalSizeCap, results: findings.map(([s, id, organ, type], k) => result(s, id, organ, type, o[k]![0], o[k]![1])),
}));
const densityDefined = (_o: string, type: string) => type !== 'atelectasis';

test('chooseKindCalibration: a kind with enough findings takes the settings grounding more of them than the global ones (ties among those to mIoU), and the combination adds up', () => {
  const { overrides, kinds, results } = chooseKindCalibration(candidates, { contrastGate: 0.5, typicalSizeCap: 4 }, 2, densityDefined);
  // atelectasis is not gated: of the (2, 4) and (0.5, 2) candidates it may take only the base gate's
  // kidney cysts: a better mIoU at gate 1, no more hits: they keep the base
  assert.deepEqual(overrides, { 'lung:atelectasis': { contrastGate: 0.5, typicalSizeCap: 2 }, 'pancreas:duct_dilation': { contrastGate: 2, typicalSizeCap: 4 } });
  assert.deepEqual(kinds.map((k) => [k.kind, k.n, k.contrastGate, k.hits, k.baseHits]), [['kidney:cyst', 3, 0.5, 2, 2], ['lung:atelectasis', 2, 0.5, 2, 1], ['pancreas:duct_dilation', 3, 2, 3, 1]]);
  // the combined results: each finding's own from its kind's candidate, kidney cysts and the liver mass at the base
  const from = { cyst: 0, duct_dilation: 2, atelectasis: 3, mass: 0 } as const;
  assert.equal(results.length, findings.length);
  results.forEach((r, k) => assert.deepEqual([r.score.hit, r.score.miou], outcomes[from[findings[k]![3]]]![2][k]));
  // no kind has four findings: nothing is overridden
  assert.deepEqual(chooseKindCalibration(candidates, { contrastGate: 0.5, typicalSizeCap: 4 }, 4, densityDefined).overrides, {});
  // with base (2, 4) kidney cysts take gate 1 (more hits), ducts stay (their choice is the base)
  assert.deepEqual(Object.keys(chooseKindCalibration(candidates, { contrastGate: 2, typicalSizeCap: 4 }, 2, densityDefined).overrides), ['kidney:cyst']);
  assert.throws(() => chooseKindCalibration(candidates, { contrastGate: 0.7, typicalSizeCap: 4 }, 2, densityDefined), /no candidate has the base settings \(gate 0.7, typical cap 4\)/);
  // results must be one pass's: the same findings in the same order
  const shuffled = [...candidates.slice(0, 3), { ...candidates[3]!, results: [...candidates[3]!.results].reverse() }];
  assert.throws(() => chooseKindCalibration(shuffled, { contrastGate: 0.5, typicalSizeCap: 4 }, 2, densityDefined), /lists other findings than the base/);
});

test('a kind\'s own settings over the global ones: its gate (0: not gated; never a type defined by shape) and its typical-size cap', () => {
  const kindCalibration = { 'pancreas:duct_dilation': { contrastGate: 2, typicalSizeCap: 1 }, 'colon:mass': { contrastGate: 0, typicalSizeCap: 0 } };
  const cfg = { ...defaultConfig('full'), contrastGate: 0.7, typicalSizeCap: 4, typicalMm3: { 'pancreas:duct_dilation': 500, 'colon:mass': 4000, mass: 3000 }, kindCalibration };
  assert.equal(contrastGateFor(cfg, 'pancreas', 'duct_dilation'), 2);
  assert.equal(contrastGateFor(cfg, 'colon', 'mass'), 0);
  assert.equal(contrastGateFor(cfg, 'liver', 'mass'), 0.7);
  assert.equal(contrastGateFor(cfg, 'lung', 'atelectasis'), 0);
  assert.equal(contrastGateFor({}, 'liver', 'mass'), 0);
  const anomaly = (organ: string, type: string): GroundingAnomaly => ({ id: 'a1', organ, type, certainty: 'present', spans: [] });
  assert.equal(mapCapMm3(cfg, anomaly('pancreas', 'duct_dilation')), 500);
  assert.equal(mapCapMm3(cfg, anomaly('colon', 'mass')), undefined);
  assert.equal(mapCapMm3(cfg, anomaly('liver', 'mass')), 12000);
});
