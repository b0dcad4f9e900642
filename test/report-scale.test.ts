import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../src/common/index.ts';
import { charClasses, charClassRuns, readCsvColumn, structureReport } from '../src/report/index.ts';
import { REPORTS_CSV } from './helpers/shared.ts';

/**
 * Issue 26: no cost quadratic in the report length. Each anomaly's m_t used to travel as a dense
 * array as long as the whole report, so `structure FILE --json` of a 200 KB report needed about
 * 4 GB and crashed. The child's own peak RSS and CPU time are read from inside it (an --import hook
 * prints process.resourceUsage() at exit), so the figures are the CLI's and not this runner's.
 */

const cli = join(projectRoot, 'bin', 'ctground.js');
const HOOK = `data:text/javascript,process.on('exit',()=>{const u=process.resourceUsage();process.stderr.write('USAGE '+u.maxRSS+' '+(u.userCPUTime+u.systemCPUTime)+'\\n')})`;

function realReport(chars: number): string {
  const { texts } = readCsvColumn(REPORTS_CSV(), 'Findings_EN');
  let s = '';
  for (let i = 0; s.length < chars; i = (i + 1) % texts.length) s += `${texts[i]!}\n`;
  return s;
}

function runCli(args: string[]): { status: number | null; stdout: string; stderr: string; rssMb: number; cpuS: number; wallS: number } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', HOOK, cli, ...args], { encoding: 'utf8', maxBuffer: 1 << 30 });
  const wallS = (performance.now() - t0) / 1000;
  const m = /USAGE (\d+) (\d+)/.exec(r.stderr);
  assert.ok(m, `no usage line in stderr: ${r.stderr.slice(0, 300)}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.replace(/USAGE .*\n/, ''), rssMb: Number(m[1]) / 1024, cpuS: Number(m[2]) / 1e6, wallS };
}

test('scale: a 200 KB real-text report through `structure FILE --json` in < 5 s CPU and < 500 MB peak RSS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctg-scale-'));
  const f = join(dir, 'r200k.txt');
  const text = realReport(200_000);
  writeFileSync(f, text);
  const r = runCli(['structure', f, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { anomalies: { charClasses: { length: number; runs: number[][] } }[] };
  assert.ok(out.anomalies.length > 1000, `${out.anomalies.length} anomalies`);
  for (const a of out.anomalies) assert.equal(a.charClasses.length, text.length);
  console.log(`200 KB report: ${out.anomalies.length} anomalies, ${r.cpuS.toFixed(2)} s CPU, ${r.wallS.toFixed(2)} s wall, ${r.rssMb.toFixed(0)} MB peak RSS`);
  assert.ok(r.cpuS < 5, `${r.cpuS} s CPU`);
  assert.ok(r.rssMb < 500, `${r.rssMb} MB`);
});

test('scale: a 10 MB report finishes or is refused with one line, in bounded memory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctg-scale-'));
  const f = join(dir, 'r10m.txt');
  writeFileSync(f, realReport(10_000_000));
  const r = runCli(['structure', f, '--json', '--compact']);
  if (r.status === 0) assert.ok(r.stdout.length > 0);
  else {
    assert.equal(r.status, 2);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^ctground: /);
  }
  console.log(`10 MB report: exit ${r.status}, ${r.cpuS.toFixed(1)} s CPU, ${r.rssMb.toFixed(0)} MB peak RSS`);
  assert.ok(r.rssMb < 2048, `${r.rssMb} MB`);
});

test('charClassRuns expands to exactly charClasses, overlaps included', () => {
  const text = 'A 12 mm hypodense nodule in segment 6 of the liver and a cyst.';
  for (const a of structureReport(text).anomalies) {
    const dense = new Array<number>(text.length).fill(0);
    for (const [s, e, k] of charClassRuns(text.length, a)) dense.fill(k, s, e);
    assert.deepEqual(dense, Array.from(charClasses(text, a)));
  }
  // nested and overlapping spans: the later one in order wins, as in the dense fill
  const spans = [
    { start: 0, end: 10, text: '', class: 'anomaly' as const },
    { start: 2, end: 4, text: '', class: 'size' as const },
    { start: 3, end: 6, text: '', class: 'location' as const },
    { start: 8, end: 12, text: '', class: 'anatomy' as const },
  ];
  const t = 'x'.repeat(14);
  const dense = new Array<number>(t.length).fill(0);
  for (const [s, e, k] of charClassRuns(t.length, { spans })) dense.fill(k, s, e);
  assert.deepEqual(dense, Array.from(charClasses(t, { spans })));
  assert.throws(() => charClassRuns(5, { spans }), RangeError);
});
