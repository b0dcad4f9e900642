import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError, loadTaxonomy, projectRoot } from '../src/common/index.ts';
import { charClasses, parseCsv, readCsvColumn, readText, structureReport, type StructuredReport } from '../src/report/index.ts';
import { REPORTS_CSV } from './helpers/shared.ts';

const tax = loadTaxonomy();
const types = new Set(tax.anomalyTypes.map((t) => t.id));

function checkInvariants(r: StructuredReport): void {
  for (const p of r.phrases) {
    assert.equal(r.text.slice(p.start, p.end), p.text);
    assert.ok(tax.phraseClasses.includes(p.class));
  }
  for (const s of r.sentences) for (const o of s.organs) assert.ok(tax.reportOrgans.includes(o), o);
  for (const a of r.anomalies) {
    assert.ok(tax.reportOrgans.includes(a.organ), a.organ);
    assert.ok(types.has(a.type), a.type);
    assert.ok(tax.certainty.includes(a.certainty));
    assert.ok(a.spans.some((s) => s.start === a.anomaly.start && s.end === a.anomaly.end && s.class === 'anomaly'));
    for (const s of a.spans) assert.equal(r.text.slice(s.start, s.end), s.text);
  }
}

test('robustness: every CT-RATE report (findings and impressions) structures, with valid offsets and ids', () => {
  const findings = readCsvColumn(REPORTS_CSV(), 'Findings_EN');
  const impressions = readCsvColumn(REPORTS_CSV(), 'Impressions_EN');
  assert.equal(findings.texts.length, 1564);
  let anomalies = 0, absent = 0;
  for (const text of [...findings.texts, ...impressions.texts]) {
    const r = structureReport(text);
    checkInvariants(r);
    anomalies += r.anomalies.length;
    absent += r.anomalies.filter((a) => a.certainty === 'absent').length;
  }
  // Real reports describe findings and negate many: both must show up in quantity.
  assert.ok(anomalies > 10 * 1564, `${anomalies} anomalies`);
  assert.ok(absent > 2 * 1564 && absent < anomalies);
  const one = structureReport(findings.texts[0]!);
  for (const a of one.anomalies) assert.equal(charClasses(one.text, a).length, one.text.length);
});

test('robustness: empty input, whitespace, punctuation only -> empty result', () => {
  for (const t of ['', '   \n\n ', '...;;;???', '\u0000\u0001']) {
    const r = structureReport(t);
    assert.deepEqual([r.sentences.length, r.anomalies.length], [0, 0], JSON.stringify(t));
  }
});

test('robustness: a 1 MB report structures (run-on text is cut into bounded sentences)', () => {
  // Real report text, concatenated to 1 MB: every report's anomalies come back, in order.
  const { texts } = readCsvColumn(REPORTS_CSV(), 'Findings_EN');
  const parts: string[] = [];
  let size = 0, expected = 0;
  for (let i = 0; size < 1_000_000; i++) {
    const t = texts[i % texts.length]!;
    parts.push(t);
    size += t.length + 2;
    expected += structureReport(t).anomalies.length;
  }
  const big = parts.join('\n\n');
  assert.ok(big.length >= 1_000_000);
  const r = structureReport(big);
  checkInvariants(r);
  // Sentence context crosses report boundaries only through the organ fallback, so counts agree.
  assert.equal(r.anomalies.length, expected);
  const noPunct = 'nodule right lung '.repeat(12_000);
  const r2 = structureReport(noPunct);
  assert.ok(r2.sentences.length > 200 && r2.sentences.every((s) => s.end - s.start <= 1000));
  assert.equal(r2.anomalies.length, 12_000);
  checkInvariants(r2);
});

test('robustness: non-UTF-8 bytes, missing files and CSV problems are one-line user errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctg-report-'));
  const bad = join(dir, 'latin1.txt');
  writeFileSync(bad, Buffer.from([0x4e, 0x6f, 0x20, 0x6e, 0x6f, 0x64, 0x75, 0x6c, 0x65, 0xe9, 0x2e]));
  assert.throws(() => readText(bad), (e: unknown) => e instanceof UserError && /latin1\.txt: not UTF-8 text \(invalid byte 0xe9 at offset 9\)/.test(e.message));
  assert.throws(() => readText(join(dir, 'missing.txt')), (e: unknown) => e instanceof UserError && /no such file/.test(e.message));
  const csv = join(dir, 'r.csv');
  writeFileSync(csv, 'VolumeName,Findings_EN\nv1,"No effusion, no nodule."\n');
  assert.throws(() => readCsvColumn(csv, 'Impressions_EN'), (e: unknown) => e instanceof UserError && /r\.csv: no column 'Impressions_EN'/.test(e.message));
  writeFileSync(csv, 'VolumeName,Findings_EN\nv1,"No effusion\n');
  assert.throws(() => readCsvColumn(csv, 'Findings_EN'), (e: unknown) => e instanceof UserError && /unterminated quoted field starting on line 2/.test(e.message));
  // A valid 3-byte and 4-byte UTF-8 text with a BOM reads fine.
  const ok = join(dir, 'ok.txt');
  writeFileSync(ok, '\ufeffNodule 5 mm – right lung 🫁.');
  assert.equal(readText(ok), 'Nodule 5 mm – right lung 🫁.');
});

