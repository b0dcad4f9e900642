import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot, UserError } from '../src/common/index.ts';
import { labelStudies, loadGrounder, loadQueue, studiesFromDataset, DEFAULT_MODEL_DIR, type BatchStudy } from '../src/pipeline/index.ts';
import { haveRedis, startRedis } from '../test/helpers/redis.ts';

/**
 * The queue's cost per study: the same copies of the bundled study (the real CT of examples/demo,
 * 122×101×112 at 3 mm, its report and organ labels) labeled by plain `label` (one job, in this
 * process) and through `label --queue` with one `ctground worker` process, in turns, each side's
 * model already loaded; then studies/min with two worker processes. Redis is Debian's
 * redis-server on 127.0.0.1, nothing saved to disk. The shipped model when present (or
 * CTGROUND_BENCH_MODEL), else the organ-side oracle.
 */
export async function run({ json }: { json: boolean }): Promise<Record<string, unknown>> {
  if (!haveRedis()) throw new UserError('bench queue: redis-server not installed (apt-get install redis-server)');
  const n = Number(process.env.CTGROUND_BENCH_STUDIES ?? 12);
  const rounds = Number(process.env.CTGROUND_BENCH_ROUNDS ?? 3);
  const demo = join(projectRoot, 'examples', 'demo');
  const rec = JSON.parse(readFileSync(join(demo, 'manifest.jsonl'), 'utf8').split('\n')[0]!) as { ct: string; labels: string; report: string };
  const model = process.env.CTGROUND_BENCH_MODEL ?? (existsSync(DEFAULT_MODEL_DIR) ? undefined : 'oracle:organ-side');
  const modelName = model ?? 'shipped model (models/grounding-default)';
  const root = mkdtempSync(join(tmpdir(), 'ctg-bench-queue-'));
  // job id = study id, so every pass labels studies of its own names
  const studies = (tag: string): BatchStudy[] => {
    const data = join(root, `data-${tag}`);
    mkdirSync(data, { recursive: true });
    const lines = Array.from({ length: n }, (_, i) => ({ id: `${tag}-s${i}`, ct: join(demo, rec.ct), labels: join(demo, rec.labels), report: join(demo, rec.report), split: 'test' }));
    writeFileSync(join(data, 'manifest.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    return studiesFromDataset(data);
  };
  const redis = await startRedis();
  const workers: ChildProcess[] = [];
  const startWorker = (): Promise<void> => new Promise((ok, fail) => {
    const w = spawn(process.execPath, [join(projectRoot, 'bin', 'ctground.js'), 'worker', '--queue', redis.url, ...(model ? ['--model', model] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
    workers.push(w);
    w.stdout!.on('data', (d: Buffer) => { if (/worker: ready /.test(d.toString())) ok(); });
    w.on('exit', (code) => fail(new Error(`bench queue: worker exited (${code}) before it was ready`)));
  });
  const stopWorkers = async (): Promise<void> => {
    await Promise.all(workers.splice(0).map((w) => new Promise<void>((ok) => { if (w.exitCode !== null) ok(); else { w.once('exit', () => ok()); w.kill('SIGTERM'); } })));
  };
  try {
    const q = await loadQueue();
    const grounder = await loadGrounder(model);
    let pass = 0;
    const plain = async (): Promise<void> => {
      const r = await labelStudies(studies(`p${pass}`), join(root, `out-p${pass++}`), { grounder, jobs: 1 });
      if (r.failed.length) throw new Error(`bench: ${r.failed[0]!.id}: ${r.failed[0]!.reason}`);
    };
    // the seconds the workers spent inside studies (each job's own stage times, from its result), and
    // the span from the first job's start to the last one's end (the jobs' processedOn/finishedOn)
    let inStudies = 0, span = 0;
    const queued = async (): Promise<void> => {
      inStudies = 0;
      const list = studies(`q${pass}`);
      const r = await q.labelViaQueue(list, join(root, `out-q${pass++}`), {
        queue: redis.url, attempts: 1,
        onStudy: (o) => { if (o.status === 'labeled') inStudies += Object.values(o.times).reduce((a, b) => a + b, 0); },
      });
      if (r.failed.length) throw new Error(`bench: ${r.failed[0]!.id}: ${r.failed[0]!.reason}`);
      const jobs = await Promise.all(list.map((s) => q.jobLog(redis.url, s.id)));
      span = (Math.max(...jobs.map((j) => j!.finishedOn!)) - Math.min(...jobs.map((j) => j!.processedOn!))) / 1000;
    };
    const time = async (f: () => Promise<void>): Promise<number> => { const t = performance.now(); await f(); return (performance.now() - t) / 1000; };
    await startWorker();
    // one warm-up of each (first ORT runs, file cache), then best of `rounds` in turns
    await plain(); await queued();
    let bestPlain = Infinity, bestQueue = Infinity, bestOwn = Infinity, bestSteady = Infinity, studyPartOfBest = 0;
    for (let r = 0; r < rounds; r++) {
      bestPlain = Math.min(bestPlain, await time(plain));
      const t = await time(queued);
      // the queue's own share: wall time not spent inside a study (enqueue, Redis, hand-over, events)
      bestOwn = Math.min(bestOwn, t - inStudies);
      // of which between jobs, once running (what an archive of any size pays per study): the rest is
      // once per run (connecting, adding the jobs, the last event, closing)
      bestSteady = Math.min(bestSteady, span - inStudies);
      if (t < bestQueue) { bestQueue = t; studyPartOfBest = inStudies; }
    }
    await startWorker();
    await queued();
    let bestTwo = Infinity;
    for (let r = 0; r < rounds; r++) bestTwo = Math.min(bestTwo, await time(queued));
    const perPlain = bestPlain / n, perQueue = bestQueue / n;
    const result = {
      data: `${n} copies of examples/demo (real CT 122x101x112 @ 3 mm + report + organ labels) per pass, best of ${rounds} in turns`,
      model: modelName,
      cores: availableParallelism(),
      secondsPerStudy_label: Math.round(perPlain * 1000) / 1000,
      secondsPerStudy_queue1Worker: Math.round(perQueue * 1000) / 1000,
      // all of it: the queue's own work plus running the study in a worker thread instead of the main thread
      overheadMsPerStudy_total: Math.round((perQueue - perPlain) * 10000) / 10,
      overheadPercent_total: Math.round((1000 * (perQueue - perPlain)) / perPlain) / 10,
      // the queue's own: wall time outside the studies, per study
      overheadMsPerStudy_queueOwn: Math.round((bestOwn / n) * 10000) / 10,
      overheadPercent_queueOwn: Math.round((1000 * (bestOwn / n)) / perPlain) / 10,
      overheadMsPerStudy_queueBetweenJobs: Math.round((bestSteady / n) * 10000) / 10,
      overheadPercent_queueBetweenJobs: Math.round((1000 * (bestSteady / n)) / perPlain) / 10,
      secondsPerStudy_insideWorkerThread: Math.round((studyPartOfBest / n) * 1000) / 1000,
      studiesPerMin_label: Math.round((600 * n) / bestPlain) / 10,
      studiesPerMin_queue1Worker: Math.round((600 * n) / bestQueue) / 10,
      studiesPerMin_queue2Workers: Math.round((600 * n) / bestTwo) / 10,
      speedup_2workers: Math.round((bestQueue / bestTwo) * 100) / 100,
    };
    if (!json) {
      console.log(`queue: ${n} studies per pass, ${modelName}, ${result.cores} cores`);
      console.log(`  label (1 job): ${result.secondsPerStudy_label} s/study; queue, 1 worker: ${result.secondsPerStudy_queue1Worker} s/study (${result.secondsPerStudy_insideWorkerThread} s inside the study's thread)`);
      console.log(`  overhead per study: queue's own ${result.overheadMsPerStudy_queueOwn} ms (${result.overheadPercent_queueOwn} %), of which between jobs ${result.overheadMsPerStudy_queueBetweenJobs} ms (${result.overheadPercent_queueBetweenJobs} %), the rest once per run; all of it ${result.overheadMsPerStudy_total} ms (${result.overheadPercent_total} %)`);
      console.log(`  studies/min: label ${result.studiesPerMin_label}, queue 1 worker ${result.studiesPerMin_queue1Worker}, 2 workers ${result.studiesPerMin_queue2Workers} (×${result.speedup_2workers})`);
    }
    return result;
  } finally {
    await stopWorkers();
    await redis.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
