import { test } from 'node:test';
import assert from 'node:assert/strict';
import { anomalyCrop, cropLabels, defaultConfig, positionChannels, POSITION_FEATURES } from '../src/model/index.ts';
import type { Volume } from '../src/volume/index.ts';
import { loadOrganScheme, organsForReportClass } from '../src/anatomy/index.ts';

test('position features give each crop voxel its place in the organ box: -1 and +1 at the faces, 0 at the centre', () => {
  // a hand-made label map: anisotropic voxels, off-origin, the liver a 10×6×3-voxel block
  const size: [number, number, number] = [30, 20, 12], spacing: [number, number, number] = [2, 3, 4], origin: [number, number, number] = [-50, 20, 100];
  const liver = cropLabels({ id: 'a', organ: 'liver', type: 'mass', certainty: 'present', spans: [] })[0]!;
  const labels: Volume<Uint8Array> = { data: new Uint8Array(size[0] * size[1] * size[2]), size, spacing, origin, direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] };
  const lo = [5, 3, 2], hi = [14, 8, 4];
  for (let k = lo[2]!; k <= hi[2]!; k++) for (let j = lo[1]!; j <= hi[1]!; j++) for (let i = lo[0]!; i <= hi[0]!; i++) labels.data[i + size[0] * (j + size[1] * k)] = liver;
  // the organ box in world mm, from the voxel centres (independent of the crop code)
  const bmin = [0, 1, 2].map((a) => origin[a]! + lo[a]! * spacing[a]!), bmax = [0, 1, 2].map((a) => origin[a]! + hi[a]! * spacing[a]!);
  const cfg = defaultConfig('full');
  const geom = anomalyCrop(labels, { id: 'a', organ: 'liver', type: 'mass', certainty: 'present', spans: [] }, cfg);
  const G = cfg.crop.grid, n = G ** 3;
  assert.deepEqual(geom.size, [G, G, G]);
  const pos = positionChannels(G, geom.positionScale, geom.positionOffset);
  assert.equal(pos.length, POSITION_FEATURES * n);
  let checked = 0, inside = 0;
  for (let k = 0; k < G; k += 3) for (let j = 0; j < G; j += 2) for (let i = 0; i < G; i++) {
    const o = i + G * (j + G * k), idx = [i, j, k];
    for (let a = 0; a < 3; a++) {
      const w = geom.origin[a]! + idx[a]! * geom.spacing[a]!;
      const u = (2 * (w - (bmin[a]! + bmax[a]!) / 2)) / (bmax[a]! - bmin[a]!);
      const uc = Math.max(-2, Math.min(2, u));
      assert.ok(Math.abs(pos[a * 5 * n + o]! - uc / 2) < 1e-4, `axis ${a} voxel ${idx}: ${pos[a * 5 * n + o]} vs ${uc / 2}`);
      assert.ok(Math.abs(pos[(a * 5 + 2) * n + o]! - Math.cos((Math.PI * uc) / 2)) < 1e-4);
      if (Math.abs(u) <= 1) inside++;
      checked++;
    }
  }
  assert.ok(inside > 100 && inside < checked, `${inside} of ${checked} checks inside the organ box`);
});

test('the crop follows an anatomy phrase that names one structure of the report class: the vertebral body of a chest or abdomen finding is the spine', () => {
  const value = (name: string) => loadOrganScheme().byName.get(name)!.value;
  const anomaly = (organ: string, anatomy: string[], location: string[] = []) => ({
    id: 'a', organ, type: 'osteolysis', certainty: 'present', spans: [
      ...anatomy.map((text) => ({ start: 0, end: text.length, text, class: 'anatomy' })),
      ...location.map((text) => ({ start: 0, end: text.length, text, class: 'location' })),
    ],
  });
  assert.deepEqual(cropLabels(anomaly('chest', ['vertebral body'], ['T8'])), [value('spine')]);
  assert.deepEqual(cropLabels(anomaly('abdomen', ['Vertebral-body'], ['L2'])), [value('spine')]);
  assert.deepEqual(cropLabels(anomaly('chest', ['rib'], ['right', '5th'])), [value('ribs')]);
  // a word that only contains a term is not the term; without a naming phrase the class's organs stay
  const chest = organsForReportClass('chest', { primary: true });
  assert.ok(chest.length > 1);
  assert.deepEqual(cropLabels(anomaly('chest', ['pleura'])), chest);
  assert.deepEqual(cropLabels(anomaly('chest', ['ribsy'])), chest);
  // the side still narrows a named structure that has sides (here none: the lungs are not named by terms)
  assert.deepEqual(cropLabels(anomaly('lung', ['lung'], ['left', 'upper lobe'])), [value('lung_upper_lobe_left')]);
});
