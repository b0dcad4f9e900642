import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { hostname, networkInterfaces } from 'node:os';
import { closeSync, createWriteStream, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { dirname, join } from 'node:path';
import { isThreshold, THRESHOLD_RULE, UserError, writeFileAtomic, writeOutputsAtomic } from '../common/index.ts';
import { readVolume, writeNifti, voxelBoxToWorld, gunzipHead, type Volume, type Vec3 } from '../volume/index.ts';
import type { GroundingModel } from '../model/index.ts';
import { checkReportText } from '../report/index.ts';
import { groundStudy, writeGroundingOutputs, safeId, maskOf, DEFAULT_THRESHOLD, type FindingsFile } from '../pipeline/index.ts';
import { DataFolder, OutsideError, type AnomalyRecord, type StudyRecord } from './store.ts';
import { tarArchive } from './tar.ts';
import { segFindings, reviewedSeg } from './seg.ts';
import { pageBundle, pageHtml } from './bundle.ts';

export interface ServeOptions {
  dataDir: string;
  port?: number;
  host?: string;
  /** largest accepted upload body in bytes */
  maxUploadBytes?: number;
  /** the grounder used for studies without results yet; loaded on first use */
  grounder: () => Promise<GroundingModel>;
  threshold?: number;
  /** where request lines go; they carry routes and status codes, never study contents or names */
  log?: (line: string) => void;
  /**
   * A host other than loopback is refused unless this is set (serve's --allow-remote): then the
   * machine's own names and addresses are accepted in the Host header too.
   */
  allowRemote?: boolean;
}

/** `token`: the per-start secret the page sends with every API call (x-ctground-token), for tests and tools. */
export interface RunningServer { url: string; port: number; token: string; close(): Promise<void> }

/** Addresses that reach this machine only. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** The names a request's Host header may carry: loopback, the bound address, and with allowRemote the machine's own. */
function allowedHosts(bound: string, allowRemote: boolean): Set<string> {
  const hosts = new Set(['localhost', '127.0.0.1', '::1', bound.toLowerCase()]);
  if (allowRemote) {
    hosts.add(hostname().toLowerCase());
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) hosts.add(a.address.toLowerCase());
  }
  hosts.delete('0.0.0.0');
  hosts.delete('::');
  return hosts;
}

/**
 * What every request must pass before it is routed. The Host must name this server (a DNS-rebinding
 * page reaches 127.0.0.1 under its own name). API calls carry the page's per-start token (in the
 * x-ctground-token header, or ?token= for the export link a browser follows). A state-changing
 * request must come from this server's own page: an Origin, if sent, equal to the server's own, no
 * cross-site Sec-Fetch-Site, and a JSON body type (a cross-site form or a "simple" fetch cannot send one
 * without a CORS preflight, which this server never answers).
 */
