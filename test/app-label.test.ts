import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { TS } from './helpers/shared.ts';
import { assertSameTree, tree } from './helpers/tree.ts';
import { projectRoot } from '../src/common/index.ts';
import { readVolume } from '../src/volume/index.ts';
import { checkDataset } from '../src/data/index.ts';

const BIN = join(projectRoot, 'bin', 'ctground.js');
let root: string, input: string;

/** Two good studies of the real CT (one with TotalSegmentator labels, one with HU-fallback anatomy) and three broken ones. */
before(() => {
  root = mkdtempSync(join(tmpdir(), 'ctg-label-'));
  input = join(root, 'in');
  const put = (name: string, src: string): void => { copyFileSync(src, join(input, name)); };
  spawnSync('mkdir', ['-p', input]);
  put('s1.nii.gz', TS('example_ct_sm.nii.gz')); put('s1.seg.nii.gz', TS('example_seg.nii.gz'));
  writeFileSync(join(input, 's1.txt'), 'Liver: A 3 cm hypodense mass in the right lobe of the liver.\nKidneys: A 12 mm cyst in the left kidney.\n');
  put('s2.nii.gz', TS('example_ct_sm.nii.gz'));
  writeFileSync(join(input, 's2.txt'), 'A 2 cm low density area in the spleen. No ascites.\n');
  writeFileSync(join(input, 'unreadable.nii.gz'), Buffer.from('this is not a CT image at all, only text with a .nii.gz name'));
  writeFileSync(join(input, 'unreadable.txt'), 'Liver: cyst.\n');
  put('emptyreport.nii.gz', TS('example_ct_sm.nii.gz'));
  writeFileSync(join(input, 'emptyreport.txt'), '  \n');
  put('mismatch.nii.gz', TS('example_ct_sm.nii.gz')); put('mismatch.seg.nii.gz', TS('example_seg_dicom.nii.gz'));
  writeFileSync(join(input, 'mismatch.txt'), 'Liver: A 1 cm cyst.\n');
});
after(() => rmSync(root, { recursive: true, force: true }));

const args = (out: string, extra: string[] = []): string[] => [BIN, 'label', '--in', input, '--out', out, '--model', 'oracle:organ-side', ...extra];

/** label's output is a dataset `dataset check` passes (it crashed on "mask": null, issue 28 item 6). */
async function assertValidDataset(out: string): Promise<void> {
  const r = await checkDataset(out);
  assert.deepEqual(r.problems, []);
  assert.ok(r.studies >= 1 && r.anomalies >= 1);
}

