/**
 * Central finite-difference checks of the engine's gradients, along random directions: one pair
 * of forward runs checks every element of every parameter at once (⟨∇L, v⟩ against
 * (L(p+εv) − L(p−εv)) / 2ε), which keeps checks of large tensors cheap.
 */
import { createRng } from '../common/index.ts';
import { gradients } from './grad.ts';
import type { Graph, Tensor } from './graph.ts';
import { emitModel } from './onnx.ts';
import { createSession, toOrt, type FeedValue } from './session.ts';

export interface GradCheckResult {
  /** worst relative error over directions: |fd − analytic| / max(|fd|, |analytic|, floor) */
  maxRelError: number;
  pairs: { fd: number; analytic: number }[];
}

export async function gradCheck(
  graph: Graph, loss: Tensor, wrt: readonly Tensor[], feeds: Record<string, FeedValue> = {},
  opts: { directions?: number; eps?: number; seed?: number; floor?: number } = {},
): Promise<GradCheckResult> {
  for (const p of wrt) if (p.kind !== 'param') throw new Error(`gradCheck: ${p.name} is not a param`);
  const grads = gradients(loss, wrt);
  const outputs = new Map<string, Tensor>([['loss', loss]]);
  grads.forEach((g, i) => { if (g) outputs.set(`grad${i}`, g); });
  const { bytes, inputs } = emitModel(graph, { outputs, mode: 'train' });
  const session = await createSession(bytes, { threads: 1 });
  const lossOnly = await createSession(emitModel(graph, { outputs: new Map([['loss', loss]]), mode: 'train' }).bytes, { threads: 1 });
  const eps = opts.eps ?? (graph.dtype === 'float64' ? 1e-6 : 1e-2);
  const rng = createRng(opts.seed ?? 7);
  const values = new Map(wrt.map((p) => [p, graph.params.get(p.name)!.value] as const));
  const feedWith = (override: Map<Tensor, Float32Array | Float64Array>) => {
    const f: Record<string, ReturnType<typeof toOrt>> = {};
    for (const t of inputs) {
      if (t.kind === 'param') f[t.name] = toOrt(t, override.get(t) ?? graph.params.get(t.name)!.value);
      else {
        const v = feeds[t.name];
        if (v === undefined) throw new Error(`gradCheck: missing input '${t.name}'`);
        f[t.name] = toOrt(t, v);
      }
    }
    return f;
  };
  const res = await session.run(feedWith(new Map()));
  const an = grads.map((g, i) => (g ? (res[`grad${i}`]!.data as Float32Array | Float64Array) : null));
  const pairs: { fd: number; analytic: number }[] = [];
  let worst = 0;
  for (let d = 0; d < (opts.directions ?? 3); d++) {
    const dirs = wrt.map((p) => Float64Array.from({ length: p.size }, () => rng.normal()));
    let analytic = 0;
    dirs.forEach((v, i) => { const g = an[i]; if (g) for (let k = 0; k < v.length; k++) analytic += g[k]! * v[k]!; });
    const shifted = (sign: number) => {
      const m = new Map<Tensor, Float32Array | Float64Array>();
      wrt.forEach((p, i) => {
        const base = values.get(p)!;
        const out = base instanceof Float64Array ? new Float64Array(base.length) : new Float32Array(base.length);
        for (let k = 0; k < base.length; k++) out[k] = base[k]! + sign * eps * dirs[i]![k]!;
        m.set(p, out);
      });
      return m;
    };
    const lp = Number((await lossOnly.run(feedWith(shifted(1)))).loss!.data[0]);
    const lm = Number((await lossOnly.run(feedWith(shifted(-1)))).loss!.data[0]);
    const fd = (lp - lm) / (2 * eps);
    pairs.push({ fd, analytic });
    const rel = Math.abs(fd - analytic) / Math.max(Math.abs(fd), Math.abs(analytic), opts.floor ?? 1e-6);
    worst = Math.max(worst, rel);
  }
  await session.release();
  await lossOnly.release();
  return { maxRelError: worst, pairs };
}
