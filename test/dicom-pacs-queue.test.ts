import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../src/common/index.ts';
import { DicomwebClient, decodeSegmentation, jsonValue, readPart10Header } from '../src/dicom/index.ts';
import { dicomToolsSkipReason } from './helpers/dicom-tools.ts';
import { orthancSkipReason, startOrthanc, type TestOrthanc } from './helpers/orthanc.ts';
import { uploadPacsFixture } from './helpers/pacs-fixture.ts';
import { redisSkipReason, startRedis, type TestRedis } from './helpers/redis.ts';
import { tree } from './helpers/tree.ts';

// `label --dicomweb … --queue` on a real Orthanc and a real Redis: the enqueuer lists the PACS once,
// one `ctground worker` fetches, grounds and stores each study. Its tree must be the plain
// `label --dicomweb` run's, and each SEG must reach the PACS once.

const BIN = join(projectRoot, 'bin', 'ctground.js');
const skip = orthancSkipReason() ?? redisSkipReason() ?? dicomToolsSkipReason();
const ROOT = '1.2.826.0.1.3680043.8.498.3030';
const UID = { A: `${ROOT}.1`, B: `${ROOT}.2`, D: `${ROOT}.4`, E: `${ROOT}.5`, X: `${ROOT}.99` };
const PATIENT = 'CTGTEST^QUEUEPATIENT', PID = 'CTG-PID-3030';
const REPORT = 'A 2 cm hypodense cyst in the right lobe of the liver.\nPossible small stone in the left kidney.\n';

let tmp: string;
let pacs: TestOrthanc | undefined;
let redis: TestRedis | undefined;
const running = new Set<ChildProcess>();

