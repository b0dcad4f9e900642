import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadTaxonomy } from '../src/common/index.ts';
import { charClasses, structureReport, type StructuredAnomaly } from '../src/report/index.ts';

const brief = (a: StructuredAnomaly): string => `${a.organ} ${a.type} ${a.certainty}`;
const words = (a: StructuredAnomaly, cls: string): string[] => a.spans.filter((s) => s.class === cls).map((s) => s.text);

test('structure: clean synthetic phrasing (the data generator\'s templates)', () => {
  const r = structureReport('A 12 mm hypodense nodule in segment 6 of the liver.');
  assert.equal(r.anomalies.length, 1);
  const a = r.anomalies[0]!;
  assert.equal(brief(a), 'liver nodule present');
  assert.deepEqual(words(a, 'size'), ['12 mm']);
  assert.deepEqual(words(a, 'density'), ['hypodense']);
  assert.deepEqual(words(a, 'location'), ['segment 6']);
  assert.equal(a.anomaly.text, 'nodule');
});

test('structure: several locations split into one anomaly each, sizes paired by "respectively"', () => {
  const r = structureReport('Cysts in the right kidney and left kidney measuring 8 mm and 15 mm, respectively.');
  assert.deepEqual(r.anomalies.map(brief), ['kidney cyst present', 'kidney cyst present']);
  assert.deepEqual(r.anomalies.map((a) => [words(a, 'location'), words(a, 'size')]), [[['right'], ['8 mm']], [['left'], ['15 mm']]]);
  // Without 'respectively' both sizes stay with both locations.
  const r2 = structureReport('Cysts in the right kidney and left kidney measuring 8 mm and 15 mm.');
  assert.deepEqual(r2.anomalies.map((a) => words(a, 'size')), [['8 mm', '15 mm'], ['8 mm', '15 mm']]);
});

test('structure: a size written before each place is that place\'s; a list of places after "and" stays in the statement', () => {
  // real CT-RATE phrasing (validation_reports.csv): both verbs ('evaluated', 'observed') used to cut
  // the clause at 'and', and the right adrenal nodule was lost
  const r = structureReport('Nodular lesions evaluated in favor of adenoma with a diameter of 12 mm in the left adrenal gland and 11 mm in diameter in the right adrenal gland are observed in the upper abdominal sections.');
  assert.deepEqual(r.anomalies.map((a) => [brief(a), words(a, 'location'), words(a, 'size').filter((w) => /\d/.test(w))]), [
    ['adrenal nodule present', ['left'], ['12 mm']], ['adrenal nodule present', ['right'], ['11 mm']],
  ]);
  const k = structureReport('Calculus images of 4.8 mm diameter in the upper pole of the right kidney and 3.5 mm in diameter in the middle pole of the left kidney were observed.');
  assert.deepEqual(k.anomalies.map((a) => [words(a, 'location').filter((w) => w === 'right' || w === 'left'), words(a, 'size').filter((w) => /\d/.test(w))]), [[['right'], ['4.8 mm']], [['left'], ['3.5 mm']]]);
  // a new statement after 'and' (its own finding) is still a clause of its own
  const t = structureReport('The thyroid parenchyma is smaller than normal and a 12 mm suspicious nodule is observed on the left side.');
  assert.deepEqual(t.anomalies.map((a) => [brief(a), words(a, 'location'), words(a, 'size')]), [['thyroid nodule uncertain', ['on the left'], ['12 mm']]]);
  // a plural list of segments ('liver segments 8 and 7', CT-RATE) is one place per segment (issue
  // 26: it used to stay one phrase and one anomaly); the list's word 'segments' goes with each number
  const seg = structureReport('Hypodense lesions measuring 19 mm in diameter were observed in liver segments 8 and 7.');
  assert.deepEqual(seg.anomalies.map((a) => [a.organ, words(a, 'location')]), [['liver', ['segments', '8']], ['liver', ['segments', '7']]]);
  const b = structureReport('Bronchiectasis is observed in the right lung middle lobe medial segment, and in this localization, bronchiectasis is accompanied by minimal peribronchial thickening.');
  const bx = b.anomalies.filter((a) => a.type === 'bronchiectasis');
  assert.equal(bx.length, 2);
  for (const a of bx) assert.deepEqual(words(a, 'location'), ['right', 'middle lobe', 'medial segment']);
});

test('structure: a shared side distributes over coordinated lobes; "both lungs" stays one anomaly', () => {
  const r = structureReport('A few millimetric nonspecific nodules are observed in the upper lobe and lower lobe of the right lung.');
  assert.deepEqual(r.anomalies.map((a) => words(a, 'location')), [['upper lobe', 'right'], ['lower lobe', 'right']]);
  const b = structureReport('Millimetric parenchymal nodules were observed in both lungs.');
  assert.equal(b.anomalies.length, 1);
  assert.deepEqual(words(b.anomalies[0]!, 'location'), ['both']);
  const c = structureReport('There are linear atelectasis in the right lung middle lobe medial segment, left lung lower lobe and upper lobe lingular segment.');
  assert.deepEqual(c.anomalies.map((a) => words(a, 'location').join(' ')), ['right middle lobe medial segment', 'left lower lobe', 'left upper lobe lingular segment']);
});

