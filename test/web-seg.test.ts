import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labelOneStudy, loadGrounder, writeManifest, type BatchStudy } from '../src/pipeline/index.ts';
import { decodeSegmentation, readPart10Header } from '../src/dicom/index.ts';
// the SEG rewritten as another tool would write it: the data set itself, below the part's API
import { readPart10, str, writePart10, type Dataset } from '../src/dicom/lib.ts';
import { readVolume } from '../src/volume/index.ts';
import { startServer, type RunningServer } from '../src/web/index.ts';
import { TS } from './helpers/shared.ts';
import { dciodvfyErrors, dicomToolsSkipReason } from './helpers/dicom-tools.ts';

const REPORT = 'A 2 cm hypodense cyst in the right lobe of the liver.\nPossible small stone in the left kidney.\n';
let tmp: string, out: string, srv: RunningServer;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'ctg-webseg-'));
  out = join(tmp, 'out');
  writeFileSync(join(tmp, 'report.txt'), REPORT);
  // what `label` makes of a study whose CT is a DICOM folder: findings.json and findings.seg.dcm
  const s: BatchStudy = { id: 's1', ct: TS('example_ct_dicom'), report: join(tmp, 'report.txt'), totalSegmentator: TS('example_seg_dicom.nii.gz') };
  await labelOneStudy(s, out, await loadGrounder('oracle:organ'), undefined);
  writeManifest(out, [s]);
  srv = await startServer({ dataDir: out, port: 0, grounder: () => Promise.reject(new Error('no grounding here')), log: () => undefined });
});
after(async () => {
  await srv?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const post = (path: string, body: unknown) => fetch(new URL(path, srv.url), { method: 'POST', headers: { 'content-type': 'application/json', origin: srv.url.replace(/\/$/, ''), 'x-ctground-token': srv.token }, body: JSON.stringify(body) });

/** The files of a ustar archive (512-byte headers, size in octal). */
function untar(buf: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (let at = 0; at + 512 <= buf.length;) {
    const name = buf.toString('utf8', at, at + 100).replace(/\0.*$/s, '');
    if (!name) break;
    const size = parseInt(buf.toString('ascii', at + 124, at + 136).replace(/\0.*$/s, '').trim() || '0', 8);
    files.set(name, buf.subarray(at + 512, at + 512 + size));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

test('the viewer writes the same SEG it reads: the export holds the SEG as reviewed (rejected segment dropped, redrawn one cut to its box), valid for dciodvfy', { skip: dicomToolsSkipReason() }, async () => {
  const original = readFileSync(join(out, 's1', 'grounding', 'findings.seg.dcm'));
  const before = decodeSegmentation(original);
  assert.deepEqual(before.segments.map((s) => s.trackingId), ['a1', 'a2']);
  // reject the kidney stone, redraw the liver cyst's region to a box over a part of the liver
  const findings = JSON.parse(readFileSync(join(out, 's1', 'grounding', 'findings.json'), 'utf8')) as { anomalies: { id: string; box: { voxel: { min: number[]; max: number[] } } | null }[] };
  const liver = findings.anomalies.find((a) => a.id === 'a1')!.box!.voxel;
  const box = { min: liver.min, max: [Math.floor((liver.min[0]! + liver.max[0]!) / 2), liver.max[1]!, liver.max[2]!] };
  assert.equal((await post('/api/studies/s1/review', { anomaly: 'a2', decision: 'reject' })).status, 200);
  const redraw = await post('/api/studies/s1/review', { anomaly: 'a1', decision: 'redraw', box });
  assert.equal(redraw.status, 200, await redraw.text());
  const tar = await fetch(new URL('/api/studies/s1/export?token=' + srv.token, srv.url));
  assert.equal(tar.status, 200);
  const seg = untar(Buffer.from(await tar.arrayBuffer())).get('s1/findings.seg.dcm');
  assert.ok(seg, 'the export holds the SEG');
  const file = join(tmp, 'reviewed.seg.dcm');
  writeFileSync(file, seg);
  const v = dciodvfyErrors(file);
  assert.deepEqual(v.errors, [], v.output);
  const after = decodeSegmentation(seg);
  assert.deepEqual(after.segments.map((s) => [s.number, s.trackingId, s.label]), [[1, 'a1', 'liver cyst']]);
  const h0 = readPart10Header(original), h1 = readPart10Header(seg);
  assert.equal(h1.studyInstanceUid, h0.studyInstanceUid);
  assert.notEqual(h1.sopInstanceUid, h0.sopInstanceUid);
  // voxel for voxel: the reviewed segment is the original label region inside the box, nothing outside
  const ct = await readVolume(join(out, 's1', 'ct.nii.gz'));
  const { segmentationOnGrid } = await import('../src/dicom/index.ts');
  const was = segmentationOnGrid(before, ct)[0]!.data, now = segmentationOnGrid(after, ct)[0]!.data;
  const [nx, ny] = ct.size;
  let inside = 0, mismatched = 0;
  for (let v = 0; v < was.length; v++) {
    const i = v % nx, j = Math.floor(v / nx) % ny, k = Math.floor(v / (nx * ny));
    const inBox = i >= box.min[0]! && i <= box.max[0]! && j >= box.min[1]! && j <= box.max[1]! && k >= box.min[2]! && k <= box.max[2]!;
    const want = inBox ? was[v]! : 0;
    if (want) inside++;
    if (now[v] !== want) mismatched++;
  }
  assert.equal(mismatched, 0);
  assert.ok(inside > 0 && inside < was.reduce((a, b) => a + b, 0), `the box keeps part of the region (${inside} voxels)`);
});

test('a SEG another tool wrote, its anatomic region a local code whose meaning is no valid pattern, is shown with that meaning as the organ (was 422: the meaning went into a RegExp)', async () => {
  const dir = join(tmp, 'foreign');
  mkdirSync(join(dir, 's1'), { recursive: true });
  cpSync(join(out, 's1', 'ct.nii.gz'), join(dir, 's1', 'ct.nii.gz'));
  writeFileSync(join(dir, 's1', 'report.txt'), REPORT);
  const { meta, data } = readPart10(readFileSync(join(out, 's1', 'grounding', 'findings.seg.dcm')), false);
  const first = (data.SegmentSequence as Dataset[])[0]!;
  first.AnatomicRegionSequence = [{ CodeValue: 'N4', CodingSchemeDesignator: '99LOCAL', CodeMeaning: 'Node (level 4+' }];
  first.SegmentLabel = 'node (level 4+ cyst';
  writeFileSync(join(dir, 's1', 'findings.seg.dcm'), writePart10(data, str(meta.MediaStorageSOPClassUID), str(meta.MediaStorageSOPInstanceUID)));
  writeFileSync(join(dir, 'manifest.jsonl'), JSON.stringify({ id: 's1', ct: 's1/ct.nii.gz', report: 's1/report.txt', seg: 's1/findings.seg.dcm' }) + '\n');
  const other = await startServer({ dataDir: dir, port: 0, grounder: () => Promise.reject(new Error('no grounding here')), log: () => undefined });
  try {
    const r = await fetch(new URL('/api/studies/s1', other.url), { headers: { 'x-ctground-token': other.token } });
    const body = await r.text();
    assert.equal(r.status, 200, body);
    const shown = (JSON.parse(body) as { anomalies: { id: string; organ: string; type: string }[] }).anomalies;
    assert.deepEqual(shown.map((a) => [a.id, a.organ, a.type]), [['a1', 'node (level 4+', 'cyst'], ['a2', 'kidney', 'stone']]);
  } finally {
    await other.close();
  }
});
