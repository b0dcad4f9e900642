import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { TS } from './helpers/shared.ts';
import { readVolume, writeNifti, voxelBoxToWorld, type Vec3 } from '../src/volume/index.ts';
import { fromTotalSegmentator } from '../src/anatomy/index.ts';
import { loadGrounder } from '../src/pipeline/index.ts';
import { startServer, imageKind, type RunningServer } from '../src/web/index.ts';
import { assertOneLineError, cliProcess } from './helpers/cli.ts';

const REPORT = 'Liver: A 3 cm hypodense mass in the right lobe of the liver.\nKidneys: A 12 mm cyst in the left kidney.\n';
const LIMIT = 2_000_000;
let dir: string, srv: RunningServer;
const logs: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ctg-web-'));
  mkdirSync(join(dir, 's1'));
  copyFileSync(TS('example_ct_sm.nii.gz'), join(dir, 's1', 'ct.nii.gz'));
  await writeNifti(join(dir, 's1', 'anatomy.nii.gz'), fromTotalSegmentator(await readVolume(TS('example_seg.nii.gz'))));
  writeFileSync(join(dir, 's1', 'report.txt'), REPORT);
  writeFileSync(join(dir, 'manifest.jsonl'), JSON.stringify({ id: 's1', ct: 's1/ct.nii.gz', labels: 's1/anatomy.nii.gz', report: 's1/report.txt', split: 'test', anomalies: [] }) + '\n');
  // a file the server must never hand out, beside the data folder, and a symlink pointing at it
  writeFileSync(join(dir, '..', `${dir.split('/').pop()}-secret.txt`), 'secret');
  symlinkSync(join(dir, '..', `${dir.split('/').pop()}-secret.txt`), join(dir, 'link.txt'));
  srv = await startServer({ dataDir: dir, port: 0, maxUploadBytes: LIMIT, grounder: () => loadGrounder('oracle:organ-side'), log: (l) => logs.push(l) });
});

after(async () => {
  await srv?.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(join(dir, '..', `${dir.split('/').pop()}-secret.txt`), { force: true });
});

