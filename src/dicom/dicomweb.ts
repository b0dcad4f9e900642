import { UserError, quoteName } from '../common/index.ts';

/** A DICOM JSON data set (PS3.18 F.2): tag → { vr, Value }. */
export type DicomJson = Record<string, { vr: string; Value?: unknown[] }>;

/** The first value of a tag of a DICOM JSON data set, as text ('' when absent). */
export function jsonValue(d: DicomJson, tag: string): string {
  const v = d[tag]?.Value?.[0];
  if (v === undefined || v === null) return '';
  if (typeof v === 'object') return String((v as { Alphabetic?: string }).Alphabetic ?? '');
  return String(v);
}

export function jsonValues(d: DicomJson, tag: string): unknown[] {
  return d[tag]?.Value ?? [];
}

export interface DicomwebOptions {
  /** per request, ms (default 60 000) */
  timeoutMs?: number;
  /** the most bytes one answer may hold (default 1 GiB: a whole enhanced multi-frame CT fits) */
  maxAnswerBytes?: number;
}

/**
 * An answer's body, refused once it passes `max` bytes: a PACS (or something posing as one) must
 * not be able to grow this process's memory without bound. Content-Length is checked first, the
 * bytes as they arrive after.
 */
async function cappedBody(res: Response, max: number, what: string): Promise<Buffer> {
  const tooBig = () => new UserError(`PACS ${what}: answer is over the ${max}-byte limit for one answer`);
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > max) { await res.body?.cancel().catch(() => undefined); throw tooBig(); }
  if (!res.body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let total = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) { await reader.cancel().catch(() => undefined); throw tooBig(); }
    chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }
  return Buffer.concat(chunks, total);
}

/** Splits a multipart/related body into its parts' bodies (RFC 2046). */
export function multipartParts(body: Buffer, contentType: string): Buffer[] {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  if (!m) throw new Error('multipart response without a boundary');
  const delim = Buffer.from(`--${(m[1] ?? m[2]!).trim()}`);
  const parts: Buffer[] = [];
  let at = body.indexOf(delim);
  while (at >= 0) {
    const start = at + delim.length;
    if (body[start] === 0x2d && body[start + 1] === 0x2d) break; // closing delimiter
    const next = body.indexOf(delim, start);
    if (next < 0) break;
    const part = body.subarray(start, next);
    const headEnd = part.indexOf('\r\n\r\n');
    if (headEnd >= 0) {
      // the part's body ends before the CRLF that precedes the next delimiter
      let end = part.length;
      if (part[end - 2] === 0x0d && part[end - 1] === 0x0a) end -= 2;
      parts.push(part.subarray(headEnd + 4, end));
    }
    at = next;
  }
  return parts;
}

/**
 * A DICOMweb client for the three services `label --dicomweb` needs: QIDO-RS (search), WADO-RS
 * (retrieve) and STOW-RS (store). Every failure is a UserError of one line naming the request, so
 * the batch can record it against a study and go on.
 */
export class DicomwebClient {
  readonly base: string;
  readonly timeoutMs: number;
  readonly maxAnswerBytes: number;

  constructor(url: string, opts: DicomwebOptions = {}) {
    let u: URL;
    try { u = new URL(url); } catch { throw new UserError(`--dicomweb ${quoteName(url)}: not a URL (expected http://HOST:PORT/PATH of a DICOMweb service)`); }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UserError(`--dicomweb ${quoteName(url)}: expected an http or https URL`);
    this.base = u.href.replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.maxAnswerBytes = opts.maxAnswerBytes ?? 2 ** 30;
  }

