// Estimated anatomy (atlas registration + HU) on a CT of clinical size: 512×512×300, made from the
// real example CT by resampling (0.71×0.59×1.11 mm over its 363×300×333 mm field of view; int16 as a
// scanner writes it), timed beside reading that CT from disk in the same run, and beside the HU
// fallback alone (what the estimate replaces). Wall and CPU seconds: the machine is shared.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readVolume, resampleToGrid, writeNifti, type Geometry, type Volume } from '../src/volume/index.ts';
import { estimateAnatomy, fallbackAnatomy, loadAtlases, organMapFor } from '../src/anatomy/index.ts';
import { TS } from '../test/helpers/shared.ts';

function timed<T>(fn: () => Promise<T>): Promise<{ value: T; wall: number; cpu: number }> {
  const c0 = process.cpuUsage(), t0 = performance.now();
  return fn().then((value) => {
    const c = process.cpuUsage(c0);
    return { value, wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
  });
}

export async function run({ json }: { json: boolean }): Promise<Record<string, unknown>> {
  const src = await readVolume(TS('example_ct.nii.gz'));
  const size: [number, number, number] = [512, 512, 300];
  const ext = src.size.map((n, a) => n * src.spacing[a]!);
  const g: Geometry = { size, spacing: ext.map((e, a) => e / size[a]!) as [number, number, number], origin: src.origin.map((o, a) => o - src.spacing[a]! / 2 + ext[a]! / size[a]! / 2) as [number, number, number], direction: [...src.direction] };
  const big = resampleToGrid(src, g, 'linear', { fill: -1024 });
  const dir = mkdtempSync(join(tmpdir(), 'ctg-bench-anat-'));
  try {
    const file = join(dir, 'ct512.nii.gz');
    await writeNifti(file, { ...big, data: Int16Array.from(big.data, (v) => Math.round(v)) } as Volume);
    await loadAtlases(); // read once, as a long-running labeller would
    const read = await timed(() => readVolume(file));
    const hu = await timed(async () => fallbackAnatomy(read.value));
    const est = await timed(() => estimateAnatomy(read.value));
    const path = await timed(() => organMapFor(read.value));
    const r = {
      ct: `${size.join('×')} from example_ct.nii.gz by resampling`,
      readSeconds: +read.wall.toFixed(2), readCpu: +read.cpu.toFixed(2),
      huFallbackSeconds: +hu.wall.toFixed(2), huFallbackCpu: +hu.cpu.toFixed(2),
      estimatedSeconds: +est.wall.toFixed(2), estimatedCpu: +est.cpu.toFixed(2),
      organMapForSeconds: +path.wall.toFixed(2),
      estimatedOverRead: +(est.wall / read.wall).toFixed(1),
    };
    if (!json) {
      console.log(`CT ${r.ct}`);
      console.log(`read the CT            ${r.readSeconds.toFixed(2)} s wall, ${r.readCpu.toFixed(2)} s CPU`);
      console.log(`HU fallback alone      ${r.huFallbackSeconds.toFixed(2)} s wall, ${r.huFallbackCpu.toFixed(2)} s CPU`);
      console.log(`estimated anatomy      ${r.estimatedSeconds.toFixed(2)} s wall, ${r.estimatedCpu.toFixed(2)} s CPU (${r.estimatedOverRead}× the read)`);
      console.log(`organMapFor (ground's path, no map)  ${r.organMapForSeconds.toFixed(2)} s wall`);
    }
    return r;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
