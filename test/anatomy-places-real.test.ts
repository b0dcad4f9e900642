import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { organValue, resolvePlace } from '../src/anatomy/index.ts';
import { readVolume, type Volume } from '../src/volume/index.ts';

// Place words resolved on the real CTs of ../shared. The points were checked by hand: each was
// read off a rendered slice of the plain CT (radiological view, 5-voxel grid drawn over it) at a
// landmark whose part is unambiguous, then confirmed to lie in the organ's label; how each was
// picked is written beside it.
const TS = resolve(import.meta.dirname, '..', '..', 'shared', 'data', 'totalsegmentator');
const at = (v: Volume, i: number, j: number, k: number): number => i + v.size[0] * (j + v.size[1] * k);

async function kidneyMap(): Promise<Volume<Uint8Array>> {
  // example_ct with TotalSegmentator's whole-scan reference kidney masks (the slab's map cuts the kidneys' lower poles off)
  const ct = await readVolume(join(TS, 'example_ct.nii.gz'));
  const data = new Uint8Array(ct.data.length);
  for (const o of ['kidney_left', 'kidney_right']) (await readVolume(join(TS, 'example_ct_ref', `${o}.nii.gz`))).data.forEach((v, p) => { if (v) data[p] = organValue(o); });
  return { ...ct, data };
}

test('kidney poles lie along the kidney\'s own long axis (example_ct, reference kidney masks)', async () => {
  const map = await kidneyMap();
  const part = (w: string) => resolvePlace('kidney_right', `the ${w} of the right kidney`, map, 'ctground')!.mask;
  const up = part('upper pole'), mid = part('middle part'), lo = part('lower pole');
  // coronal slice j = 40: the right kidney spans k 69–100 there. (78, 40, 98): the top of its
  // outline (upper pole); (88, 40, 69): the bottom of its outline (lower pole); (83, 40, 83): beside
  // the renal sinus fat at the hilum (middle)
  for (const [p, want] of [[[78, 40, 98], up], [[88, 40, 69], lo], [[83, 40, 83], mid]] as const) {
    const q = at(map, p[0], p[1], p[2]);
    assert.equal(map.data[q], organValue('kidney_right'));
    assert.equal(want[q], 1, `(${p.join(', ')})`);
    assert.equal(up[q]! + mid[q]! + lo[q]!, 1);
  }
  // the thirds partition the kidney, and they are not the box's z-thirds: the kidney lies oblique
  for (const side of ['kidney_right', 'kidney_left']) {
    const m = ['lower pole', 'middle part', 'upper pole'].map((w) => resolvePlace(side, w, map, 'ctground')!.mask);
    const v = organValue(side), [nx, ny] = map.size;
    const ks: number[] = [], vox: number[] = [];
    map.data.forEach((x, p) => { if (x === v) { vox.push(p); ks.push(Math.floor(p / (nx * ny))); } });
    const k0 = Math.min(...ks), k1 = Math.max(...ks);
    let differ = 0;
    vox.forEach((p, n) => {
      assert.equal(m[0]![p]! + m[1]![p]! + m[2]![p]!, 1);
      if (!m[Math.min(2, Math.floor(((ks[n]! - k0) / (k1 - k0 + 1)) * 3))]![p]) differ++;
    });
    assert.ok(differ / vox.length > 0.05, `${side}: ${differ} of ${vox.length} voxels change third`);
  }
});

