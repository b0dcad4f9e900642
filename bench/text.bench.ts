// The text encoder's forward on one 512-token real report: ours (ReportTextEncoder: the engine's
// inference graph, weights baked in, dropout removed) against the same model exported as a plain
// .onnx file and run by a fresh onnxruntime session with ORT's own defaults, and against the
// training-mode graph (parameters fed as inputs, dropout live) that must not be used at inference.
// All three run in the same process on the same input.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Graph, emitModel, createSession } from '../src/engine/index.ts';
import { buildTextEncoder, loadTextEncoder, readReportCsv, ReportTextEncoder } from '../src/model/index.ts';
import { REPORTS_CSV } from '../test/helpers/shared.ts';

async function median(fn: () => Promise<unknown>, reps: number): Promise<number> {
  await fn(); // warm-up (first run allocates arenas)
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const s = performance.now();
    await fn();
    t.push(performance.now() - s);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)]!;
}

export async function run({ json }: { json: boolean }): Promise<Record<string, unknown>> {
  const enc = loadTextEncoder();
  const c = enc.config;
  const T = 512;
  // the longest real report, cut to 510 tokens + [CLS]/[SEP]
  const docs = readReportCsv(REPORTS_CSV());
  const longest = docs.map((d) => enc.tokenizer.tokenize(d.text)).sort((a, b) => b.length - a.length)[0]!;
  const body = longest.slice(0, T - 2).map((t) => t.id);
  const ids = BigInt64Array.from([enc.tokenizer.cls, ...body, enc.tokenizer.sep], (v) => BigInt(v));
  const mask = new Float32Array(T).fill(1);
  const reps = 15;

  // ours: the public path (tokens in, states out), which builds its session once per length
  await enc.encodeIds(body);
  const oursMs = await median(() => enc.encodeIds(body), reps);

  // plain exported ONNX: a file on disk, a fresh ORT session with default options except threads
  const dir = mkdtempSync(join(tmpdir(), 'ctg-textbench-'));
  let plainMs: number, trainModeMs: number, maxDiff = 0;
  try {
    const file = join(dir, 'bert.onnx');
    writeFileSync(file, ReportTextEncoder.exportOnnx(enc.folder, T));
    const plain = await ort.InferenceSession.create(file, { intraOpNumThreads: 2 });
    const feeds = { input_ids: new ort.Tensor('int64', ids, [1, T]), attention_mask: new ort.Tensor('float32', mask, [1, T]) };
    plainMs = await median(() => plain.run(feeds), reps);
    const ref = (await plain.run(feeds)).hidden!.data as Float32Array;
    const ours = await enc.encodeIds(body);
    for (let i = 0; i < ours.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ours[i]! - ref[c.hiddenSize + i]!));
    await plain.release();

    // the training-mode graph: same encoder, params as inputs, dropout on
    const g = new Graph({ seed: 0 });
    const idT = g.input('input_ids', [1, T], 'int64');
    const mT = g.input('attention_mask', [1, T]);
    const { hidden } = buildTextEncoder(g, c, idT, mT, { weights: enc.folder.weights });
    const em = emitModel(g, { outputs: new Map([['hidden', hidden]]), mode: 'train', name: 'train_forward' });
    const sess = await createSession(em.bytes, { threads: 2 });
    const tf: Record<string, ort.Tensor> = {};
    for (const t of em.inputs) {
      if (t.name === 'input_ids') tf[t.name] = feeds.input_ids;
      else if (t.name === 'attention_mask') tf[t.name] = feeds.attention_mask;
      else if (t.kind === 'param') tf[t.name] = new ort.Tensor('float32', g.params.get(t.name)!.value as Float32Array, [...t.shape]);
      else tf[t.name] = new ort.Tensor('float32', new Float32Array([1]), [...t.shape]); // the dropout step seed
    }
    trainModeMs = await median(() => sess.run(tf), reps);
    await sess.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await enc.dispose();
  }
  const res = {
    data: `longest CT-RATE validation report, first ${T} tokens`,
    model: `${c.numLayers} layers × ${c.hiddenSize} hidden × ${c.numHeads} heads (models/text-default)`,
    oursMs, plainOnnxMs: plainMs, trainModeGraphMs: trainModeMs,
    oursOverPlain: oursMs / plainMs, trainModeOverOurs: trainModeMs / oursMs, maxAbsDiff: maxDiff, reps,
  };
  if (!json) {
    console.log(`text encoder forward, ${T} tokens, ${res.model}, median of ${reps}:`);
    console.log(`  ours (ReportTextEncoder.encodeIds)   ${oursMs.toFixed(1)} ms`);
    console.log(`  plain exported ONNX (fresh session)  ${plainMs.toFixed(1)} ms   ours/plain = ${res.oursOverPlain.toFixed(2)}`);
    console.log(`  training-mode graph (params fed)     ${trainModeMs.toFixed(1)} ms   train-mode/ours = ${res.trainModeOverOurs.toFixed(2)}`);
    console.log(`  max |ours − plain| = ${maxDiff.toExponential(2)}`);
  }
  return res;
}
