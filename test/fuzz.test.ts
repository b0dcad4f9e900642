import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createRng, type Rng } from '../src/common/index.ts';
import { extractRegion, readVolume, writeNifti } from '../src/volume/index.ts';
import { readCsvColumn } from '../src/report/index.ts';
import { REPORTS_CSV, TS } from './helpers/shared.ts';
import { cliInProcess, type CliResult } from './helpers/cli.ts';

// Issue 28: the readers under fuzzing. Seeded mutations of real files (NIfTI headers and bytes,
// truncations, gzip streams, DICOM headers, report text) and random bytes, run through the CLI
// in this process. Whatever the input, the CLI exits 0 or 2, and 2 is one line with no stack trace.
const SEED = 2826;
const tmp = mkdtempSync(join(tmpdir(), 'ctg-fuzz-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

function checkOutcome(r: CliResult, what: string): void {
  assert.ok(r.code === 0 || r.code === 2, `${what}: exit ${r.code}\n${r.stderr.slice(0, 2000)}`);
  assert.doesNotMatch(r.stderr, /\n\s+at |internal error/, `${what}: stack trace\n${r.stderr.slice(0, 2000)}`);
  if (r.code === 2) {
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `${what}: one line, got\n${r.stderr.slice(0, 2000)}`);
    assert.ok(lines[0]!.startsWith('ctground: '), `${what}: ${lines[0]}`);
  } else assert.equal(r.stderr, '', `${what}: exit 0 with stderr ${r.stderr.slice(0, 500)}`);
}

const randomBytes = (rng: Rng, n: number): Buffer => Buffer.from(Array.from({ length: n }, () => rng.int(0, 255)));

/** Values that break readers: zero, negatives, NaN, infinities, huge and tiny numbers. */
const NASTY_FLOATS = [0, -1, -0, NaN, Infinity, -Infinity, 1e-30, 1e30, 3.4e38, 0.5, 1e6];
const NASTY_INTS = [0, -1, 1, 2, 7, 8, 255, 256, 32767, -32768, 1000];

/** One mutation of a NIfTI-1 file's bytes (uncompressed), chosen by the seed. */
function mutateNifti(rng: Rng, base: Buffer): { bytes: Buffer; how: string } {
  const b = Buffer.from(base);
  const kind = rng.int(0, 6);
  if (kind === 0) { const n = rng.int(1, 8); for (let i = 0; i < n; i++) b[rng.int(0, 351)] = rng.int(0, 255); return { bytes: b, how: `${n} random header bytes` }; }
  if (kind === 1) { const at = rng.pick([42, 44, 46, 40, 70, 72]); const v = rng.pick(NASTY_INTS); b.writeInt16LE(v, at); return { bytes: b, how: `int16 @${at} = ${v}` }; }
  if (kind === 2) { const at = rng.pick([76, 80, 84, 88, 108, 112, 116, 256, 260, 264, 268, 272, 276, 280, 284, 288, 292, 296, 300, 304, 308, 312, 316, 320, 324]); const v = rng.pick(NASTY_FLOATS); b.writeFloatLE(v, at); return { bytes: b, how: `float @${at} = ${v}` }; }
  if (kind === 3) { b.writeInt16LE(rng.int(-2, 4), 252); b.writeInt16LE(rng.int(-2, 4), 254); b.writeFloatLE(rng.pick(NASTY_FLOATS), 80 + 4 * rng.int(0, 2)); return { bytes: b, how: 'qform/sform codes and a pixdim' }; }
  if (kind === 4) { const n = rng.int(0, b.length - 1); return { bytes: b.subarray(0, n), how: `truncated at ${n}` }; }
  if (kind === 5) { b.writeInt32LE(rng.pick([0, 347, 349, 540, -1, 0x5c010000]), 0); return { bytes: b, how: 'header size field' }; }
  return { bytes: randomBytes(rng, rng.int(0, 2000)), how: 'random bytes' };
}

test('fuzz: NIfTI reader (info), 220 seeded cases of mutated headers, truncations, gzip and random bytes: exit 0 or 2, one line, no stack', { timeout: 120_000 }, async (t) => {
  const rng = createRng(SEED);
  // a small real volume (a crop of the TotalSegmentator label map) keeps each case fast
  const crop = extractRegion(await readVolume(TS('example_seg.nii.gz')), [40, 30, 10], [16, 16, 6]);
  const basePath = join(tmp, 'base.nii');
  await writeNifti(basePath, crop);
  const base = readFileSync(basePath);
  const t0 = Date.now();
  const outcomes = { 0: 0, 2: 0 };
  for (let n = 0; n < 220; n++) {
    const { bytes, how } = mutateNifti(rng, base);
    // a third go gzipped (a whole stream or one cut short), a sixth are gzip-named but raw
    const form = rng.int(0, 5);
    let data = bytes, name = `c${n}.nii`;
    if (form <= 1) { data = gzipSync(bytes); name += '.gz'; }
    else if (form === 2) { const z = gzipSync(bytes); data = z.subarray(0, rng.int(0, z.length)); name += '.gz'; }
    else if (form === 3) name += '.gz';
    const f = join(tmp, name);
    writeFileSync(f, data);
    const r = await cliInProcess(['info', f, '--json']);
    checkOutcome(r, `case ${n} (seed ${SEED}): ${how}, ${name}`);
    outcomes[r.code as 0 | 2]++;
    rmSync(f);
  }
  // the mutations must reach both outcomes, or the test says nothing
  t.diagnostic(`NIfTI: ${outcomes[0]} read, ${outcomes[2]} refused`);
  assert.ok(outcomes[0] > 10 && outcomes[2] > 100, JSON.stringify(outcomes));
  assert.ok(Date.now() - t0 < 60_000, `took ${Date.now() - t0} ms`);
});

test('fuzz: DICOM folder reader (info), 40 seeded cases of mutated headers, cut slices and random files: exit 0 or 2, one line, no stack', { timeout: 180_000 }, async (t) => {
  const rng = createRng(SEED + 1);
  const slices = readdirSync(TS('example_ct_dicom')).sort().slice(0, 2).map((f) => readFileSync(TS('example_ct_dicom', f)));
  const outcomes = { 0: 0, 2: 0 };
  for (let n = 0; n < 40; n++) {
    const dir = join(tmp, `dcm${n}`);
    mkdirSync(dir);
    const victim = rng.int(0, 1), kind = rng.int(0, 4);
    let how = '';
    slices.forEach((s, i) => {
      let b: Buffer = Buffer.from(s);
      if (i === victim) {
        if (kind === 0) { const k = rng.int(1, 12); for (let j = 0; j < k; j++) b[rng.int(132, 3000)] = rng.int(0, 255); how = `${k} random header bytes in slice ${i}`; }
        else if (kind === 1) { const cut = rng.int(0, b.length); b = b.subarray(0, cut); how = `slice ${i} cut at ${cut}`; }
        else if (kind === 2) { b = randomBytes(rng, rng.int(0, 4000)); how = `slice ${i} random bytes`; }
        else if (kind === 3) { const at = rng.int(132, 2000); b.writeUInt32LE(rng.pick([0xffffffff, 0x7fffffff, 0, 0x10000]), at); how = `length-like word at ${at} in slice ${i}`; }
        else { b = Buffer.concat([b.subarray(0, 132), randomBytes(rng, 400), b.subarray(532)]); how = `slice ${i} header replaced by noise`; }
      }
      writeFileSync(join(dir, `s${i}.dcm`), b);
    });
    const r = await cliInProcess(['info', dir, '--json']);
    checkOutcome(r, `DICOM case ${n} (seed ${SEED + 1}): ${how}`);
    outcomes[r.code as 0 | 2]++;
    rmSync(dir, { recursive: true, force: true });
  }
  t.diagnostic(`DICOM: ${outcomes[0]} read, ${outcomes[2]} refused`);
  assert.ok(outcomes[0] > 3 && outcomes[2] > 3, JSON.stringify(outcomes));
});

test('fuzz: report reader (structure), 200 seeded cases of mutated real reports, bad UTF-8, control characters and random bytes: exit 0 or 2, one line, no stack', { timeout: 120_000 }, async (t) => {
  const rng = createRng(SEED + 2);
  const { texts } = readCsvColumn(REPORTS_CSV(), 'Findings_EN');
  const t0 = Date.now();
  const outcomes = { 0: 0, 2: 0 };
  for (let n = 0; n < 200; n++) {
    const text = texts[rng.int(0, texts.length - 1)]!;
    let b: Buffer = Buffer.from(text, 'utf8');
    const kind = rng.int(0, 6);
    let how: string;
    if (kind === 0) { const k = rng.int(1, 20); for (let j = 0; j < k; j++) b[rng.int(0, b.length - 1)] = rng.int(0, 255); how = `${k} random bytes`; }
    else if (kind === 1) { b = b.subarray(0, rng.int(0, b.length)); how = 'truncated (maybe mid-character)'; }
    else if (kind === 2) { const c = String.fromCharCode(rng.int(0, 31)); const at = rng.int(0, text.length); b = Buffer.from(text.slice(0, at) + c.repeat(rng.int(1, 60)) + text.slice(at)); how = `control character ${c.charCodeAt(0)} inserted`; }
    else if (kind === 3) { b = randomBytes(rng, rng.int(0, 3000)); how = 'random bytes'; }
    else if (kind === 4) { const words = text.split(/\s+/); rng.shuffle(words); b = Buffer.from(words.join(rng.pick([' ', '.', ',', '\n', ';;', ' and '])), 'utf8'); how = 'words shuffled'; }
    else if (kind === 5) { b = Buffer.from(rng.pick(['', ' ', '\n\n', '.', '...', 'No', 'a'.repeat(5000), '1 cm '.repeat(500), '\u00a0\u2028\ufeff', 'ÿ'.repeat(100)]), 'utf8'); how = 'edge text'; }
    else { const ls = Array.from({ length: rng.int(1, 5) }, () => (rng.next() < 0.7 ? JSON.stringify(texts[rng.int(0, texts.length - 1)]) : rng.pick(['{', 'null', '42', '"\\ud800"', '[]', '']))); b = Buffer.from(ls.join('\n')); how = 'JSONL lines'; }
    const f = join(tmp, `r${n}.${kind === 6 ? 'jsonl' : 'txt'}`);
    writeFileSync(f, b);
    const r = await cliInProcess(kind === 6 ? ['structure', '--jsonl', f] : ['structure', f, '--json']);
    checkOutcome(r, `report case ${n} (seed ${SEED + 2}): ${how}`);
    outcomes[r.code as 0 | 2]++;
    rmSync(f);
  }
  t.diagnostic(`reports: ${outcomes[0]} structured, ${outcomes[2]} refused`);
  assert.ok(outcomes[0] > 50 && outcomes[2] > 30, JSON.stringify(outcomes));
  assert.ok(Date.now() - t0 < 60_000, `took ${Date.now() - t0} ms`);
});
