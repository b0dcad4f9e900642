import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../src/common/index.ts';
import { PYTHON } from './dicom-tools.ts';
import { uploadToOrthanc, type TestOrthanc } from './orthanc.ts';
import { TS } from './shared.ts';

/** One study of a PACS fixture: a copy of the bundled series as study `uid` (series `${uid}.1`), with dicom_copy.py's extra flags. */
export interface FixtureStudy { name: string; uid: string; extra: string[] }

/**
 * Fills `pacs` for the DICOMweb label tests: each study is a copy of the bundled CT series under
 * `tmp/src/<name>`, all of one patient, and one SR holding `sr.text` in study `sr.study` (`tmp/sr.dcm`).
 */
export async function uploadPacsFixture(pacs: TestOrthanc, tmp: string, o: { patient: string; pid: string; studies: FixtureStudy[]; sr: { study: string; text: string } }): Promise<void> {
  const who = ['--patient', o.patient, '--pid', o.pid];
  for (const s of o.studies) {
    const dir = join(tmp, 'src', s.name);
    const r = spawnSync(PYTHON, [join(projectRoot, 'test', 'helpers', 'dicom_copy.py'), TS('example_ct_dicom'), dir, '--study', s.uid, '--series', `${s.uid}.1`, ...who, ...s.extra], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    await uploadToOrthanc(pacs, readdirSync(dir).sort().map((f) => readFileSync(join(dir, f))));
  }
  const sr = join(tmp, 'sr.dcm');
  const r = spawnSync(PYTHON, [join(projectRoot, 'test', 'helpers', 'make_sr.py'), sr, '--study', o.sr.study, '--text', o.sr.text, ...who], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  await uploadToOrthanc(pacs, [readFileSync(sr)]);
}
