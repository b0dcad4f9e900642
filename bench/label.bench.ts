import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../src/common/index.ts';
import { labelStudies, studiesFromDataset, DEFAULT_MODEL_DIR, DEFAULT_THRESHOLD, type StageTimes } from '../src/pipeline/index.ts';
import { indexToWorld, readVolume, resampleToGrid, writeNifti, type Geometry } from '../src/volume/index.ts';

/** The real-size study of --real: the demo CT resampled to this many voxels (a typical thin-slice abdominal CT). */
const REAL_SIZE: [number, number, number] = [512, 512, 300];

/**
 * The grid of `size` voxels covering what the CT covers (the same outer voxel faces, the same
 * orientation): the demo's 122×101×112 at 3 mm becomes 512×512×300 at 0.71×0.59×1.12 mm.
 */
function finerGrid(g: Geometry, size: [number, number, number]): Geometry {
  const spacing = [0, 1, 2].map((a) => (g.spacing[a]! * g.size[a]!) / size[a]!) as [number, number, number];
  // the first new voxel centre, in the old grid's (fractional) indices: half a new voxel inside the old first face
  const first = [0, 1, 2].map((a) => -0.5 + (0.5 * spacing[a]!) / g.spacing[a]!);
  return { size, spacing, origin: indexToWorld(g, first), direction: [...g.direction] };
}

/**
 * The real-size study, made once and kept in the temp folder: the bundled example's real CT
 * resampled trilinearly to REAL_SIZE and stored as int16 HU, its organ label map (our scheme)
 * resampled by nearest neighbour onto the same grid, and its report.
 */
async function realSizeDataset(): Promise<{ dir: string; ct: string; made: boolean }> {
  const demo = join(projectRoot, 'examples', 'demo');
  const dir = join(tmpdir(), `ctground-bench-real-${REAL_SIZE.join('x')}`);
  const ct = join(dir, 'ct.nii.gz');
  if (existsSync(join(dir, 'manifest.jsonl'))) return { dir, ct, made: false };
  mkdirSync(dir, { recursive: true });
  const src = await readVolume(join(demo, 'ct.nii.gz'));
  const grid = finerGrid(src, REAL_SIZE);
  const fine = resampleToGrid(src, grid, 'linear');
  await writeNifti(ct, { ...fine, data: Int16Array.from(fine.data, (v) => Math.round(v)) });
  await writeNifti(join(dir, 'labels.nii.gz'), resampleToGrid(await readVolume(join(demo, 'labels.nii.gz')), grid, 'nearest'));
  copyFileSync(join(demo, 'report.txt'), join(dir, 'report.txt'));
  writeFileSync(join(dir, 'manifest.jsonl'), JSON.stringify({ id: 'real', ct: 'ct.nii.gz', labels: 'labels.nii.gz', report: 'report.txt', split: 'test' }) + '\n');
  return { dir, ct, made: true };
}

interface ChildResult { secs: number; read?: number; write?: number; times?: StageTimes; maxRssMb: number }

const stageSum = (r: ChildResult): number => Object.values(r.times!).reduce((x, y) => x + y, 0);

const child = (args: string[]): ChildResult => JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', join(projectRoot, 'bench', 'label-real-child.ts'), ...args], { cwd: projectRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').at(-1)!) as ChildResult;

/**
 * `bench label --real`: one real-size study (REAL_SIZE, organ map given) labeled as `ctground label`
 * does, against the floor of reading that CT and writing one uint8 mask of it, each in its own
 * process (its own peak memory), in turns, best of CTGROUND_BENCH_ROUNDS (default 2).
 */
