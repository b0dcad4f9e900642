import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { BatchStudy, StudyOutcome } from './batch.ts';

/**
 * Runs studies in `jobs` worker threads, each with its own grounder, feeding the next study to
 * whichever worker finishes first. Workers load TypeScript through tsx, like the CLI itself.
 */
export async function runInWorkers(todo: BatchStudy[], out: string, opts: { jobs: number; threshold: number; modelSpec?: string }, finished: (o: StudyOutcome) => void): Promise<void> {
  const queue = [...todo];
  const tsx = import.meta.resolve('tsx');
  const one = (): Promise<void> => new Promise((resolveWorker, reject) => {
    const w = new Worker(new URL('./worker-main.ts', import.meta.url), {
      execArgv: ['--import', tsx],
      // the cores are shared out, so N workers do not each start a full ORT thread pool
      workerData: { out, threshold: opts.threshold, modelSpec: opts.modelSpec, threads: Math.max(1, Math.floor(availableParallelism() / opts.jobs)) },
    });
    let current: BatchStudy | undefined;
    const next = (): void => {
      current = queue.shift();
      if (current) w.postMessage(current);
      else void w.terminate().then(() => resolveWorker());
    };
    w.on('message', (m: StudyOutcome | { ready: true }) => {
      if ('ready' in m) return next();
      finished(m);
      next();
    });
    w.on('error', (e) => {
      // a crash in one study (out of memory, a native abort) costs that study, not the batch
      if (current) finished({ id: current.id, status: 'failed', reason: `worker crashed: ${e.message.split('\n')[0]}` });
      reject(e);
    });
  });
  const workers = Array.from({ length: opts.jobs }, () => one().catch(() => undefined));
  await Promise.all(workers);
  // studies left by crashed workers run in this thread's fresh workers, one at a time
  while (queue.length) await one().catch(() => undefined);
}
