import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot, loadTaxonomy } from '../src/common/index.ts';
import { codedTerms, decodeSegmentation, readSourceSeries } from '../src/dicom/index.ts';
import { TS } from './helpers/shared.ts';
import { PYTHON, dciodvfyErrors, dicomToolsSkipReason } from './helpers/dicom-tools.ts';

const BIN = join(projectRoot, 'bin', 'ctground.js');
const skip = dicomToolsSkipReason();
const DICOM = TS('example_ct_dicom');
const REPORT = 'A 2 cm hypodense cyst in the right lobe of the liver.\nPossible small stone in the left kidney.\nNo ascites.\n';
// test identity put on a copy of the (de-identified) bundled series: it must reach the SEG and nothing else
const PATIENT = 'CTGTEST^SEGPATIENT', PID = 'CTG-PID-4711', ACCESSION = 'CTGACC0815';
const STUDY = '1.2.826.0.1.3680043.8.498.29001', SERIES = '1.2.826.0.1.3680043.8.498.29002';

let tmp: string;
before(() => { tmp = mkdtempSync(join(tmpdir(), 'ctg-seg-')); writeFileSync(join(tmp, 'report.txt'), REPORT); });
after(() => rmSync(tmp, { recursive: true, force: true }));

const ctground = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
const segCheck = (out: string, src: string, ...extra: string[]) => {
  const r = spawnSync(PYTHON, [join(projectRoot, 'test', 'helpers', 'seg_check.py'), join(out, 'findings.seg.dcm'), join(out, 'labels.nii.gz'), join(out, 'findings.json'), src, ...extra], { encoding: 'utf8' });
  return { status: r.status, result: r.stdout.trim() ? JSON.parse(r.stdout.trim()) as Record<string, unknown> : {}, stderr: r.stderr };
};

test('segment codes: every organ and anomaly type of the taxonomy has a SNOMED CT code', () => {
  const tax = loadTaxonomy(), coded = codedTerms();
  assert.deepEqual(tax.reportOrgans.filter((o) => !coded.organs.includes(o)), []);
  assert.deepEqual(tax.anomalyTypes.map((t) => t.id).filter((t) => !coded.types.includes(t)), []);
});

