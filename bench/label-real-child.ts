/**
 * One measured process of `bench label --real` (bench/label.bench.ts), so each gets its own peak
 * memory: `baseline CT OUT` reads the CT and writes one uint8 mask of it (the floor any labeler
 * pays); `label DATA OUT [MODEL]` labels the dataset's one study as `ctground label` does.
 * Prints one JSON line: seconds, stage times, peak RSS.
 */
import { join } from 'node:path';
import { readVolume, writeNifti } from '../src/volume/index.ts';
import { labelStudies, studiesFromDataset, type StageTimes } from '../src/pipeline/index.ts';

const [mode, a, b, model] = process.argv.slice(2);
const t0 = performance.now();
let times: StageTimes | undefined;
if (mode === 'baseline') {
  const ct = await readVolume(a!);
  const tRead = performance.now();
  // a body mask (above −500 HU): one whole-grid uint8 mask, as label writes one per finding
  const mask = new Uint8Array(ct.data.length);
  for (let v = 0; v < mask.length; v++) mask[v] = ct.data[v]! > -500 ? 1 : 0;
  await writeNifti(join(b!, 'mask.nii.gz'), { ...ct, data: mask });
  const secs = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ secs, read: (tRead - t0) / 1000, write: (performance.now() - tRead) / 1000, maxRssMb: process.resourceUsage().maxRSS / 1024 }));
} else if (mode === 'label') {
  const r = await labelStudies(studiesFromDataset(a!), b!, {
    jobs: 1, modelSpec: model || undefined,
    onStudy: (o) => { if (o.status === 'labeled') times = o.times; },
  });
  if (r.failed.length) throw new Error(`${r.failed[0]!.id}: ${r.failed[0]!.reason}`);
  console.log(JSON.stringify({ secs: (performance.now() - t0) / 1000, times, maxRssMb: process.resourceUsage().maxRSS / 1024 }));
} else {
  throw new Error('usage: label-real-child.ts baseline CT OUT | label DATA OUT [MODEL]');
}
