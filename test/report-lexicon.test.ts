import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTaxonomy, projectRoot } from '../src/common/index.ts';
import { recognizePhrases } from '../src/report/index.ts';

const L = (f: string): any => JSON.parse(readFileSync(join(projectRoot, 'data', 'lexicon', `${f}.json`), 'utf8'));
const fold = (t: string): string => (t.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).map((w) => (w.length > 3 && w.endsWith('s') && !/(ss|us|is)$/.test(w) ? w.slice(0, -1) : w)).join(' ');

test('lexicons: every term belongs to exactly one phrase class, organs and types are taxonomy ids', () => {
  const tax = loadTaxonomy();
  const types = new Set(tax.anomalyTypes.map((t) => t.id));
  const seen = new Map<string, string>();
  const dups: string[] = [];
  const add = (t: string, cls: string): void => {
    const k = fold(t);
    const o = seen.get(k);
    if (o !== undefined && o !== cls) dups.push(`'${t}': ${o} and ${cls}`);
    seen.set(k, cls);
  };
  for (const e of L('anomaly').entries) {
    assert.ok(types.has(e.type) || e.type === 'other', e.type);
    if (e.organ) assert.ok(tax.reportOrgans.includes(e.organ), e.organ);
    for (const o of Object.values(e.organMap ?? {})) assert.ok(tax.reportOrgans.includes(o as string));
    for (const t of e.terms) add(t, 'anomaly');
  }
  for (const [organ, terms] of Object.entries(L('anatomy').organs)) {
    assert.ok(tax.reportOrgans.includes(organ), organ);
    for (const t of terms as string[]) add(t, 'anatomy');
  }
  for (const e of L('location').entries) for (const t of e.terms) add(t, 'location');
  const m = L('modifiers');
  for (const t of m.size.terms) add(t, 'size');
  for (const t of m.property.terms) add(t, 'property');
  for (const ts of Object.values(m.density.terms)) for (const t of ts as string[]) add(t, 'density');
  for (const t of m.change.terms) add(t, 'change');
  for (const ts of Object.values(m.diagnosis.terms)) for (const t of ts as string[]) add(t, 'diagnosis');
  const c = L('certainty');
  for (const k of ['negPre', 'negPost', 'hedgePre', 'hedgePost']) for (const t of c[k]) add(t, 'certainty');
  for (const t of c.negPostChange) add(t, 'change');
  for (const t of L('ignore').terms) add(t, 'ignore');
  assert.deepEqual(dups, []);
  assert.ok(seen.size > 1000);
});

test('lexicons: each of the 25 organ classes can be named, and each phrase class is recognized', () => {
  const tax = loadTaxonomy();
  const organs = new Set(Object.entries(L('anatomy').organs).filter(([, t]) => (t as string[]).length > 0).map(([o]) => o));
  assert.deepEqual([...organs].sort(), [...tax.reportOrgans].sort());
  const t = 'A new 12 mm spiculated hypodense nodule in the right upper lobe of the lung, possibly metastasis.';
  const got = new Set(recognizePhrases(t).phrases.map((p) => p.class));
  assert.deepEqual([...got].sort(), [...tax.phraseClasses].sort());
});