test('ground on the bundled DICOM series writes a SEG that passes dciodvfy and equals labels.nii.gz voxel for voxel on the source slices (pydicom)', { skip }, () => {
  const out = join(tmp, 'bundled');
  const r = ctground('ground', '--ct', DICOM, '--labels', TS('example_seg_dicom.nii.gz'), '--report', join(tmp, 'report.txt'), '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /findings\.seg\.dcm \(2 segment\(s\)\)/);
  // the bundled series is de-identified: no study or series UID, which the SEG derives (and says so)
  assert.match(r.stdout, /has no StudyInstanceUID, SeriesInstanceUID/);
  const v = dciodvfyErrors(join(out, 'findings.seg.dcm'));
  assert.deepEqual(v.errors, [], v.output);
  const c = segCheck(out, DICOM);
  assert.equal(c.status, 0, `${JSON.stringify(c.result)} ${c.stderr}`);
  assert.equal(c.result.mismatched, 0);
  assert.equal(c.result.wrong_refs, 0);
  assert.ok((c.result.nonzero_voxels as number) > 0, 'the segments are not empty');
  assert.deepEqual(c.result.labels, { 1: 'liver cyst', 2: 'kidney stone (uncertain)' });
  // our own reader agrees with pydicom on the segments and their codes
  const seg = decodeSegmentation(readFileSync(join(out, 'findings.seg.dcm')));
  assert.deepEqual(seg.segments.map((s) => [s.trackingId, s.type?.value, s.region?.value, s.category?.value]), [['a1', '367643001', '10200004', '49755003'], ['a2', '56381008', '64033007', '49755003']]);
  assert.match(seg.segments[0]!.description, /cyst/);
  const src = readSourceSeries(DICOM);
  assert.equal(seg.frameOfReferenceUid, src.frameOfReferenceUid);
});

test('the SEG carries the source\'s patient and study; nothing else written or printed does', { skip }, () => {
  const copy = join(tmp, 'identified');
  const p = spawnSync(PYTHON, [join(projectRoot, 'test', 'helpers', 'dicom_copy.py'), DICOM, copy, '--study', STUDY, '--series', SERIES, '--patient', PATIENT, '--pid', PID, '--accession', ACCESSION], { encoding: 'utf8' });
  assert.equal(p.status, 0, p.stderr);
  const out = join(tmp, 'identified-out');
  const r = ctground('ground', '--ct', copy, '--labels', TS('example_seg_dicom.nii.gz'), '--report', join(tmp, 'report.txt'), '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /has no StudyInstanceUID/);
  const seg = readFileSync(join(out, 'findings.seg.dcm')).toString('latin1');
  for (const id of [PATIENT, PID, ACCESSION, STUDY]) assert.ok(seg.includes(id), `SEG lacks ${id}`);
  const dump = spawnSync(PYTHON, ['-c', `import pydicom,sys; d=pydicom.dcmread(sys.argv[1]); print(d.PatientName, d.PatientID, d.AccessionNumber, d.StudyInstanceUID, d.ReferencedSeriesSequence[0].SeriesInstanceUID, d.Modality, d.SOPClassUID)`, join(out, 'findings.seg.dcm')], { encoding: 'utf8' });
  assert.equal(dump.stdout.trim(), `${PATIENT} ${PID} ${ACCESSION} ${STUDY} ${SERIES} SEG 1.2.840.10008.5.1.4.1.1.66.4`);
  for (const f of readdirSync(out, { recursive: true }) as string[]) {
    if (f.endsWith('.dcm') || !statSync(join(out, f)).isFile()) continue;
    const text = readFileSync(join(out, f)).toString('latin1');
    for (const id of [PATIENT, PID, ACCESSION]) assert.ok(!text.includes(id), `${f} carries ${id}`);
  }
  for (const id of [PATIENT, PID, ACCESSION]) assert.ok(!r.stdout.includes(id) && !r.stderr.includes(id), `output carries ${id}`);
  assert.deepEqual(dciodvfyErrors(join(out, 'findings.seg.dcm')).errors, []);
  assert.equal(segCheck(out, copy).status, 0);
});

test('--fractional: the SEG holds round(255 × map) on the source slices and passes dciodvfy', { skip }, () => {
  const out = join(tmp, 'fractional');
  const r = ctground('ground', '--ct', DICOM, '--labels', TS('example_seg_dicom.nii.gz'), '--report', join(tmp, 'report.txt'), '--out', out, '--fractional');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(dciodvfyErrors(join(out, 'findings.seg.dcm')).errors, []);
  const c = segCheck(out, DICOM, '--fractional', join(out, 'maps'));
  assert.equal(c.status, 0, `${JSON.stringify(c.result)} ${c.stderr}`);
  assert.ok((c.result.nonzero_voxels as number) > (c.result.segments as number));
});

test('SEG flags: --no-dicom-seg skips it, --dicom-seg on a NIfTI CT and both flags are one-line errors', () => {
  const out = join(tmp, 'noseg');
  const r = ctground('ground', '--ct', DICOM, '--model', 'oracle:organ', '--labels', TS('example_seg_dicom.nii.gz'), '--report', join(tmp, 'report.txt'), '--out', out, '--no-dicom-seg');
  assert.equal(r.status, 0, r.stderr);
  assert.ok(!existsSync(join(out, 'findings.seg.dcm')));
  for (const args of [['--ct', TS('example_ct_sm.nii.gz'), '--dicom-seg'], ['--ct', DICOM, '--dicom-seg', '--no-dicom-seg']]) {
    const e = ctground('ground', ...args, '--model', 'oracle:organ', '--report', join(tmp, 'report.txt'), '--out', join(tmp, 'bad'));
    assert.equal(e.status, 2, e.stderr);
    assert.match(e.stderr, /^ctground: [^\n]*--dicom-seg[^\n]*\n$/);
  }
});
