import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeToyDataset } from './train-fixture.ts';
import { readManifest, splitOf, evaluateStudies, medianLesionMm3, oracleGrounder, schemeOrganLookup, formatEval, evalJson, quantile } from '../src/eval/index.ts';
import { readVolume } from '../src/volume/index.ts';
import { organsForReportClass, organValue } from '../src/anatomy/index.ts';
import { anomalyBox, type GroundingMap, type GroundingModel } from '../src/model/index.ts';

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

test('eval scores a boxed map over the hull of its box and the lesion\'s exactly as over the whole grid', async () => {
  const { createRng } = await import('../src/common/index.ts');
  const { boxedVolume, denseVolume } = await import('../src/volume/index.ts');
  const { scoreAnomaly, instanceCounts, peakDistanceMm } = await import('../src/eval/index.ts');
  const data = await makeToyDataset(join(root, 'hull'), { studies: 3, seed: 5, split: () => 'test' });
  const studies = splitOf(readManifest(data), 'test');
  const read = (p: string) => readVolume(p);
  const rng = createRng(9);
  const calls: Map<string, Float32Array>[] = [];
  // per anomaly a map of a few random blobs (over the lesion, beside it, far off), or none at all
  const grounder: GroundingModel = {
    name: 'blobs',
    async ground({ ct, report }) {
      const [nx, ny, nz] = ct.size, out = new Map<string, GroundingMap>(), made = new Map<string, Float32Array>();
      const study = studies[calls.length]!;
      calls.push(made);
      for (const a of report.anomalies) {
        const dense = new Float32Array(nx * ny * nz), mask = study.anomalies.find((x) => x.id === a.id)?.mask;
        // a lesion voxel, for a blob near the lesion
        const gt = mask ? (await readVolume(join(data, mask))).data : null, at = gt ? gt.findIndex((v) => v > 0) : -1;
        for (let b = 0, n = rng.next() < 0.3 ? 0 : 3; b < n; b++) {
          const c = b === 0 && at >= 0 ? [at % nx + rng.int(-2, 2), Math.floor(at / nx) % ny + rng.int(-2, 2), Math.floor(at / (nx * ny)) + rng.int(-2, 2)] : [rng.int(0, nx - 1), rng.int(0, ny - 1), rng.int(0, nz - 1)];
          const r = rng.uniform(1, 5), peak = rng.uniform(0.2, 1);
          for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) {
            const d = Math.hypot(x - c[0]!, y - c[1]!, z - c[2]!);
            if (d < r) { const o = x + nx * (y + ny * z); dense[o] = Math.max(dense[o]!, peak * (1 - d / r)); }
          }
        }
        made.set(a.id, dense);
        out.set(a.id, boxedVolume({ ...ct, data: dense }));
      }
      return out;
    },
  };
  const r = await evaluateStudies(grounder, data, studies, { read, organs: schemeOrganLookup, split: 'test', quiet: true, groundingBox: anomalyBox });
  // the same maps scored on whole-grid arrays (one ground call per study, in order)
  assert.equal(calls.length, studies.length);
  let k = 0, empty = 0;
  for (const [i, s] of studies.entries()) {
    const ct = await readVolume(join(data, s.ct));
    for (const a of s.anomalies.filter((x) => x.mask)) {
      const gt = (await readVolume(join(data, a.mask!))).data, map = denseVolume(boxedVolume({ ...ct, data: calls[i]!.get(a.id)! })).data;
      const got = r.anomalies[k++]!;
      assert.deepEqual(got.score, scoreAnomaly(map, gt));
      assert.deepEqual(got.instances, instanceCounts(map, gt, ct.size));
      assert.equal(got.peakDistanceMm, peakDistanceMm(map, gt, ct.size, ct.spacing));
      if (!map.some((v) => v > 0)) { empty++; assert.equal(got.peakDistanceMm, Infinity); }
    }
  }
  assert.equal(k, r.anomalies.length);
  assert.ok(empty > 0 && r.anomalies.some((a) => a.score.ious[0]! > 0), 'the maps cover an empty one and some overlapping their lesion');
});

test('difficulty: anomalies per sentence count sentences as the structurer splits them', async () => {
  const { difficultyOf } = await import('../src/eval/index.ts');
  // '8 mm. The' ends a sentence, 'approx. 5 mm' and '5.2 cm' do not
  const text = 'A cyst of approx. 5 mm in the liver and a 5.2 cm mass in the liver. A stone measuring 8 mm. The spleen has a cyst.';
  const at = (w: string, from = 0) => ({ organ: 'liver', spans: [{ start: text.indexOf(w, from), class: 'anomaly' }] });
  const anomalies = [at('cyst'), at('mass'), at('stone'), at('cyst', text.indexOf('spleen'))];
  // the sentence counts read the reports alone, no scored results
  const d = difficultyOf([], [{ text, anomalies }]);
  // three sentences holding 2, 1 and 1 anomalies
  assert.equal(d.anomaliesPerSentence.max, 2);
  assert.equal(d.anomaliesPerSentence.n, 3);
});
