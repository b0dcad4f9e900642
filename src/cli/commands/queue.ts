import { UserError } from '../../common/index.ts';
import { parseFlags, requireFlag } from '../args.ts';
import { loadQueue } from '../../pipeline/index.ts';

export const summary = "the label queue's state for the operator: status, retry-failed, drain";

export const USAGE = `usage: ctground queue status|retry-failed|drain --queue redis://HOST:PORT[/DB] [--json]
  status        jobs waiting, running, done and failed, the workers connected, each failed study with its reason
  retry-failed  every failed study back in the queue with its full number of attempts
  drain         remove the studies still waiting (those running finish; done and failed stay)`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { queue: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  if (values.help) { console.log(USAGE); return 0; }
  const [action, ...extra] = positionals;
  if (!action || extra.length) throw new UserError('give one of status, retry-failed or drain (ctground queue --help)');
  const queue = requireFlag(values.queue, 'queue');
  const q = await loadQueue();
  if (action === 'status') {
    const s = await q.queueStatus(queue);
    if (values.json) { console.log(JSON.stringify(s)); return 0; }
    const c = s.counts;
    console.log(`${s.queue}: ${(c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0)} waiting, ${c.active ?? 0} running, ${c.completed ?? 0} done, ${c.failed ?? 0} failed`);
    console.log(`workers: ${s.workers.length ? s.workers.join(', ') : 'none connected'}`);
    if (s.failed.length) {
      console.log('failed:');
      for (const f of s.failed) console.log(`  ${f.id}: ${f.reason} (${f.attempts} attempt${f.attempts === 1 ? '' : 's'})`);
    }
    return 0;
  }
  if (action === 'retry-failed') {
    const ids = await q.retryFailed(queue);
    if (values.json) console.log(JSON.stringify({ retried: ids }));
    else console.log(ids.length ? `${ids.length} failed studies back in the queue: ${ids.join(', ')}` : 'no failed studies');
    return 0;
  }
  if (action === 'drain') {
    const n = await q.drainQueue(queue);
    if (values.json) console.log(JSON.stringify({ removed: n }));
    else console.log(`${n} waiting studies removed from the queue`);
    return 0;
  }
  throw new UserError(`unknown queue action '${action}' (have: status, retry-failed, drain)`);
}