function guard(req: IncomingMessage, url: URL, o: { port: number; hosts: Set<string>; token: string }): void {
  const hostHeader = String(req.headers.host ?? '');
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostHeader);
  const name = m?.[1]?.replace(/^\[|\]$/g, '').toLowerCase();
  if (!m || !name || !o.hosts.has(name) || Number(m[2] ?? 80) !== o.port) throw new HttpError(421, 'host: this server answers only to its own address (Host header refused)');
  const method = req.method ?? 'GET';
  const changes = method !== 'GET' && method !== 'HEAD';
  if (changes) {
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${hostHeader}`) throw new HttpError(403, 'origin: requests that change data must come from this server\'s own page');
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') throw new HttpError(403, 'origin: requests that change data must come from this server\'s own page');
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    // the one exception: a CT streamed to an upload slot is raw bytes (the token still forces a preflight)
    const want = method === 'PUT' && url.pathname.startsWith('/api/uploads/') ? 'application/octet-stream' : 'application/json';
    if (type !== want) throw new HttpError(415, `request: the body must be sent as ${want}`);
  }
  if (url.pathname.startsWith('/api/')) {
    const given = String(req.headers['x-ctground-token'] ?? url.searchParams.get('token') ?? '');
    const a = Buffer.from(given), b = Buffer.from(o.token);
    if (a.length !== b.length || !timingSafeEqual(a, b)) throw new HttpError(403, 'token: missing or wrong (reload the page: the server was restarted)');
  }
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

const SERVED_EXT = /\.(nii\.gz|nii|nrrd|mha|json|txt|png)$/i;
const CONTENT_TYPE: Record<string, string> = { '.json': 'application/json', '.txt': 'text/plain; charset=utf-8', '.png': 'image/png' };
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
export const DEFAULT_MAX_UPLOAD = 512 * 1024 * 1024;

/** What an uploaded CT is, from its first bytes; null for anything that is not an image we read. */
export function imageKind(bytes: Uint8Array): '.nii.gz' | '.nii' | '.nrrd' | '.mha' | null {
  const head = (b: Uint8Array): '.nii' | '.nrrd' | '.mha' | null => {
    if (b.length >= 348) {
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      const hdr = dv.getInt32(0, true), hdrBE = dv.getInt32(0, false);
      const magic1 = String.fromCharCode(b[344]!, b[345]!, b[346]!);
      const magic2 = b.length >= 7 ? String.fromCharCode(b[4]!, b[5]!, b[6]!) : '';
      if ((hdr === 348 || hdrBE === 348) && (magic1 === 'n+1' || magic1 === 'ni1')) return '.nii';
      if ((hdr === 540 || hdrBE === 540) && (magic2 === 'n+2' || magic2 === 'ni2')) return '.nii';
    }
    const text = Buffer.from(b.subarray(0, 64)).toString('latin1');
    if (text.startsWith('NRRD000')) return '.nrrd';
    if (/^(ObjectType|NDims)\s*=/.test(text)) return '.mha';
    return null;
  };
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    let inner: Uint8Array;
    // the header is all it needs: inflating the whole upload would let a small bomb take gigabytes
    try { inner = gunzipHead(bytes, 540); } catch { return null; }
    return head(inner) === '.nii' ? '.nii.gz' : null;
  }
  return head(bytes);
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new HttpError(413, `upload: ${declared} bytes is over the ${limit}-byte limit`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > limit) { req.resume(); throw new HttpError(413, `upload: over the ${limit}-byte limit`); }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

async function readJson(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const body = await readBody(req, limit);
  try {
    const v = JSON.parse(body.toString('utf8'));
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch {
    throw new HttpError(400, 'request: body is not a JSON object');
  }
}

function send(res: ServerResponse, status: number, body: string | Buffer, type = 'application/json', extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...extra });
  res.end(body);
}
const sendJson = (res: ServerResponse, status: number, v: unknown): void => send(res, status, JSON.stringify(v));

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const data = new DataFolder(opts.dataDir);
  const maxUpload = opts.maxUploadBytes ?? DEFAULT_MAX_UPLOAD;
  // absent: each grounding uses the model's own region threshold (groundStudy decides)
  const threshold = opts.threshold;
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  let grounderPromise: Promise<GroundingModel> | undefined;
  const grounder = (): Promise<GroundingModel> => (grounderPromise ??= opts.grounder());
  const js = await pageBundle();
  // the page carries this start's token; a page of another origin cannot read it
  const token = randomBytes(24).toString('base64url');
  const html = pageHtml().replace('<head>', `<head>\n<meta name="ctground-token" content="${token}">`);
  const host = opts.host ?? '127.0.0.1';
  if (!isLoopback(host) && !opts.allowRemote) throw new UserError(`--host ${host}: listens beyond this machine; anyone who reaches it can read and change the studies (add --allow-remote to mean it)`);
  const hosts = allowedHosts(host, opts.allowRemote === true);
  let port = opts.port ?? 8080;
  // one grounding per study at a time: a second click waits for the first result
  const grounding = new Map<string, Promise<unknown>>();

  const findingsOf = (rec: StudyRecord): { file: FindingsFile; dir: string } | null => {
    if (!rec.grounding) return null;
    const p = data.inside(rec.grounding);
    if (!existsSync(p)) return null;
    return { file: JSON.parse(readFileSync(p, 'utf8')) as FindingsFile, dir: dirname(p) };
  };

  const studyView = (rec: StudyRecord): unknown => {
    const reportPath = data.inside(rec.report);
    const report = existsSync(reportPath) ? readFileSync(reportPath, 'utf8') : '';
    const g = findingsOf(rec);
    const reviews = new Map((rec.anomalies ?? []).map((a) => [a.id, a]));
    return {
      id: rec.id,
      report,
      ct: `/files/${encodePath(rec.ct)}`,
      grounded: Boolean(g),
      threshold: g?.file.threshold ?? threshold ?? DEFAULT_THRESHOLD,
      model: g?.file.model ?? null,
      anomalies: (g?.file.anomalies ?? []).map((f) => ({
        ...f,
        // a negated finding has no map (unless kept at grounding)
        mapUrl: f.map === null ? null : `/files/${encodePath(data.rel(join(g!.dir, f.map)))}`,
        review: reviews.get(f.id)?.review ?? null,
      })),
    };
  };

  // a study whose record names a DICOM SEG and no grounding (label's SEG, or one given by hand): its segments are the findings
  const viewWithSeg = async (rec: StudyRecord): Promise<unknown> => {
    const view = studyView(rec) as Record<string, unknown>;
    if (view.grounded) return view;
    let seg;
    try { seg = await segFindings(data, rec); } catch (e) { throw new HttpError(422, `study ${rec.id}: its DICOM SEG cannot be shown (${String((e as Error).message).split('\n')[0]!.slice(0, 160)})`); }
    if (!seg) return view;
    return { ...view, grounded: true, threshold: seg.threshold, model: seg.model, anomalies: seg.anomalies.map((f) => ({ ...f, mapUrl: `/files/${encodePath(String(f.map))}`, review: null })) };
  };

  const studyOr404 = (id: string): StudyRecord => {
    if (!ID_RE.test(id)) throw new HttpError(400, `study id: invalid`);
    const rec = data.record(id);
    if (!rec) throw new HttpError(404, `study ${id}: not in manifest.jsonl`);
    return rec;
  };

  const runGrounding = async (rec: StudyRecord): Promise<void> => {
    const text = readFileSync(data.inside(rec.report), 'utf8');
    const labels = rec.labels ? data.inside(rec.labels) : undefined;
    const r = await groundStudy({ ct: data.inside(rec.ct), report: text, reportName: 'report', labels }, await grounder(), { threshold });
    const outRel = `grounding/${safeId(rec.id)}`;
    // built beside its folder and moved in (findings.json last); a re-grounding's stale maps go, the review's masks stay
    await writeOutputsAtomic(data.inside(outRel), (dir) => writeGroundingOutputs(dir, r), { mode: 'merge', stale: ['findings.json', 'maps', 'labels.nii.gz', 'overview.png'], last: 'findings.json' });
    await data.update((records) => {
      const target = records.find((x) => x.id === rec.id);
      if (target) target.grounding = `${outRel}/findings.json`;
    });
  };

  const review = async (rec: StudyRecord, body: Record<string, unknown>): Promise<AnomalyRecord> => {
    const g = findingsOf(rec);
    if (!g) throw new HttpError(409, `study ${rec.id}: not grounded yet`);
    const f = g.file.anomalies.find((a) => a.id === body.anomaly);
    if (!f) throw new HttpError(404, `anomaly: not among this study's findings`);
    const decision = body.decision;
    if (decision !== 'accept' && decision !== 'reject' && decision !== 'redraw') throw new HttpError(400, 'decision: must be accept, reject or redraw');
    // a threshold outside (0, 1] is a mistake to report, not a value to replace silently
    if (body.threshold !== undefined && !isThreshold(body.threshold)) throw new HttpError(400, `threshold: ${THRESHOLD_RULE}`);
    const thr = isThreshold(body.threshold) ? body.threshold : g.file.threshold;
    let mask: string | null = null, box: [Vec3, Vec3] | null = null, voxelBox: { min: Vec3; max: Vec3 } | undefined;
    if (decision !== 'reject') {
      if (f.map === null || f.certainty === 'absent') throw new HttpError(409, 'anomaly: negated in the report, it has no map to accept or redraw');
      const map = (await readVolume(join(g.dir, f.map))) as Volume<Float32Array>;
      const m = maskOf(map.data instanceof Float32Array ? map : { ...map, data: Float32Array.from(map.data) }, thr);
      if (decision === 'redraw') voxelBox = parseVoxelBox(body.box, map.size);
      if (voxelBox) {
        // the redrawn box bounds the mask; an empty result means the reader drew where the map is silent
        let any = false;
        forEachVoxel(map.size, (i, j, k, o) => {
          const inBox = i >= voxelBox!.min[0] && i <= voxelBox!.max[0] && j >= voxelBox!.min[1] && j <= voxelBox!.max[1] && k >= voxelBox!.min[2] && k <= voxelBox!.max[2];
          if (!inBox) m.data[o] = 0; else if (m.data[o]) any = true;
        });
        if (!any) forEachVoxel(map.size, (i, j, k, o) => {
          if (i >= voxelBox!.min[0] && i <= voxelBox!.max[0] && j >= voxelBox!.min[1] && j <= voxelBox!.max[1] && k >= voxelBox!.min[2] && k <= voxelBox!.max[2]) m.data[o] = 1;
        });
      } else {
        voxelBox = boundsOf(m) ?? undefined;
      }
      if (voxelBox) {
        const maskAbs = join(g.dir, 'masks', `${safeId(f.id)}.nii.gz`);
        await writeNifti(maskAbs, m);
        mask = data.rel(maskAbs);
        box = voxelBoxToWorld(map, voxelBox).map((c) => c.map((v) => Math.round(v * 100) / 100)) as [Vec3, Vec3];
      }
    }
    const entry: AnomalyRecord = {
      id: f.id, organ: f.organ, type: f.type, certainty: f.certainty, spans: f.spans, mask, box,
      review: { decision: decision === 'accept' ? 'accepted' : decision === 'reject' ? 'rejected' : 'redrawn', threshold: thr, ...(voxelBox ? { voxelBox } : {}) },
    };
    await data.update((records) => {
      const target = records.find((x) => x.id === rec.id);
      if (!target) throw new HttpError(404, `study ${rec.id}: no longer in manifest.jsonl`);
      const list = (target.anomalies ??= []);
      const at = list.findIndex((a) => a.id === f.id);
      if (at >= 0) list[at] = { ...list[at], ...entry }; else list.push(entry);
    });
    return entry;
  };

  const exportStudy = (rec: StudyRecord, seg: Buffer | null = null): Buffer => {
    const g = findingsOf(rec);
    if (!g) throw new HttpError(409, `study ${rec.id}: not grounded yet`);
    const files: { name: string; data: Uint8Array }[] = [];
    const add = (rel: string): void => {
      const p = join(g.dir, rel);
      if (existsSync(p) && statSync(p).isFile()) files.push({ name: `${safeId(rec.id)}/${rel}`, data: readFileSync(p) });
    };
    add('findings.json');
    add('labels.nii.gz');
    add('overview.png');
    for (const sub of ['maps', 'masks']) {
      const d = join(g.dir, sub);
      if (existsSync(d)) for (const n of readdirSync(d).sort()) if (n.endsWith('.nii.gz')) add(`${sub}/${n}`);
    }
    // the study's DICOM SEG as reviewed: rejected findings dropped, redrawn ones cut to their box
    if (seg) files.push({ name: `${safeId(rec.id)}/findings.seg.dcm`, data: seg });
    files.push({ name: `${safeId(rec.id)}/review.json`, data: Buffer.from(JSON.stringify(data.record(rec.id)?.anomalies ?? [], null, 2) + '\n') });
    return tarArchive(files);
  };

  /** The report and name of an upload, checked; the CT follows as base64 in the same body, or streamed to a slot. */
  const uploadHead = (body: Record<string, unknown>): { report: string; base: string } => {
    const report = body.report;
    if (typeof report !== 'string' || !report.trim()) throw new HttpError(400, 'upload: report is empty');
    if (report.includes('\0')) throw new HttpError(415, 'upload: report is not text');
    // the limits of the CLI's report reader: at most 1 MB, text rather than binary
    try { checkReportText(report, 'upload: report'); } catch (e) { throw new HttpError(/over the/.test((e as Error).message) ? 413 : 415, (e as Error).message); }
    const base = (typeof body.name === 'string' ? body.name : '').replace(/\.(nii\.gz|nii|nrrd|mha)$/i, '').replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[._-]+/, '').slice(0, 60) || 'upload';
    return { report, base };
  };

  /** A new study from an upload: the CT file (already on disk in the data folder, or bytes) moved under uploads/<id>/. */
  const addUpload = (head: { report: string; base: string }, kind: string, ct: { file: string } | { bytes: Buffer }): Promise<string> => data.update((records) => {
    let id = head.base, n = 2;
    while (records.some((r) => r.id === id)) id = `${head.base}-${n++}`;
    const dir = `uploads/${id}`;
    if ('file' in ct) { mkdirSync(data.inside(dir), { recursive: true }); renameSync(ct.file, data.inside(`${dir}/ct${kind}`)); }
    else writeFileAtomic(data.inside(`${dir}/ct${kind}`), ct.bytes);
    writeFileAtomic(data.inside(`${dir}/report.txt`), head.report);
    records.push({ id, ct: `${dir}/ct${kind}`, report: `${dir}/report.txt`, split: 'unlabeled', anomalies: [] });
    return id;
  });

  // uploads announced by their report, waiting for their CT: a few at a time, in memory (a report is at most 1 MB)
  const slots = new Map<string, { report: string; base: string }>();
  const MAX_SLOTS = 8;

  /** POST /api/upload: {name, report, ct: base64} in one body (small files, tools), or {name, report} to get a slot for the CT. */
  const upload = async (body: Record<string, unknown>): Promise<{ status: number; json: unknown }> => {
    const head = uploadHead(body);
    if (body.ct === undefined) {
      const slot = randomBytes(12).toString('hex');
      slots.set(slot, head);
      while (slots.size > MAX_SLOTS) slots.delete(slots.keys().next().value!);
      return { status: 202, json: { upload: slot, put: `/api/uploads/${slot}` } };
    }
    if (typeof body.ct !== 'string' || !body.ct) throw new HttpError(400, 'upload: no CT');
    const bytes = Buffer.from(body.ct, 'base64');
    const kind = imageKind(bytes);
    if (!kind) throw new HttpError(415, 'upload: CT is not a NIfTI, NRRD or MHA image');
    return { status: 201, json: { id: await addUpload(head, kind, { bytes }) } };
  };

  /**
   * PUT /api/uploads/<slot>: the CT's bytes, streamed to a file in the data folder as they arrive
   * (never held in memory), cut off at the upload limit; what it is comes from its first bytes.
   */
  const receiveCt = async (req: IncomingMessage, slot: string): Promise<string> => {
    const head = slots.get(slot);
    if (!head) throw new HttpError(404, 'upload: no such upload slot (announce the report first with POST /api/upload)');
    slots.delete(slot);
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > maxUpload) { req.resume(); throw new HttpError(413, `upload: ${declared} bytes is over the ${maxUpload}-byte limit`); }
    mkdirSync(data.inside('uploads'), { recursive: true });
    const part = data.inside(`uploads/.incoming-${slot}.part`);
    let n = 0;
    const limit = new Transform({
      transform(chunk: Buffer, _enc, done) {
        n += chunk.length;
        done(n > maxUpload ? new HttpError(413, `upload: over the ${maxUpload}-byte limit`) : null, chunk);
      },
    });
    try {
      await pipeline(req, limit, createWriteStream(part));
      const fd = openSync(part, 'r');
      const first = Buffer.alloc(64 * 1024);
      let got: number;
      try { got = readSync(fd, first, 0, first.length, 0); } finally { closeSync(fd); }
      const kind = imageKind(first.subarray(0, got));
      if (!kind) throw new HttpError(415, 'upload: CT is not a NIfTI, NRRD or MHA image');
      return await addUpload(head, kind, { file: part });
    } catch (e) {
      req.resume();
      throw e;
    } finally {
      rmSync(part, { force: true });
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<string> => {
    // URL parsing would resolve `..` silently; a request that names one is refused outright
    const raw = (req.url ?? '/').split('?')[0]!;
    let rawDecoded: string;
    try { rawDecoded = decodeURIComponent(raw); } catch { throw new HttpError(400, 'path: bad encoding'); }
    if (rawDecoded.split(/[\\/]+/).includes('..')) throw new HttpError(403, 'path: ".." is not allowed');
    const url = new URL(req.url ?? '/', 'http://x');
    guard(req, url, { port, hosts, token });
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (method === 'GET' && (path === '/' || path === '/index.html')) { send(res, 200, html, 'text/html; charset=utf-8'); return path; }
    if (method === 'GET' && path === '/favicon.ico') { send(res, 204, ''); return path; }
    if (method === 'GET' && path === '/app.js') { send(res, 200, js, 'text/javascript; charset=utf-8'); return path; }
    if (method === 'GET' && path === '/api/studies') {
      sendJson(res, 200, { studies: data.records().map((r) => ({ id: r.id, grounded: Boolean(r.grounding || r.seg), reviewed: (r.anomalies ?? []).filter((a) => a.review).length })) });
      return path;
    }
    if (method === 'GET' && path.startsWith('/files/')) {
      let rel: string;
      try { rel = decodeURIComponent(path.slice('/files/'.length)); } catch { throw new HttpError(400, 'path: bad encoding'); }
      const abs = data.inside(rel);
      if (!SERVED_EXT.test(abs)) throw new HttpError(403, 'path: this file type is not served');
      if (!existsSync(abs) || !statSync(abs).isFile()) throw new HttpError(404, 'path: no such file');
      const ext = Object.keys(CONTENT_TYPE).find((e) => abs.toLowerCase().endsWith(e));
      send(res, 200, readFileSync(abs), ext ? CONTENT_TYPE[ext] : 'application/octet-stream');
      return '/files/…';
    }
    if (method === 'POST' && path === '/api/upload') {
      const r = await upload(await readJson(req, maxUpload));
      sendJson(res, r.status, r.json);
      return path;
    }
    const slot = /^\/api\/uploads\/([0-9a-f]{24})$/.exec(path);
    if (method === 'PUT' && slot) {
      sendJson(res, 201, { id: await receiveCt(req, slot[1]!) });
      return '/api/uploads/:slot';
    }
    const m = /^\/api\/studies\/([^/]+)(?:\/(ground|review|export))?$/.exec(path);
    if (m) {
      const rec = studyOr404(decodeURIComponent(m[1]!));
      const action = m[2];
      if (!action && method === 'GET') { sendJson(res, 200, await viewWithSeg(rec)); return '/api/studies/:id'; }
      if (action === 'ground' && method === 'POST') {
        if (!findingsOf(rec) || url.searchParams.get('force') === '1') {
          let p = grounding.get(rec.id);
          if (!p) { p = runGrounding(rec).finally(() => grounding.delete(rec.id)); grounding.set(rec.id, p); }
          await p;
        }
        sendJson(res, 200, studyView(data.record(rec.id)!));
        return '/api/studies/:id/ground';
      }
      if (action === 'review' && method === 'POST') {
        const entry = await review(rec, await readJson(req, 1 << 20));
        sendJson(res, 200, { anomaly: entry });
        return '/api/studies/:id/review';
      }
      if (action === 'export' && method === 'GET') {
        send(res, 200, exportStudy(rec, await reviewedSeg(data, rec)), 'application/x-tar', { 'content-disposition': `attachment; filename="${safeId(rec.id)}-ctground.tar"` });
        return '/api/studies/:id/export';
      }
    }
    throw new HttpError(404, 'no such route');
  };

  const server = createServer((req, res) => {
    handle(req, res).then(
      (route) => log(`serve: ${req.method} ${route} ${res.statusCode}`),
      (e: unknown) => {
        const status = e instanceof HttpError ? e.status : e instanceof OutsideError ? 403 : e instanceof UserError ? 422 : 500;
        const message = e instanceof Error ? e.message.split('\n')[0]! : String(e);
        // user errors name their file; that path may carry a patient's name, so the log gets the status only
        log(`serve: ${req.method} ${status}${status === 500 ? ` internal error: ${(e as Error)?.name}` : ''}`);
        if (!res.headersSent) sendJson(res, status, { error: status === 500 ? 'internal error' : message });
        else res.end();
      },
    );
  });
  await new Promise<void>((ok, fail) => { server.once('error', fail); server.listen(opts.port ?? 8080, host, () => ok()); });
  const addr = server.address();
  port = typeof addr === 'object' && addr ? addr.port : port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    port,
    token,
    close: () => new Promise<void>((ok) => { server.closeAllConnections(); server.close(() => ok()); }),
  };
}

