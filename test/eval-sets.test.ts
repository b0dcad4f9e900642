import { test } from 'node:test';
import assert from 'node:assert/strict';
import { realFirst, setKind, type ManifestStudy } from '../src/eval/index.ts';

const study = (background: string | undefined, source = false): ManifestStudy => ({
  id: 's', ct: 'ct', labels: 'l', report: 'r', split: 'test', ...(background ? { background } : {}),
  anomalies: [{ id: 'a1', organ: 'lung', type: 'nodule', certainty: 'present', spans: [], ...(source ? { source: { dataset: 'LIDC-IDRI' } } : {}) }],
});

test('eval tables list real-lesion sets first, then real backgrounds, then phantoms, stable within a kind', () => {
  assert.equal(setKind([study('phantom')]), 'synthetic');
  assert.equal(setKind([study('real')]), 'real background');
  assert.equal(setKind([study('real-lidc:totalsegmentator-example-slab', true)]), 'real lesions');
  // an imported study (no background written) is annotated real data
  assert.equal(setKind([study(undefined)]), 'real lesions');
  assert.equal(setKind([study('real'), study('phantom')]), 'real background');
  const sets = [{ n: 'P1', kind: 'synthetic' as const }, { n: 'R1', kind: 'real background' as const }, { n: 'L1', kind: 'real lesions' as const }, { n: 'P2', kind: 'synthetic' as const }, { n: 'L2', kind: 'real lesions' as const }];
  assert.deepEqual(realFirst(sets).map((s) => s.n), ['L1', 'L2', 'R1', 'P1', 'P2']);
});
