import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../src/common/index.ts';
import { DicomwebClient, jsonValue, readPart10Header } from '../src/dicom/index.ts';
import { dicomToolsSkipReason } from './helpers/dicom-tools.ts';
import { orthancSkipReason, startOrthanc, type TestOrthanc } from './helpers/orthanc.ts';
import { uploadPacsFixture } from './helpers/pacs-fixture.ts';
import { freePort } from './helpers/server.ts';

const BIN = join(projectRoot, 'bin', 'ctground.js');
const skip = orthancSkipReason() ?? dicomToolsSkipReason();
const ROOT = '1.2.826.0.1.3680043.8.498.2929';
const UID = { A: `${ROOT}.1`, B: `${ROOT}.2`, C: `${ROOT}.3`, D: `${ROOT}.4`, E: `${ROOT}.5`, X: `${ROOT}.99` };
const PATIENT = 'CTGTEST^PACSPATIENT', PID = 'CTG-PID-2929';
const REPORT = 'A 2 cm hypodense cyst in the right lobe of the liver.\nPossible small stone in the left kidney.\n';

let tmp: string;
let pacs: TestOrthanc | undefined;

before(async () => {
  if (skip) return;
  tmp = mkdtempSync(join(tmpdir(), 'ctg-pacs-'));
  // a real PACS refusal: Orthanc's Lua HTTP filter turns away any store into study B (HTTP 403)
  pacs = await startOrthanc({ lua: `function IncomingHttpRequestFilter(method, uri, ip, username, headers)\n  if method == 'POST' and string.find(uri, '${UID.B}', 1, true) then return false end\n  return true\nend\n` });
  await uploadPacsFixture(pacs, tmp, {
    patient: PATIENT, pid: PID, sr: { study: UID.D, text: REPORT },
    studies: [
      { name: 'A', uid: UID.A, extra: ['--accession', 'ACC-A'] },
      { name: 'B', uid: UID.B, extra: ['--accession', 'ACC-B', '--sop-root', `${UID.B}.9`] },
      { name: 'C', uid: UID.C, extra: ['--accession', 'ACC-C', '--sop-root', `${UID.C}.9`, '--modality', 'MR'] },
      { name: 'D', uid: UID.D, extra: ['--accession', 'ACC-D', '--sop-root', `${UID.D}.9`] },
      { name: 'E', uid: UID.E, extra: ['--accession', 'ACC-E', '--sop-root', `${UID.E}.9`] },
    ],
  });
  // A by its Study Instance UID, B by its accession number; D has no row (its SR), nor E (nothing: a failure)
  writeFileSync(join(tmp, 'reports.csv'), `StudyInstanceUID,AccessionNumber,report\n${UID.A},,"${REPORT}"\n,ACC-B,"${REPORT}"\n${UID.C},,"${REPORT}"\n`);
});
after(async () => {
  await pacs?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const labelArgs = (out: string): string[] => ['label', '--dicomweb', pacs!.dicomweb, '--studies', Object.values(UID).join(','), '--reports', join(tmp, 'reports.csv'), '--out', out, '--store', '--model', 'oracle:organ'];

async function segsIn(study: string): Promise<string[]> {
  const c = new DicomwebClient(pacs!.dicomweb);
  const series = (await c.searchSeries(study)).filter((s) => jsonValue(s, '00080060') === 'SEG');
  const uids: string[] = [];
  for (const s of series) for (const i of await c.searchInstances(study, jsonValue(s, '0020000E'))) uids.push(jsonValue(i, '00080018'));
  return uids;
}

test('label --dicomweb --store on a real Orthanc: SEGs land in their studies, bad studies are one line each, a killed and restarted run stores nothing twice', { skip }, async () => {
  const out = join(tmp, 'out');
  // first run, killed as soon as study A's SEG is stored
  const child = spawn(process.execPath, [BIN, ...labelArgs(out)], { stdio: 'ignore' });
  const stored = join(out, UID.A, 'stored.json');
  const t0 = Date.now();
  while (!existsSync(stored) && child.exitCode === null && Date.now() - t0 < 900_000) await new Promise((r) => setTimeout(r, 100));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  assert.ok(existsSync(stored), 'study A was stored before the kill');

  const r = spawnSync(process.execPath, [BIN, ...labelArgs(out)], { encoding: 'utf8' });
  assert.equal(r.status, 3, r.stderr);
  assert.doesNotMatch(r.stderr, /ctground:|Error|\n +at /, 'progress only on stderr');
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { studies: number; labeled: number; stored: number; failed: { id: string; reason: string }[] };
  assert.equal(summary.studies, 6);
  assert.equal(summary.labeled, 3, JSON.stringify(summary)); // A, B, D
  const reasons = Object.fromEntries(summary.failed.map((f) => [f.id, f.reason]));
  assert.deepEqual(Object.keys(reasons).sort(), [UID.B, UID.C, UID.E, UID.X].sort());
  assert.match(reasons[UID.C]!, /no CT series in the study \(series found: MR ×1\)/);
  assert.match(reasons[UID.E]!, /no report: .*reports\.csv has no row for this study .*no text SR/);
  assert.match(reasons[UID.X]!, /the PACS has no such study/);
  assert.match(reasons[UID.B]!, /^store: PACS store into study .*refused/);
  for (const f of summary.failed) assert.doesNotMatch(f.reason, /\n/);
  assert.equal(summary.stored, 1, 'the restart stored D only (A was, B is refused)');
  for (const id of [UID.B, UID.C, UID.E, UID.X]) assert.match(r.stdout, new RegExp(`^  ${id.replace(/\./g, '\\.')}: `, 'm'));

  // exactly one SEG in each labeled study that accepts it, the very file label wrote, in the same study
  for (const id of [UID.A, UID.D]) {
    const there = await segsIn(id);
    const local = readPart10Header(readFileSync(join(out, id, 'grounding', 'findings.seg.dcm')));
    assert.deepEqual(there, [local.sopInstanceUid], `study ${id}`);
    assert.equal(local.studyInstanceUid, id);
  }
  assert.deepEqual(await segsIn(UID.B), []);
  // D's report came from its SR: the report the study was grounded on
  assert.equal(readFileSync(join(out, UID.D, 'report.txt'), 'utf8').trim(), REPORT.trim());

  // a run killed after storing and before marking: the PACS already holds the SEG, so it is not sent again
  rmSync(stored);
  const again = spawnSync(process.execPath, [BIN, ...labelArgs(out)], { encoding: 'utf8' });
  assert.equal(again.status, 3, again.stderr);
  const s2 = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { stored: number; labeled: number };
  assert.equal(s2.stored, 0);
  assert.equal(s2.labeled, 3);
  assert.match(again.stdout, /0 now, 3 already done/);
  assert.deepEqual((await segsIn(UID.A)).length, 1);

  // the patient's identity reaches the SEG in the PACS and no file, message or log of ours
  for (const f of readdirSync(out, { recursive: true }) as string[]) {
    const p = join(out, f);
    if (f.endsWith('.dcm') || !statSync(p).isFile()) continue;
    const text = readFileSync(p).toString('latin1');
    assert.ok(!text.includes(PATIENT) && !text.includes(PID), `${f} carries the patient's identity`);
  }
  for (const t of [r.stdout, again.stdout]) assert.ok(!t.includes(PATIENT) && !t.includes(PID));
  assert.ok(!existsSync(join(out, '.pacs')), 'the retrieved series are not kept');
});

test('label --dicomweb: a PACS that refuses (HTTP 404) or never answers is one line per study, and the run ends', { skip }, async () => {
  const refused = spawnSync(process.execPath, [BIN, 'label', '--dicomweb', `${pacs!.url}/no-such-root`, '--studies', `${UID.A},${UID.X}`, '--out', join(tmp, 'refused'), '--model', 'oracle:organ'], { encoding: 'utf8' });
  assert.equal(refused.status, 3, refused.stderr);
  assert.doesNotMatch(refused.stderr, /ctground:|Error|\n +at /);
  assert.match(refused.stdout, new RegExp(`  ${UID.A.replace(/\./g, '\\.')}: PACS study search: refused \\(HTTP 404`));
  // a server that accepts connections and never answers
  const port = await freePort();
  const silent: Server = createServer(() => { /* hold the connection, say nothing */ });
  await new Promise<void>((ok) => silent.listen(port, '127.0.0.1', ok));
  try {
    const t0 = Date.now();
    const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((ok) => {
      const c = spawn(process.execPath, [BIN, 'label', '--dicomweb', `http://127.0.0.1:${port}/dicom-web`, '--studies', `${UID.A},${UID.D}`, '--timeout', '1', '--out', join(tmp, 'silent'), '--model', 'oracle:organ'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '', stderr = '';
      c.stdout.on('data', (d) => { stdout += d; });
      c.stderr.on('data', (d) => { stderr += d; });
      c.on('exit', (status) => ok({ status, stdout, stderr }));
    });
    assert.equal(r.status, 3, r.stderr);
    assert.equal((r.stdout.match(/PACS study search: no answer in 1 s/g) ?? []).length, 2, r.stdout);
    assert.ok(Date.now() - t0 < 60_000);
  } finally {
    silent.close();
  }
  const bad = spawnSync(process.execPath, [BIN, 'label', '--dicomweb', 'not a url', '--studies', UID.A, '--out', join(tmp, 'bad')], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^ctground: --dicomweb not a url: not a URL[^\n]*\n$/);
});
