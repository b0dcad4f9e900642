import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeToyDataset } from './train-fixture.ts';
import { readManifest, splitOf, evaluateStudies, medianLesionMm3, oracleGrounder, schemeOrganLookup, formatEval, evalJson, quantile } from '../src/eval/index.ts';
import { readVolume } from '../src/volume/index.ts';
import { organsForReportClass, organValue } from '../src/anatomy/index.ts';
import { anomalyBox } from '../src/model/index.ts';

const root = mkdtempSync(join(tmpdir(), 'ctg-evalds-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

test('organ oracle on a toy split: IoU is lesion/organ volume, and the difficulty report agrees', async () => {
  const data = await makeToyDataset(join(root, 'd'), { studies: 4, seed: 11, split: () => 'test' });
  const studies = splitOf(readManifest(data), 'test');
  const read = (p: string) => readVolume(p);
  const r = await evaluateStudies(oracleGrounder('organ', { organs: schemeOrganLookup }), data, studies, { read, organs: schemeOrganLookup, split: 'test', quiet: true, groundingBox: anomalyBox });
  // independent count: the toy lesions lie inside their organ, so IoU(organ, lesion) = |lesion| / |organ class|
  const ratios: number[] = [], extents: number[] = [];
  for (const s of studies) {
    const labels = await readVolume(join(data, s.labels));
    for (const a of s.anomalies) {
      // the box grounding uses: the named kidney's voxels (toy grid: 32³ at 4 mm, identity direction)
      const place = a.spans.find((x) => x.class === 'anatomy')!.text;
      const named = new Set([organValue(place === 'right kidney' ? 'kidney_right' : place === 'left kidney' ? 'kidney_left' : 'liver')]);
      const lo = [99, 99, 99], hi = [-1, -1, -1];
      for (let k = 0, o = 0; k < 32; k++) for (let j = 0; j < 32; j++) for (let i = 0; i < 32; i++, o++) {
        if (!named.has(labels.data[o]!)) continue;
        [i, j, k].forEach((v, ax) => { lo[ax] = Math.min(lo[ax]!, v); hi[ax] = Math.max(hi[ax]!, v); });
      }
      extents.push(4 * Math.max(...[0, 1, 2].map((ax) => hi[ax]! - lo[ax]!)));
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
  assert.deepEqual(r.anomalies.map((a) => a.organExtentMm), extents);
  const line = formatEval(r).split('\n').find((l) => l.startsWith('grounded anomalies by the largest side'))!;
  const counts = [...line.matchAll(/(\d+)\/(\d+)/g)].map((m) => Number(m[2]));
  assert.equal(counts.reduce((a, b) => a + b, 0), r.anomalies.length);
  // the prior oracle's blob takes the median lesion volume of the given studies
  const vol = await medianLesionMm3(data, studies, read);
  assert.ok(vol > 4 * 4 * 4 && Number.isFinite(vol));
});