test('structure: negation before and after, scope ends at the clause', () => {
  const cases: [string, string[]][] = [
    ['No pleural effusion.', ['chest effusion absent']],
    ['Pericardial effusion-thickening was not observed.', ['mediastinum effusion absent', 'mediastinum wall_thickening absent']],
    ['No mass lesion was detected in the mediastinum.', ['mediastinum mass absent']],
    ['The liver is free of focal lesions.', ['liver mass absent']],
    ['Thoracic esophageal calibration was normal and no significant tumoral wall thickening was detected.', ['mediastinum wall_thickening absent']],
    ['No pleural effusion, but atelectasis is seen in the left lower lobe.', ['chest effusion absent', 'lung atelectasis present']],
    ['The nodule in the right lung seen in the previous examination has resolved.', ['lung nodule absent']],
    ['Emphysema without bronchiectasis.', ['lung emphysema present', 'lung bronchiectasis absent']],
  ];
  for (const [text, want] of cases) assert.deepEqual(structureReport(text).anomalies.map(brief), want, text);
});

test('structure: hedges make the hedged finding uncertain, not the finding a diagnosis is hedged about', () => {
  const cases: [string, string[]][] = [
    ['Possible consolidation in the right lower lobe.', ['lung consolidation uncertain']],
    ['A small pleural effusion cannot be excluded.', ['chest effusion uncertain']],
    ['Left kidney dimensions decreased (atrophy?).', ['kidney atrophy uncertain']],
    ['A nodule in the left lower lobe, suspicious for metastasis.', ['lung nodule present']],
    ['Nodules of 8 mm were observed on the fissure on the left (intrapulmonary lymph node?).', ['lung nodule present']],
    ['Findings may be compatible with viral pneumonia.', ['lung consolidation uncertain']],
  ];
  for (const [text, want] of cases) assert.deepEqual(structureReport(text).anomalies.map(brief), want, text);
});

test('structure: organ conventions of issue 4', () => {
  const organ = (t: string): string[] => structureReport(t).anomalies.map((a) => a.organ);
  assert.deepEqual(organ('Right pleural thickening.'), ['chest']);
  assert.deepEqual(organ('Calcified plaques in the coronary arteries.'), ['aorta']);
  assert.deepEqual(organ('Sliding type hiatal hernia was observed.'), ['stomach']);
  assert.deepEqual(organ('Enlarged subcarinal lymph node.'), ['mediastinum']);
  assert.deepEqual(organ('Compression fracture of the L2 vertebral body.'), ['abdomen']);
  assert.deepEqual(organ('Compression fracture at T9.'), ['chest']);
  assert.deepEqual(organ('Dilatation of the intrahepatic bile ducts.'), ['liver']);
  assert.deepEqual(organ('The ascending aorta is 42 mm and shows fusiform dilatation.'), ['aorta']);
  assert.equal(structureReport('The ascending aorta is 42 mm and shows fusiform dilatation.').anomalies[0]!.type, 'aneurysm');
  assert.deepEqual(organ('Hepatomegaly.'), ['liver']);
  for (const a of structureReport('Bilateral pleural effusion and atelectasis in the lower lobes. Gallstones. Thyroid nodule.').anomalies) {
    assert.ok(loadTaxonomy().reportOrgans.includes(a.organ));
  }
});

test('structure: sentences carry their organ classes (anatomical prediction)', () => {
  const t = 'Trachea and both main bronchi are open. Heart size is normal. A 5 mm cyst in the left kidney.';
  const r = structureReport(t);
  assert.deepEqual(r.sentences.map((s) => s.organs), [['lung'], ['mediastinum'], ['kidney']]);
});

test('charClasses: m_t marks exactly the related phrases with 1 + their class index', () => {
  const t = 'No pleural effusion. A 12 mm hypodense nodule in segment 6 of the liver.';
  const r = structureReport(t);
  const classes = loadTaxonomy().phraseClasses;
  for (const a of r.anomalies) {
    const m = charClasses(t, a);
    assert.equal(m.length, t.length);
    // Independent reconstruction: walk the characters and look each one up in the spans.
    for (let j = 0; j < t.length; j++) {
      const sp = a.spans.find((s) => j >= s.start && j < s.end);
      assert.equal(m[j], sp ? classes.indexOf(sp.class) + 1 : 0, `char ${j}`);
    }
    assert.ok(m.slice(a.anomaly.start, a.anomaly.end).every((v) => v === 1), 'the anomaly phrase has class 1 (anomaly)');
  }
  const nodule = r.anomalies.find((a) => a.type === 'nodule')!;
  const m = charClasses(t, nodule);
  assert.equal(m[t.indexOf('liver')], classes.indexOf('anatomy') + 1);
  assert.equal(m[t.indexOf('effusion')], 0, 'a phrase of another anomaly is 0');
  assert.throws(() => charClasses('short', nodule), RangeError);
});
