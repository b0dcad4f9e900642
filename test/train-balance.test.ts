import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { balancedWeights, sampleKind, weightedDraw } from '../src/train/index.ts';
import { readManifest } from '../src/eval/index.ts';
import { projectRoot } from '../src/common/index.ts';

test('balanced sampling: alpha 1 gives every kind the same total weight, alpha 0 every sample, 0.5 the square root of its count', () => {
  const kinds = ['real:pancreas:duct', 'phantom:lung:nodule', 'phantom:lung:nodule', 'phantom:lung:nodule', 'phantom:lung:nodule'];
  const total = (w: Float64Array, k: string) => kinds.reduce((s, x, i) => s + (x === k ? w[i]! : 0), 0);
  const one = balancedWeights(kinds, 1), zero = balancedWeights(kinds, 0), half = balancedWeights(kinds, 0.5);
  assert.ok(Math.abs(total(one, kinds[0]!) - total(one, kinds[1]!)) < 1e-12);
  assert.deepEqual([...zero], [1, 1, 1, 1, 1]);
  assert.ok(Math.abs(total(half, kinds[1]!) / total(half, kinds[0]!) - 2) < 1e-12, 'four samples weigh √4 = 2 against one');
});

test('weightedDraw maps evenly spread u to each index in proportion to its weight, never to a zero weight', () => {
  const w = Float64Array.from([1, 3, 0, 4, 2]), draw = weightedDraw(w), N = 100000;
  const count = new Array<number>(w.length).fill(0);
  for (let k = 0; k < N; k++) count[draw((k + 0.5) / N)]!++;
  const sum = w.reduce((a, b) => a + b, 0);
  w.forEach((x, i) => assert.ok(Math.abs(count[i]! / N - x / sum) <= 1 / N, `index ${i}: ${count[i]} of ${N}`));
  assert.equal(count[2], 0);
  assert.equal(draw(0), 0);
  assert.equal(draw(1 - 1e-12), 4);
});

test('train refuses a --balance outside [0, 1] in one line', () => {
  const r = spawnSync(process.execPath, [join(projectRoot, 'bin', 'ctground.js'), 'train', '--data', join(projectRoot, 'examples', 'demo'), '--out', '/nonexistent/x', '--balance', '2'], { encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^ctground: --balance must be in \[0, 1\] \(0: uniform, 1: every kind equally often\), got '2'\n$/);
});

test('a sample\'s kind is its study\'s background and its anomaly\'s organ and type, from the manifest; a sample it does not list is an error', () => {
  const [demo] = readManifest(join(projectRoot, 'examples', 'demo'));
  assert.equal(sampleKind(demo, 'a1'), 'real:pancreas:duct_dilation');
  assert.equal(sampleKind(demo, 'a2'), 'real:liver:low_density_area');
  // a study without a background (phantom sets made before the field) still has a kind
  assert.equal(sampleKind({ ...demo!, background: undefined }, 'a2'), '-:liver:low_density_area');
  assert.throws(() => sampleKind(demo, 'a9'), /no anomaly a9 in study demo/);
  assert.throws(() => sampleKind(undefined, 'a1'), /no anomaly a1 in an unknown study/);
});
