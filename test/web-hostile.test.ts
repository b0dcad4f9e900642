import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { projectRoot } from '../src/common/index.ts';
import { loadGrounder } from '../src/pipeline/index.ts';
import { startServer } from '../src/web/index.ts';
import { chromiumSkip, findChromium } from './helpers/chromium.ts';

// Issue 28.1 in a real browser: a page of another origin, and a DNS-rebinding name for 127.0.0.1,
// try what the issue reproduced with curl. Skipped where no Chromium is found, unless CTGROUND_CI=1.
const CHROMIUM = findChromium();

test('web hostile page (real Chromium): another origin cannot change studies; a rebinding Host gets nothing', { timeout: 240_000, skip: chromiumSkip() }, async () => {
  assert.ok(CHROMIUM.path, `${CHROMIUM.problem}: CTGROUND_CI=1 requires the browser test`);
  const root = mkdtempSync(join(tmpdir(), 'ctg-hostile-'));
  const data = join(root, 'data');
  cpSync(join(projectRoot, 'examples', 'demo'), data, { recursive: true });
  const srv = await startServer({ dataDir: data, port: 0, grounder: () => loadGrounder('oracle:organ-side'), log: () => undefined });
  const api = (path: string, body: unknown) => fetch(new URL(path, srv.url), { method: 'POST', headers: { 'content-type': 'application/json', 'x-ctground-token': srv.token }, body: JSON.stringify(body) });
  // grounded first, so a review that got through would change the manifest
  const g = await (await api('/api/studies/demo/ground', {})).json() as { anomalies: { id: string }[] };
  const target = g.anomalies[0]!.id;
  const manifest = (): string => readFileSync(join(data, 'manifest.jsonl'), 'utf8');
  const before = manifest();
  const attack = `http://127.0.0.1:${srv.port}`;
  // the attacker's page: a "simple" cross-origin fetch (no preflight), a JSON fetch (preflighted) and a form post
  const evilHtml = `<!doctype html><html><body><form id="f" method="POST" enctype="text/plain" action="${attack}/api/upload" target="sink">
<input name='{"name":"x","report":"r","ct":"' value='"}'></form><iframe name="sink"></iframe><script>
window.results = {};
(async () => {
  const review = JSON.stringify({ anomaly: ${JSON.stringify(target)}, decision: 'reject' });
  try { await fetch('${attack}/api/studies/demo/review', { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: review }); window.results.simple = 'sent'; } catch (e) { window.results.simple = 'blocked'; }
  try { const r = await fetch('${attack}/api/studies/demo/review', { method: 'POST', headers: { 'content-type': 'application/json' }, body: review }); window.results.json = r.status; } catch (e) { window.results.json = 'blocked'; }
  try { const r = await fetch('${attack}/api/studies'); window.results.read = await r.text(); } catch (e) { window.results.read = 'blocked'; }
  document.getElementById('f').submit();
  setTimeout(() => { window.results.done = true; }, 1500);
})();
</script></body></html>`;
  const evil = createServer((_, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end(evilHtml); });
  await new Promise<void>((ok) => evil.listen(0, '127.0.0.1', () => ok()));
  const evilPort = (evil.address() as { port: number }).port;
  const ctx = await chromium.launchPersistentContext(join(root, 'profile'), {
    executablePath: CHROMIUM.path, headless: true,
    // DNS rebinding without a DNS server: the browser resolves the attacker's name to 127.0.0.1
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--host-resolver-rules=MAP rebind.example 127.0.0.1'],
  });
  try {
    const page = await ctx.newPage();
    await page.goto(`http://127.0.0.1:${evilPort}/`);
    await page.waitForFunction(() => (window as any).results?.done === true, null, { timeout: 60_000 });
    const results = await page.evaluate(() => (window as any).results) as { simple: string; json: unknown; read: string };
    assert.equal(results.json, 'blocked', 'the JSON fetch fails its CORS preflight');
    assert.equal(results.read, 'blocked', 'a cross-origin read gets no response');
    assert.equal(manifest(), before, 'no request of the other origin changed the manifest');

    // the rebinding page: same origin as far as the browser knows, but its Host is not the server's
    const rebound = await page.goto(`http://rebind.example:${srv.port}/`);
    assert.equal(rebound?.status(), 421);
    assert.ok(!(await page.content()).includes(srv.token), 'the token is not handed to the rebinding page');
    const read = await page.evaluate(async () => (await fetch('/api/studies')).status);
    assert.equal(read, 421);

    // and the server's own page still works in the same browser (it sends the token)
    await page.goto(srv.url);
    const ok = await page.evaluate(async (t) => {
      const token = document.querySelector<HTMLMetaElement>('meta[name="ctground-token"]')!.content;
      const r = await fetch('/api/studies/demo/review', { method: 'POST', headers: { 'content-type': 'application/json', 'x-ctground-token': token }, body: JSON.stringify({ anomaly: t, decision: 'reject' }) });
      return r.status;
    }, target);
    assert.equal(ok, 200);
    assert.notEqual(manifest(), before);
  } finally {
    await ctx.close();
    await srv.close();
    await new Promise<void>((ok) => evil.close(() => ok()));
    rmSync(root, { recursive: true, force: true });
  }
});
