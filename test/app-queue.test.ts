import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertSameTree, tree } from './helpers/tree.ts';
import { redisCli, redisSkipReason, startRedis, type TestRedis } from './helpers/redis.ts';
import { projectRoot } from '../src/common/index.ts';
import { loadQueue } from '../src/pipeline/index.ts';

// `label --queue` + `ctground worker` on a real Redis (Debian's redis-server, started here on
// 127.0.0.1 with nothing saved to disk). Workers use the organ-side oracle: the queue is under test,
// not the network, and the oracle keeps 6 studies on 2 shared cores to seconds.
const skip = redisSkipReason();
const BIN = join(projectRoot, 'bin', 'ctground.js');
const MODEL = 'oracle:organ-side';
// A killed worker's study is taken over once its lock lapses: 2 s here (30 s by default) so the
// test waits seconds, not half a minute; the stalled check then runs every 0.5 s.
const LOCK = '2';
let redis: TestRedis, root: string, input: string, ref: string;

/** A CLI process whose stdout lines are collected as they come. */
interface Proc { child: ChildProcess; lines: string[]; stderr: () => string; exit: Promise<number | null>; waitFor: (re: RegExp, ms?: number) => Promise<RegExpExecArray> }

const running = new Set<ChildProcess>();

function start(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const lines: string[] = [];
  let err = '', partial = '';
  const waiters: { re: RegExp; ok: (m: RegExpExecArray) => void }[] = [];
  child.stdout!.on('data', (d) => {
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const l of parts) {
      lines.push(l);
      for (const w of [...waiters]) {
        const m = w.re.exec(l);
        if (m) { waiters.splice(waiters.indexOf(w), 1); w.ok(m); }
      }
    }
  });
  child.stderr!.on('data', (d) => { err += d; });
  running.add(child);
  const exit = new Promise<number | null>((ok) => child.on('exit', (code) => { running.delete(child); ok(code); }));
  const waitFor = (re: RegExp, ms = 60_000): Promise<RegExpExecArray> => {
    for (const l of lines) { const m = re.exec(l); if (m) return Promise.resolve(m); }
    return new Promise((ok, fail) => {
      const t = setTimeout(() => fail(new Error(`no line ${re} within ${ms} ms; stdout:\n${lines.join('\n')}\nstderr:\n${err}`)), ms);
      waiters.push({ re, ok: (m) => { clearTimeout(t); ok(m); } });
    });
  };
  return { child, lines, stderr: () => err, exit, waitFor };
}

/**
 * A command run to its end without blocking this process (spawnSync would stop it reading the
 * workers' output meanwhile).
 */
async function cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const p = start(args);
  const status = await p.exit;
  await new Promise((r) => setImmediate(r));
  return { status, stdout: p.lines.join('\n') + (p.lines.length ? '\n' : ''), stderr: p.stderr() };
}

const worker = (db: number, extra: string[] = [], env: Record<string, string> = {}): Proc => start(['worker', '--queue', `${redis.url}/${db}`, '--model', MODEL, '--lock', LOCK, ...extra], env);

// The bundled study (the real CT of examples/demo with its organ labels), under several reports.
const DEMO = join(projectRoot, 'examples', 'demo');
function writeDataset(dir: string, studies: { id: string; report: string; ct?: string }[]): void {
  mkdirSync(dir, { recursive: true });
  const lines = studies.map((s) => {
    writeFileSync(join(dir, `${s.id}.txt`), s.report);
    return JSON.stringify({ id: s.id, ct: s.ct ?? join(DEMO, 'ct.nii.gz'), labels: join(DEMO, 'labels.nii.gz'), report: `${s.id}.txt` });
  });
  writeFileSync(join(dir, 'manifest.jsonl'), lines.join('\n') + '\n');
}

