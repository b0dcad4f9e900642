import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InferenceModel } from '../src/engine/index.ts';
import { buildImageGraph, buildImageLogitsGraph, buildLogitsGraph, buildTrainGraph, defaultConfig, inputChannels, type GroundingConfig } from '../src/model/index.ts';

// Inference builds the attention logits another way than training (separable upsampling, the bias
// before it, one Gemm for the two scales); each kind of key layout must give the plain form's logits.
for (const [name, over] of [
  ['fine keys from the decoder (crop resolution)', { fineAttention: true, decoder: true }],
  ['fine keys from stage 2 (half the crop resolution, older models)', { fineAttention: true, decoder: false }],
  ['coarse keys only', { fineAttention: false, decoder: false }],
] as [string, Partial<GroundingConfig>][]) {
  test(`inference logits equal the plain form's: ${name}`, async () => {
    const base = defaultConfig('full');
    const cfg: GroundingConfig = { ...base, ...over, positional: false, crop: { ...base.crop, grid: 16 } };
    const G = cfg.crop.grid, n = G ** 3, B = 3;
    const { graph } = buildTrainGraph(cfg, 1, 8, 5);
    const weights = new Map([...graph.params].map(([k, p]) => [k, Float32Array.from(p.value)]));
    const image = new Float32Array(inputChannels(cfg) * n).map((_, i) => (Math.sin(0.7 * i) + 1) / 2);
    const L = new Float32Array(B * cfg.lstmHidden).map((_, i) => Math.cos(0.3 * i));
    const img = buildImageGraph(cfg, weights);
    const shapes = Object.fromEntries(Object.entries(img.outputs).map(([k, t]) => [k, t.shape]));
    const im = await InferenceModel.create(img.graph, img.outputs);
    const keys = (await im.run({ image })) as Record<string, Float32Array>;
    const half = buildLogitsGraph(cfg, weights, shapes, B);
    const hm = await InferenceModel.create(half.graph, { out: half.output });
    const ref = (await hm.run({ L, ...keys })).out as Float32Array;
    const one = buildImageLogitsGraph(cfg, weights, B);
    const om = await InferenceModel.create(one.graph, { out: one.output });
    const got = (await om.run({ image, L })).out as Float32Array;
    for (const m of [im, hm, om]) await m.dispose();
    assert.equal(got.length, B * n);
    let worst = 0;
    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(ref[i]! - got[i]!));
    assert.ok(worst < 1e-4, `max difference ${worst}`);
    assert.ok(Math.abs(ref[0]! - ref[2 * n]!) > 1e-5, 'the queries differ: a batch-row mix-up would show');
  });
}
