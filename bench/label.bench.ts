import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../src/common/index.ts';
import { labelStudies, studiesFromDataset, DEFAULT_MODEL_DIR, DEFAULT_THRESHOLD, type StageTimes } from '../src/pipeline/index.ts';

/**
 * `ctground label` throughput on copies of the bundled example (the real CT, 122×101×112 at 3 mm,
 * with its report and organ labels): studies per minute with one job and with one job per core,
 * and where one study's time goes (I/O, anatomy, report structuring, the network, writing results).
 * The shipped model is used when present (or CTGROUND_BENCH_MODEL), else the organ-side oracle (and the figures say so).
 */
export async function run({ json }: { json: boolean }): Promise<Record<string, unknown>> {
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