/** A GET with the path sent byte for byte (fetch would normalise `..` away before the server saw it). */
function get(path: string): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port: srv.port, path, method: 'GET', headers: { 'x-ctground-token': srv.token } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', fail);
    req.end();
  });
}
async function post(path: string, body: unknown): Promise<{ status: number; json: Record<string, any> }> {
  // as the page sends it: its own Origin, JSON, and the token the server put in the page
  const r = await fetch(new URL(path, srv.url), { method: 'POST', headers: { 'content-type': 'application/json', origin: srv.url.replace(/\/$/, ''), 'x-ctground-token': srv.token }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: r.status, json: (await r.json()) as Record<string, any> };
}
const manifest = (): Record<string, any>[] => readFileSync(join(dir, 'manifest.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

test('web: files outside the data folder are refused with a clear message', async () => {
  assert.equal((await get('/files/s1/report.txt')).body, REPORT);
  for (const p of ['/files/../../etc/passwd', '/files/s1/../../secret.txt', '/files/..%2f..%2fetc%2fpasswd', '/files/s1%2f..%2f..%2fsecret.txt', '/files/%2e%2e/%2e%2e/etc/passwd', '/files/%2Fetc%2Fpasswd', '/files/s1%5c..%5c..%5cx.txt']) {
    const r = await get(p);
    assert.equal(r.status, 403, `${p} → ${r.status} ${r.body}`);
    assert.match(JSON.parse(r.body).error, /^path: /);
  }
  const link = await get('/files/link.txt');
  assert.equal(link.status, 403);
  assert.match(JSON.parse(link.body).error, /outside the data folder/);
  writeFileSync(join(dir, 's1', 'notes.sh'), 'echo hi');
  assert.equal((await get('/files/s1/notes.sh')).status, 403);
  assert.equal((await get('/api/studies/..%2f..')).status, 403);
  assert.equal((await get('/api/studies/a%2fb')).status, 400);
  assert.equal((await get('/api/studies/nope')).status, 404);
});

test('web: oversized uploads, non-image files and empty reports are refused', async () => {
  const big = await post('/api/upload', { name: 'x', report: 'r', ct: Buffer.alloc(LIMIT).toString('base64') });
  assert.equal(big.status, 413);
  assert.match(big.json.error, /upload: .*limit/);
  const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
  const notImage = await post('/api/upload', { name: 'x.nii.gz', report: 'a report', ct: png.toString('base64') });
  assert.equal(notImage.status, 415);
  assert.equal(notImage.json.error, 'upload: CT is not a NIfTI, NRRD or MHA image');
  const huge = await post('/api/upload', { name: 'x', report: 'Liver: a cyst. '.repeat(80_000), ct: readFileSync(TS('example_seg.nii.gz')).toString('base64') });
  assert.equal(huge.status, 413, JSON.stringify(huge.json));
  assert.match(huge.json.error, /^upload: report: report is \d+ bytes, over the 1048576-byte limit/);
  const notJson = await post('/api/upload', 'not json');
  assert.equal(notJson.status, 400);
  const empty = await post('/api/upload', { name: 'x', report: '  ', ct: readFileSync(TS('example_ct_sm.nii.gz')).toString('base64') });
  assert.equal(empty.status, 400);
  assert.equal(manifest().length, 1, 'nothing refused may reach the manifest');
  // the detector itself, on real files: the gzipped NIfTI, its raw form, and a report
  const gz = readFileSync(TS('example_ct_sm.nii.gz'));
  assert.equal(imageKind(gz), '.nii.gz');
  assert.equal(imageKind(gunzipSync(gz)), '.nii');
  assert.equal(imageKind(Buffer.from(REPORT)), null);
});

test('web: upload of a real CT lands inside the folder under a safe id; no identifiers in the log', async () => {
  const before = logs.length;
  // small enough for the test's limit: the TotalSegmentator label map is a valid NIfTI too
  const r = await post('/api/upload', { name: '../../DOE^JOHN.nii.gz', report: 'Liver: a 2 cm cyst.', ct: readFileSync(TS('example_seg.nii.gz')).toString('base64') });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  assert.match(r.json.id, /^[A-Za-z0-9][A-Za-z0-9._-]*$/);
  const rec = manifest().find((m) => m.id === r.json.id)!;
  assert.ok(existsSync(join(dir, rec.ct)) && rec.ct.startsWith('uploads/'));
  const logged = logs.slice(before).join('\n');
  assert.ok(logged.length > 0);
  assert.ok(!/DOE|JOHN|cyst/i.test(logged), logged);
});

test('web: grounding, accept / reject / redraw saved atomically in manifest.jsonl, export', async () => {
  const g = await post('/api/studies/s1/ground', {});
  assert.equal(g.status, 200);
  const anomalies = g.json.anomalies as { id: string; organ: string; box: { voxel: { min: Vec3; max: Vec3 } } | null; mapUrl: string }[];
  assert.ok(anomalies.length >= 2, JSON.stringify(anomalies.map((a) => a.organ)));
  const [a, b] = anomalies as [typeof anomalies[0], typeof anomalies[0]];
  assert.equal((await get(a.mapUrl)).status, 200);

  const acc = await post('/api/studies/s1/review', { anomaly: a.id, decision: 'accept', threshold: 0.5 });
  assert.equal(acc.status, 200, JSON.stringify(acc.json));
  let rec = manifest().find((m) => m.id === 's1')!;
  let entry = rec.anomalies.find((x: { id: string }) => x.id === a.id);
  assert.equal(entry.review.decision, 'accepted');
  const mask = await readVolume(join(dir, entry.mask));
  const ct = await readVolume(join(dir, 's1', 'ct.nii.gz'));
  assert.deepEqual(mask.size, ct.size);
  assert.ok(mask.data.some((v) => v > 0));

  const rej = await post('/api/studies/s1/review', { anomaly: b.id, decision: 'reject' });
  assert.equal(rej.status, 200);
  rec = manifest().find((m) => m.id === 's1')!;
  assert.equal(rec.anomalies.find((x: { id: string }) => x.id === b.id).review.decision, 'rejected');
  assert.equal(rec.anomalies.find((x: { id: string }) => x.id === b.id).mask, null);

  const box = { min: [10, 20, 5], max: [30, 40, 12] };
  const red = await post('/api/studies/s1/review', { anomaly: a.id, decision: 'redraw', box });
  assert.equal(red.status, 200);
  rec = manifest().find((m) => m.id === 's1')!;
  entry = rec.anomalies.find((x: { id: string }) => x.id === a.id);
  assert.equal(entry.review.decision, 'redrawn');
  const expect = voxelBoxToWorld(ct, { min: box.min as Vec3, max: box.max as Vec3 });
  for (let c = 0; c < 2; c++) for (let ax = 0; ax < 3; ax++) assert.ok(Math.abs(entry.box[c][ax] - expect[c]![ax]!) < 0.01);
  assert.equal(rec.anomalies.filter((x: { id: string }) => x.id === a.id).length, 1, 'a second decision replaces the first');
  assert.equal((await post('/api/studies/s1/review', { anomaly: a.id, decision: 'maybe' })).status, 400);
  assert.equal((await post('/api/studies/s1/review', { anomaly: 'zz', decision: 'accept' })).status, 404);
  assert.ok(!readFileSync(join(dir, 'manifest.jsonl'), 'utf8').includes('.tmp'));

  const tar = await fetch(new URL(`/api/studies/s1/export?token=${srv.token}`, srv.url));
  assert.equal(tar.status, 200);
  const bytes = Buffer.from(await tar.arrayBuffer());
  const names: string[] = [];
  for (let o = 0; o + 512 <= bytes.length;) {
    const name = bytes.subarray(o, o + 100).toString('utf8').replace(/\0.*$/s, '');
    if (!name) break;
    const size = parseInt(bytes.subarray(o + 124, o + 136).toString('utf8').replace(/\0.*$/s, '').trim(), 8);
    names.push(name);
    o += 512 + Math.ceil(size / 512) * 512;
  }
  for (const n of ['s1/findings.json', 's1/labels.nii.gz', `s1/maps/${a.id}.nii.gz`, `s1/masks/${a.id}.nii.gz`, 's1/review.json']) assert.ok(names.includes(n), `${n} missing from ${names}`);
});

/** A request with every header under the test's control (fetch would add or refuse some), body and all. */
function raw(method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port: srv.port, path, method, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) }, setHost: !('host' in headers) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', fail);
    req.end(body);
  });
}