test('label: broken studies get one-line reasons in the summary and the batch goes on', () => {
  const out = join(root, 'full');
  const r = spawnSync(process.execPath, args(out), { encoding: 'utf8' });
  assert.equal(r.status, 3, r.stderr);
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { studies: number; labeled: number; failed: { id: string; reason: string }[] };
  assert.equal(summary.studies, 5);
  assert.equal(summary.labeled, 2);
  const reason = new Map(summary.failed.map((f) => [f.id, f.reason]));
  assert.deepEqual([...reason.keys()].sort(), ['emptyreport', 'mismatch', 'unreadable']);
  assert.match(reason.get('unreadable')!, /unreadable\.nii\.gz: /);
  assert.match(reason.get('emptyreport')!, /emptyreport\.txt: report is empty/);
  // the label map of another scan: its world box misses the CT's (what the anatomy part reports since it resamples maps of the same scan)
  assert.match(reason.get('mismatch')!, /mismatch\.seg\.nii\.gz: label map('s world box .* misses the CT's| size .* does not match the CT)/);
  for (const f of summary.failed) assert.ok(!f.reason.includes('\n'));
  assert.match(r.stdout, /3 failed:\n {2}emptyreport: .*\n {2}mismatch: .*\n {2}unreadable: /);
  // the output is a dataset: each line's files exist, masks sit on the CT grid
  const lines = readFileSync(join(out, 'manifest.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.id), ['s1', 's2']);
  for (const l of lines) for (const p of [l.ct, l.labels, l.report, l.grounding]) assert.ok(existsSync(join(out, p)), p);
  const s1 = lines[0];
  assert.ok(s1.anomalies.length >= 2);
  assert.ok(s1.anomalies.every((a: { spans: unknown[] }) => a.spans.length > 0));
  const withMask = s1.anomalies.find((a: { mask: string | null }) => a.mask)!;
  // s2 says "No ascites": a negated finding with "mask": null, what dataset check used to crash on
  assert.ok(lines[1].anomalies.some((a: { certainty: string; mask: string | null }) => a.certainty === 'absent' && a.mask === null));
  return readVolume(join(out, withMask.mask)).then(async (m) => {
    const ct = await readVolume(join(out, s1.ct));
    assert.deepEqual(m.size, ct.size);
    assert.deepEqual(m.origin.map((v) => v.toFixed(3)), ct.origin.map((v) => v.toFixed(3)));
    await assertValidDataset(out);
  });
});

test('label: SIGKILLed half-way and restarted gives the same files as an uninterrupted run', async () => {
  const out = join(root, 'killed');
  const child = spawn(process.execPath, args(out), { stdio: 'ignore' });
  const exited = new Promise<void>((ok) => child.on('exit', () => ok()));
  // wait for the first finished study, then kill in the middle of the next
  const t0 = Date.now();
  while (!existsSync(join(out, 's1', 'study.json'))) {
    if (Date.now() - t0 > 60_000) { child.kill('SIGKILL'); assert.fail('first study never finished'); }
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGKILL');
  await exited;
  assert.ok(!existsSync(join(out, 's2', 'study.json')), 'the run was meant to be cut short');
  // whatever the kill left under its final name is complete: gzip streams end, JSON parses
  for (const [name, bytes] of tree(out)) {
    if (name.endsWith('.tmp')) continue;
    if (name.endsWith('.gz')) assert.doesNotThrow(() => gunzipSync(bytes), `${name} is truncated`);
    if (name.endsWith('.json')) assert.doesNotThrow(() => JSON.parse(bytes.toString('utf8')), `${name} is truncated`);
  }
  const again = spawnSync(process.execPath, args(out), { encoding: 'utf8' });
  assert.equal(again.status, 3, again.stderr);
  assert.match(again.stdout, /2\/5 studies labeled .*\(1 now, 1 already done\)/);
  for (const f of tree(out).keys()) assert.ok(!f.endsWith('.tmp'), `half-written file left: ${f}`);
  assertSameTree(join(root, 'full'), out);
  await assertValidDataset(out);
  // and once more: nothing left to do, nothing changes
  const before = statSync(join(out, 's2', 'study.json')).mtimeMs;
  const third = spawnSync(process.execPath, args(out), { encoding: 'utf8' });
  assert.match(third.stdout, /\(0 now, 2 already done\)/);
  assert.equal(statSync(join(out, 's2', 'study.json')).mtimeMs, before);
});

test('label: --jobs 2 (worker threads) writes the same files as one job', async () => {
  const out = join(root, 'jobs2');
  const r = spawnSync(process.execPath, args(out, ['--jobs', '2']), { encoding: 'utf8' });
  assert.equal(r.status, 3, r.stderr);
  assertSameTree(join(root, 'full'), out);
  await assertValidDataset(out);
});

test('label: a model folder that does not exist is one line and exit 2, with or without worker threads', () => {
  for (const jobs of ['1', '2']) {
    const out = join(root, `badmodel-${jobs}`);
    const r = spawnSync(process.execPath, [BIN, 'label', '--in', input, '--out', out, '--model', join(root, 'no-such-model'), '--jobs', jobs], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('label ['));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /no-such-model: model folder not found/);
  }
});
