// Scoring one grounding map against its lesion (eval's and calibrate's inner loop, run once per
// anomaly and calibration variant): over the hull of the map's and the mask's boxes (`scoreMap`)
// against the same metrics on whole-grid arrays, measured in turns in the same run.
import { join } from 'node:path';
import { projectRoot } from '../src/common/index.ts';
import { boxedVolume, denseVolume, maskBoundingBox, readVolume } from '../src/volume/index.ts';
import { instanceCounts, peakDistanceMm, scoreAnomaly, scoreMap } from '../src/eval/index.ts';
import { bestOfInTurns } from './timing.ts';

export async function run({ json }: { json: boolean }): Promise<Record<string, unknown>> {
  // the bundled study: the real CT's grid (122×101×112 at 3 mm) and its inserted liver lesion
  const mask = await readVolume(join(projectRoot, 'examples', 'demo', 'masks', 'a2.nii.gz'));
  const [nx, ny, nz] = mask.size;
  const box = maskBoundingBox(mask)!;
  // a map as the grounder leaves one: a smooth bump over a 24-voxel cube beside the lesion
  const dense = new Float32Array(nx * ny * nz), c = [0, 1, 2].map((a) => (box.min[a]! + box.max[a]!) / 2 + 3);
  for (let k = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
    const d = Math.hypot(i - c[0]!, j - c[1]!, k - c[2]!);
    if (d < 12) dense[i + nx * (j + ny * k)] = 0.9 * (1 - d / 12);
  }
  const map = boxedVolume({ ...mask, data: dense });
  const hull = () => scoreMap(map, mask, box);
  const whole = () => {
    const m = denseVolume(map).data;
    return { score: scoreAnomaly(m, mask.data), instances: instanceCounts(m, mask.data, mask.size), peakDistanceMm: peakDistanceMm(m, mask.data, mask.size, mask.spacing) };
  };
  if (JSON.stringify(hull()) !== JSON.stringify(whole())) throw new Error('eval bench: the hull and the whole grid score differently');
  const [hullMs, wholeMs] = await bestOfInTurns([hull, whole], 10);
  const r = { grid: mask.size, mapBox: map.box, hull_ms: +hullMs!.toFixed(2), whole_grid_ms: +wholeMs!.toFixed(1), speedup: +(wholeMs! / hullMs!).toFixed(1) };
  if (!json) {
    console.log(`one map scored (IoU at 5 thresholds, Dice, instances, peak distance) on the ${r.grid.join('×')} grid of the bundled study:`);
    console.log(`  over the hull of map and lesion boxes ${r.hull_ms} ms, on whole-grid arrays ${r.whole_grid_ms} ms: ${r.speedup}× (best of 10, in turns)`);
  }
  return r;
}
