import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { UserError } from '../common/index.ts';
import type { BatchStudy, StudyOutcome } from './batch.ts';

/**
 * One label thread (worker-main.ts): loads its own grounder, says `{ ready: true }`, then labels each
 * study it is sent. Shared by `label --jobs` and the queue's worker.
 */
export function startLabelThread(data: { out?: string; threshold?: number; modelSpec?: string; threads: number }): Worker {
  // workers run TypeScript through tsx, registered from a tiny ESM entry like bin/ctground.js does
  const entry = `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))}; register(); await import(${JSON.stringify(new URL('./worker-main.ts', import.meta.url).href)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(entry)}`), { workerData: data });
}

/**
 * Runs studies in `jobs` worker threads, each with its own grounder, feeding the next study to
 * whichever worker is free. A worker that crashes on a study costs that study (reported as failed)
 * and is replaced; one that cannot even start stops the batch, since every other would fail alike.
 */
export async function runInWorkers(todo: BatchStudy[], out: string, opts: { jobs: number; threshold?: number; modelSpec?: string }, finished: (o: StudyOutcome) => void): Promise<void> {
  const queue = [...todo];
  const threads = Math.max(1, Math.floor(availableParallelism() / opts.jobs));
  let fatal: Error | undefined;
  const one = (): Promise<void> => new Promise((done) => {
    // the cores are shared out, so N workers do not each start a full ORT thread pool
    const w = startLabelThread({ out, threshold: opts.threshold, modelSpec: opts.modelSpec, threads });
    let current: BatchStudy | undefined;
    let ready = false;
    const next = (): void => {
      current = fatal ? undefined : queue.shift();
      if (current) w.postMessage(current);
      else void w.terminate().then(() => done());
    };
    w.on('message', (m: StudyOutcome | { ready: true }) => {
      if ('ready' in m) { ready = true; return next(); }
      finished(m);
      next();
    });
    w.on('error', (e) => {
      const msg = e.message.split('\n')[0]!;
      // the error crosses the thread boundary as a plain Error; its name still says whether it was the user's input
      if (!ready) fatal ??= e.name === 'UserError' ? new UserError(msg) : new Error(`label worker could not start: ${msg}`);
      else if (current) finished({ id: current.id, status: 'failed', reason: `worker crashed: ${msg}` });
      current = undefined;
      done();
    });
  });
  const pool = async (): Promise<void> => { while (queue.length && !fatal) await one(); };
  await Promise.all(Array.from({ length: opts.jobs }, pool));
  if (fatal) throw fatal;
}
