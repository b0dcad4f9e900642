import { UserError } from '../../common/index.ts';
import { parseFlags, requireFlag, intFlag, numFlag } from '../args.ts';
import { loadQueue } from '../../pipeline/index.ts';

export const summary = 'take `label --queue` studies from Redis until stopped (one per machine)';

export const USAGE = `usage: ctground worker --queue redis://HOST:PORT[/DB] [--jobs N] [--model DIR|oracle:NAME] [--lock S] [--grace S]
  --queue  the Redis that \`ctground label --queue\` enqueued into
  --jobs   studies at a time, each in its own thread with its own copy of the model (default 1;
           on a machine of C cores, C ÷ the threads one study's network uses)
  --model  the model every study is grounded with (default: the shipped one); give every worker the same
  --lock   seconds a study stays claimed by a worker that stopped answering (killed, frozen, cut off)
           before another worker takes it over (default 30); the live worker renews it at half that
  --grace  on SIGTERM, seconds the current studies may take to finish before they go back to the
           queue (default 30); a second SIGTERM or Ctrl-C gives them back at once
Prints one line per event (ready, start ID attempt N, done ID, failed ID: reason, gave back ID, stopped).`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    queue: { type: 'string' }, jobs: { type: 'string' }, model: { type: 'string' },
    lock: { type: 'string' }, grace: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  }, false);
  if (values.help) { console.log(USAGE); return 0; }
  const queue = requireFlag(values.queue, 'queue');
  const jobs = intFlag(values.jobs, 'jobs', 1);
  if (jobs < 1) throw new UserError(`--jobs must be at least 1, got ${jobs}`);
  const lock = numFlag(values.lock, 'lock', 30);
  if (!(lock >= 1)) throw new UserError(`--lock must be at least 1 second, got ${lock}`);
  const grace = numFlag(values.grace, 'grace', 30);
  if (!(grace >= 0)) throw new UserError(`--grace must be 0 seconds or more, got ${grace}`);
  const { runQueueWorker } = await loadQueue();
  const w = await runQueueWorker({
    queue, jobs, modelSpec: values.model,
    // a dead worker's study waits one lock period, then the next check (a quarter of it) finds it
    lockMs: lock * 1000, stalledCheckMs: Math.max(500, (lock * 1000) / 4), graceMs: grace * 1000,
    log: (line) => { process.stdout.write(`worker: ${line}\n`); },
  });
  process.on('SIGTERM', w.stop);
  process.on('SIGINT', w.stop);
  await w.stopped;
  process.off('SIGTERM', w.stop);
  process.off('SIGINT', w.stop);
  return 0;
}
