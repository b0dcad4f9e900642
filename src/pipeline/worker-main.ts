import { parentPort, workerData } from 'node:worker_threads';
import { loadGrounder } from './grounder.ts';
import { labelOneStudy, oneLineReason, type BatchStudy, type StudyOutcome } from './batch.ts';

// One label worker: loads the grounder once, then labels the studies the main thread sends: a bare
// study (label --jobs, one output folder for the thread) or a queue job's { study, out, threshold }.
const { out, threshold, modelSpec, threads } = workerData as { out?: string; threshold?: number; modelSpec?: string; threads: number };
const port = parentPort!;
const grounder = await loadGrounder(modelSpec, { threads });
port.on('message', async (m: BatchStudy | { study: BatchStudy; out: string; threshold?: number }) => {
  const [s, dest, t] = 'study' in m ? [m.study, m.out, m.threshold] : [m, out!, threshold];
  let o: StudyOutcome;
  try {
    const { times } = await labelOneStudy(s, dest, grounder, t);
    o = { id: s.id, status: 'labeled', times };
  } catch (e) {
    o = { id: s.id, status: 'failed', reason: oneLineReason(e) };
  }
  port.postMessage(o);
});
port.postMessage({ ready: true });
