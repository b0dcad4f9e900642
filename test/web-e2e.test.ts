import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { projectRoot } from '../src/common/index.ts';
import { loadGrounder, groundStudy, writeFindingsSeg, labelMapOf } from '../src/pipeline/index.ts';
import { writeNifti } from '../src/volume/index.ts';
import { sharedDir } from './helpers/shared.ts';
import { startServer } from '../src/web/index.ts';
import { chromiumSkip, findChromium } from './helpers/chromium.ts';

// skipped with one line where no Chromium is found, unless CTGROUND_CI=1 (CI must run it: then it fails)
const CHROMIUM = findChromium();
// CTGROUND_SCREENSHOTS=1 also writes the page's screenshots into docs/images (how the docs' images are made)
const SHOTS = process.env.CTGROUND_SCREENSHOTS === '1' ? join(projectRoot, 'docs', 'images') : null;

/** Pixels of the overlay colour (niivue's "red" map over a grey CT) in a PNG screenshot. */
function redPixels(png: Buffer): number {
  const img = PNG.sync.read(png);
  let n = 0;
  for (let p = 0; p < img.width * img.height; p++) {
    const r = img.data[p * 4]!, g = img.data[p * 4 + 1]!, b = img.data[p * 4 + 2]!;
    if (r > g + 50 && r > b + 50) n++;
  }
  return n;
}