  private async request(path: string, init: RequestInit & { what: string }): Promise<Response> {
    const url = `${this.base}${path}`;
    let res: Response;
    try {
      res = await fetch(url, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (e) {
      const err = e as Error & { cause?: { code?: string } };
      const why = err.name === 'TimeoutError' ? `no answer in ${(this.timeoutMs / 1000).toFixed(0)} s` : err.cause?.code ?? err.message.split('\n')[0];
      throw new UserError(`PACS ${init.what}: ${why}`);
    }
    if (!res.ok && res.status !== 204) {
      await res.body?.cancel().catch(() => undefined);
      throw new UserError(`PACS ${init.what}: refused (HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''})`);
    }
    return res;
  }

  private async json(path: string, what: string): Promise<DicomJson[]> {
    const res = await this.request(path, { headers: { Accept: 'application/dicom+json' }, what });
    if (res.status === 204) return [];
    const text = (await cappedBody(res, this.maxAnswerBytes, what)).toString('utf8');
    if (!text.trim()) return [];
    try {
      const v = JSON.parse(text) as unknown;
      if (!Array.isArray(v)) throw new Error('not a list');
      return v as DicomJson[];
    } catch {
      throw new UserError(`PACS ${what}: answer is not DICOM JSON`);
    }
  }

  /** QIDO-RS studies: `filters` are attribute keywords or tags with their match values. */
  searchStudies(filters: Record<string, string>): Promise<DicomJson[]> {
    const q = new URLSearchParams({ ...filters, includefield: '00080050' }).toString();
    return this.json(`/studies?${q}`, 'study search');
  }

  searchSeries(study: string): Promise<DicomJson[]> {
    const q = new URLSearchParams([['includefield', '0008103E'], ['includefield', '00201209'], ['includefield', '00200011']]).toString();
    return this.json(`/studies/${encodeURIComponent(study)}/series?${q}`, `series search of study ${study}`);
  }

  searchInstances(study: string, series?: string, filters: Record<string, string> = {}): Promise<DicomJson[]> {
    const q = new URLSearchParams(filters).toString();
    const path = series ? `/studies/${encodeURIComponent(study)}/series/${encodeURIComponent(series)}/instances` : `/studies/${encodeURIComponent(study)}/instances`;
    return this.json(`${path}${q ? `?${q}` : ''}`, `instance search of study ${study}`);
  }

  /** WADO-RS metadata of one instance (all its attributes but bulk data). */
  async instanceMetadata(study: string, series: string, instance: string): Promise<DicomJson> {
    const r = await this.json(`/studies/${encodeURIComponent(study)}/series/${encodeURIComponent(series)}/instances/${encodeURIComponent(instance)}/metadata`, `metadata of an instance of study ${study}`);
    if (!r[0]) throw new UserError(`PACS metadata of an instance of study ${study}: empty answer`);
    return r[0];
  }

  /** WADO-RS one instance as a Part 10 file, in the transfer syntax the PACS stores it in. */
  async retrieveInstance(study: string, series: string, instance: string): Promise<Buffer> {
    const what = `retrieve of an instance of study ${study}`;
    const res = await this.request(`/studies/${encodeURIComponent(study)}/series/${encodeURIComponent(series)}/instances/${encodeURIComponent(instance)}`, {
      headers: { Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' }, what,
    });
    const body = await cappedBody(res, this.maxAnswerBytes, what);
    const type = res.headers.get('content-type') ?? '';
    // a PACS answering something else (one bare file, an HTML page) is that study's one-line problem
    if (!/^multipart\/related\s*;/i.test(type) || !/boundary=/i.test(type)) throw new UserError(`PACS ${what}: answer is not multipart/related with a boundary (Content-Type ${type.slice(0, 80) || 'missing'})`);
    const parts = multipartParts(body, type);
    if (parts.length !== 1) throw new UserError(`PACS ${what}: ${parts.length} parts where one instance was asked for`);
    return parts[0]!;
  }

  /** STOW-RS one Part 10 file into `study`; returns when the PACS says it stored it. */
  async store(study: string, file: Buffer): Promise<void> {
    const boundary = `ctground-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), file, Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const what = `store into study ${study}`;
    const res = await this.request(`/studies/${encodeURIComponent(study)}`, {
      method: 'POST', body, what,
      headers: { 'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`, Accept: 'application/dicom+json' },
    });
    const text = await res.text();
    // a PACS may answer 200 and still list the instance under FailedSOPSequence (0008,1198)
    let answer: DicomJson | undefined;
    try { answer = text.trim() ? (JSON.parse(text) as DicomJson) : undefined; } catch { /* no JSON: the status said it all */ }
    if (answer && jsonValues(answer, '00081198').length) throw new UserError(`PACS ${what}: refused the instance (FailedSOPSequence)`);
  }
}