async function runReal(json: boolean): Promise<Record<string, unknown>> {
  const rounds = Number(process.env.CTGROUND_BENCH_ROUNDS ?? 2);
  const { dir, ct, made } = await realSizeDataset();
  const model = process.env.CTGROUND_BENCH_MODEL ?? (existsSync(DEFAULT_MODEL_DIR) ? '' : 'oracle:organ-side');
  const root = mkdtempSync(join(tmpdir(), 'ctg-bench-real-'));
  let base: ChildResult | undefined, lab: ChildResult | undefined;
  try {
    for (let r = 0; r < rounds; r++) {
      const out = join(root, `r${r}`);
      mkdirSync(out, { recursive: true });
      const b = child(['baseline', ct, out]);
      const l = child(['label', dir, join(out, 'label'), model]);
      if (!base || b.secs < base.secs) base = b;
      if (!lab || stageSum(l) < stageSum(lab)) lab = l;
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  const t = lab!.times!;
  // the study's own time: its stages, without the process start and the model's loading an archive pays once
  const sum = stageSum(lab!);
  const result = {
    data: `examples/demo's real CT resampled to ${REAL_SIZE.join('x')} (trilinear, int16), its organ map nearest onto the same grid (given), its report (${dir}${made ? ', made now' : ''})`,
    model: model || 'shipped model (models/grounding-default)',
    rounds,
    secondsPerStudy: round3(sum),
    secondsWholeProcess: round3(lab!.secs),
    secondsReadCtWriteOneMask: round3(base!.secs),
    ratio: Math.round((100 * sum) / base!.secs) / 100,
    ratioBefore: BEFORE,
    baselineParts: { read: round3(base!.read!), writeMask: round3(base!.write!) },
    stageSeconds: Object.fromEntries(Object.entries(t).map(([k, v]) => [k, round3(v)])),
    sharePercent: Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Math.round((1000 * v) / sum) / 10])),
    peakRssMb: { label: Math.round(lab!.maxRssMb), baseline: Math.round(base!.maxRssMb) },
  };
  if (!json) {
    console.log(`label --real: ${result.data}; ${result.model}; best of ${rounds}`);
    console.log(`  one study ${result.secondsPerStudy} s (${result.secondsWholeProcess} s with process start and model loading) vs read CT + write one uint8 mask ${result.secondsReadCtWriteOneMask} s (read ${result.baselineParts.read} s, write ${result.baselineParts.writeMask} s): ×${result.ratio}`);
    console.log(`  before (${BEFORE.note}): ×${BEFORE.ratio} (${BEFORE.secondsPerStudy} s vs ${BEFORE.secondsReadCtWriteOneMask} s; outputs ${BEFORE.outputsShare} %, peak ${BEFORE.peakRssMb} MB)`);
    console.log(`  time share: ${Object.entries(result.sharePercent).map(([k, v]) => `${k} ${v}% (${result.stageSeconds[k]} s)`).join(', ')}`);
    console.log(`  peak memory: label ${result.peakRssMb.label} MB, baseline ${result.peakRssMb.baseline} MB`);
  }
  return result;
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/**
 * The same command on the code before float32 maps became uint8 (commit a04463e with this file,
 * best of 2, 2-core VM at load average about 2, 02:09 UTC 2026-12-08, right after the run of
 * commit 88cc332 that gave ×1.97): kept as the issue's "today's ratio" to compare with.
 */
const BEFORE = { note: 'commit a04463e, float32 maps, recorded', ratio: 5.18, secondsPerStudy: 10.01, secondsReadCtWriteOneMask: 1.933, outputsShare: 58, peakRssMb: 1167 };

/**
 * `ctground label` throughput on copies of the bundled example (the real CT, 122×101×112 at 3 mm,
 * with its report and organ labels): studies per minute with one job and with one job per core,
 * and where one study's time goes (I/O, anatomy, report structuring, the network, writing results).
 * The shipped model is used when present (or CTGROUND_BENCH_MODEL), else the organ-side oracle (and the figures say so).
 */