/** Headless Chromium with a fresh profile under `root`. */
function launchBrowser(root: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(join(root, 'profile'), {
    executablePath: CHROMIUM.path, headless: true, viewport: { width: 1400, height: 820 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** The viewer at `url` in a new page, once it says it is ready (up to 3 min: it may ground the study first); the page's errors are collected from the start. */
async function openViewer(ctx: BrowserContext, url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForFunction(() => (window as any).ctground?.ready === true, null, { timeout: 180_000 });
  return { page, errors };
}

test('web e2e: open the demo study, click an anomaly, the overlay appears and the slice jumps; accept changes the manifest', { timeout: 240_000, skip: chromiumSkip() }, async () => {
  assert.ok(CHROMIUM.path, `${CHROMIUM.problem}: CTGROUND_CI=1 requires the browser test (apt-get install chromium, or set CHROME_PATH)`);
  const root = mkdtempSync(join(tmpdir(), 'ctg-e2e-'));
  const data = join(root, 'data');
  cpSync(join(projectRoot, 'examples', 'demo'), data, { recursive: true });
  // the viewer is under test, not the model: the organ-side oracle gives every finding a region to show
  const srv = await startServer({ dataDir: data, port: 0, grounder: () => loadGrounder('oracle:organ-side'), log: () => undefined });
  const ctx = await launchBrowser(root);
  try {
    // the first open grounds the study on the server
    const { page, errors } = await openViewer(ctx, srv.url);
    assert.deepEqual(errors, []);
    const status = await page.textContent('#status');
    assert.match(status ?? '', /anomal/);
    const canvas = page.locator('#gl');
    const before = await canvas.screenshot();
    if (SHOTS) { mkdirSync(SHOTS, { recursive: true }); await page.screenshot({ path: join(SHOTS, 'viewer-study.png') }); }
    assert.ok(redPixels(before) < 50, 'no overlay before an anomaly is chosen');

    // the first anomaly the report asserts with a region above threshold
    // the API answers only with the token the server put in the page (issue 28.1)
    const study = await page.evaluate(async () => (await fetch('/api/studies/demo', { headers: { 'x-ctground-token': document.querySelector<HTMLMetaElement>('meta[name="ctground-token"]')!.content } })).json());
    const target = (study.anomalies as { id: string; certainty: string; box: unknown; focusVoxel: number[] }[]).find((a) => a.certainty !== 'absent' && a.box);
    assert.ok(target, 'the demo study has a finding to show');
    const voxBefore = (await page.evaluate(() => (window as any).ctground.crosshairVox())) as number[];
    await page.click(`#anomalies li[data-id="${target.id}"] .meta`);
    await page.waitForFunction(() => (window as any).ctground.overlays() >= 1);
    await page.waitForTimeout(300);
    const after = await canvas.screenshot();
    const red = redPixels(after);
    assert.ok(red > 200, `overlay should be visible after the click, found ${red} red pixels`);
    const voxAfter = (await page.evaluate(() => (window as any).ctground.crosshairVox())) as number[];
    assert.notDeepEqual(voxAfter.map(Math.round), voxBefore.map(Math.round), 'the crosshair moved');
    for (let a = 0; a < 3; a++) assert.ok(Math.abs(voxAfter[a]! - target.focusVoxel[a]!) <= 1, `slice jumped to ${voxAfter} not to the finding's best slices ${target.focusVoxel}`);
    // the report phrases of the chosen anomaly are highlighted
    assert.ok((await page.locator('#report .ph.sel').count()) > 0);
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'viewer-anomaly.png') });

    // the threshold slider redraws overlay and box without errors
    await page.locator('#threshold').fill('0.3');
    await page.waitForTimeout(400);
    assert.equal(await page.textContent('#threshold-value'), '0.30');
    assert.deepEqual(errors, []);

    const manifestBefore = readFileSync(join(data, 'manifest.jsonl'), 'utf8');
    await page.click(`#anomalies li[data-id="${target.id}"] button[data-act="accept"]`);
    await page.waitForSelector(`#anomalies li[data-id="${target.id}"] .badge.accepted`);
    const manifestAfter = readFileSync(join(data, 'manifest.jsonl'), 'utf8');
    assert.notEqual(manifestAfter, manifestBefore);
    const rec = JSON.parse(manifestAfter.trim().split('\n')[0]!);
    const entry = rec.anomalies.find((a: { id: string; review?: unknown }) => a.id === target.id && a.review);
    assert.equal(entry.review.decision, 'accepted');
    assert.ok(existsSync(join(data, entry.mask)));

    if (SHOTS) {
      await page.click('#toolbar [data-view="render"]');
      await page.waitForTimeout(500);
      await page.screenshot({ path: join(SHOTS, 'viewer-3d.png') });
    }
  } finally {
    await ctx.close();
    await srv.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test('web e2e: a study whose record names a DICOM SEG written by ground shows its segments as findings, overlay where the SEG says', { timeout: 300_000, skip: chromiumSkip() }, async () => {
  assert.ok(CHROMIUM.path, `${CHROMIUM.problem}: CTGROUND_CI=1 requires the browser test (apt-get install chromium, or set CHROME_PATH)`);
  const root = mkdtempSync(join(tmpdir(), 'ctg-e2e-seg-'));
  const data = join(root, 'data');
  const dicom = join(sharedDir(), 'data', 'totalsegmentator', 'example_ct_dicom');
  const report = 'A 2 cm hypodense cyst in the right lobe of the liver.\nPossible small stone in the left kidney.\n';
  // what `ground --ct <DICOM folder>` writes, made in-process: the SEG and the labels it must equal
  const r = await groundStudy({ ct: dicom, report, totalSegmentator: join(sharedDir(), 'data', 'totalsegmentator', 'example_seg_dicom.nii.gz') }, await loadGrounder('oracle:organ'));
  mkdirSync(join(data, 's1'), { recursive: true });
  await writeNifti(join(data, 's1', 'ct.nii.gz'), r.ct);
  writeFileSync(join(data, 's1', 'report.txt'), report);
  assert.ok(writeFindingsSeg(join(data, 's1', 'findings.seg.dcm'), r, dicom));
  writeFileSync(join(data, 'manifest.jsonl'), JSON.stringify({ id: 's1', ct: 's1/ct.nii.gz', report: 's1/report.txt', seg: 's1/findings.seg.dcm' }) + '\n');
  const labels = labelMapOf(r.findings.map((f) => r.maps.get(f.id)!), r.threshold, r.ct).data;
  // the viewer must show the SEG, not ground the study itself
  const srv = await startServer({ dataDir: data, port: 0, grounder: () => Promise.reject(new Error('the SEG study must not be grounded')), log: () => undefined });
  const ctx = await launchBrowser(root);
  try {
    const { page, errors } = await openViewer(ctx, srv.url);
    assert.deepEqual(errors, []);
    const study = await page.evaluate(async () => (await fetch('/api/studies/s1', { headers: { 'x-ctground-token': document.querySelector<HTMLMetaElement>('meta[name="ctground-token"]')!.content } })).json());
    const shown = study.anomalies as { id: string; organ: string; type: string; certainty: string; phrase: string; voxels: number; focusVoxel: number[]; mapUrl: string }[];
    assert.deepEqual(shown.map((a) => [a.id, a.organ, a.type, a.certainty]), [['a1', 'liver', 'cyst', 'present'], ['a2', 'kidney', 'stone', 'uncertain']]);
    assert.match(shown[0]!.phrase, /cyst/);
    // each segment's region is labels.nii.gz's region of that finding, voxel for voxel in count
    shown.forEach((a, n) => assert.equal(a.voxels, labels.filter((v) => v === n + 1).length, a.id));
    assert.equal(await page.locator('#anomalies li[data-id]').count(), 2);
    await page.click('#anomalies li[data-id="a1"] .meta', { timeout: 120_000 });
    await page.waitForFunction(() => (window as any).ctground.overlays() >= 1, null, { timeout: 120_000 });
    await page.waitForTimeout(300);
    const red = redPixels(await page.locator('#gl').screenshot());
    assert.ok(red > 200, `the segment's overlay should show, found ${red} red pixels`);
    const vox = (await page.evaluate(() => (window as any).ctground.crosshairVox())) as number[];
    // niivue counts voxels in its RAS-reoriented copy: a DICOM (LPS-stored) grid's x and y run mirrored there
    const want = shown[0]!.focusVoxel.map((v, a) => (r.ct.direction[a * 3 + a]! < 0 ? r.ct.size[a]! - 1 - v : v));
    for (let a = 0; a < 3; a++) assert.ok(Math.abs(vox[a]! - want[a]!) <= 1, `slice at ${vox}, the segment's best slices ${want} (file grid ${shown[0]!.focusVoxel})`);
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
    await srv.close();
    rmSync(root, { recursive: true, force: true });
  }
});