test('web (issue 28.1): cross-site, token-less, non-JSON and foreign-Host requests are refused; the page\'s own are served', async () => {
  const g = await post('/api/studies/s1/ground', {});
  assert.equal(g.status, 200);
  const target = (g.json.anomalies as { id: string }[])[0]!.id;
  const before = readFileSync(join(dir, 'manifest.jsonl'), 'utf8');
  const own = srv.url.replace(/\/$/, '');
  const body = JSON.stringify({ anomaly: target, decision: 'reject' });
  const uploadBody = JSON.stringify({ name: 'x', report: 'Liver: a cyst.', ct: readFileSync(TS('example_seg.nii.gz')).toString('base64') });
  // what the issue reproduced: another site's page posting a "simple" text/plain request, with and without the token
  for (const path of ['/api/studies/s1/review', '/api/upload']) {
    const b = path.endsWith('upload') ? uploadBody : body;
    const evil = await raw('POST', path, { origin: 'http://evil.example', 'content-type': 'text/plain', 'sec-fetch-site': 'cross-site' }, b);
    assert.equal(evil.status, 403, evil.body);
    assert.match(JSON.parse(evil.body).error, /^origin: /);
    const evilJson = await raw('POST', path, { origin: 'http://evil.example', 'content-type': 'application/json', 'x-ctground-token': srv.token }, b);
    assert.equal(evilJson.status, 403, 'a foreign Origin is refused even with the token');
    const textPlain = await raw('POST', path, { origin: own, 'content-type': 'text/plain', 'x-ctground-token': srv.token }, b);
    assert.equal(textPlain.status, 415);
    const noToken = await raw('POST', path, { origin: own, 'content-type': 'application/json' }, b);
    assert.equal(noToken.status, 403);
    assert.match(JSON.parse(noToken.body).error, /^token: /);
    const badToken = await raw('POST', path, { 'content-type': 'application/json', 'x-ctground-token': srv.token.replace(/./, (c) => (c === 'a' ? 'b' : 'a')) }, b);
    assert.equal(badToken.status, 403);
    const sameSite = await raw('POST', path, { 'content-type': 'application/json', 'x-ctground-token': srv.token, 'sec-fetch-site': 'same-site' }, b);
    assert.equal(sameSite.status, 403);
  }
  assert.equal(readFileSync(join(dir, 'manifest.jsonl'), 'utf8'), before, 'no refused request changed the manifest');
  // DNS rebinding: the attacker's name resolves to 127.0.0.1, the browser sends it as Host
  for (const host of [`evil.example:${srv.port}`, 'evil.example', `127.0.0.1:${srv.port + 1}`, '']) {
    const r = await raw('GET', '/api/studies', { host, 'x-ctground-token': srv.token });
    assert.equal(r.status, 421, `Host '${host}' → ${r.status}`);
    assert.equal((await raw('GET', '/', { host })).status, 421, 'the page (and its token) is not served to a foreign Host');
  }
  // reads need the token too; the page carries it
  assert.equal((await raw('GET', '/api/studies', {})).status, 403);
  for (const host of [`127.0.0.1:${srv.port}`, `localhost:${srv.port}`]) assert.equal((await raw('GET', '/api/studies', { host, 'x-ctground-token': srv.token })).status, 200);
  const page = await raw('GET', '/', {});
  assert.equal(page.status, 200);
  assert.ok(page.body.includes(`<meta name="ctground-token" content="${srv.token}">`));
  // a curl-style call (no Origin, no Sec-Fetch-*) with the token and JSON is a tool of the user's: served
  const curl = await raw('POST', '/api/studies/s1/review', { 'content-type': 'application/json; charset=utf-8', 'x-ctground-token': srv.token }, body);
  assert.equal(curl.status, 200, curl.body);
  // the browser's own same-origin request, as the page makes it
  const browser = await raw('POST', '/api/studies/s1/review', { origin: own, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors', 'content-type': 'application/json', 'x-ctground-token': srv.token }, JSON.stringify({ anomaly: target, decision: 'accept' }));
  assert.equal(browser.status, 200, browser.body);
  // a second server start has another token
  const other = await startServer({ dataDir: dir, port: 0, grounder: () => loadGrounder('oracle:organ-side'), log: () => undefined });
  try { assert.notEqual(other.token, srv.token); } finally { await other.close(); }
});

test('web (issue 28.1): a --host beyond loopback needs --allow-remote', async () => {
  await assert.rejects(startServer({ dataDir: dir, port: 0, host: '0.0.0.0', grounder: () => loadGrounder('oracle:organ') }), /--host 0\.0\.0\.0: listens beyond this machine.*--allow-remote/);
  const r = cliProcess(['serve', '--data', dir, '--port', '0', '--host', '0.0.0.0']);
  assertOneLineError(r, null, /--host 0\.0\.0\.0: listens beyond this machine/);
});

test('web (issue 28.11): a negated finding cannot be accepted into a mask; a review threshold outside (0, 1] is refused', async () => {
  const d = mkdtempSync(join(tmpdir(), 'ctg-web11-'));
  mkdirSync(join(d, 's'));
  copyFileSync(TS('example_ct_sm.nii.gz'), join(d, 's', 'ct.nii.gz'));
  writeFileSync(join(d, 's', 'report.txt'), 'Liver: A 3 cm hypodense mass in the right lobe of the liver. No ascites.\n');
  writeFileSync(join(d, 'manifest.jsonl'), JSON.stringify({ id: 's', ct: 's/ct.nii.gz', report: 's/report.txt', split: 'test', anomalies: [] }) + '\n');
  const s2 = await startServer({ dataDir: d, port: 0, grounder: () => loadGrounder('oracle:organ-side'), log: () => undefined });
  const call = async (path: string, body: unknown): Promise<{ status: number; json: Record<string, any> }> => {
    const r = await fetch(new URL(path, s2.url), { method: 'POST', headers: { 'content-type': 'application/json', origin: s2.url.replace(/\/$/, ''), 'x-ctground-token': s2.token }, body: JSON.stringify(body) });
    return { status: r.status, json: (await r.json()) as Record<string, any> };
  };
  try {
    const g = await call('/api/studies/s/ground', {});
    assert.equal(g.status, 200);
    const list = g.json.anomalies as { id: string; certainty: string }[];
    const negated = list.find((a) => a.certainty === 'absent'), present = list.find((a) => a.certainty !== 'absent');
    assert.ok(negated && present, JSON.stringify(list));
    for (const decision of ['accept', 'redraw']) {
      const r = await call('/api/studies/s/review', { anomaly: negated.id, decision, box: { min: [1, 1, 1], max: [3, 3, 3] } });
      assert.equal(r.status, 409, JSON.stringify(r.json));
    }
    for (const threshold of [0, -0.2, 1.5, 'high']) {
      const r = await call('/api/studies/s/review', { anomaly: present.id, decision: 'accept', threshold });
      assert.equal(r.status, 400, `threshold ${threshold}`);
      assert.match(r.json.error, /^threshold: must be in \(0, 1\]/);
    }
    const rec = JSON.parse(readFileSync(join(d, 'manifest.jsonl'), 'utf8').trim());
    assert.deepEqual(rec.anomalies, [], 'nothing refused reached the manifest');
    assert.ok(!existsSync(join(d, 'grounding', 's', 'masks')), 'no mask was written');
    assert.equal((await call('/api/studies/s/review', { anomaly: present.id, decision: 'accept', threshold: 1 })).status, 200);
  } finally {
    await s2.close();
    rmSync(d, { recursive: true, force: true });
  }
});

test('web (issue 28.2): a CT upload is streamed to disk, not buffered: slot, limit, type, memory', async () => {
  const d = mkdtempSync(join(tmpdir(), 'ctg-web-up-'));
  const s3 = await startServer({ dataDir: d, port: 0, maxUploadBytes: 300 << 20, grounder: () => loadGrounder('oracle:organ'), log: () => undefined });
  const own = s3.url.replace(/\/$/, '');
  const announce = async (name: string): Promise<string> => {
    const r = await fetch(new URL('/api/upload', s3.url), { method: 'POST', headers: { 'content-type': 'application/json', origin: own, 'x-ctground-token': s3.token }, body: JSON.stringify({ name, report: 'Liver: a 2 cm cyst.' }) });
    assert.equal(r.status, 202);
    return ((await r.json()) as { put: string }).put;
  };
  /** PUT of `chunks` (each written as it is produced, as a browser streams a File), with the headers given. */
  const put = (path: string, chunks: () => Iterable<Buffer>, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> => new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port: s3.port, path, method: 'PUT', headers: { 'content-type': 'application/octet-stream', origin: own, 'x-ctground-token': s3.token, ...headers } }, (res) => {
      const cs: Buffer[] = [];
      res.on('data', (c: Buffer) => cs.push(c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, body: Buffer.concat(cs).toString('utf8') }));
    });
    req.on('error', (e) => (/EPIPE|ECONNRESET/.test(String(e)) ? undefined : fail(e)));
    (async () => { for (const c of chunks()) if (!req.write(c)) await new Promise((r) => req.once('drain', r)); req.end(); })().catch(fail);
  });
  const manifestOf = (): string => readFileSync(join(d, 'manifest.jsonl'), 'utf8');
  try {
    // a real CT through a slot: byte for byte on disk, one manifest line
    const real = readFileSync(TS('example_ct_sm.nii.gz'));
    const ok = await put(await announce('DOE^JOHN.nii.gz'), function* () { for (let o = 0; o < real.length; o += 65536) yield real.subarray(o, o + 65536); });
    assert.equal(ok.status, 201, ok.body);
    const rec = JSON.parse(manifestOf().trim()) as { id: string; ct: string };
    assert.ok(readFileSync(join(d, rec.ct)).equals(real));
    assert.equal(rec.id, 'DOE_JOHN');
    const before = manifestOf();
    // refusals: not an image, over the limit while streaming (no Content-Length), unknown slot, wrong type
    const png = await put(await announce('x'), function* () { yield Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'); });
    assert.equal(png.status, 415, png.body);
    const over = await put(await announce('x'), function* () { const mb = Buffer.alloc(1 << 20); for (let i = 0; i < 310; i++) yield mb; }, { 'transfer-encoding': 'chunked' });
    assert.equal(over.status, 413, over.body);
    assert.equal((await put('/api/uploads/0123456789abcdef01234567', function* () { yield real; })).status, 404);
    assert.equal((await put(await announce('x'), function* () { yield real; }, { 'content-type': 'application/json' })).status, 415);
    assert.equal(manifestOf(), before, 'nothing refused reached the manifest');
    assert.deepEqual(readdirSync(join(d, 'uploads')).filter((n) => n.startsWith('.')), [], 'no partial upload left');
    // 200 MB streamed: a real NIfTI header, then zeros. The server's memory does not grow with it
    const header = gunzipSync(real).subarray(0, 352);
    const samples: number[] = [];
    const base = process.memoryUsage().arrayBuffers;
    const timer = setInterval(() => samples.push(process.memoryUsage().arrayBuffers - base), 5);
    const zeros = Buffer.alloc(1 << 20);
    const big = await put(await announce('big.nii'), function* () { yield header; for (let i = 0; i < 200; i++) yield zeros; });
    clearInterval(timer);
    assert.equal(big.status, 201, big.body);
    assert.ok(Math.max(...samples) < 64 << 20, `buffers grew by ${(Math.max(...samples) / 2 ** 20).toFixed(0)} MB during a 200 MB upload`);
  } finally {
    await s3.close();
    rmSync(d, { recursive: true, force: true });
  }
});
