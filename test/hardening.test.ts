import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { projectRoot, quoteName } from '../src/common/index.ts';
import { readVolume, type Vec3 } from '../src/volume/index.ts';
import { labelMapOf } from '../src/pipeline/index.ts';
import { checkDataset } from '../src/data/index.ts';
import { readCsvColumn } from '../src/report/index.ts';
import { REPORTS_CSV, TS } from './helpers/shared.ts';
import { assertSameTree, tree } from './helpers/tree.ts';
import { assertOneLineError, cliInProcess, cliPeakRss, cliProcess, type CliResult } from './helpers/cli.ts';

// Issue 28: what a hostile or careless input does. Each test names the item it holds.
const tmp = mkdtempSync(join(tmpdir(), 'ctg-hard-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

test('28.10: control characters in a name are escaped JSON-style; the error stays one line and no escape reaches the terminal', async () => {
  assert.equal(quoteName('a\nb\u001b[31mc\u0007\u009b\u2028ü'), 'a\\nb\\u001b[31mc\\u0007\\u009b\\u2028ü');
  const name = join(tmp, 'evil\nname\u001b[2J.nii.gz');
  const r = cliProcess(['info', name]);
  assertOneLineError(r, quoteName(name), /no such file/);
  assert.ok(!r.stderr.includes('\u001b'), 'no raw escape');
  // a name that reaches a message through a template (not fileError) is escaped too
  const rep = join(tmp, 'rep\nort\u001b[31m.txt');
  const g = await cliInProcess(['ground', '--ct', TS('example_ct_sm.nii.gz'), '--report', rep, '--model', 'oracle:organ', '--out', join(tmp, 'g10')]);
  assertOneLineError(g, quoteName(rep), /no such file/);
});

/** A .nii.gz whose header is the real 122×101×30 label map's and whose stream goes on with `extra` zero bytes. */
function bomb(extra: number): Buffer {
  const raw = gunzipSync(readFileSync(TS('example_seg.nii.gz')));
  const zeros = gzipSync(Buffer.alloc(64 << 20), { level: 9 });
  // gzip members concatenate into one stream: 64 MiB of zeros costs ~65 KB of file
  return Buffer.concat([gzipSync(raw), ...Array.from({ length: Math.ceil(extra / (64 << 20)) }, () => zeros)]);
}

test('28.2: a 2 GB decompression bomb is refused in one line with bounded memory; a header over --max-voxels is refused before reading', async () => {
  const file = join(tmp, 'bomb.nii.gz');
  writeFileSync(file, bomb(2 * 2 ** 30));
  assert.ok(readFileSync(file).length < 3 * 2 ** 20, 'the bomb is a small file');
  const r = cliPeakRss(['info', file]);
  assertOneLineError(r, file, /decompresses to more than the \d+ bytes its header describes/);
  assert.ok(r.maxRssMb! < 1024, `peak RSS ${r.maxRssMb} MB`);
  // the real file still reads, and a header bigger than the cap is refused from the header alone
  const ok = join(tmp, 'ok.nii.gz');
  writeFileSync(ok, readFileSync(TS('example_seg.nii.gz')));
  assert.equal((await cliInProcess(['info', ok])).code, 0);
  assertOneLineError(await cliInProcess(['info', ok, '--max-voxels', '1000']), ok, /122×101×30 voxels \(369660\), over the limit of 1000 \(--max-voxels\)/);
  await assert.rejects(readVolume(ok, { maxVoxels: 369659 }), /over the limit/);
  assert.deepEqual((await readVolume(ok, { maxVoxels: 369660 })).size, [122, 101, 30]);
  assertOneLineError(await cliInProcess(['info', ok, '--max-voxels', 'many']), null, /--max-voxels must be a positive whole number/);
  // a raw .nii claiming 30000³ voxels, and an NRRD saying the same, refused before allocation
  const raw = Buffer.from(gunzipSync(readFileSync(TS('example_seg.nii.gz'))));
  for (const a of [1, 2, 3]) raw.writeInt16LE(30000, 40 + 2 * a);
  const huge = join(tmp, 'huge.nii');
  writeFileSync(huge, raw);
  assertOneLineError(await cliInProcess(['info', huge]), huge, /30000×30000×30000 voxels .* over the limit/);
  const nrrd = join(tmp, 'huge.nrrd');
  writeFileSync(nrrd, 'NRRD0004\ntype: short\ndimension: 3\nsizes: 30000 30000 30000\nencoding: gzip\n\n' + 'x'.repeat(100));
  assertOneLineError(await cliInProcess(['info', nrrd]), nrrd, /over the limit/);
});

/** One explicit-VR string element of a DICOM file set to `value` (the element must be there). */
function setDicom(buf: Buffer, group: number, elem: number, vr: string, value: string): Buffer {
  const key = Buffer.from([group & 0xff, group >> 8, elem & 0xff, elem >> 8, vr.charCodeAt(0), vr.charCodeAt(1)]);
  const at = buf.indexOf(key, 132);
  assert.ok(at > 132, `tag ${group.toString(16)},${elem.toString(16)} not in the file`);
  let v = Buffer.from(value, 'latin1');
  if (v.length % 2) v = Buffer.concat([v, Buffer.from(vr === 'UI' ? [0] : [0x20])]);
  const head = Buffer.from(buf.subarray(at, at + 8));
  head.writeUInt16LE(v.length, 6);
  return Buffer.concat([buf.subarray(0, at), head, v, buf.subarray(at + 8 + buf.readUInt16LE(at + 6))]);
}
const dicomSlices = (): string[] => readdirSync(TS('example_ct_dicom')).sort().map((f) => TS('example_ct_dicom', f));
/** The real series copied into `dir`, each slice passed through `edit` (slice index, bytes). */
function copySeries(dir: string, edit: (i: number, b: Buffer) => Buffer = (_, b) => b): string {
  mkdirSync(dir, { recursive: true });
  dicomSlices().forEach((f, i) => writeFileSync(join(dir, `s${String(i).padStart(2, '0')}.dcm`), edit(i, readFileSync(f))));
  return dir;
}

test('28.8: slices of one series with different PixelSpacing, or zero/negative/NaN spacing, are refused; a description never reaches a message or summary.json', async () => {
  const mixed = copySeries(join(tmp, 'mixed-spacing'), (i, b) => (i === 7 ? setDicom(b, 0x0028, 0x0030, 'DS', '0.5\\0.5') : b));
  assertOneLineError(await cliInProcess(['info', mixed]), mixed, /slices of one series have different pixel spacings/);
  const tilted = copySeries(join(tmp, 'mixed-orientation'), (i, b) => (i === 5 ? setDicom(b, 0x0020, 0x0037, 'DS', '1\\0\\0\\0\\0.8\\-0.6') : b));
  assertOneLineError(await cliInProcess(['info', tilted]), tilted, /slices of one series have different orientations/);
  for (const [name, ps] of [['zero', '0\\0'], ['negative', '-0.7\\-0.7'], ['nan', 'abc\\abc']] as const) {
    const d = copySeries(join(tmp, `spacing-${name}`), (_, b) => setDicom(b, 0x0028, 0x0030, 'DS', ps));
    assertOneLineError(await cliInProcess(['info', d]), d, /PixelSpacing .* is not two positive numbers/);
  }
  // a study whose ct/ holds two series: label fails it, and its summary carries no description
  const secret = 'SMITH^JOHN CHEST';
  const inDir = join(tmp, 'label-in'), study = join(inDir, 'st1');
  copySeries(join(study, 'ct'), (i, b) => {
    let x = setDicom(b, 0x0008, 0x103e, 'LO', secret);
    if (i < 3) x = setDicom(setDicom(x, 0x0020, 0x000e, 'UI', '1.2.826.0.1.3680043.2.1125.9.9'), 0x0020, 0x0011, 'IS', '9');
    return x;
  });
  writeFileSync(join(study, 'report.txt'), 'Liver: a 2 cm cyst.\n');
  const out = join(tmp, 'label-out');
  const r = await cliInProcess(['label', '--in', inDir, '--out', out, '--model', 'oracle:organ']);
  assert.equal(r.code, 3, r.stderr);
  const summary = readFileSync(join(out, 'summary.json'), 'utf8');
  assert.match(summary, /2 DICOM series found/);
  assert.ok(readFileSync(join(study, 'ct', 's00.dcm')).includes(secret), 'the fixture carries the description');
  for (const s of [summary, r.stdout, r.stderr]) assert.ok(!s.includes('SMITH') && !s.includes('CHEST'), s);
});

/** The real label map's header and voxels, with `edit` applied to the uncompressed bytes. */
function editedNifti(name: string, edit: (b: Buffer) => void): string {
  const raw = Buffer.from(gunzipSync(readFileSync(TS('example_seg.nii.gz'))));
  edit(raw);
  const file = join(tmp, name);
  writeFileSync(file, gzipSync(raw));
  return file;
}

test('28.9 and 28.7: zero, negative or NaN pixdim, a 1e-30 pixdim and an infinite affine are refused in one line (were 1 mm, a stack trace, Infinity)', async () => {
  const noForms = (b: Buffer): void => { b.writeInt16LE(0, 252); b.writeInt16LE(0, 254); };
  for (const [name, v] of [['pix0', 0], ['pixneg', -1.5], ['pixnan', NaN]] as const) {
    const f = editedNifti(`${name}.nii.gz`, (b) => { noForms(b); b.writeFloatLE(v, 84); });
    assertOneLineError(await cliInProcess(['info', f]), f, /pixdim .* is not three positive numbers/);
  }
  const tiny = editedNifti('tiny.nii.gz', (b) => { noForms(b); b.writeInt16LE(1, 252); b.writeFloatLE(1e-30, 80); });
  assertOneLineError(await cliInProcess(['info', tiny]), tiny, /voxel spacing 1e-30×.* outside/);
  const inf = editedNifti('inf.nii.gz', (b) => { b.writeInt16LE(1, 254); b.writeFloatLE(Infinity, 280); });
  assertOneLineError(await cliInProcess(['info', inf]), inf, /sform .* infinite or NaN/);
  const g = await cliInProcess(['ground', '--ct', inf, '--report', join(tmp, 'r.txt'), '--model', 'oracle:organ', '--out', join(tmp, 'g-inf')]);
  assert.equal(g.code, 2, g.stderr);
  // the same header untouched reads
  assert.equal((await cliInProcess(['info', editedNifti('fine.nii.gz', () => undefined)])).code, 0);
});

test('28.9: a binary file given as the report is refused, not structured', async () => {
  const ct = TS('example_ct_sm.nii.gz');
  const out = join(tmp, 'g-bin');
  assertOneLineError(await cliInProcess(['ground', '--ct', ct, '--report', ct, '--model', 'oracle:organ', '--out', out]), ct, /not UTF-8 text|binary/);
  const nul = join(tmp, 'nul.txt');
  writeFileSync(nul, Buffer.concat([Buffer.from('Liver: a cyst.'), Buffer.alloc(64)]));
  assertOneLineError(await cliInProcess(['ground', '--ct', ct, '--report', nul, '--model', 'oracle:organ', '--out', out]), nul, /binary file, not report text/);
  const ctl = join(tmp, 'ctl.txt');
  writeFileSync(ctl, 'Liver: a cyst.' + '\u0001\u0002\u0003\u0004'.repeat(10));
  assertOneLineError(await cliInProcess(['ground', '--ct', ct, '--report', ctl, '--model', 'oracle:organ', '--out', out]), ctl, /binary file, not report text \(40 control characters\)/);
  assert.ok(!existsSync(join(out, 'findings.json')));
});

/** Real CT-RATE findings, report after report, until `bytes` (written to the test's temp folder only: CC BY-NC-SA). */
function longReport(bytes: number): string {
  const { texts } = readCsvColumn(REPORTS_CSV(), 'Findings_EN');
  let s = '';
  for (let i = 0; Buffer.byteLength(s) < bytes; i++) s += texts[i % texts.length] + '\n';
  return s;
}

test('28.3: a report over 1 MB is refused in one line; a 200 KB report of real text structures in < 500 MB peak RSS', async () => {
  const big = join(tmp, 'big-report.txt');
  writeFileSync(big, longReport(1.1e6));
  assertOneLineError(await cliInProcess(['structure', big]), big, /report is \d+ bytes, over the 1048576-byte limit/);
  assertOneLineError(await cliInProcess(['ground', '--ct', TS('example_ct_sm.nii.gz'), '--report', big, '--model', 'oracle:organ', '--out', join(tmp, 'g3')]), big, /over the 1048576-byte limit/);
  assertOneLineError(cliProcess(['structure', '-'], { input: readFileSync(big, 'utf8') }), '<stdin>', /over the 1048576-byte limit/);
  const mid = join(tmp, 'report-200k.txt');
  writeFileSync(mid, longReport(200_000));
  const r = cliPeakRss(['structure', mid, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(JSON.parse(r.stdout).anomalies.length > 100, 'the 200 KB report was structured');
  assert.ok(r.maxRssMb! < 500, `peak RSS ${r.maxRssMb!.toFixed(0)} MB`);
});

const CT = TS('example_ct_sm.nii.gz');
const groundArgs = (report: string, out: string): string[] => ['ground', '--ct', CT, '--labels', TS('example_seg.nii.gz'), '--report', report, '--model', 'oracle:organ', '--out', out];

test('28.5: a report with 300 anomalies grounds: findings.json lists them all, labels.nii.gz is uint16 and numbers the 256th and later', async () => {
  const organs = ['liver', 'right kidney', 'left kidney', 'spleen', 'pancreas', 'gallbladder', 'stomach', 'urinary bladder', 'right lung', 'left lung'];
  const rep = join(tmp, 'r300.txt');
  writeFileSync(rep, Array.from({ length: 300 }, (_, i) => `There is a ${(i % 40) + 3} mm cyst in the ${organs[i % 10]}.`).join('\n') + '\n');
  const out = join(tmp, 'g300');
  const r = await cliInProcess(groundArgs(rep, out));
  assert.equal(r.code, 0, r.stderr);
  const f = JSON.parse(readFileSync(join(out, 'findings.json'), 'utf8')) as { anomalies: { label: number; map: string }[] };
  assert.equal(f.anomalies.length, 300);
  assert.equal(readdirSync(join(out, 'maps')).length, 300);
  const labels = await readVolume(join(out, 'labels.nii.gz'));
  assert.ok(labels.data instanceof Uint16Array, labels.data.constructor.name);
  // highest wins, first on ties: recomputed here from the maps themselves for every voxel
  const maps = await Promise.all(f.anomalies.map((a) => readVolume(join(out, a.map))));
  for (let v = 0; v < labels.data.length; v += 7) {
    let best = 0, want = 0;
    maps.forEach((m, n) => { const p = m.data[v]!; if (p >= 0.5 && p > best) { best = p; want = f.anomalies[n]!.label; } });
    assert.equal(labels.data[v], want, `voxel ${v}`);
  }
  assert.ok(f.anomalies.some((a) => a.label > 255));
  // the oracle's maps of one organ tie (the first wins), so the 256th and later are checked on 300 maps that do not
  const grid = { size: [10, 10, 3] as Vec3, spacing: [1, 1, 1] as Vec3, origin: [0, 0, 0] as Vec3, direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] };
  const own = Array.from({ length: 300 }, (_, n) => ({ grid, box: { min: [n % 10, Math.floor(n / 10) % 10, Math.floor(n / 100)] as Vec3, max: [n % 10, Math.floor(n / 10) % 10, Math.floor(n / 100)] as Vec3 }, data: Float32Array.of(0.9) }));
  const lm = labelMapOf(own, 0.5, { ...grid, data: new Int16Array(300) });
  assert.ok(lm.data instanceof Uint16Array);
  assert.deepEqual(Array.from(lm.data), Array.from({ length: 300 }, (_, n) => n + 1));
  assert.ok(labelMapOf(own.slice(0, 255), 0.5, { ...grid, data: new Int16Array(300) }).data instanceof Uint8Array, 'uint8 while it fits');
});

test('28.7 and 28.11: an --out with a file in the way, a full disk and a read-only disk are one line with nothing left; a rerun leaves no stale maps', async () => {
  const rep = join(tmp, 'r7.txt');
  writeFileSync(rep, 'Liver: A 3 cm hypodense mass in the right lobe of the liver.\nKidneys: A 12 mm cyst in the left kidney.\n');
  const blocker = join(tmp, 'a-file');
  writeFileSync(blocker, 'x');
  const inTheWay = join(blocker, 'out');
  assertOneLineError(await cliInProcess(groundArgs(rep, inTheWay)), quoteName(inTheWay), /cannot write the outputs \((ENOTDIR|EEXIST)/);
  // an earlier run with three findings, then the same --out with one: only the new run's maps remain
  const out = join(tmp, 'g-rerun');
  assert.equal((await cliInProcess(groundArgs(rep, out))).code, 0);
  writeFileSync(join(out, 'my-notes.txt'), 'the user\'s own file');
  const first = readdirSync(join(out, 'maps'));
  assert.ok(first.length >= 2, first.join());
  const one = join(tmp, 'r7b.txt');
  writeFileSync(one, 'Spleen: a 2 cm cyst.\n');
  assert.equal((await cliInProcess(groundArgs(one, out))).code, 0);
  const listed = (JSON.parse(readFileSync(join(out, 'findings.json'), 'utf8')) as { anomalies: { map: string }[] }).anomalies.map((a) => a.map.replace('maps/', ''));
  assert.deepEqual(readdirSync(join(out, 'maps')).sort(), listed.sort());
  assert.equal(readFileSync(join(out, 'my-notes.txt'), 'utf8'), 'the user\'s own file', 'files that are not ground\'s outputs stay');
  assert.deepEqual(readdirSync(tmp).filter((n) => n.includes('.partial-') || n.includes('.old-')), []);

  // a real full disk and a real read-only one: small tmpfs mounts (needs mount privileges)
  const mnt = join(tmp, 'mnt');
  mkdirSync(mnt);
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8k', 'tmpfs', mnt]).status !== 0) {
    if (process.env.CTGROUND_CI === '1') assert.fail('CTGROUND_CI=1: the disk-full check needs mount (run as root)');
    console.log('# skipped the full/read-only disk part: mount not permitted here');
    return;
  }
  try {
    const full = join(mnt, 'out');
    assertOneLineError(await cliInProcess(groundArgs(rep, full)), full, /cannot write the outputs \(ENOSPC: no space left/);
    assert.deepEqual(readdirSync(mnt), [], 'nothing half-written on the full disk');
    assert.equal(spawnSync('mount', ['-o', 'remount,ro', mnt]).status, 0);
    const ro = join(mnt, 'out');
    assertOneLineError(await cliInProcess(groundArgs(rep, ro)), ro, /cannot write the outputs \(EROFS: read-only/);
  } finally {
    spawnSync('umount', [mnt]);
  }
});

test('28.6: dataset check passes on label\'s own output, negated findings ("mask": null) included', async () => {
  const inDir = join(tmp, 'label6-in'), out = join(tmp, 'label6-out');
  mkdirSync(inDir);
  writeFileSync(join(inDir, 's1.nii.gz'), readFileSync(CT));
  writeFileSync(join(inDir, 's1.seg.nii.gz'), readFileSync(TS('example_seg.nii.gz')));
  writeFileSync(join(inDir, 's1.txt'), 'A 2 cm low density area in the spleen. No ascites.\n');
  assert.equal((await cliInProcess(['label', '--in', inDir, '--out', out, '--model', 'oracle:organ'])).code, 0);
  const rec = JSON.parse(readFileSync(join(out, 'manifest.jsonl'), 'utf8')) as { anomalies: { certainty: string; mask: string | null }[] };
  assert.ok(rec.anomalies.some((a) => a.certainty === 'absent' && a.mask === null), 'the case that crashed is there');
  assert.deepEqual((await checkDataset(out)).problems, []);
  const r = await cliInProcess(['dataset', 'check', out]);
  assert.equal(r.code, 0, r.stderr);
});

test('28.4: label SIGKILLed at every write step of a chain of restarts ends byte-identical to an uninterrupted run', { timeout: 900_000 }, async (t) => {
  const inDir = join(tmp, 'label4-in');
  mkdirSync(inDir);
  writeFileSync(join(inDir, 's1.nii.gz'), readFileSync(CT));
  writeFileSync(join(inDir, 's1.seg.nii.gz'), readFileSync(TS('example_seg.nii.gz')));
  writeFileSync(join(inDir, 's1.txt'), 'Liver: A 3 cm hypodense mass in the right lobe of the liver.\nKidneys: A 12 mm cyst in the left kidney.\n');
  writeFileSync(join(inDir, 's2.nii.gz'), readFileSync(CT));
  writeFileSync(join(inDir, 's2.seg.nii.gz'), readFileSync(TS('example_seg.nii.gz')));
  writeFileSync(join(inDir, 's2.txt'), 'A 2 cm low density area in the spleen. No ascites.\n');
  writeFileSync(join(inDir, 'broken.nii.gz'), 'not a CT');
  writeFileSync(join(inDir, 'broken.txt'), 'Liver: cyst.\n');
  const label = (out: string, killAt?: number): CliResult => cliProcess(['label', '--in', inDir, '--out', out, '--model', 'oracle:organ'], { env: { ...process.env, ...(killAt ? { CTGROUND_TEST_KILL_AT: String(killAt) } : {}) } });
  const ref = join(tmp, 'label4-ref');
  assert.equal(label(ref).code, 3);
  const out = join(tmp, 'label4-out');
  // each restart is killed one write step later than the one before, so the kills walk across the whole run
  const kills: number[] = [];
  for (let k = 1; ; k++) {
    const r = label(out, k);
    if (r.code !== null) { assert.equal(r.code, 3, r.stderr); break; }
    kills.push(k);
    assert.ok(kills.length < 60, 'the chain never finished');
    // between kills: whatever stands under a final name is whole, and a study folder is there only when done
    for (const [name, bytes] of tree(out)) {
      if (name.split('/').some((p) => p.startsWith('.'))) continue;
      if (name.endsWith('.gz')) assert.doesNotThrow(() => gunzipSync(bytes), `${name} is truncated (kill ${k})`);
      if (name.endsWith('.json')) assert.doesNotThrow(() => JSON.parse(bytes.toString('utf8')), `${name} is truncated (kill ${k})`);
    }
    for (const id of ['s1', 's2']) if (existsSync(join(out, id))) assert.ok(existsSync(join(out, id, 'study.json')), `${id}/ without study.json after kill ${k}`);
  }
  assert.ok(kills.length >= 5, `killed ${kills.length} times`);
  t.diagnostic(`killed at ${kills.length} points before a run finished`);
  assertSameTree(ref, out);
});

test('28.12: a run with a real ONNX model writes nothing outside --out: no ONNX Runtime telemetry in HOME, no mat-debug log in the temp folder', { timeout: 600_000 }, () => {
  const home = join(tmp, 'home12'), temp = join(tmp, 'temp12'), cwd = join(tmp, 'cwd12');
  for (const d of [home, temp, cwd]) mkdirSync(d);
  const rep = join(tmp, 'r12.txt');
  writeFileSync(rep, 'Liver: A 3 cm hypodense mass in the right lobe of the liver.\n');
  const model = join(projectRoot, 'models', 'grounding-default');
  const modelBefore = readdirSync(model, { recursive: true }).map(String).sort();
  // the user's environment, minus anything that would turn the telemetry off or move the cache for us
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, TMPDIR: temp };
  delete env.ORT_DISABLE_TELEMETRY;
  delete env.XDG_CACHE_HOME;
  const r = cliProcess(['ground', '--ct', CT, '--labels', TS('example_seg.nii.gz'), '--report', rep, '--out', join(cwd, 'out')], { env, cwd, timeout: 600_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(join(cwd, 'out', 'findings.json')));
  assert.deepEqual(readdirSync(home, { recursive: true }), [], 'nothing under HOME (was .cache/Microsoft/DeveloperTools/.onnxruntime/)');
  // tsx keeps its compile cache of ctground's own sources there (tsx-<uid>/: program code, no data); nothing else may stay
  assert.deepEqual(readdirSync(temp).filter((n) => !/^tsx-\d+$/.test(n)), [], 'nothing left in the temp folder (was mat-debug-<pid>.log and .ses)');
  assert.deepEqual(readdirSync(cwd), ['out']);
  assert.deepEqual(readdirSync(model, { recursive: true }).map(String).sort(), modelBefore, 'the model folder is unchanged');
});