before(async () => {
  if (skip) return;
  tmp = mkdtempSync(join(tmpdir(), 'ctg-pacsq-'));
  [pacs, redis] = await Promise.all([startOrthanc(), startRedis()]);
  await uploadPacsFixture(pacs, tmp, {
    patient: PATIENT, pid: PID, sr: { study: UID.D, text: REPORT },
    studies: [
      { name: 'A', uid: UID.A, extra: ['--accession', 'ACC-A'] },
      { name: 'B', uid: UID.B, extra: ['--accession', 'ACC-B', '--sop-root', `${UID.B}.9`] },
      { name: 'D', uid: UID.D, extra: ['--accession', 'ACC-D', '--sop-root', `${UID.D}.9`] },
      { name: 'E', uid: UID.E, extra: ['--accession', 'ACC-E', '--sop-root', `${UID.E}.9`] },
    ],
  });
  // A by its UID, B by its accession number, D by its SR; E has no report anywhere (a failure)
  writeFileSync(join(tmp, 'reports.csv'), `StudyInstanceUID,AccessionNumber,report\n${UID.A},,"${REPORT}"\n,ACC-B,"${REPORT}"\n`);
});
after(async () => {
  for (const c of running) c.kill('SIGKILL');
  await Promise.all([pacs?.stop(), redis?.stop()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** A CLI process whose stdout lines are collected as they come. */
function start(args: string[]): { lines: string[]; stderr: () => string; exit: Promise<number | null>; waitFor: (re: RegExp) => Promise<void>; child: ChildProcess } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const lines: string[] = [];
  let partial = '', err = '';
  child.stdout!.on('data', (d) => { partial += d; const p = partial.split('\n'); partial = p.pop()!; lines.push(...p); });
  child.stderr!.on('data', (d) => { err += d; });
  const exit = new Promise<number | null>((ok) => child.on('exit', (code) => { running.delete(child); ok(code); }));
  const waitFor = async (re: RegExp): Promise<void> => {
    const t0 = Date.now();
    while (!lines.some((l) => re.test(l))) {
      if (child.exitCode !== null || Date.now() - t0 > 120_000) throw new Error(`no line ${re}; stdout:\n${lines.join('\n')}\nstderr:\n${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return { lines, stderr: () => err, exit, waitFor, child };
}

const pacsArgs = (out: string): string[] => ['label', '--dicomweb', pacs!.dicomweb, '--studies', Object.values(UID).join(','), '--reports', join(tmp, 'reports.csv'), '--out', out, '--store'];

async function segsIn(study: string): Promise<string[]> {
  const c = new DicomwebClient(pacs!.dicomweb);
  const uids: string[] = [];
  for (const s of (await c.searchSeries(study)).filter((x) => jsonValue(x, '00080060') === 'SEG')) for (const i of await c.searchInstances(study, jsonValue(s, '0020000E'))) uids.push(jsonValue(i, '00080018'));
  return uids;
}

interface Summary { studies: number; labeled: number; stored: number; failed: { id: string; reason: string }[] }

test('label --dicomweb --store --queue: one job per PACS study, enqueued twice harmlessly; a worker fetches, grounds and stores each SEG once; the tree is plain label --dicomweb\'s', { skip }, async () => {
  const qOut = join(tmp, 'queued'), ref = join(tmp, 'plain');
  // two enqueuers of the same studies before any worker: the second adds nothing
  const first = start([...pacsArgs(qOut), '--queue', redis!.url, '--attempts', '2']);
  await first.waitFor(/^4 studies queued; waiting for workers/);
  const second = start([...pacsArgs(qOut), '--queue', redis!.url, '--attempts', '2']);
  await second.waitFor(/^0 studies queued, 4 already in the queue/);
  const worker = start(['worker', '--queue', redis!.url, '--model', 'oracle:organ']);
  const [c1, c2] = await Promise.all([first.exit, second.exit]);
  assert.equal(c1, 3, first.stderr());
  assert.equal(c2, 3, second.stderr());
  assert.doesNotMatch(first.stderr() + second.stderr(), /ctground:|Error|\n +at /);
  worker.child.kill('SIGTERM');
  assert.equal(await worker.exit, 0, worker.stderr());
  assert.equal(worker.lines.at(-1), 'worker: stopped');
  // each study started once (E: once per attempt), labeled once, stored once
  for (const id of [UID.A, UID.B, UID.D]) {
    assert.equal(worker.lines.filter((l) => l.startsWith(`worker: start ${id} `)).length, 1, worker.lines.join('\n'));
    assert.equal(worker.lines.filter((l) => l.startsWith(`worker: done ${id} `) && l.endsWith(' seg stored')).length, 1, worker.lines.join('\n'));
  }
  assert.equal(worker.lines.filter((l) => l.startsWith(`worker: failed ${UID.E}: no report: `)).length, 2);

  const qs = JSON.parse(readFileSync(join(qOut, 'summary.json'), 'utf8')) as Summary;
  assert.equal(qs.studies, 5);
  assert.equal(qs.labeled, 3);
  assert.equal(qs.stored, 3);
  assert.deepEqual(qs.failed.map((f) => f.id), [UID.X, UID.E]);
  assert.match(qs.failed[0]!.reason, /the PACS has no such study/);
  assert.match(qs.failed[1]!.reason, /^no report: .*reports\.csv has no row for this study .*no text SR/);
  for (const t of [first.lines, second.lines]) assert.ok(t.some((l) => l === `  ${UID.E}: ${qs.failed[1]!.reason}`));
  const status = spawnSync(process.execPath, [BIN, 'queue', 'status', '--queue', redis!.url, '--json'], { encoding: 'utf8' });
  assert.equal(status.status, 0, status.stderr);
  assert.deepEqual((JSON.parse(status.stdout) as { failed: unknown[] }).failed, [{ id: UID.E, reason: qs.failed[1]!.reason, attempts: 2 }]);

  // each SEG is in its study once: the very file the worker wrote
  for (const id of [UID.A, UID.B, UID.D]) {
    const local = readPart10Header(readFileSync(join(qOut, id, 'grounding', 'findings.seg.dcm')));
    assert.deepEqual(await segsIn(id), [local.sopInstanceUid], `study ${id}`);
    assert.equal(local.studyInstanceUid, id);
  }
  assert.equal(readFileSync(join(qOut, UID.D, 'report.txt'), 'utf8').trim(), REPORT.trim(), "D's report is its SR's");
  assert.ok(!existsSync(join(qOut, '.pacs')), 'the retrieved series are not kept');

  // the plain run of the same studies, without --store (a SEG is a new object each run, with UIDs of
  // its own, so storing it would add a second one): the same files byte for byte, the SEG the same
  // but for its fresh UIDs, and the queue's only extra files are the stored marks
  const plain = spawnSync(process.execPath, [BIN, ...pacsArgs(ref).filter((x) => x !== '--store'), '--model', 'oracle:organ'], { encoding: 'utf8' });
  assert.equal(plain.status, 3, plain.stderr);
  const ps = JSON.parse(readFileSync(join(ref, 'summary.json'), 'utf8')) as Summary;
  assert.deepEqual({ ...ps, stored: 3 }, qs);
  const a = tree(ref), b = tree(qOut);
  const marks = [UID.A, UID.B, UID.D].map((id) => `${id}/stored.json`);
  assert.deepEqual([...b.keys()].sort(), [...a.keys(), ...marks].sort());
  const noUid = (x: Buffer): unknown => ({ ...decodeSegmentation(x), sopInstanceUid: '' });
  for (const [k, v] of a) {
    if (k === 'summary.json') continue; // compared above: stored 3 against 0
    if (k.endsWith('.seg.dcm')) assert.deepEqual(noUid(b.get(k)!), noUid(v), k);
    else assert.ok(v.equals(b.get(k)!), `${k} differs`);
  }
  for (const id of [UID.A, UID.B, UID.D]) assert.equal((await segsIn(id)).length, 1);

  // a worker killed between storing and marking: the labeled study is queued again for its store,
  // which finds the SEG in the PACS and only writes the mark
  rmSync(join(qOut, UID.A, 'stored.json'));
  const again = start([...pacsArgs(qOut), '--queue', redis!.url]);
  await again.waitFor(/^1 studies queued, 1 already in the queue/);
  const w2 = start(['worker', '--queue', redis!.url, '--model', 'oracle:organ']);
  assert.equal(await again.exit, 3, again.stderr());
  w2.child.kill('SIGTERM');
  assert.equal(await w2.exit, 0, w2.stderr());
  assert.ok(w2.lines.includes(`worker: done ${UID.A} (already done) seg present`), w2.lines.join('\n'));
  assert.ok(existsSync(join(qOut, UID.A, 'stored.json')));
  assert.equal((JSON.parse(readFileSync(join(qOut, 'summary.json'), 'utf8')) as Summary).stored, 0);
  assert.equal((await segsIn(UID.A)).length, 1);

  // no patient identity in any file of ours but the SEGs, nor in any message
  for (const [k, v] of b) if (!k.endsWith('.dcm')) assert.ok(!v.toString('latin1').includes(PATIENT) && !v.toString('latin1').includes(PID), k);
  for (const t of [first.lines, second.lines, worker.lines, again.lines, w2.lines]) assert.ok(!t.join('\n').includes(PATIENT) && !t.join('\n').includes(PID));
});

test('label --dicomweb: --queue takes no --jobs or --model (the workers\' own), and --jobs alone names --queue', { skip }, () => {
  for (const [extra, re] of [[['--queue', 'redis://127.0.0.1:1', '--jobs', '2'], /^ctground: with --queue, --jobs and --model belong to each `ctground worker`\n$/], [['--jobs', '2'], /^ctground: --dicomweb labels one study at a time here .*--queue redis:\/\/… and `ctground worker --jobs N`\)\n$/]] as const) {
    const r = spawnSync(process.execPath, [BIN, 'label', '--dicomweb', pacs!.dicomweb, '--studies', UID.A, '--out', join(tmp, 'refused'), ...extra], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, re);
  }
});
