// Synthetic study generation speed: studies per second for 96³ phantoms (4 mm) and for the real
// CT background resampled to 2 mm, each against the alternative a trainer has — reading the same
// studies back from disk — measured in the same run on the same studies.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { projectRoot } from '../src/common/index.ts';
import { loadRealBackground, synthStudy, writeStudy, type ManifestStudy, type SynthOptions } from '../src/data/index.ts';
import { readVolume } from '../src/volume/index.ts';

const REAL_DIR = join(process.env.CTGROUND_SHARED ?? resolve(projectRoot, '..', 'shared'), 'data', 'totalsegmentator');

async function measure(label: string, o: SynthOptions, n: number, json: boolean): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'synth-bench-'));
  try {
    const gen: number[] = [], cpu: number[] = [], write: number[] = [], read: number[] = [];
    const recs: ManifestStudy[] = [];
    for (let i = 0; i < n; i++) {
      let t = performance.now();
      const c = process.cpuUsage();
      const s = await synthStudy(i, o, REAL_DIR);
      gen.push(performance.now() - t);
      const dc = process.cpuUsage(c);
      cpu.push((dc.user + dc.system) / 1000);
      t = performance.now();
      recs.push(await writeStudy(dir, s, o.background));
      write.push(performance.now() - t);
    }
    for (const r of recs) {
      const t = performance.now();
      await readVolume(join(dir, r.ct));
      await readVolume(join(dir, r.labels));
      for (const a of r.anomalies) if (a.mask) await readVolume(join(dir, a.mask));
      read.push(performance.now() - t);
    }
    // Median: on a shared machine the mean mostly measures other people's jobs.
    const med = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
    const out = { studies: n, generateMs: med(gen), generateCpuMs: med(cpu), writeMs: med(write), readBackMs: med(read), studiesPerSecond: 1000 / med(gen), generateOverRead: med(gen) / med(read) };
    if (!json) console.log(`${label}: ${out.studiesPerSecond.toFixed(2)} studies/s generated (median ${out.generateMs.toFixed(0)} ms wall, ${out.generateCpuMs.toFixed(0)} ms CPU; writing ${out.writeMs.toFixed(0)} ms), reading one back ${out.readBackMs.toFixed(0)} ms → generating costs ${out.generateOverRead.toFixed(2)}× reading`);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run({ json }: { json: boolean }): Promise<Record<string, unknown>> {
  const phantom = await measure('phantom 96³ at 4 mm', { background: 'phantom', size: 96, spacing: 4, seed: 1, splitSeed: 1 }, 8, json);
  const t = performance.now();
  await loadRealBackground(REAL_DIR, 2);
  const realLoadMs = performance.now() - t;
  if (!json) console.log(`real CT background: read, label and resample to 2 mm once: ${realLoadMs.toFixed(0)} ms`);
  const real = await measure('real CT at 2 mm', { background: 'real', size: 0, spacing: 2, seed: 1, splitSeed: 1 }, 5, json);
  return { phantom96: phantom, real2mm: { ...real, backgroundLoadMs: realLoadMs } };
}
