import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../src/common/index.ts';
import { evaluateDevSet, loadDevSet, readCsvColumn, splitSentences } from '../src/report/index.ts';
import { REPORTS_CSV } from './helpers/shared.ts';

const DIR = join(projectRoot, 'test', 'fixtures', 'report');
const DEV = join(DIR, 'ctrate-dev.jsonl');
const patientOf = (id: string): string => /^valid_(\d+)_/.exec(id)![1]!;

test('CT-RATE dev set: no patient of the frozen gold or of the earlier CT-RATE fixtures, one report per patient', () => {
  const items = loadDevSet(DEV);
  assert.ok(items.length >= 140, `${items.length} sentences`);
  const gold = new Set([...readFileSync(join(DIR, 'gold', 'ctrate.jsonl'), 'utf8').matchAll(/valid_(\d+)_/g)].map((m) => m[1]!));
  assert.ok(gold.size >= 90, `gold names ${gold.size} patients`);
  const earlier = new Set(['dev.jsonl', 'heldout.jsonl'].flatMap((f) => [...readFileSync(join(DIR, f), 'utf8').matchAll(/valid_(\d+)_/g)].map((m) => m[1]!)));
  const reportOf = new Map<string, string>();
  for (const it of items) {
    const p = patientOf(it.id);
    assert.ok(!gold.has(p), `${it.id}: patient ${p} is in the gold`);
    assert.ok(!earlier.has(p), `${it.id}: patient ${p} is in an earlier fixture`);
    const report = it.id.split('#')[0]!;
    assert.equal(reportOf.get(p) ?? report, report, `patient ${p}: two reports`);
    reportOf.set(p, report);
  }
});

test('CT-RATE dev set: each text is the named sentence of the named report', () => {
  const { ids, texts } = readCsvColumn(REPORTS_CSV(), 'Findings_EN');
  const byId = new Map(ids.map((id, i) => [id, texts[i]!]));
  for (const it of loadDevSet(DEV)) {
    const [report, k] = it.id.split('#') as [string, string];
    const text = byId.get(report);
    assert.ok(text !== undefined, `${report} not in the CSV`);
    const s = splitSentences(text)[Number(k) - 1];
    assert.ok(s, `${it.id}: no such sentence`);
    assert.equal(text.slice(s.start, s.end).trim(), it.text, it.id);
  }
});

test('CT-RATE dev set: present+uncertain F1 >= 0.85, no negated finding reported present', () => {
  const ev = evaluateDevSet(loadDevSet(DEV));
  assert.ok(ev.findings.f1 >= 0.85, `F1 ${ev.findings.f1.toFixed(3)}`);
  assert.equal(ev.negatedAsPresent, 0);
});