test('csv: quoted fields with commas, doubled quotes, line breaks and CRLF', () => {
  const rows = parseCsv('a,b,c\r\n1,"x, y","he said ""no"""\r\n2,"line1\nline2",\n3,,last');
  assert.deepEqual(rows, [['a', 'b', 'c'], ['1', 'x, y', 'he said "no"'], ['2', 'line1\nline2', ''], ['3', '', 'last']]);
});

test('cli: structure prints a table, JSON with charClasses, and one-line errors with exit 2', () => {
  const cli = join(projectRoot, 'bin', 'ctground.js');
  const dir = mkdtempSync(join(tmpdir(), 'ctg-report-'));
  const f = join(dir, 'r.txt');
  writeFileSync(f, 'A 12 mm hypodense nodule in segment 6 of the liver. No pleural effusion.');
  const json = spawnSync(process.execPath, [cli, 'structure', f, '--json'], { encoding: 'utf8' });
  assert.equal(json.status, 0, json.stderr);
  const out = JSON.parse(json.stdout) as { sentences: { organ: string }[]; anomalies: { type: string; certainty: string; charClasses: { length: number; runs: [number, number, number][] }; related: { text: string }[] }[] };
  assert.deepEqual(out.anomalies.map((a) => `${a.type} ${a.certainty}`), ['nodule present', 'effusion absent']);
  // m_t as runs: expanded, it is exactly the dense per-character array
  const text = readFileSync(f, 'utf8');
  const r = structureReport(text);
  out.anomalies.forEach((a, i) => {
    assert.equal(a.charClasses.length, 72);
    const dense = new Array<number>(a.charClasses.length).fill(0);
    for (const [s, e, k] of a.charClasses.runs) dense.fill(k, s, e);
    assert.deepEqual(dense, Array.from(charClasses(text, r.anomalies[i]!)));
  });
  assert.deepEqual(out.sentences.map((s) => s.organ), ['liver', 'chest']);
  const latin = join(dir, 'bad.txt');
  writeFileSync(latin, Buffer.from([0xff, 0xfe, 0x41]));
  const err = spawnSync(process.execPath, [cli, 'structure', latin], { encoding: 'utf8' });
  assert.equal(err.status, 2);
  assert.equal(err.stderr.trim().split('\n').length, 1);
  assert.match(err.stderr, /^ctground: .*bad\.txt: not UTF-8 text/);
  const jl = join(dir, 'r.jsonl');
  writeFileSync(jl, `${JSON.stringify('No pleural effusion.')}\n\n${JSON.stringify('')}\n${JSON.stringify('Hepatomegaly.')}\n`);
  const lines = spawnSync(process.execPath, [cli, 'structure', jl, '--jsonl', '--compact'], { encoding: 'utf8' });
  assert.equal(lines.status, 0, lines.stderr);
  assert.deepEqual(lines.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { anomalies: { type: string }[] }).anomalies.map((a) => a.type)), [['effusion'], [], ['swelling']]);
  writeFileSync(jl, '{"not": "a string"}\n');
  const badLine = spawnSync(process.execPath, [cli, 'structure', jl, '--jsonl'], { encoding: 'utf8' });
  assert.equal(badLine.status, 2);
  assert.match(badLine.stderr, /r\.jsonl: line 1: expected a JSON string, got object/);
  const col = spawnSync(process.execPath, [cli, 'structure', '--csv', REPORTS_CSV(), '--column', 'Nope'], { encoding: 'utf8' });
  assert.equal(col.status, 2);
  assert.match(col.stderr, /no column 'Nope'/);
});

test('cli: structure --eval DATASET scores every report against its manifest\'s anomalies', () => {
  const cli = join(projectRoot, 'bin', 'ctground.js');
  const demo = join(projectRoot, 'examples', 'demo');
  const r = spawnSync(process.execPath, [cli, 'structure', '--eval', demo, '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  // the demo report: a dilated pancreatic duct and a segment-8 liver lesion present, no aortic aneurysm
  const ev = JSON.parse(r.stdout) as { items: number; findings: { tp: number; fp: number; fn: number }; absent: { tp: number; fp: number; fn: number } };
  assert.equal(ev.items, 1);
  assert.deepEqual(ev.findings, { ...ev.findings, tp: 2, fp: 0, fn: 0 });
  assert.deepEqual(ev.absent, { ...ev.absent, tp: 1, fp: 0, fn: 0 });
  // a manifest whose gold names a certainty the taxonomy lacks is one line, exit 2
  const dir = mkdtempSync(join(tmpdir(), 'ctg-evalds-'));
  const rec = JSON.parse(readFileSync(join(demo, 'manifest.jsonl'), 'utf8')) as { report: string; anomalies: { certainty: string }[] };
  rec.anomalies[0]!.certainty = 'probable';
  writeFileSync(join(dir, 'manifest.jsonl'), JSON.stringify(rec) + '\n');
  writeFileSync(join(dir, rec.report), readFileSync(join(demo, rec.report)));
  const bad = spawnSync(process.execPath, [cli, 'structure', '--eval', dir], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.match(bad.stderr, /manifest\.jsonl: study demo: unknown certainty 'probable'/);
});
