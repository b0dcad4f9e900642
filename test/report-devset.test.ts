import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../src/common/index.ts';
import { evaluateDevSet, loadDevSet } from '../src/report/index.ts';

const DEV = join(projectRoot, 'test', 'fixtures', 'report', 'dev.jsonl');

test('dev set: anomaly-level F1 >= 0.85 on present/uncertain findings, no negated finding reported as present', () => {
  const items = loadDevSet(DEV);
  assert.ok(items.length >= 60, `dev set has ${items.length} texts`);
  const gold = items.flatMap((i) => i.anomalies);
  // The set covers negation, hedging, multi-location splits and many organ groups.
  assert.ok(gold.filter((a) => a.certainty === 'absent').length >= 10);
  assert.ok(gold.filter((a) => a.certainty === 'uncertain').length >= 5);
  assert.ok(new Set(gold.map((a) => a.organ)).size >= 10);
  const ev = evaluateDevSet(items);
  assert.ok(ev.findings.f1 >= 0.85, `F1 ${ev.findings.f1.toFixed(3)} (P ${ev.findings.precision.toFixed(3)}, R ${ev.findings.recall.toFixed(3)})`);
  assert.equal(ev.negatedAsPresent, 0);
});

test('dev-set evaluator: counts on a hand-made fixture with known answers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctg-report-'));
  const path = join(dir, 'f.jsonl');
  const lines = [
    // structured as 'chest effusion absent': annotated present here on purpose -> 1 FN (findings), 1 FP (absent)
    { id: 'a', text: 'No pleural effusion.', anomalies: [{ organ: 'chest', type: 'effusion', certainty: 'present', location: [] }] },
    // right-lung nodule annotated on the left: the location word is missing -> 1 FN + 1 FP
    { id: 'b', text: 'A nodule in the right lung.', anomalies: [{ organ: 'lung', type: 'nodule', certainty: 'present', location: ['left'] }] },
    // exact match -> 1 TP
    { id: 'c', text: 'A nodule in the right lung.', anomalies: [{ organ: 'lung', type: 'nodule', certainty: 'present', location: ['right'] }] },
    // a negated finding that the annotation says is negated, structured correctly -> absent TP
    { id: 'd', text: 'No mass in the liver.', anomalies: [{ organ: 'liver', type: 'mass', certainty: 'absent', location: ['liver'] }] },
  ];
  writeFileSync(path, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  const ev = evaluateDevSet(loadDevSet(path));
  assert.deepEqual([ev.findings.tp, ev.findings.fp, ev.findings.fn], [1, 1, 2]);
  assert.deepEqual([ev.absent.tp, ev.absent.fp, ev.absent.fn], [1, 1, 0]);
  assert.equal(ev.findings.precision, 0.5);
  assert.equal(ev.findings.recall, 1 / 3);
  assert.equal(ev.negatedAsPresent, 0);
  // The same effusion annotated as absent but a structurer calling it present would count; check the
  // counter by annotating a present finding as absent.
  writeFileSync(path, JSON.stringify({ id: 'e', text: 'Bilateral pleural effusion.', anomalies: [{ organ: 'chest', type: 'effusion', certainty: 'absent', location: ['bilateral'] }] }) + '\n');
  assert.equal(evaluateDevSet(loadDevSet(path)).negatedAsPresent, 1);
  // location words are found from a word's start: '7' is not in '27x27 mm' (nor 'segments' in 'segment 8')
  const cyst = (location: string[]) => ({ id: 'f', text: 'There is a cyst in segment 8 of the liver, measuring 27x27 mm.', anomalies: [{ organ: 'liver', type: 'cyst', certainty: 'present', location }] });
  writeFileSync(path, [cyst(['segment', '7']), cyst(['segments', '8']), cyst(['segment', '8'])].map((l) => JSON.stringify(l)).join('\n') + '\n');
  const loc = evaluateDevSet(loadDevSet(path));
  assert.deepEqual([loc.findings.tp, loc.findings.fn, loc.findings.fp], [1, 2, 2]);
  writeFileSync(path, '{"text": "x", "anomalies": [{"organ": "moon", "type": "nodule", "certainty": "present"}]}\n');
  assert.throws(() => loadDevSet(path), /unknown organ 'moon'/);
});
