import { mkdirSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import type { Worker as Thread } from 'node:worker_threads';
import { Queue, QueueEvents, Worker, WaitingError, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { UserError } from '../common/index.ts';
import { checkStudyIds, isStudyDone, oneLineReason, removeStudyTemps, writeBatchSummary, type BatchStudy, type BatchSummary, type StudyOutcome } from './batch.ts';
import { startLabelThread } from './workers.ts';
import type { StageTimes } from './study.ts';
import { DicomwebClient } from '../dicom/index.ts';
import { fetchPacsStudy, isSegStored, removePacsWork, rowTable, storePacsSeg, type PacsStudy } from './pacs.ts';

// The archive-labeling queue: `label --queue` enqueues one BullMQ job per study (job id = the study
// id, so enqueuing twice is harmless), `worker` processes them anywhere Redis and the output folder
// are reachable, `queue` is the operator's view. Loaded only on that path: plain `label` never
// imports BullMQ or ioredis.

/** One queue per Redis database: a second archive goes in another database (redis://HOST:PORT/DB). */
export const QUEUE_NAME = 'ctground-label';

/**
 * A PACS study's job (`label --dicomweb … --queue`): what a worker needs to fetch, ground and store it
 * with no access to the enqueuer's files: the DICOMweb root, the study, the report text the --reports
 * CSV gives it (or none: the worker then looks for a text SR in the study, as label --dicomweb does).
 */
export interface PacsJob { url: string; study: PacsStudy; reports?: { file: string; text?: string }; store: boolean; timeoutMs?: number }

/** A job's data: the study as its source listed it, where its outputs go, and label's one setting. */
export interface StudyJob { study: BatchStudy; out: string; threshold?: number; pacs?: PacsJob }

/** What a finished job keeps in the queue: how it ended and who did it (host:pid). */
export interface StudyJobResult { status: 'labeled' | 'already done'; times?: StageTimes; worker: string; seg?: 'stored' | 'present' | 'none' }

export interface QueueAddress { url: string; host: string; port: number; db: number; tls: boolean; username?: string; password?: string }

/** `redis://[[USER]:PASS@]HOST[:PORT][/DB]` (rediss:// for TLS). `shown` never carries the password. */
export function parseQueueUrl(url: string): QueueAddress & { shown: string } {
  const rule = 'expected redis://HOST:PORT[/DB]';
  let u: URL;
  try { u = new URL(url); } catch { throw new UserError(`--queue: '${url}' is not a Redis address (${rule})`); }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new UserError(`--queue: '${u.protocol}' is not a Redis address (${rule})`);
  if (!u.hostname) throw new UserError(`--queue: no host in the Redis address (${rule})`);
  const port = u.port ? Number(u.port) : 6379;
  const path = u.pathname.replace(/^\/+/, '');
  const db = path === '' ? 0 : Number(path);
  if (!Number.isInteger(db) || db < 0 || !/^\d*$/.test(path)) throw new UserError(`--queue: database '${path}' is not a whole number (${rule})`);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    url, host, port, db, tls: u.protocol === 'rediss:',
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    shown: `${u.protocol}//${u.hostname}:${port}/${db}`,
  };
}

/**
 * A Redis connection that fails in one line when the server cannot be reached at start, and once
 * connected keeps retrying (a Redis restart must not kill a day-long worker). BullMQ duplicates it
 * for its blocking reads; it never closes a connection it was given, so the caller quits this one.
 */
async function connect(addr: QueueAddress & { shown: string }, onLost?: (msg: string) => void): Promise<Redis> {
  let ready = false, lastError = '';
  const client = new Redis({
    host: addr.host, port: addr.port, db: addr.db, username: addr.username, password: addr.password,
    ...(addr.tls ? { tls: {} } : {}),
    // BullMQ's workers need commands to wait out a reconnect rather than fail
    maxRetriesPerRequest: null, lazyConnect: true, connectTimeout: 5000,
    retryStrategy: (times) => (ready ? Math.min(200 * times, 5000) : times < 3 ? 200 : null),
  });
  client.on('error', (e: Error) => {
    lastError = (e as NodeJS.ErrnoException).code ?? e.message.split('\n')[0]!;
    if (ready) onLost?.(`redis ${addr.shown}: ${lastError}; retrying`);
  });
  try {
    await client.connect();
  } catch (e) {
    client.disconnect();
    throw new UserError(`${addr.shown}: cannot connect to Redis (${lastError || (e as Error).message.split('\n')[0]})`);
  }
  ready = true;
  return client;
}

/** BullMQ reserves whole-number job ids for its own; such a study id gets a '#' in front. */
export const jobIdOf = (studyId: string): string => (/^\d+$/.test(studyId) && String(parseInt(studyId, 10)) === studyId ? `#${studyId}` : studyId);

const quiet = (e: unknown): void => { void e; };

export interface EnqueueOptions {
  queue: string;
  threshold?: number;
  /** tries per study before it lands in the failed list */
  attempts: number;
  /** called for each study as it ends: done before, labeled, or failed for good */
  onStudy?: (o: StudyOutcome) => void;
  /** called once the jobs are in the queue (how many were added now, how many were there already) */
  onQueued?: (added: number, present: number) => void;
  /** the studies come from a PACS: each job carries its PacsJob (by study id) */
  pacs?: Map<string, PacsJob>;
  /** called for each job that stored its SEG into the PACS (not one it found there already) */
  onStored?: (id: string) => void;
}

/**
 * `label --queue`: enqueues every study not finished in `out`, then follows the queue's events
 * until each has been labeled or has failed for good, and writes manifest.jsonl and summary.json
 * as `label` does. Interrupted, it loses nothing: the jobs stay queued and the workers go on; run
 * again, it enqueues nothing twice and picks up where the queue is.
 */
export async function labelViaQueue(studies: BatchStudy[], out: string, opts: EnqueueOptions): Promise<BatchSummary> {
  checkStudyIds(studies);
  mkdirSync(out, { recursive: true });
  const addr = parseQueueUrl(opts.queue);
  const conn = await connect(addr);
  const eventsConn = conn.duplicate();
  eventsConn.on('error', quiet);
  const queue = new Queue<StudyJob, StudyJobResult>(QUEUE_NAME, { connection: conn });
  const events = new QueueEvents(QUEUE_NAME, { connection: eventsConn, autorun: false });
  queue.on('error', quiet);
  events.on('error', quiet);
  const failed: { id: string; reason: string }[] = [];
  try {
    const todo = studies.filter((s) => {
      // a labeled PACS study whose SEG is not marked stored yet still has its store to do
      const storeLeft = opts.pacs?.get(s.id)?.store && !isSegStored(out, s.id);
      if (isStudyDone(out, s.id) && !storeLeft) { opts.onStudy?.({ id: s.id, status: 'skipped' }); return false; }
      return true;
    });
    const byJob = new Map(todo.map((s) => [jobIdOf(s.id), s]));
    const pending = new Set(byJob.keys());
    // jobs this run removes itself (to label again) are not 'removed' for the summary
    const readding = new Set<string>();
    let settle!: () => void;
    const allDone = new Promise<void>((ok) => { settle = ok; });
    const end = (jobId: string, o: StudyOutcome): void => {
      if (!pending.delete(jobId)) return;
      if (o.status === 'failed') failed.push({ id: o.id, reason: o.reason });
      opts.onStudy?.(o);
      if (pending.size === 0) settle();
    };
    const labeled = (jobId: string, r: StudyJobResult | undefined): void => {
      if (r?.seg === 'stored' && pending.has(jobId)) opts.onStored?.(byJob.get(jobId)!.id);
      end(jobId, { id: byJob.get(jobId)!.id, status: 'labeled', times: r?.times ?? { io: 0, anatomy: 0, structuring: 0, network: 0, outputs: 0 } });
    };
    // listen before adding, so no job can finish unseen
    events.on('completed', ({ jobId, returnvalue }) => labeled(jobId, returnvalue as unknown as StudyJobResult));
    events.on('failed', ({ jobId, failedReason }) => { if (byJob.has(jobId)) end(jobId, { id: byJob.get(jobId)!.id, status: 'failed', reason: failedReason }); });
    events.on('removed', ({ jobId }) => { if (readding.delete(jobId)) return; if (byJob.has(jobId)) end(jobId, { id: byJob.get(jobId)!.id, status: 'failed', reason: 'removed from the queue before it was labeled' }); });
    void events.run().catch(quiet);
    await events.waitUntilReady();

    let added = 0;
    const fresh: BatchStudy[] = [];
    for (const s of todo) {
      const job = await queue.getJob(jobIdOf(s.id));
      if (!job) { fresh.push(s); continue; }
      if (job.data.out !== out) throw new UserError(`study id '${s.id}' is already queued for another output folder (${job.data.out}); give each archive its own Redis database (redis://HOST:PORT/DB)`);
      // its outputs were removed since it was labeled: label it again
      if (await job.getState() === 'completed') { readding.add(job.id!); await job.remove(); fresh.push(s); }
    }
    const jobOpts = { attempts: opts.attempts, removeOnFail: false, removeOnComplete: { age: 7 * 24 * 3600 } };
    for (let i = 0; i < fresh.length; i += 500) {
      const chunk = fresh.slice(i, i + 500);
      await queue.addBulk(chunk.map((s) => ({ name: 'study', data: { study: s, out, ...(opts.threshold !== undefined ? { threshold: opts.threshold } : {}), ...(opts.pacs?.get(s.id) ? { pacs: opts.pacs.get(s.id)! } : {}) }, opts: { ...jobOpts, jobId: jobIdOf(s.id) } })));
      added += chunk.length;
    }
    opts.onQueued?.(added, todo.length - added);
    // the events stream is capped; a job that ended before we listened, or whose event was
    // trimmed away while this process was busy, is found by asking for its state
    const reconcile = async (): Promise<void> => {
      for (const jobId of [...pending]) {
        const job = await queue.getJob(jobId);
        if (!job) {
          const s = byJob.get(jobId)!;
          if (isStudyDone(out, s.id)) labeled(jobId, undefined);
          else end(jobId, { id: s.id, status: 'failed', reason: 'removed from the queue before it was labeled' });
          continue;
        }
        const state = await job.getState();
        if (state === 'completed') labeled(jobId, job.returnvalue);
        else if (state === 'failed') end(jobId, { id: byJob.get(jobId)!.id, status: 'failed', reason: job.failedReason });
      }
    };
    if (pending.size === 0) settle();
    await reconcile();
    // every 15 s, and less often for a big archive (two commands per pending study a round)
    let timer: NodeJS.Timeout | undefined;
    const again = (): void => { timer = setTimeout(() => { void reconcile().catch(quiet).finally(() => { if (pending.size) again(); }); }, Math.max(15_000, 2 * pending.size)); };
    again();
    try { await allDone; } finally { clearTimeout(timer); }
  } finally {
    await events.close().catch(quiet);
    await queue.close().catch(quiet);
    eventsConn.disconnect();
    await conn.quit().catch(quiet);
  }
  return writeBatchSummary(out, studies, failed);
}

export interface WorkerOptions {
  queue: string;
  /** studies at a time, each in its own thread with its own grounder */
  jobs: number;
  modelSpec?: string;
  /**
   * how long a job's lock lasts unrenewed, in ms: a dead worker's study goes back to the queue
   * after about this long (the live worker renews it at half this)
   */
  lockMs: number;
  /** how often each worker looks for jobs of dead workers, in ms */
  stalledCheckMs: number;
  /** on SIGTERM, how long the current studies may take to finish before they are given back, in ms */
  graceMs: number;
  /** one line per event (ready, start, done, failed, gave back, stopped) */
  log: (line: string) => void;
}

/** One grounder thread of a worker: the same worker-main.ts label's --jobs uses. */
interface Slot { thread: Thread; busy: boolean; settle?: (o: StudyOutcome | 'given back') => void }

/**
 * `ctground worker`: loads the model once per thread, then takes jobs until stopped. A study runs
 * in a thread so the main thread stays free to renew the job's lock in Redis; a lock left to
 * expire (a killed or frozen worker) is how BullMQ's stalled-job check hands the study to another
 * worker, which redoes it from the start. Resolves when the worker has stopped: `stop()` (SIGTERM)
 * lets the current studies finish for graceMs, then gives them back to the queue.
 */
export async function runQueueWorker(opts: WorkerOptions): Promise<{ stop: () => void; stopped: Promise<void> }> {
  const addr = parseQueueUrl(opts.queue);
  const me = `${hostname()}:${process.pid}`;
  const threads = Math.max(1, Math.floor(availableParallelism() / opts.jobs));
  // connect first: a worker that cannot reach Redis should say so before loading any model
  const conn = await connect(addr, opts.log);
  const slots: Slot[] = [];
  const startSlot = async (): Promise<Slot> => {
    const thread = startLabelThread({ modelSpec: opts.modelSpec, threads });
    const slot: Slot = { thread, busy: false };
    await new Promise<void>((ok, fail) => {
      let ready = false;
      thread.on('message', (m: StudyOutcome | { ready: true }) => {
        if ('ready' in m) { ready = true; ok(); return; }
        slot.settle?.(m);
      });
      thread.on('error', (e) => {
        const msg = e.message.split('\n')[0]!;
        if (!ready) fail(e.name === 'UserError' ? new UserError(msg) : new Error(`label worker could not start: ${msg}`));
        else slot.settle?.({ id: '', status: 'failed', reason: `worker crashed: ${msg}` });
        slot.busy = true; // never reused: a crashed thread is replaced
        const i = slots.indexOf(slot);
        if (i >= 0) slots.splice(i, 1);
      });
    });
    slots.push(slot);
    return slot;
  };
  try {
    await Promise.all(Array.from({ length: opts.jobs }, startSlot));
  } catch (e) {
    await Promise.all(slots.map((s) => s.thread.terminate()));
    await conn.quit().catch(quiet);
    throw e;
  }
  const active = new Set<Slot>();
  // once set, a study that reaches its thread after this goes straight back too
  let givingBack = false;
  const giveBackAll = (): void => { givingBack = true; for (const s of active) s.settle?.('given back'); };

  // one DICOMweb client per PACS root (and timeout) for the worker's life
  const clients = new Map<string, DicomwebClient>();
  const clientOf = (p: PacsJob): DicomwebClient => {
    const key = `${p.timeoutMs ?? ''} ${p.url}`;
    let c = clients.get(key);
    if (!c) clients.set(key, (c = new DicomwebClient(p.url, { timeoutMs: p.timeoutMs })));
    return c;
  };
  // a PACS study's SEG goes into its study once (storePacsSeg's mark and its already-there check)
  const storeSeg = async (p: PacsJob, out: string): Promise<StudyJobResult['seg']> => {
    try {
      return await storePacsSeg(clientOf(p), p.study, out);
    } catch (e) {
      throw new Error(`store: ${oneLineReason(e)}`, { cause: e });
    }
  };

  const process1 = async (job: Job<StudyJob, StudyJobResult>, token?: string): Promise<StudyJobResult> => {
    const { out, threshold, pacs } = job.data;
    let { study } = job.data;
    // the attempt's record is on its way to Redis (written to the socket now, so a kill after this
    // line still leaves it) while the study runs: no round trip of waiting per study
    const started = job.log(`attempt ${job.attemptsStarted} started by ${me}`);
    // one turn of the event loop: the command has left for the socket before anyone reads this line
    await new Promise((r) => setImmediate(r));
    opts.log(`start ${study.id} attempt ${job.attemptsStarted}`);
    // a job whose outputs are complete was finished by a worker that died before telling the queue
    if (isStudyDone(out, study.id)) {
      await started;
      const seg = pacs?.store ? await storeSeg(pacs, out) : undefined;
      await job.log(`already done, found by ${me}`);
      opts.log(`done ${study.id} (already done)${seg ? ` seg ${seg}` : ''}`);
      return { status: 'already done', worker: me, ...(seg ? { seg } : {}) };
    }
    // temporaries of an attempt that was killed: this job's lock makes them nobody's now
    removeStudyTemps(out, study.id);
    if (pacs) {
      // the series and report come over DICOMweb into out/.pacs/ID, as label --dicomweb fetches them
      try {
        study = await fetchPacsStudy(clientOf(pacs), pacs.study, out, pacs.reports ? rowTable(pacs.reports, pacs.study) : undefined, study.dicomSeg);
      } catch (e) {
        removePacsWork(out, study.id);
        await started;
        const reason = oneLineReason(e);
        void job.log(`failed on ${me}: ${reason}`).catch(quiet);
        opts.log(`failed ${study.id}: ${reason}`);
        throw new Error(reason, { cause: e });
      }
    }
    const slot = slots.find((s) => !s.busy) ?? (await startSlot());
    slot.busy = true;
    active.add(slot);
    const t0 = performance.now();
    let o: StudyOutcome | 'given back';
    try {
      o = givingBack ? 'given back' : await new Promise<StudyOutcome | 'given back'>((settle) => {
        slot.settle = settle;
        slot.thread.postMessage({ study, out, threshold });
      });
    } finally {
      slot.settle = undefined;
      active.delete(slot);
    }
    await started;
    if (o === 'given back') {
      // the thread may be half-way through writing: end it, then put the job back for another worker
      const i = slots.indexOf(slot);
      if (i >= 0) slots.splice(i, 1);
      await slot.thread.terminate();
      await job.log(`given back by ${me} (worker stopping)`);
      await job.moveToWait(token);
      opts.log(`gave back ${study.id}`);
      throw new WaitingError();
    }
    if (slots.includes(slot)) slot.busy = false;
    if (pacs) removePacsWork(out, study.id);
    const secs = ((performance.now() - t0) / 1000).toFixed(2);
    // the last log line goes on the same connection just before BullMQ's own completion command
    if (o.status === 'failed') {
      void job.log(`failed on ${me}: ${o.reason}`).catch(quiet);
      opts.log(`failed ${study.id}: ${o.reason}`);
      throw new Error(o.reason);
    }
    const seg = pacs?.store ? await storeSeg(pacs, out) : undefined;
    void job.log(`labeled by ${me} in ${secs} s${seg ? `, seg ${seg}` : ''}`).catch(quiet);
    opts.log(`done ${study.id} ${secs} s${seg ? ` seg ${seg}` : ''}`);
    return { status: 'labeled', times: (o as Extract<StudyOutcome, { status: 'labeled' }>).times, worker: me, ...(seg ? { seg } : {}) };
  };

  const worker = new Worker<StudyJob, StudyJobResult>(QUEUE_NAME, process1, {
    connection: conn, concurrency: opts.jobs, name: me, autorun: false,
    lockDuration: opts.lockMs, stalledInterval: opts.stalledCheckMs,
    // a study whose worker died twice (a machine lost, say) is worth a third try; past that it is failed
    maxStalledCount: 2,
    // when the queue is empty a worker waits on Redis, not on a poll
    drainDelay: 5,
  });
  worker.on('error', (e) => opts.log(`queue error: ${e.message.split('\n')[0]}`));
  let stopping = false;
  let graceTimer: NodeJS.Timeout | undefined;
  const stopped = (async () => {
    await worker.waitUntilReady();
    opts.log(`ready ${me} jobs ${opts.jobs} threads ${threads}`);
    await worker.run();
  })().finally(async () => {
    if (graceTimer) clearTimeout(graceTimer);
    await Promise.all(slots.map((s) => s.thread.terminate()));
    await conn.quit().catch(quiet);
    opts.log('stopped');
  });
  const stop = (): void => {
    if (stopping) { giveBackAll(); return; }
    stopping = true;
    opts.log(active.size ? `stopping: ${active.size} studies finish within ${opts.graceMs / 1000} s or go back to the queue` : 'stopping');
    graceTimer = setTimeout(giveBackAll, opts.graceMs);
    void worker.close();
  };
  return { stop, stopped };
}

export interface QueueStatus {
  queue: string;
  counts: Record<string, number>;
  workers: string[];
  failed: { id: string; reason: string; attempts: number }[];
}

async function withQueue<T>(url: string, fn: (q: Queue<StudyJob, StudyJobResult>, addr: QueueAddress & { shown: string }) => Promise<T>): Promise<T> {
  const addr = parseQueueUrl(url);
  const conn = await connect(addr);
  const queue = new Queue<StudyJob, StudyJobResult>(QUEUE_NAME, { connection: conn });
  queue.on('error', quiet);
  try { return await fn(queue, addr); } finally {
    await queue.close().catch(quiet);
    await conn.quit().catch(quiet);
  }
}

/** `queue status`: the job counts, the workers connected now, and every failed study with its reason. */
export function queueStatus(url: string): Promise<QueueStatus> {
  return withQueue(url, async (q, addr) => {
    const counts = await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed');
    // CLIENT LIST is the server's: only this database's workers are this queue's
    const db = String(addr.db);
    const workers = (await q.getWorkers()).filter((w) => String(w.db ?? '0') === db).map((w) => String(w.rawname ?? w.name ?? '').split(':w:').pop() ?? '').filter(Boolean).sort();
    const failed = (await q.getFailed(0, -1)).map((j) => ({ id: j.data.study.id, reason: j.failedReason, attempts: j.attemptsMade }));
    failed.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { queue: addr.shown, counts, workers, failed };
  });
}

/** `queue retry-failed`: every failed study back to waiting with its full number of tries. */
export function retryFailed(url: string): Promise<string[]> {
  return withQueue(url, async (q) => {
    const ids: string[] = [];
    for (const j of await q.getFailed(0, -1)) {
      // the attempts-made count starts again, so the study gets --attempts new tries; the log keeps every earlier one
      await j.retry('failed', { resetAttemptsMade: true });
      ids.push(j.data.study.id);
    }
    return ids.sort();
  });
}

/** `queue drain`: removes the studies still waiting (running ones finish; finished and failed ones stay). */
export function drainQueue(url: string): Promise<number> {
  return withQueue(url, async (q) => {
    const before = await q.getJobCounts('waiting', 'delayed', 'prioritized');
    await q.drain(true);
    return Object.values(before).reduce((a, b) => a + b, 0);
  });
}

/** The per-attempt record of one study's job (its BullMQ job log), oldest first. */
export function jobLog(url: string, studyId: string): Promise<{ state: string; attemptsStarted: number; log: string[]; processedOn?: number; finishedOn?: number } | null> {
  return withQueue(url, async (q) => {
    const job = await q.getJob(jobIdOf(studyId));
    if (!job) return null;
    // processedOn/finishedOn: when its last attempt started and when it ended (ms since the epoch, Redis's clock)
    return { state: await job.getState(), attemptsStarted: job.attemptsStarted, log: (await q.getJobLogs(job.id!)).logs, processedOn: job.processedOn, finishedOn: job.finishedOn };
  });
}