export async function run({ json, args = [] }: { json: boolean; args?: string[] }): Promise<Record<string, unknown>> {
  if (args.includes('--real')) return runReal(json);
  const n = Number(process.env.CTGROUND_BENCH_STUDIES ?? 6);
  const demo = join(projectRoot, 'examples', 'demo');
  const rec = JSON.parse(readFileSync(join(demo, 'manifest.jsonl'), 'utf8').split('\n')[0]!) as { ct: string; labels: string; report: string };
  const root = mkdtempSync(join(tmpdir(), 'ctg-bench-label-'));
  const data = join(root, 'data');
  const lines = Array.from({ length: n }, (_, i) => ({ id: `s${i}`, ct: join(demo, rec.ct), labels: join(demo, rec.labels), report: join(demo, rec.report), split: 'test' }));
  mkdirSync(data, { recursive: true });
  writeFileSync(join(data, 'manifest.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  const studies = studiesFromDataset(data);
  // the same studies without organ labels: anatomy comes from the HU fallback, as for an archive without TotalSegmentator
  const bare = studies.map(({ labels: _labels, ...s }) => s);
  // CTGROUND_BENCH_MODEL names another model folder (a run still training, say)
  const model = process.env.CTGROUND_BENCH_MODEL ?? (existsSync(DEFAULT_MODEL_DIR) ? undefined : 'oracle:organ-side');
  const modelName = model ?? 'shipped model (models/grounding-default)';

  const pass = async (jobs: number, list = studies, tag = ''): Promise<{ perMin: number; times: StageTimes; secs: number }> => {
    const times: StageTimes = { io: 0, anatomy: 0, structuring: 0, network: 0, outputs: 0 };
    const t0 = performance.now();
    const r = await labelStudies(list, join(root, `out-${jobs}${tag}`), {
      threshold: DEFAULT_THRESHOLD, jobs, modelSpec: model,
      onStudy: (o) => { if (o.status === 'labeled') for (const k of Object.keys(times) as (keyof StageTimes)[]) times[k] += o.times[k]; },
    });
    const secs = (performance.now() - t0) / 1000;
    if (r.failed.length) throw new Error(`bench: ${r.failed[0]!.id}: ${r.failed[0]!.reason}`);
    return { perMin: (60 * n) / secs, times, secs };
  };
  try {
    const one = await pass(1);
    const cores = Math.max(2, Math.min(4, availableParallelism()));
    const many = await pass(cores);
    const fallback = await pass(1, bare, '-fallback');
    const shareOf = (t: StageTimes): Record<string, number> => {
      const total = Object.values(t).reduce((a, b) => a + b, 0);
      return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Math.round((1000 * v) / total) / 10]));
    };
    const share = shareOf(one.times), shareFallback = shareOf(fallback.times);
    const result = {
      data: `${n} copies of examples/demo (real CT 122x101x112 @ 3 mm + report + organ labels)`,
      model: modelName,
      cores: availableParallelism(),
      studiesPerMin_jobs1: Math.round(one.perMin * 10) / 10,
      [`studiesPerMin_jobs${cores}`]: Math.round(many.perMin * 10) / 10,
      speedup: Math.round((many.perMin / one.perMin) * 100) / 100,
      sharePercent_jobs1: share,
      studiesPerMin_jobs1_huFallbackAnatomy: Math.round(fallback.perMin * 10) / 10,
      sharePercent_jobs1_huFallbackAnatomy: shareFallback,
      secondsPerStudy_jobs1: Object.fromEntries(Object.entries(one.times).map(([k, v]) => [k, Math.round((1000 * v) / n) / 1000])),
    };
    if (!json) {
      console.log(`label: ${n} studies, ${modelName}`);
      console.log(`  jobs 1: ${result.studiesPerMin_jobs1} studies/min; jobs ${cores}: ${result[`studiesPerMin_jobs${cores}`]} studies/min (×${result.speedup})`);
      console.log(`  time share (jobs 1, organ labels given): ${Object.entries(share).map(([k, v]) => `${k} ${v}%`).join(', ')}`);
      console.log(`  without organ labels (HU fallback anatomy), jobs 1: ${result.studiesPerMin_jobs1_huFallbackAnatomy} studies/min; ${Object.entries(shareFallback).map(([k, v]) => `${k} ${v}%`).join(', ')}`);
    }
    return result;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
