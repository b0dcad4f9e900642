// Convolution forward and gradients against an independent float64 convolution written here in
// plain TypeScript (ORT has no float64 Conv kernel on CPU, so the engine runs these in float32).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng } from '../src/common/index.ts';
import { Graph, ops as o, gradients, emitModel, createSession, toOrt } from '../src/engine/index.ts';

interface Cfg { n: number; cin: number; cout: number; size: [number, number, number]; k: number; s: number; p: number; d: number }

/** direct 3D convolution (N, Cin, D, H, W) * (Cout, Cin, k, k, k) in float64 */
function refConv(x: Float64Array, w: Float64Array, b: Float64Array, c: Cfg): { y: Float64Array; out: number[] } {
  const [D, H, W] = c.size;
  const out = [D, H, W].map((L) => Math.floor((L + 2 * c.p - c.d * (c.k - 1) - 1) / c.s) + 1) as [number, number, number];
  const [OD, OH, OW] = out;
  const y = new Float64Array(c.n * c.cout * OD * OH * OW);
  for (let n = 0; n < c.n; n++) for (let co = 0; co < c.cout; co++) for (let z = 0; z < OD; z++) for (let yy = 0; yy < OH; yy++) for (let xx = 0; xx < OW; xx++) {
    let acc = b[co]!;
    for (let ci = 0; ci < c.cin; ci++) for (let a = 0; a < c.k; a++) for (let bb = 0; bb < c.k; bb++) for (let cc = 0; cc < c.k; cc++) {
      const iz = z * c.s - c.p + a * c.d, iy = yy * c.s - c.p + bb * c.d, ix = xx * c.s - c.p + cc * c.d;
      if (iz < 0 || iy < 0 || ix < 0 || iz >= D || iy >= H || ix >= W) continue;
      acc += x[(((n * c.cin + ci) * D + iz) * H + iy) * W + ix]! * w[(((co * c.cin + ci) * c.k + a) * c.k + bb) * c.k + cc]!;
    }
    y[(((n * c.cout + co) * OD + z) * OH + yy) * OW + xx] = acc;
  }
  return { y, out };
}

const configs: [string, Cfg][] = [
  ['3³ stride 1 pad 1, batch 2', { n: 2, cin: 2, cout: 3, size: [5, 6, 4], k: 3, s: 1, p: 1, d: 1 }],
  ['3³ stride 2 pad 1, odd sizes', { n: 1, cin: 2, cout: 2, size: [7, 5, 6], k: 3, s: 2, p: 1, d: 1 }],
  ['3³ dilation 2 pad 2', { n: 1, cin: 2, cout: 2, size: [6, 7, 5], k: 3, s: 1, p: 2, d: 2 }],
  ['3³ stride 2 dilation 2 pad 0', { n: 2, cin: 1, cout: 2, size: [9, 8, 7], k: 3, s: 2, p: 0, d: 2 }],
  ['2³ stride 2 (downsampling)', { n: 1, cin: 3, cout: 2, size: [6, 4, 5], k: 2, s: 2, p: 0, d: 1 }],
  ['1³ (pointwise)', { n: 2, cin: 3, cout: 4, size: [3, 2, 4], k: 1, s: 1, p: 0, d: 1 }],
  ['3³ pad 3 (padding beyond the kernel reach)', { n: 1, cin: 1, cout: 2, size: [4, 3, 5], k: 3, s: 1, p: 3, d: 1 }],
];

for (const [name, c] of configs) {
  test(`conv3d ${name}: forward, dX, dW, db match a float64 reference`, async () => {
    const rng = createRng(42);
    const g = new Graph({ seed: 5 });
    const x = g.param('x', [c.n, c.cin, ...c.size], { kind: 'normal', std: 1 });
    const w = g.param('w', [c.cout, c.cin, c.k, c.k, c.k], { kind: 'normal', std: 1 });
    const b = g.param('b', [c.cout], { kind: 'normal', std: 1 });
    const y = o.conv3d(x, w, b, { stride: c.s, padding: c.p, dilation: c.d });
    const r64 = Float64Array.from({ length: y.size }, () => rng.normal());
    const loss = o.sum(o.mul(y, g.constant(Float32Array.from(r64), y.shape)));
    const gs = gradients(loss, [x, w, b]);
    const outputs = new Map([['y', y], ['dx', gs[0]!], ['dw', gs[1]!], ['db', gs[2]!]]);
    const { bytes, inputs } = emitModel(g, { outputs, mode: 'train' });
    const s = await createSession(bytes, { threads: 1 });
    const res = await s.run(Object.fromEntries(inputs.map((t) => [t.name, toOrt(t, g.params.get(t.name)!.value)])));
    const X = Float64Array.from(g.params.get('x')!.value), Wt = Float64Array.from(g.params.get('w')!.value), B = Float64Array.from(g.params.get('b')!.value);
    const ref = refConv(X, Wt, B, c);
    assert.deepEqual([...y.shape.slice(2)], ref.out);
    const L = (xx: Float64Array, ww: Float64Array, bb: Float64Array) => refConv(xx, ww, bb, c).y.reduce((acc, v, i) => acc + v * r64[i]!, 0);
    // float32 sums of up to cin·k³ products of unit-variance numbers: relative error ~1e-6 per sum;
    // 1e-4 of the largest magnitude is a safe bound that still catches any misplaced element
    const close = (got: ArrayLike<number>, want: ArrayLike<number>, what: string) => {
      let scale = 0;
      for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!));
      assert.equal(got.length, want.length, `${what} length`);
      for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-4 * scale + 1e-6, `${what}[${i}]: ${got[i]} vs ${want[i]}`);
    };
    close(res.y!.data as Float32Array, ref.y, 'y');
    // L is linear in each of x, w, b, so a unit finite difference in float64 is the exact partial derivative
    const fd = (arr: Float64Array, which: 0 | 1 | 2) => Float64Array.from(arr, (_, i) => {
      const plus = arr.slice(), minus = arr.slice();
      plus[i]! += 0.5; minus[i]! -= 0.5;
      const args = (v: Float64Array): [Float64Array, Float64Array, Float64Array] => (which === 0 ? [v, Wt, B] : which === 1 ? [X, v, B] : [X, Wt, v]);
      return L(...args(plus)) - L(...args(minus));
    });
    close(res.dx!.data as Float32Array, fd(X, 0), 'dX');
    close(res.dw!.data as Float32Array, fd(Wt, 1), 'dW');
    close(res.db!.data as Float32Array, fd(B, 2), 'db');
    await s.release();
  });
}
