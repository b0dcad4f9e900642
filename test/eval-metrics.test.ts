import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boxIou, connectedComponents, diceAt, iouAt, instanceCounts, peakDistanceMm, quantile, scoreAnomaly, summarize } from '../src/eval/index.ts';

const N = 10;
/** A 10³ grid with value v inside the half-open voxel box [lo, hi). */
function cube(lo: [number, number, number], hi: [number, number, number], v = 1, into: Float32Array = new Float32Array(N * N * N)): Float32Array {
  for (let z = lo[2]; z < hi[2]; z++) for (let y = lo[1]; y < hi[1]; y++) for (let x = lo[0]; x < hi[0]; x++) into[x + N * (y + N * z)] = v;
  return into;
}

test('IoU and Dice of two shifted cubes match the hand count', () => {
  const gt = cube([0, 0, 0], [4, 4, 4]);
  const pred = cube([2, 0, 0], [6, 4, 4]);
  // |G| = |P| = 64, |P∩G| = 2·4·4 = 32 → IoU = 32/96, Dice = 64/128
  assert.equal(iouAt(pred, gt, 0.5), 1 / 3);
  assert.equal(diceAt(pred, gt), 0.5);
  assert.equal(iouAt(gt, gt, 0.5), 1);
  assert.equal(iouAt(cube([6, 6, 6], [8, 8, 8]), gt, 0.5), 0);
});

test('thresholds: mIoU averages the five IoUs and accuracy uses threshold 0.1', () => {
  const gt = cube([0, 0, 0], [2, 2, 2]); // 8 voxels
  // A faint wide halo (0.15) over a 4³ cube around a confident core equal to the ground truth.
  const pred = cube([0, 0, 0], [4, 4, 4], 0.15);
  cube([0, 0, 0], [2, 2, 2], 0.9, pred);
  const s = scoreAnomaly(pred, gt);
  // threshold 0.1 sees the 64-voxel halo (IoU 8/64); 0.2..0.5 see only the core (IoU 1)
  assert.deepEqual(s.ious, [8 / 64, 1, 1, 1, 1]);
  assert.equal(s.miou, (8 / 64 + 4) / 5);
  assert.equal(s.hit, true); // 0.125 > 0.1
  assert.equal(s.dice, 1);
  const wide = cube([0, 0, 0], [5, 5, 5], 0.15); // 8/125 = 0.064 at threshold 0.1 → miss
  assert.equal(scoreAnomaly(wide, gt).hit, false);
});

test('summary pools global Dice over anomalies rather than averaging', () => {
  const gtA = cube([0, 0, 0], [4, 4, 4]), predA = gtA; // Dice 1, 64 voxels
  const gtB = cube([0, 0, 0], [1, 1, 1]), predB = cube([5, 5, 5], [6, 6, 6]); // Dice 0, 1 voxel each
  const s = summarize([{ score: scoreAnomaly(predA, gtA) }, { score: scoreAnomaly(predB, gtB) }]);
  assert.equal(s.dice, 0.5);
  assert.equal(s.globalDice, (2 * 64) / (128 + 2));
  assert.equal(s.accuracy, 0.5);
  assert.equal(s.hitRate, 0.5);
});

test('box IoU of overlapping and disjoint boxes', () => {
  assert.equal(boxIou([[0, 0, 0], [2, 2, 2]], [[1, 0, 0], [3, 2, 2]]), 4 / 12);
  assert.equal(boxIou([[0, 0, 0], [1, 1, 1]], [[2, 2, 2], [3, 3, 3]]), 0);
});

test('connected components use the 26-neighbourhood; instances match at Dice ≥ 0.2', () => {
  const m = cube([0, 0, 0], [2, 2, 2]);
  cube([2, 2, 2], [3, 3, 3], 1, m); // touches the first only at a corner → same component
  cube([6, 6, 6], [8, 8, 8], 1, m);
  assert.equal(connectedComponents(m, [N, N, N], 0.5).count, 2);
  const gt = cube([0, 0, 0], [2, 2, 2]);
  cube([6, 0, 0], [8, 2, 2], 1, gt);
  const pred = cube([0, 0, 0], [2, 2, 2]);
  cube([0, 6, 6], [2, 8, 8], 1, pred); // a false positive
  assert.deepEqual(instanceCounts(pred, gt, [N, N, N]), { predInstances: 2, predMatched: 1, gtInstances: 2, gtMatched: 1 });
});

test('quantile interpolates linearly', () => {
  assert.equal(quantile([3, 1, 2, 4], 0.5), 2.5);
  assert.equal(quantile([5], 0.9), 5);
  assert.ok(Number.isNaN(quantile([], 0.5)));
});

test('peakDistanceMm: from the map\'s peak to the nearest lesion voxel, in mm on an anisotropic grid', () => {
  const size = [10, 8, 6], spacing = [1, 2, 3];
  const n = 10 * 8 * 6, at = (i: number, j: number, k: number) => i + 10 * (j + 8 * k);
  const map = new Float32Array(n), gold = new Uint8Array(n);
  map[at(2, 1, 1)] = 0.9; map[at(7, 7, 5)] = 0.4;
  gold[at(5, 1, 1)] = 1; gold[at(2, 3, 2)] = 1;
  // peak (2,1,1): to (5,1,1) 3 mm along x; to (2,3,2) √(4² + 3²) = 5 mm
  assert.equal(peakDistanceMm(map, gold, size, spacing), 3);
  gold[at(2, 1, 1)] = 1;
  assert.equal(peakDistanceMm(map, gold, size, spacing), 0);
  assert.equal(peakDistanceMm(map, new Uint8Array(n), size, spacing), Infinity);
});

test('sameOrganSplit: focal findings with a same-organ neighbour in their report apart from the others', async () => {
  const { sameOrganSplit } = await import('../src/eval/index.ts');
  const a = (study: string, organ: string, hit: boolean, diffuse = false) => ({ study, organ, diffuse, score: { hit } as never });
  const r = sameOrganSplit([
    a('s1', 'liver', true), a('s1', 'liver', false), a('s1', 'kidney', true), // two liver findings share; the kidney one is alone
    a('s2', 'liver', false), a('s2', 'liver', true, true), // a diffuse neighbour still makes the focal one "shared", but is not counted itself
    a('s3', 'liver', true), // same organ, another report: alone
  ]);
  assert.deepEqual(r, { shared: { hit: 1, n: 3 }, alone: { hit: 2, n: 2 } });
});
