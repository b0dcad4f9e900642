// The Trainer end to end: optimizers against a hand-written reference, a 3D CNN segmenting
// spheres in noise, an LSTM on a variable-length sequence task, checkpoints and their errors,
// frozen parameters, inference/export equality.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { createRng, UserError } from '../src/common/index.ts';
import { Graph, Trainer, InferenceModel, adam, sgd, exportOnnx, emitModel, createSession, defaultSessionOptions, loadParams, ops as o, type Tensor } from '../src/engine/index.ts';

const tmp = mkdtempSync(join(tmpdir(), 'ctground-engine-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

test('Adam(W) with clipping and SGD with momentum match a reference implementation (float64)', async () => {
  // loss = ½ Σ c ⊙ (w − t)², gradient c ⊙ (w − t): the update rule can be replayed exactly here
  const t = [0.5, -1, 2, 0.25], c = [1, 3, 0.5, 2];
  for (const opt of [adam(0.1, { weightDecay: 0.05, clipNorm: 1.5 }), sgd(0.05, { momentum: 0.9, weightDecay: 0.01, clipNorm: 2 })]) {
    const g = new Graph({ seed: 2, dtype: 'float64' });
    const w = g.param('w', [4], { kind: 'values', data: [1, 1, 1, 1] });
    const diff = o.sub(w, g.constant(Float64Array.from(t), [4]));
    const loss = o.mul(o.sum(o.mul(o.mul(diff, diff), g.constant(Float64Array.from(c), [4]))), 0.5);
    const tr = await Trainer.create(g, { loss, optimizer: opt });
    const ref = [1, 1, 1, 1], m = [0, 0, 0, 0], v = [0, 0, 0, 0];
    for (let step = 1; step <= 5; step++) {
      const lr = opt.lr * (step === 3 ? 0.5 : 1); // a schedule, fed per step
      await tr.step({}, { lr });
      let gr = ref.map((x, i) => c[i]! * (x - t[i]!));
      const norm = Math.hypot(...gr);
      gr = gr.map((x) => (x * opt.clipNorm!) / Math.max(norm, opt.clipNorm!));
      for (let i = 0; i < 4; i++) {
        if (opt.kind === 'adam') {
          m[i] = 0.9 * m[i]! + 0.1 * gr[i]!;
          v[i] = 0.999 * v[i]! + 0.001 * gr[i]! ** 2;
          const mh = m[i]! / (1 - 0.9 ** step), vh = v[i]! / (1 - 0.999 ** step);
          ref[i] = ref[i]! - lr * mh / (Math.sqrt(vh) + 1e-8) - lr * opt.weightDecay! * ref[i]!;
        } else {
          m[i] = 0.9 * m[i]! + gr[i]!;
          ref[i] = ref[i]! - lr * m[i]! - lr * opt.weightDecay! * ref[i]!;
        }
      }
      const got = g.params.get('w')!.value;
      for (let i = 0; i < 4; i++) assert.ok(Math.abs(got[i]! - ref[i]!) < 1e-12, `${opt.kind} step ${step} w[${i}] ${got[i]} vs ${ref[i]}`);
    }
    await tr.dispose();
  }
});

/** spheres of random centre and radius in Gaussian noise; returns images and masks */
function spheres(rng: ReturnType<typeof createRng>, count: number, n: number): { x: Float32Array; y: Float32Array } {
  const x = new Float32Array(count * n ** 3), y = new Float32Array(count * n ** 3);
  for (let s = 0; s < count; s++) {
    const r = rng.uniform(2.5, 5);
    const c = [0, 1, 2].map(() => rng.uniform(r, n - 1 - r));
    for (let k = 0; k < n; k++) for (let j = 0; j < n; j++) for (let i = 0; i < n; i++) {
      const idx = s * n ** 3 + (k * n + j) * n + i;
      const inside = (i - c[0]!) ** 2 + (j - c[1]!) ** 2 + (k - c[2]!) ** 2 <= r * r ? 1 : 0;
      y[idx] = inside;
      x[idx] = inside + rng.normal(0, 0.5);
    }
  }
  return { x, y };
}

function buildSegmenter(g: Graph, B: number, n: number): { x: Tensor; y: Tensor; prob: Tensor; loss: Tensor } {
  const x = g.input('x', [B, 1, n, n, n]);
  const y = g.input('y', [B, 1, n, n, n]);
  let h = o.relu(o.conv3d(x, g.param('c1.w', [8, 1, 3, 3, 3]), g.param('c1.b', [8], { kind: 'zeros' }), { padding: 1 }));
  const skip = h;
  h = o.maxPool3d(h, { kernel: 2 });
  h = o.relu(o.conv3d(h, g.param('c2.w', [8, 8, 3, 3, 3]), g.param('c2.b', [8], { kind: 'zeros' }), { padding: 1 }));
  h = o.concat([o.upsampleNearest(h, 2), skip], 1);
  const logits = o.conv3d(h, g.param('c3.w', [1, 16, 3, 3, 3], { kind: 'xavier' }), g.param('c3.b', [1], { kind: 'zeros' }), { padding: 1 });
  const prob = o.sigmoid(logits);
  return { x, y, prob, loss: o.diceLoss(prob, y) };
}

function dice(p: ArrayLike<number>, y: ArrayLike<number>): number {
  let inter = 0, a = 0, b = 0;
  for (let i = 0; i < y.length; i++) { const q = p[i]! > 0.5 ? 1 : 0; inter += q * y[i]!; a += q; b += y[i]!; }
  return (2 * inter) / (a + b);
}

test('a tiny 3D CNN learns to segment spheres in noise (held-out Dice > 0.9)', async () => {
  const n = 16, B = 4;
  const g = new Graph({ seed: 1 });
  const net = buildSegmenter(g, B, n);
  const tr = await Trainer.create(g, { loss: net.loss, optimizer: adam(0.01) });
  const rng = createRng(100);
  let last = 1;
  for (let step = 0; step < 120; step++) {
    const batch = spheres(rng, B, n);
    last = (await tr.step({ x: batch.x, y: batch.y })).loss;
  }
  assert.ok(last < 0.2, `training loss ${last}`);
  const inf = await InferenceModel.create(g, { prob: net.prob });
  const held = spheres(createRng(999), B * 2, n);
  const per = n ** 3 * B;
  for (let part = 0; part < 2; part++) {
    const { prob } = await inf.run({ x: held.x.subarray(part * per, (part + 1) * per) });
    for (let s = 0; s < B; s++) {
      const d = dice((prob as Float32Array).subarray(s * n ** 3, (s + 1) * n ** 3), held.y.subarray(part * per + s * n ** 3, part * per + (s + 1) * n ** 3));
      assert.ok(d > 0.9, `held-out volume ${part * B + s}: Dice ${d.toFixed(3)}`);
    }
  }
  await inf.dispose();
  await tr.dispose();
});

test('an LSTM learns a variable-length sequence task (first and last valid element)', async () => {
  // each sequence holds random bits for its length and random garbage after it; the model must
  // report its first bit and its last valid bit, which needs memory and correct length masking
  const B = 32, T = 8;
  const g = new Graph({ seed: 4 });
  const x = g.input('x', [B, T, 1]);
  const len = g.input('len', [B], 'int64');
  const target = g.input('t', [B, 2]);
  const H = 16;
  const { last } = o.lstm(x, { wx: g.param('wx', [1, 4 * H], { kind: 'xavier' }), wh: g.param('wh', [H, 4 * H], { kind: 'xavier' }), b: g.param('b', [4 * H], { kind: 'zeros' }) }, len);
  const logits = o.linear(last, g.param('out.w', [H, 2], { kind: 'xavier' }), g.param('out.b', [2], { kind: 'zeros' }));
  const loss = o.bceWithLogits(logits, target);
  const tr = await Trainer.create(g, { loss, optimizer: adam(0.02), outputs: { logits } });
  const make = (rng: ReturnType<typeof createRng>) => {
    const xs = new Float32Array(B * T), ls = new BigInt64Array(B), ts = new Float32Array(B * 2);
    for (let b = 0; b < B; b++) {
      const L = rng.int(2, T);
      ls[b] = BigInt(L);
      for (let t = 0; t < T; t++) xs[b * T + t] = t < L ? rng.int(0, 1) : rng.uniform(-3, 3);
      ts[2 * b] = xs[b * T]!;
      ts[2 * b + 1] = xs[b * T + L - 1]!;
    }
    return { x: xs, len: ls, t: ts };
  };
  const rng = createRng(8);
  for (let step = 0; step < 300; step++) await tr.step(make(rng));
  let correct = 0, total = 0;
  const held = createRng(77);
  for (let rep = 0; rep < 4; rep++) {
    const batch = make(held);
    const { outputs } = await tr.step(batch, { lr: 0 });
    const lg = outputs.logits as Float32Array;
    for (let i = 0; i < lg.length; i++) { correct += (lg[i]! > 0 ? 1 : 0) === batch.t[i] ? 1 : 0; total++; }
  }
  assert.ok(correct / total > 0.95, `held-out accuracy ${correct}/${total}`);
  await tr.dispose();
});

/** a small model with dropout, so the resumed run must also replay the dropout stream */
async function smallRun(ckptAfter: number | null, resumeFrom: string | null, steps: number): Promise<number[]> {
  const g = new Graph({ seed: 12 });
  const x = g.input('x', [4, 6]);
  const y = g.input('y', [4, 1]);
  const h = o.dropout(o.tanh(o.linear(x, g.param('l1.w', [6, 8], { kind: 'xavier' }), g.param('l1.b', [8], { kind: 'zeros' }))), 0.25);
  const loss = o.bceWithLogits(o.linear(h, g.param('l2.w', [8, 1], { kind: 'xavier' }), null), y);
  const tr = await Trainer.create(g, { loss, optimizer: adam(0.05, { weightDecay: 0.01 }), seed: 3 });
  if (resumeFrom) tr.load(resumeFrom);
  const losses: number[] = [];
  while (tr.stepCount < steps) {
    // the batch is a function of the step number, as a resumable data loader provides
    const r = createRng(1000 + tr.stepCount);
    const xs = Float32Array.from({ length: 24 }, () => r.normal());
    const ys = Float32Array.from({ length: 4 }, (_, i) => (xs[i * 6]! + xs[i * 6 + 1]! > 0 ? 1 : 0));
    losses.push((await tr.step({ x: xs, y: ys })).loss);
    if (tr.stepCount === ckptAfter) tr.save(join(tmp, 'mid.safetensors'));
  }
  await tr.dispose();
  return losses;
}

test('a checkpoint saved mid-training and resumed gives the identical loss curve', async () => {
  const full = await smallRun(5, null, 10);
  const resumed = await smallRun(null, join(tmp, 'mid.safetensors'), 10);
  assert.equal(resumed.length, 5);
  assert.deepEqual(resumed, full.slice(5));
  assert.ok(new Set(full).size > 5, 'the loss must actually change');
  const cfg = JSON.parse(readFileSync(join(tmp, 'mid.json'), 'utf8')) as { step: number };
  assert.equal(cfg.step, 5);
});

test('corrupt or mismatched checkpoints give a UserError naming the file and the parameter', async () => {
  await smallRun(2, null, 2);
  const path = join(tmp, 'mid.safetensors');
  const good = readFileSync(path);
  const g = new Graph({ seed: 1 });
  const x = g.input('x', [4, 6]);
  const loss = o.mean(o.linear(x, g.param('l1.w', [6, 9]), null));
  const tr = await Trainer.create(g, { loss, optimizer: adam(0.1) });
  assert.throws(() => tr.load(path), (e: unknown) => e instanceof UserError && /mid\.safetensors: parameter 'l1\.w' has shape \[6,8\] but the model expects \[6,9\]/.test(e.message));
  const bad = join(tmp, 'trunc.safetensors');
  writeFileSync(bad, good.subarray(0, good.length - 40));
  assert.throws(() => tr.load(bad), (e: unknown) => e instanceof UserError && /trunc\.safetensors: tensor '.*' lies outside the file/.test(e.message));
  writeFileSync(bad, Buffer.from('not a checkpoint at all'));
  assert.throws(() => tr.load(bad), (e: unknown) => e instanceof UserError && /trunc\.safetensors: /.test(e.message));
  // params-only loading: strict by default, partial keeps params the file lacks
  const g2 = new Graph({ seed: 1 });
  const x2 = g2.input('x', [4, 6]);
  const h2 = o.linear(x2, g2.param('l1.w', [6, 8]), g2.param('l1.b', [8]));
  o.linear(h2, g2.param('l2.w', [8, 1]), null);
  o.linear(h2, g2.param('head.w', [8, 3]), null);
  const head = g2.params.get('head.w')!.value.slice();
  assert.throws(() => loadParams(g2, path), (e: unknown) => e instanceof UserError && /parameter 'head\.w' is missing/.test(e.message));
  assert.deepEqual(loadParams(g2, path, { partial: true }).sort(), ['l1.b', 'l1.w', 'l2.w']);
  assert.deepEqual(g2.params.get('head.w')!.value, head);
  assert.throws(() => tr.load(join(tmp, 'absent.safetensors')), (e: unknown) => e instanceof UserError && /absent\.safetensors: cannot read/.test(e.message));
  await tr.dispose();
});

test('frozen parameters stay fixed; inference and exported ONNX match the training forward', async () => {
  const n = 8, B = 2;
  const g = new Graph({ seed: 6 });
  const net = buildSegmenter(g, B, n);
  g.setTrainable((name) => name.startsWith('c1.'), false);
  const c1Before = g.params.get('c1.w')!.value.slice();
  const c2Before = g.params.get('c2.w')!.value.slice();
  const tr = await Trainer.create(g, { loss: net.loss, optimizer: adam(0.01), outputs: { prob: net.prob } });
  const data = spheres(createRng(5), B, n);
  for (let i = 0; i < 3; i++) await tr.step(data);
  assert.deepEqual(g.params.get('c1.w')!.value, c1Before);
  assert.notDeepEqual(g.params.get('c2.w')!.value, c2Before);
  const { outputs } = await tr.step(data, { lr: 0 });
  const inf = await InferenceModel.create(g, { prob: net.prob });
  const { prob } = await inf.run({ x: data.x });
  const s = await ort.InferenceSession.create(exportOnnx(g, { prob: net.prob }));
  const exported = (await s.run({ x: new ort.Tensor('float32', data.x, [B, 1, n, n, n]) })).prob!.data as Float32Array;
  const ref = outputs.prob as Float32Array;
  for (let i = 0; i < ref.length; i++) {
    assert.ok(Math.abs((prob as Float32Array)[i]! - ref[i]!) < 1e-5);
    assert.ok(Math.abs(exported[i]! - ref[i]!) < 1e-5);
  }
  await inf.dispose();
  await tr.dispose();
});

test('dropout drops a fraction p, rescales the rest, changes mask with the step seed, and is the identity at inference', async () => {
  const g = new Graph({ seed: 1 });
  const x = g.input('x', [20000]);
  const y = o.dropout(x, 0.3);
  const { bytes } = emitModel(g, { outputs: new Map([['y', y]]), mode: 'train' });
  const s = await createSession(bytes);
  const xs = Float32Array.from({ length: 20000 }, (_, i) => 1 + (i % 5));
  const run = async (seed: number) => (await s.run({ x: new ort.Tensor('float32', xs, [20000]), __step_seed: new ort.Tensor('float32', Float32Array.from([seed]), []) })).y!.data as Float32Array;
  const a = await run(17), b = await run(18);
  let zeros = 0, differ = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === 0) zeros++;
    else assert.ok(Math.abs(a[i]! - xs[i]! / 0.7) < 1e-5);
    if ((a[i] === 0) !== (b[i] === 0)) differ++;
  }
  // binomial(20000, 0.3): sd ≈ 65, so ±400 is > 6 sd
  assert.ok(Math.abs(zeros - 6000) < 400, `dropped ${zeros}`);
  // two independent masks disagree on 2·0.3·0.7 = 42% of elements
  assert.ok(Math.abs(differ - 8400) < 600, `masks differ on ${differ}`);
  const inf = await InferenceModel.create(g, { y });
  assert.deepEqual((await inf.run({ x: xs })).y, xs);
  await s.release();
  await inf.dispose();
});

test('an unknown execution provider or a bad thread count is a UserError', async () => {
  const g = new Graph();
  const x = g.input('x', [2]);
  await assert.rejects(InferenceModel.create(g, { y: o.relu(x) }, { executionProviders: ['nosuch'] }), (e: unknown) => e instanceof UserError && /execution provider 'nosuch' is unknown/.test(e.message));
  assert.throws(() => defaultSessionOptions({ CTGROUND_THREADS: 'two' }), (e: unknown) => e instanceof UserError && /CTGROUND_THREADS/.test(e.message));
  assert.deepEqual(defaultSessionOptions({ CTGROUND_EP: 'cuda, cpu', CTGROUND_THREADS: '4' }), { threads: 4, executionProviders: ['cuda', 'cpu'] });
});
