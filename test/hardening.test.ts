import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { quoteName } from '../src/common/index.ts';
import { readVolume } from '../src/volume/index.ts';
import { TS } from './helpers/shared.ts';
import { assertOneLineError, cliInProcess, cliPeakRss, cliProcess } from './helpers/cli.ts';

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
  assertOneLineError(g, quoteName(rep), /cannot read report/);
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
