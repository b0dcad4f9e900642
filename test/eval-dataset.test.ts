import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeToyDataset } from './train-fixture.ts';
import { readManifest, splitOf, evaluateStudies, medianLesionMm3, oracleGrounder, schemeOrganLookup, formatEval, evalJson, quantile } from '../src/eval/index.ts';
import { readVolume } from '../src/volume/index.ts';
import { organsForReportClass } from '../src/anatomy/index.ts';

const root = mkdtempSync(join(tmpdir(), 'ctg-evalds-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

test('organ oracle on a toy split: IoU is lesion/organ volume, and the difficulty report agrees', async () => {
  const data = await makeToyDataset(join(root, 'd'), { studies: 4, seed: 11, split: () => 'test' });
  const studies = splitOf(readManifest(data), 'test');
  const read = (p: string) => readVolume(p);
  const r = await evaluateStudies(oracleGrounder('organ', { organs: schemeOrganLookup }), data, studies, { read, organs: schemeOrganLookup, split: 'test', quiet: true });
  // independent count: the toy lesions lie inside their organ, so IoU(organ, lesion) = |lesion| / |organ class|
  const ratios: number[] = [];
  for (const s of studies) {
    const labels = await readVolume(join(data, s.labels));
    for (const a of s.anomalies) {
      const m = await readVolume(join(data, a.mask!));
      const organ = new Set(organsForReportClass(a.organ, { primary: true }));
      let l = 0, o = 0;
      for (let i = 0; i < m.data.length; i++) { if (m.data[i]) l++; if (organ.has(labels.data[i]!)) o++; }
      ratios.push(l / o);
    }
  }
  assert.equal(r.all.n, ratios.length);
  const byOrder = r.anomalies.map((a) => a.score.ious[0]!);
  byOrder.forEach((iou, i) => assert.ok(Math.abs(iou - ratios[i]!) < 1e-12, `anomaly ${i}: IoU ${iou} vs ratio ${ratios[i]}`));
  assert.equal(r.all.accuracy, ratios.filter((x) => x > 0.1).length / ratios.length);
  assert.ok(Math.abs(r.difficulty.lesionOrganRatio.focal.median - quantile(ratios, 0.5)) < 1e-12);
  assert.equal(r.difficulty.studies, studies.length);
  assert.equal(r.difficulty.anomaliesPerReport.n, studies.length);
  // the toy reports put one anomaly per sentence
  assert.equal(r.difficulty.anomaliesPerSentence.max, 1);
  const json = evalJson(r);
  for (const k of ['accuracy', 'dice', 'miou']) assert.ok(typeof json[k] === 'number' && (json[k] as number) >= 0 && (json[k] as number) <= 1, k);
  assert.match(formatEval(r), /\| focal \| \d+ \|/);
  // the prior oracle's blob takes the median lesion volume of the given studies
  const vol = await medianLesionMm3(data, studies, read);
  assert.ok(vol > 4 * 4 * 4 && Number.isFinite(vol));
});
