import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { createRng, projectRoot, UserError } from '../src/common/index.ts';
import { readVolume, writeNifti } from '../src/volume/index.ts';
import { TS } from './helpers/shared.ts';

const tmp = mkdtempSync(join(tmpdir(), 'ctground-volerr-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
const rng = createRng(42);
const randomBytes = (n: number) => Uint8Array.from({ length: n }, () => rng.int(0, 255));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(projectRoot, 'bin', 'ctground.js'), ...args], { encoding: 'utf8', cwd: projectRoot, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The CLI contract for bad input: exit 2, one stderr line naming the file, no stack trace. */
function assertCliError(r: ReturnType<typeof cli>, path: string, problem: RegExp) {
  assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line, got: ${r.stderr}`);
  assert.ok(lines[0]!.startsWith(`ctground: ${path}: `), lines[0]);
  assert.match(lines[0]!, problem);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

async function assertReadError(path: string, problem: RegExp, opts = {}) {
  await assert.rejects(readVolume(path, opts), (e: unknown) => {
    assert.ok(e instanceof UserError, `a UserError, got ${(e as Error)?.stack}`);
    assert.ok(e.message.startsWith(`${path}: `), e.message);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    assert.match(e.message, problem);
    return true;
  });
}

// --- DICOM fixtures, made from the real series: explicit-VR little-endian elements before the pixel data.
function setDicomString(buf: Buffer, group: number, elem: number, vr: string, value: string): Buffer {
  const key = Buffer.from([group & 0xff, group >> 8, elem & 0xff, elem >> 8, vr.charCodeAt(0), vr.charCodeAt(1)]);
  const at = buf.indexOf(key, 132);
  assert.ok(at > 132, `tag ${group.toString(16)},${elem.toString(16)} not found`);
  const oldLen = buf.readUInt16LE(at + 6);
  let v = Buffer.from(value, 'latin1');
  if (v.length % 2) v = Buffer.concat([v, Buffer.from([vr === 'UI' ? 0 : 0x20])]);
  const head = Buffer.alloc(8);
  key.copy(head);
  head.writeUInt16LE(v.length, 6);
  return Buffer.concat([buf.subarray(0, at), head, v, buf.subarray(at + 8 + oldLen)]);
}

const FAKE_NAME = 'DOE^JANE^SECRETNAME', FAKE_ID = 'PID-7788990011';
const dicomFiles = () => readdirSync(TS('example_ct_dicom')).sort().map((f) => TS('example_ct_dicom', f));

/** Copies the series into `dir` with a series number/UID and a (fake) patient name and ID. */
function writeSeries(dir: string, files: string[], number: string, uid: string, prefix: string) {
  mkdirSync(dir, { recursive: true });
  for (const f of files) {
    let b: Buffer = readFileSync(f);
    b = setDicomString(b, 0x0010, 0x0010, 'PN', FAKE_NAME);
    b = setDicomString(b, 0x0010, 0x0020, 'LO', FAKE_ID);
    b = setDicomString(b, 0x0020, 0x000e, 'UI', uid);
    b = setDicomString(b, 0x0020, 0x0011, 'IS', number);
    writeFileSync(join(dir, `${prefix}-${f.split('/').pop()}`), b);
  }
}

test('missing path, empty file, truncated .nii.gz through the CLI: exit 2, one line naming the file', () => {
  const missing = join(tmp, 'nope', 'ct.nii.gz');
  assertCliError(cli('info', missing), missing, /no such file/);
  const empty = join(tmp, 'empty.nii.gz');
  writeFileSync(empty, '');
  assertCliError(cli('info', empty), empty, /empty file/);
  const cut = join(tmp, 'cut.nii.gz');
  const whole = readFileSync(TS('example_ct_sm.nii.gz'));
  writeFileSync(cut, whole.subarray(0, Math.floor(whole.length * 0.6)));
  assertCliError(cli('info', cut, '--json'), cut, /truncated/);
});

test('random bytes, wrong type, and lying headers are refused with the file named', async () => {
  const r1 = join(tmp, 'random.nii.gz'); writeFileSync(r1, randomBytes(5000));
  await assertReadError(r1, /not gzip/);
  const r2 = join(tmp, 'random.nii'); writeFileSync(r2, randomBytes(5000));
  await assertReadError(r2, /not a NIfTI/);
  const r3 = join(tmp, 'random-in-gzip.nii.gz'); writeFileSync(r3, gzipSync(randomBytes(5000)));
  await assertReadError(r3, /not a NIfTI/);
  const r4 = join(tmp, 'random.nrrd'); writeFileSync(r4, randomBytes(5000));
  await assertReadError(r4, /not an NRRD/);
  const r5 = join(tmp, 'random.mha'); writeFileSync(r5, randomBytes(5000));
  await assertReadError(r5, /not a MetaImage/);
  const r6 = join(tmp, 'picture.png'); writeFileSync(r6, randomBytes(100));
  await assertReadError(r6, /unsupported file type/);

  // A header that claims twice the slices its data holds, compressed and not.
  const raw = gunzipSync(readFileSync(TS('example_seg.nii.gz')));
  const lie = Buffer.from(raw);
  assert.equal(lie.readInt16LE(46), 30);
  lie.writeInt16LE(60, 46);
  const l1 = join(tmp, 'lying.nii.gz'); writeFileSync(l1, gzipSync(lie));
  await assertReadError(l1, /122×101×60 uint8 voxels .* holds only \d+ bytes/);
  const l2 = join(tmp, 'lying.nii'); writeFileSync(l2, lie);
  await assertReadError(l2, /header says/);
  // A nonsense dimension count is caught too.
  const bad = Buffer.from(raw); bad.writeInt16LE(9, 40);
  const l3 = join(tmp, 'baddim.nii'); writeFileSync(l3, bad);
  await assertReadError(l3, /invalid number of dimensions/);
  // The untouched file still reads (the checks are not over-eager).
  const ok = join(tmp, 'ok.nii'); writeFileSync(ok, raw);
  assert.deepEqual((await readVolume(ok)).size, [122, 101, 30]);
  assert.equal(cli('info', l1).code, 2);
});

test('a folder without DICOM files is refused', async () => {
  const dir = join(tmp, 'not-dicom');
  mkdirSync(dir);
  writeFileSync(join(dir, 'README.txt'), 'no images here\n');
  writeFileSync(join(dir, 'slice1.dcm'), randomBytes(3000));
  await assertReadError(dir, /no DICOM files/);
  const emptyDir = join(tmp, 'empty-dir');
  mkdirSync(emptyDir);
  await assertReadError(emptyDir, /no DICOM files/);
});

test('a DICOM folder with a missing slice is refused, naming the gap', async () => {
  const files = dicomFiles();
  const dir = join(tmp, 'gap');
  // Slice files are numbered in acquisition order; dropping one from the middle leaves a hole.
  writeSeries(dir, files.filter((_, i) => i !== 9), '3', '1.2.826.0.1.3680043.2.1125.7.1', 'a');
  await assertReadError(dir, /missing slice: gap of 4\.00 mm .* spacing is 2\.00 mm/);
  const dup = join(tmp, 'dup');
  writeSeries(dup, files, '3', '1.2.826.0.1.3680043.2.1125.7.1', 'a');
  copyFileSync(join(dup, readdirSync(dup)[4]!), join(dup, 'copy-of-a-slice'));
  await assertReadError(dup, /two slices at the same position/);
});

test('a DICOM folder with two series lists them and asks which; --series picks one; no patient name or ID anywhere', async () => {
  const files = dicomFiles();
  const dir = join(tmp, 'two-series');
  writeSeries(dir, files, '3', '1.2.826.0.1.3680043.2.1125.7.1', 'a');
  writeSeries(dir, files.slice(0, 3), '4', '1.2.826.0.1.3680043.2.1125.7.2', 'b');
  const r = cli('info', dir);
  assertCliError(r, dir, /2 DICOM series found; choose one with --series/);
  // series by number, modality, UID suffix, slice count and geometry; never the SeriesDescription (free text)
  assert.match(r.stderr, /#3 CT uid …3\.2\.1125\.7\.1 \(20 slices, 512×512 at [\d.]+×[\d.]+ mm\)/);
  assert.match(r.stderr, /#4 CT uid …3\.2\.1125\.7\.2 \(3 slices, 512×512/);
  assert.ok(readFileSync(join(dir, readdirSync(dir)[0]!)).includes('CT Body 3.0'), 'the fixture carries a description');
  assert.ok(!r.stderr.includes('CT Body'), r.stderr);
  // the suffix the message shows picks the series too
  assert.deepEqual((await readVolume(dir, { series: '…3.2.1125.7.2' })).size, [512, 512, 3]);
  await assertReadError(dir, /several|no DICOM series match '9'/, { series: '9' });

  const ok = cli('info', dir, '--series', '4', '--json');
  assert.equal(ok.code, 0, ok.stderr);
  const info = JSON.parse(ok.stdout);
  assert.deepEqual(info.size, [512, 512, 3]);
  const vol = await readVolume(dir, { series: '1.2.826.0.1.3680043.2.1125.7.2' });
  const out = join(tmp, 'series4.nii.gz');
  await writeNifti(out, vol);
  const written = gunzipSync(readFileSync(out)).toString('latin1');
  for (const secret of ['DOE', 'JANE', 'SECRETNAME', '7788990011']) {
    for (const s of [r.stdout, r.stderr, ok.stdout, ok.stderr, written]) assert.ok(!s.includes(secret), `'${secret}' leaked`);
  }
  // The fixture really carries the identifiers, so the check above can fail.
  assert.ok(readFileSync(join(dir, readdirSync(dir)[0]!)).includes(FAKE_NAME));
});

test('files that pass the header checks but break inside itk-wasm still give one line, with nothing else printed', async () => {
  const mha = join(tmp, 'short.mha');
  writeFileSync(mha, 'ObjectType = Image\nNDims = 3\nDimSize = 100 100 100\nElementType = MET_SHORT\nElementDataFile = LOCAL\nabc');
  const r = cli('info', mha);
  assertCliError(r, mha, /could not be read as mha \(MetaImage: .*not read completely\)/);
  assert.equal(r.stdout, '');
  const nrrd = join(tmp, 'short.nrrd');
  writeFileSync(nrrd, 'NRRD0004\ntype: short\ndimension: 3\nsizes: 100 100 100\nencoding: raw\n\nabc');
  await assertReadError(nrrd, /could not be read as nrrd/);
  // A DICOM slice cut short: its header is intact, its pixel data is not.
  const dir = join(tmp, 'cut-slice');
  mkdirSync(dir);
  const files = dicomFiles();
  files.forEach((f, i) => writeFileSync(join(dir, `s${i}`), i === 4 ? readFileSync(f).subarray(0, 20000) : readFileSync(f)));
  await assertReadError(dir, /DICOM series could not be read/);
});

test('a failed itk-wasm read leaves the process exit code alone', async () => {
  const mha = join(tmp, 'short2.mha');
  writeFileSync(mha, 'ObjectType = Image\nNDims = 3\nDimSize = 10 10 10\nElementType = MET_SHORT\nElementDataFile = LOCAL\nabc');
  const before = process.exitCode;
  await assertReadError(mha, /could not be read as mha/);
  assert.equal(process.exitCode, before);
});

test('a DICOMDIR beside the slices is not taken for a slice', async () => {
  const dir = join(tmp, 'with-dicomdir');
  writeSeries(dir, dicomFiles().slice(0, 3), '3', '1.2.826.0.1.3680043.2.1125.7.1', 'a');
  const first = readFileSync(join(dir, readdirSync(dir)[0]!));
  writeFileSync(join(dir, 'DICOMDIR'), setDicomString(first, 0x0002, 0x0002, 'UI', '1.2.840.10008.1.3.10'));
  const v = await readVolume(dir);
  assert.deepEqual(v.size, [512, 512, 3]);
});
