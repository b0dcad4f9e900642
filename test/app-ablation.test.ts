import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { makeToyDataset } from './train-fixture.ts';
import { freshTextEncoder } from '../src/train/index.ts';
import { readManifest } from '../src/eval/index.ts';
import { projectRoot } from '../src/common/index.ts';

const root = mkdtempSync(join(tmpdir(), 'ctg-ablation-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

test('ablation trains each variant, scores it beside the oracles in one table, and a rerun reuses what is done', async () => {
  const data = join(root, 'data'), text = join(root, 'text'), out = join(root, 'out');
  await makeToyDataset(data, { studies: 6, seed: 4, split: (i) => (i < 4 ? 'train' : i < 5 ? 'val' : 'test') });
  freshTextEncoder(text, readManifest(data).map((s) => readFileSync(join(data, s.report), 'utf8')), 1);
  const args = [join(projectRoot, 'bin', 'ctground.js'), 'ablation', '--data', data, '--test', data, '--out', out, '--steps', '4', '--validate-every', '2',
    '--variants', 'baseline,full', '--grid', '16', '--widths', '4,8,8,8', '--text', text];
  const env = { ...process.env, CTGROUND_QUIET: '1' };
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  const md = readFileSync(join(out, 'ablation.md'), 'utf8');
  for (const row of ['oracle: organ ', 'oracle: organ-side', 'oracle: prior', '| baseline | ✗ | ✗ | organ | 4 |', '| full | ✓ | ✓ | organ | 4 |']) assert.ok(md.includes(row), `missing row ${row}\n${md}`);
  assert.match(md, /Made by `ctground ablation --data /);
  // every row's numbers are the saved evaluation's
  const full = JSON.parse(readFileSync(join(out, 'full', `eval-data.json`), 'utf8')) as { accuracy: number; n: number };
  assert.ok(md.includes(`| ${(100 * full.accuracy).toFixed(1)} |`));
  assert.equal(full.n, readManifest(data).flatMap((s) => s.anomalies.filter((a) => a.mask)).length);
  const weights = statSync(join(out, 'full', 'model.safetensors')).mtimeMs;
  const again = spawnSync(process.execPath, args, { encoding: 'utf8', env });
  assert.equal(again.status, 0, again.stderr);
  assert.equal(statSync(join(out, 'full', 'model.safetensors')).mtimeMs, weights, 'a finished variant is not trained again');
  assert.equal(readFileSync(join(out, 'ablation.md'), 'utf8'), md);
});

test('ablation --crops paper: only full crops around the organ; the baseline is trained and scored on the body', async () => {
  const data = join(root, 'data2'), text = join(root, 'text2'), out = join(root, 'out2');
  await makeToyDataset(data, { studies: 6, seed: 5, split: (i) => (i < 4 ? 'train' : i < 5 ? 'val' : 'test') });
  freshTextEncoder(text, readManifest(data).map((s) => readFileSync(join(data, s.report), 'utf8')), 1);
  const args = [join(projectRoot, 'bin', 'ctground.js'), 'ablation', '--data', data, '--test', data, '--out', out, '--steps', '2', '--validate-every', '2',
    '--variants', 'baseline,full', '--grid', '16', '--widths', '4,8,8,8', '--text', text, '--crops', 'paper'];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, CTGROUND_QUIET: '1' } });
  assert.equal(r.status, 0, r.stderr);
  const md = readFileSync(join(out, 'ablation.md'), 'utf8');
  for (const row of ['| baseline | ✗ | ✗ | body | 2 |', '| full | ✓ | ✓ | organ | 2 |']) assert.ok(md.includes(row), `missing row ${row}\n${md}`);
  const region = (v: string) => (JSON.parse(readFileSync(join(out, v, 'config.json'), 'utf8')) as { model: { crop: { region?: string } } }).model.crop.region;
  assert.equal(region('baseline'), 'body');
  assert.notEqual(region('full'), 'body');
  const bad = spawnSync(process.execPath, [...args.slice(0, -1), 'some'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr.trim(), /^ctground: --crops must be 'shared' or 'paper', not 'some'$/);
});