function encodePath(rel: string): string {
  return rel.split('/').map(encodeURIComponent).join('/');
}

function forEachVoxel(size: Vec3, fn: (i: number, j: number, k: number, o: number) => void): void {
  for (let k = 0, o = 0; k < size[2]; k++) for (let j = 0; j < size[1]; j++) for (let i = 0; i < size[0]; i++, o++) fn(i, j, k, o);
}

function boundsOf(m: Volume<Uint8Array>): { min: Vec3; max: Vec3 } | null {
  const min: Vec3 = [Infinity, Infinity, Infinity], max: Vec3 = [-1, -1, -1];
  forEachVoxel(m.size, (i, j, k, o) => {
    if (!m.data[o]) return;
    min[0] = Math.min(min[0], i); min[1] = Math.min(min[1], j); min[2] = Math.min(min[2], k);
    max[0] = Math.max(max[0], i); max[1] = Math.max(max[1], j); max[2] = Math.max(max[2], k);
  });
  return max[0] < 0 ? null : { min, max };
}

function parseVoxelBox(v: unknown, size: Vec3): { min: Vec3; max: Vec3 } {
  const b = v as { min?: unknown; max?: unknown } | undefined;
  const ok = (a: unknown): a is number[] => Array.isArray(a) && a.length === 3 && a.every((x) => Number.isFinite(x));
  if (!b || !ok(b.min) || !ok(b.max)) throw new HttpError(400, 'box: needs {min:[i,j,k], max:[i,j,k]} in voxels');
  const lo = b.min, hi = b.max;
  const min = [0, 1, 2].map((a) => Math.max(0, Math.round(Math.min(lo[a]!, hi[a]!)))) as Vec3;
  const max = [0, 1, 2].map((a) => Math.min(size[a]! - 1, Math.round(Math.max(lo[a]!, hi[a]!)))) as Vec3;
  if ([0, 1, 2].some((a) => min[a]! > max[a]!)) throw new HttpError(400, 'box: lies outside the image');
  return { min, max };
}