test('right and left hepatic lobe by the plane through the gallbladder and the IVC (example_ct_sm, example_seg)', async () => {
  const seg = await readVolume(join(TS, 'example_seg.nii.gz'));
  const R = resolvePlace('liver', 'the right lobe of the liver', seg, 'totalsegmentator')!, L = resolvePlace('liver', 'the left lobe of the liver', seg, 'totalsegmentator')!;
  // (50, 78, 15): anterior liver 28 mm left of the midline (x = −28 mm), in front of the stomach:
  // the lateral left lobe; (94, 40, 15): posterior liver lateral to the right kidney (segment 6/7);
  // (93, 65, 9): liver on the patient's right of the gallbladder at the gallbladder's level (segment 5)
  for (const [p, lobe] of [[[50, 78, 15], L], [[94, 40, 15], R], [[93, 65, 9], R]] as const) {
    const q = at(seg, p[0], p[1], p[2]);
    assert.equal(seg.data[q], 5, 'a liver voxel');
    assert.equal(lobe.mask[q], 1, `(${p.join(', ')})`);
  }
  let r = 0, l = 0, liver = 0;
  seg.data.forEach((v, p) => { if (v === 5) liver++; r += R.mask[p]!; l += L.mask[p]!; assert.ok(!(R.mask[p] && L.mask[p])); });
  assert.equal(r + l, liver);
  // the left lobe (segments 2–4) is about a third of the liver
  assert.ok(l / liver > 0.2 && l / liver < 0.45, `${l / liver}`);
  // ctground's scheme merges the IVC into 'vessels': the plane cannot be found there
  assert.equal(resolvePlace('liver', 'right lobe', seg, 'ctground'), null);
  assert.equal(resolvePlace('liver', 'the liver', seg, 'totalsegmentator'), null);
});

test('vertebral levels and rib numbers from the map\'s own vertebrae and ribs (the DICOM series\' map)', async () => {
  const seg = await readVolume(join(TS, 'example_seg_dicom.nii.gz'));
  const t12 = resolvePlace('spine', 'the T12 vertebral body', seg, 'totalsegmentator')!.mask;
  const rib = resolvePlace('ribs', 'the right 12th rib', seg, 'totalsegmentator')!.mask;
  let n = 0;
  seg.data.forEach((v, p) => { assert.equal(t12[p], v === 32 ? 1 : 0); assert.equal(rib[p], v === 115 ? 1 : 0); n += t12[p]!; });
  assert.ok(n > 1000);
  // the anatomy behind the labels: the 12th ribs articulate with T12, so the rib's medial end lies
  // nearer T12 than T11 (checked on the map itself, independent of the resolver)
  const [nx, ny] = seg.size, sp = seg.spacing;
  const pts = (val: number) => { const o: number[][] = []; seg.data.forEach((v, p) => { if (v === val) o.push([p % nx * sp[0], Math.floor(p / nx) % ny * sp[1], Math.floor(p / (nx * ny)) * sp[2]]); }); return o; };
  const r12 = pts(115), v12 = pts(32), v11 = pts(33);
  const cx = v12.reduce((s, p) => s + p[0]!, 0) / v12.length;
  const medial = r12.reduce((b, p) => (Math.abs(p[0]! - cx) < Math.abs(b[0]! - cx) ? p : b));
  const nearest = (set: number[][]) => Math.min(...set.map((q) => Math.hypot(q[0]! - medial[0]!, q[1]! - medial[1]!, q[2]! - medial[2]!)));
  assert.ok(nearest(v12) < nearest(v11), `rib 12's medial end: ${nearest(v12)} mm from T12, ${nearest(v11)} mm from T11`);
  assert.equal(resolvePlace('spine', 'the L4 vertebral body', seg, 'totalsegmentator'), null, 'L4 is not in this field of view');
  assert.equal(resolvePlace('spine', 'T12', seg, 'ctground'), null);
});

test('a named lung lobe is the map\'s lobe', async () => {
  const seg = await readVolume(join(TS, 'example_seg.nii.gz'));
  const rll = resolvePlace('lung_lower_lobe_right', 'a nodule in the lower lobe of the right lung', seg, 'totalsegmentator')!.mask;
  seg.data.forEach((v, p) => assert.equal(rll[p], v === 14 ? 1 : 0));
  assert.equal(resolvePlace('lung_lower_lobe_right', 'the left lower lobe', seg, 'totalsegmentator'), null);
});