before(async () => {
  if (skip) return;
  redis = await startRedis();
  root = mkdtempSync(join(tmpdir(), 'ctg-queue-'));
  input = join(root, 'in');
  // six studies of the real CT, each with its own report
  const reports = [
    'Liver: A 3 cm hypodense mass in the right lobe of the liver.\nKidneys: A 12 mm cyst in the left kidney.\n',
    'A 2 cm low density area in the spleen. No ascites.\n',
    'Pancreas: the pancreatic duct is dilated. Liver: a small cyst.\n',
    'Right kidney: a 15 mm hypodense lesion. Gallbladder: stones.\n',
    'The spleen is enlarged. A 1 cm nodule in the liver.\n',
    'Liver: multiple hypodense lesions. No free fluid.\n',
  ];
  writeDataset(input, reports.map((report, i) => ({ id: `s${i + 1}`, report })));
  ref = join(root, 'ref');
  const r = spawnSync(process.execPath, [BIN, 'label', '--data', input, '--out', ref, '--model', MODEL], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});
after(async () => {
  if (skip) return;
  // a failed test must not leave workers running
  for (const c of running) c.kill('SIGKILL');
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

test('queue: 6 studies, 3 workers, one SIGKILLed mid-study: all done once, the tree byte-identical to plain label', { skip }, async () => {
  const out = join(root, 'q');
  const t0 = Date.now();
  // the first worker SIGKILLs itself at its third write step (issue 28's fault injection point,
  // CTGROUND_TEST_KILL_AT): inside its first study, with that study's outputs half written
  const victim = worker(0, [], { CTGROUND_TEST_KILL_AT: '3' });
  await victim.waitFor(/^worker: ready /);
  const enq = start(['label', '--data', input, '--out', out, '--queue', `${redis.url}/0`]);
  const id = (await victim.waitFor(/^worker: start (\S+) attempt 1$/))[1]!;
  const first = { id };
  assert.equal(await victim.exit, null);
  assert.equal(victim.child.signalCode, 'SIGKILL');
  assert.ok(!victim.lines.some((l) => l.startsWith('worker: done ')), victim.lines.join('\n'));
  // what the kill left: the study's temporary folder, half filled, and no finished study
  assert.ok(existsSync(join(out, `.${id}.partial-${victim.child.pid}`)), `the kill was meant to land while the outputs were written: ${JSON.stringify(readdirSync(out))}`);
  assert.ok(!existsSync(join(out, id, 'study.json')));
  // two more workers; one of them takes the study over once its lock lapses
  const workers = [victim, worker(0), worker(0)];
  const readyMs = await Promise.all(workers.slice(1).map(async (w) => { await w.waitFor(/^worker: ready /); return Date.now() - t0; }));
  // workers start in seconds (model loaded once per thread before the first job)
  assert.ok(Math.max(...readyMs) < 30_000, `workers ready after ${readyMs.join(', ')} ms`);

  assert.equal(await enq.exit, 0, enq.stderr());
  assert.match(enq.lines.join('\n'), /6 studies queued/);
  assert.match(enq.lines.join('\n'), /6\/6 studies labeled .*\(6 now, 0 already done\)/);
  assertSameTree(ref, out);
  for (const f of tree(out).keys()) assert.ok(!/\.tmp$|\.(partial|old)-\d+\//.test(f), `temporary file left: ${f}`);

  // the per-attempt record: each job's log in the queue, and each worker's own lines
  const q = await loadQueue();
  const survivors = workers.filter((w) => w !== victim);
  for (let i = 1; i <= 6; i++) {
    const id = `s${i}`;
    const rec = (await q.jobLog(`${redis.url}/0`, id))!;
    assert.equal(rec.state, 'completed');
    const started = rec.log.filter((l) => / started by /.test(l)), labeled = rec.log.filter((l) => /^labeled by /.test(l));
    const victimPid = String(victim.child.pid);
    if (id === first.id) {
      // done exactly once more: started twice (the killed worker, then another), labeled once, not by the killed one
      assert.equal(rec.attemptsStarted, 2, rec.log.join('\n'));
      assert.equal(started.length, 2, rec.log.join('\n'));
      assert.match(started[0]!, new RegExp(`:${victimPid}$`));
      assert.equal(labeled.length, 1, rec.log.join('\n'));
      assert.doesNotMatch(labeled[0]!, new RegExp(`:${victimPid} `));
      assert.equal(survivors.flatMap((w) => w.lines).filter((l) => l === `worker: start ${id} attempt 2`).length, 1);
    } else {
      assert.equal(rec.attemptsStarted, 1, `${id}: ${rec.log.join('\n')}`);
      assert.equal(started.length, 1);
      assert.equal(labeled.length, 1);
    }
    const done = workers.flatMap((w) => w.lines).filter((l) => l.startsWith(`worker: done ${id} `));
    assert.equal(done.length, 1, `${id} done ${done.length} times`);
  }
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  assert.deepEqual(summary, { studies: 6, labeled: 6, failed: [] });

  // enqueuing again is harmless: nothing queued, nothing rewritten
  const again = await cli(['label', '--data', input, '--out', out, '--queue', `${redis.url}/0`]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /\(0 now, 6 already done\)/);
  assertSameTree(ref, out);

  // SIGTERM: idle workers stop at once, exit 0, and leave no connection behind in Redis
  for (const w of survivors) w.child.kill('SIGTERM');
  const ts = Date.now();
  for (const w of survivors) assert.equal(await w.exit, 0, w.stderr());
  assert.ok(Date.now() - ts < 10_000, `workers took ${Date.now() - ts} ms to stop`);
  for (const w of survivors) assert.equal(w.lines.at(-1), 'worker: stopped');
  const clients = redisCli(redis.port, 'CLIENT', 'LIST').trim().split('\n');
  assert.equal(clients.length, 1, `connections left: ${clients.join('\n')}`); // redis-cli's own
});

test('queue: a study that always fails lands in the failed list after --attempts tries with its reason; retry-failed puts it back', { skip }, async () => {
  const db = `${redis.url}/1`;
  const dir = join(root, 'in-bad'), out = join(root, 'q-bad');
  const badCt = join(root, 'bad.nii.gz');
  writeFileSync(badCt, Buffer.from('this is not a CT image at all, only text with a .nii.gz name'));
  writeDataset(dir, [{ id: 'good', report: 'Liver: a 2 cm cyst.\n' }, { id: 'bad', report: 'Liver: cyst.\n', ct: badCt }]);
  const w = worker(1);
  const r = await cli(['label', '--data', dir, '--out', out, '--queue', db, '--attempts', '2']);
  assert.equal(r.status, 3, r.stderr);
  assert.match(r.stdout, /1\/2 studies labeled/);
  assert.match(r.stdout, /1 failed:\n {2}bad: .*bad\.nii\.gz: /);
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  assert.equal(summary.labeled, 1);
  assert.equal(summary.failed.length, 1);
  assert.equal(summary.failed[0].id, 'bad');
  assert.match(summary.failed[0].reason, /bad\.nii\.gz: /);
  assert.ok(!summary.failed[0].reason.includes('\n'));
  // tried exactly --attempts times, each failure logged in the job
  assert.equal(w.lines.filter((l) => l.startsWith('worker: failed bad: ')).length, 2);
  const status = await cli(['queue', 'status', '--queue', db, '--json']);
  assert.equal(status.status, 0, status.stderr);
  const s = JSON.parse(status.stdout);
  assert.deepEqual(s.failed, [{ id: 'bad', reason: summary.failed[0].reason, attempts: 2 }]);
  assert.equal(s.counts.completed, 1);
  const human = await cli(['queue', 'status', '--queue', db]);
  assert.match(human.stdout, /0 waiting, 0 running, 1 done, 1 failed\nworkers: \S+\nfailed:\n {2}bad: .* \(2 attempts\)\n$/);

  // the operator fixes the file and puts the study back; the worker labels it, the summary is clean
  copyFileSync(join(DEMO, 'ct.nii.gz'), badCt);
  const retry = await cli(['queue', 'retry-failed', '--queue', db]);
  assert.equal(retry.status, 0, retry.stderr);
  assert.match(retry.stdout, /^1 failed studies back in the queue: bad\n$/);
  const again = await cli(['label', '--data', dir, '--out', out, '--queue', db, '--attempts', '2']);
  assert.equal(again.status, 0, again.stdout + again.stderr);
  // the worker may have labeled it before this run looked: either way it is done, once
  assert.match(again.stdout, /2\/2 studies labeled /);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')), { studies: 2, labeled: 2, failed: [] });
  const rec = (await (await loadQueue()).jobLog(db, 'bad'))!;
  assert.equal(rec.state, 'completed');
  assert.equal(rec.log.filter((l) => /^failed on /.test(l)).length, 2);
  assert.equal(rec.log.filter((l) => /^labeled by /.test(l)).length, 1);
  w.child.kill('SIGTERM');
  assert.equal(await w.exit, 0);
});

test('queue: SIGTERM with --grace 0 gives the running study back; another worker labels it', { skip }, async () => {
  const db = `${redis.url}/2`;
  const out = join(root, 'q-term');
  const w1 = worker(2, ['--grace', '0']);
  await w1.waitFor(/^worker: ready /);
  const enq = start(['label', '--data', input, '--out', out, '--queue', db]);
  const id = (await w1.waitFor(/^worker: start (\S+) attempt 1$/))[1]!;
  w1.child.kill('SIGTERM');
  assert.equal(await w1.exit, 0, w1.stderr());
  assert.ok(w1.lines.includes(`worker: gave back ${id}`), w1.lines.join('\n'));
  assert.ok(!existsSync(join(out, id, 'study.json')));
  const w2 = worker(2);
  assert.equal(await enq.exit, 0, enq.stderr());
  assertSameTree(ref, out);
  for (const f of tree(out).keys()) assert.ok(!/\.tmp$|\.(partial|old)-\d+\//.test(f), `temporary file left: ${f}`);
  const rec = (await (await loadQueue()).jobLog(db, id))!;
  assert.equal(rec.log.filter((l) => /^given back by /.test(l)).length, 1, rec.log.join('\n'));
  assert.equal(rec.log.filter((l) => /^labeled by /.test(l)).length, 1);
  w2.child.kill('SIGTERM');
  assert.equal(await w2.exit, 0);
});

test('queue: an unreachable or malformed Redis address is one line, exit 2', { skip }, async () => {
  for (const [args, re] of [
    [['queue', 'status', '--queue', 'redis://127.0.0.1:1'], /^ctground: redis:\/\/127\.0\.0\.1:1\/0: cannot connect to Redis \(ECONNREFUSED\)\n$/],
    [['worker', '--queue', 'http://127.0.0.1:6379'], /^ctground: --queue: 'http:' is not a Redis address/],
    [['label', '--data', input, '--out', join(root, 'x'), '--queue', 'redis://127.0.0.1:6379/x'], /^ctground: --queue: database 'x' is not a whole number/],
    [['label', '--data', input, '--out', join(root, 'x'), '--queue', redis.url, '--jobs', '2'], /^ctground: with --queue, --jobs and --model belong to each `ctground worker`\n$/],
  ] as const) {
    const r = await cli([...args]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('queue: drain removes the waiting studies; label --queue reports them as not labeled', { skip }, async () => {
  const db = `${redis.url}/3`;
  const out = join(root, 'q-drain');
  const enq = start(['label', '--data', input, '--out', out, '--queue', db]);
  await enq.waitFor(/^6 studies queued; waiting for workers/);
  const st = await cli(['queue', 'status', '--queue', db]);
  assert.match(st.stdout, /: 6 waiting, 0 running, 0 done, 0 failed\nworkers: none connected\n$/);
  const d = await cli(['queue', 'drain', '--queue', db]);
  assert.equal(d.status, 0, d.stderr);
  assert.equal(d.stdout, '6 waiting studies removed from the queue\n');
  assert.equal(await enq.exit, 3, enq.stderr());
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  assert.equal(summary.labeled, 0);
  assert.deepEqual(summary.failed.map((f: { id: string }) => f.id), ['s1', 's2', 's3', 's4', 's5', 's6']);
  for (const f of summary.failed) assert.equal(f.reason, 'removed from the queue before it was labeled');
});

test('queue: plain label neither needs Redis nor loads BullMQ or ioredis', async () => {
  // a resolve hook that fails any import of the queue's modules (test/helpers/no-queue-modules.mjs)
  const hook = join(projectRoot, 'test', 'helpers', 'no-queue-modules.mjs');
  const dir = mkdtempSync(join(tmpdir(), 'ctg-noqueue-'));
  try {
    const data = join(dir, 'in');
    writeDataset(data, [{ id: 'a', report: 'Liver: a 2 cm cyst.\n' }]);
    const r = spawnSync(process.execPath, ['--import', hook, BIN, 'label', '--data', data, '--out', join(dir, 'out'), '--model', MODEL], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /1\/1 studies labeled/);
    // the hook does bite: the queue path through it fails on the import
    const q = spawnSync(process.execPath, ['--import', hook, BIN, 'label', '--data', data, '--out', join(dir, 'out2'), '--queue', 'redis://127.0.0.1:1'], { encoding: 'utf8' });
    assert.notEqual(q.status, 0);
    assert.match(q.stderr, /the queue modules were loaded: (bullmq|ioredis)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
