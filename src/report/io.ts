import { readFileSync, readSync, statSync } from 'node:fs';
import { fileError, UserError } from '../common/index.ts';

/**
 * Reading report text safely: strict UTF-8 (a clear error naming the first bad byte instead of
 * silently structuring U+FFFD), and an RFC 4180 CSV parser (quoted fields with commas, quotes
 * and line breaks inside, as in the CT-RATE file).
 */

/** Offset of the first byte that breaks UTF-8, or -1. */
export function firstInvalidUtf8(buf: Uint8Array): number {
  let i = 0;
  const n = buf.length;
  while (i < n) {
    const b = buf[i]!;
    if (b < 0x80) { i++; continue; }
    let need: number, min: number;
    if (b >= 0xc2 && b <= 0xdf) { need = 1; min = 0x80; }
    else if (b >= 0xe0 && b <= 0xef) { need = 2; min = 0x800; }
    else if (b >= 0xf0 && b <= 0xf4) { need = 3; min = 0x10000; }
    else return i;
    let cp = b & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const c = buf[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}

export function decodeUtf8(buf: Uint8Array, name: string): string {
  const bad = firstInvalidUtf8(buf);
  if (bad >= 0) throw fileError(name, `not UTF-8 text (invalid byte 0x${buf[bad]!.toString(16).padStart(2, '0')} at offset ${bad})`);
  const text = new TextDecoder('utf-8').decode(buf);
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/**
 * All of stdin, at most `maxBytes` + 1 bytes (so an oversized report is seen as such without
 * reading it all). readFileSync(0) throws EAGAIN when stdin is a non-blocking pipe whose writer
 * has not written yet (a parent's spawnSync under load): such reads wait a moment and retry.
 */
function readStdin(maxBytes = Number.MAX_SAFE_INTEGER): Buffer {
  const chunks: Buffer[] = [];
  let total = 0;
  const wait = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    const chunk = Buffer.allocUnsafe(1 << 16);
    let n: number;
    try {
      n = readSync(0, chunk, 0, chunk.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') { Atomics.wait(wait, 0, 0, 5); continue; }
      if (code === 'EOF') break;
      throw e;
    }
    if (n === 0) break;
    chunks.push(chunk.subarray(0, n));
    total += n;
    if (total > maxBytes) break;
  }
  return Buffer.concat(chunks, total);
}

/** The one-line error of a report that cannot be read (a missing file, a folder, ...). */
function readError(name: string, e: unknown): UserError {
  const code = (e as NodeJS.ErrnoException).code;
  return fileError(name, code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a report file' : `cannot read (${code ?? (e as Error).message})`);
}

/** Reads a text file (or stdin for '-') as strict UTF-8. */
export function readText(path: string): string {
  let buf: Buffer;
  try {
    buf = path === '-' ? readStdin() : readFileSync(path);
  } catch (e) {
    throw readError(path === '-' ? '<stdin>' : path, e);
  }
  return decodeUtf8(buf, path === '-' ? '<stdin>' : path);
}

/**
 * The largest report ctground structures unless told otherwise: 1 MB, some hundred times a long
 * CT report. Larger text is refused in one line instead of being structured for minutes.
 */
export const MAX_REPORT_BYTES = 1 << 20;

/**
 * Checks report text before it is structured: not over `maxBytes` (UTF-8), and text rather than
 * binary (no NUL, and at most 1 % other control characters besides tab, line breaks and form
 * feed), so a CT or a PDF passed as --report gets a clear refusal instead of anomalies.
 */
export function checkReportText(text: string, name: string, maxBytes = MAX_REPORT_BYTES): string {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) throw fileError(name, `report is ${bytes} bytes, over the ${maxBytes}-byte limit for one report`);
  if (text.includes('\0')) throw fileError(name, 'is a binary file, not report text (it holds NUL bytes)');
  let controls = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 9 && c !== 10 && c !== 12 && c !== 13) || c === 0x7f) controls++;
  }
  if (controls > Math.max(2, text.length / 100)) throw fileError(name, `is a binary file, not report text (${controls} control characters)`);
  return text;
}

/**
 * Reads one report (a file, or stdin for '-'): at most `maxBytes` are read, so a huge file is
 * refused without loading it; then strict UTF-8 and checkReportText.
 */
export function readReport(path: string, maxBytes = MAX_REPORT_BYTES): string {
  const name = path === '-' ? '<stdin>' : path;
  let buf: Buffer;
  try {
    const size = path === '-' ? 0 : statSync(path).size;
    if (size > maxBytes) throw fileError(name, `report is ${size} bytes, over the ${maxBytes}-byte limit for one report`);
    buf = path === '-' ? readStdin(maxBytes) : readFileSync(path);
  } catch (e) {
    throw e instanceof UserError ? e : readError(name, e);
  }
  if (buf.length > maxBytes) throw fileError(name, `report is ${buf.length} bytes, over the ${maxBytes}-byte limit for one report`);
  if (buf.includes(0)) throw fileError(name, 'is a binary file, not report text (it holds NUL bytes)');
  return checkReportText(decodeUtf8(buf, name), name, maxBytes);
}

/** RFC 4180 CSV: rows of fields. Throws on an unterminated quoted field. */
export function parseCsv(text: string, name = 'CSV'): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  const n = text.length;
  let quoted = false;
  let quoteStart = 0;
  while (i < n) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') { field += '"'; i += 2; continue; }
        quoted = false; i++; continue;
      }
      // Copy a run of plain characters at once: fields are long, per-character += is slow.
      let j = text.indexOf('"', i);
      if (j < 0) j = n;
      field += text.slice(i, j);
      i = j;
      continue;
    }
    if (c === '"' && field.length === 0) { quoted = true; quoteStart = i; i++; continue; }
    if (c === ',') { row.push(field); field = ''; i++; continue; }
    if (c === '\n' || c === '\r') {
      row.push(field); field = '';
      rows.push(row); row = [];
      if (c === '\r' && text[i + 1] === '\n') i++;
      i++;
      continue;
    }
    field += c;
    i++;
  }
  if (quoted) {
    const line = text.slice(0, quoteStart).split('\n').length;
    throw fileError(name, `unterminated quoted field starting on line ${line}`);
  }
  if (field.length > 0 || row.length > 0) { row.push(field); rows.push(row); }
  return rows.filter((r) => !(r.length === 1 && r[0] === ''));
}

export interface CsvColumn {
  /** the first column's value per row (CT-RATE: VolumeName), for naming results */
  ids: string[];
  texts: string[];
}

/** One named column of a CSV file with a header row. */
export function readCsvColumn(path: string, column: string): CsvColumn {
  const rows = parseCsv(readText(path), path);
  const header = rows[0];
  if (!header) throw fileError(path, 'empty CSV (no header row)');
  const k = header.indexOf(column);
  if (k < 0) throw fileError(path, `no column '${column}' (columns: ${header.map((h) => `'${h}'`).join(', ')})`);
  const ids: string[] = [], texts: string[] = [];
  for (let r = 1; r < rows.length; r++) {
    const row = rows[r]!;
    ids.push(k === 0 ? String(r) : row[0] ?? String(r));
    texts.push(row[k] ?? '');
  }
  return { ids, texts };
}
