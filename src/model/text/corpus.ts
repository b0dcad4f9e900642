import { basename } from 'node:path';
import { fileError } from '../../common/index.ts';
import { parseCsv, readText } from '../../report/index.ts';

/** One document of a pretraining corpus: a report (or a blank-line block of a text file). */
export interface CorpusDocument {
  /** stable identifier: the CSV's VolumeName when present, else `<file name>#<n>` */
  id: string;
  text: string;
}

/** The report columns the CT-RATE CSV carries; both are pretraining text. */
export const REPORT_COLUMNS = ['Findings_EN', 'Impressions_EN'] as const;

// The report part owns reading report files: strict UTF-8 (BOM dropped) and RFC 4180 CSV.
export { parseCsv };

/** Reports of a CSV with Findings_EN/Impressions_EN columns, one document per row (columns joined). */
export function readReportCsv(path: string): CorpusDocument[] {
  const rows = parseCsv(readText(path), path);
  if (rows.length === 0) throw fileError(path, 'empty CSV');
  const header = rows[0]!.map((h) => h.trim());
  const cols = REPORT_COLUMNS.map((c) => header.indexOf(c)).filter((k) => k >= 0);
  if (cols.length === 0) throw fileError(path, `CSV has neither ${REPORT_COLUMNS.join(' nor ')} column (header: ${header.join(', ')})`);
  const idCol = header.indexOf('VolumeName');
  const docs: CorpusDocument[] = [];
  for (let r = 1; r < rows.length; r++) {
    const row = rows[r]!;
    const text = cols.map((k) => (row[k] ?? '').trim()).filter((t) => t.length > 0).join('\n');
    if (text.length === 0) continue;
    docs.push({ id: idCol >= 0 && row[idCol] ? row[idCol]! : `${basename(path)}#${r}`, text });
  }
  return docs;
}

/** A plain text file: one document per block separated by blank lines. */
export function readTextCorpus(path: string): CorpusDocument[] {
  return readText(path)
    .split(/\r?\n[ \t]*\r?\n/)
    .map((b) => b.trim())
    .filter((b) => b.length > 0)
    // the id (and so the held-out split) depends on the file's name, not on where it lies
    .map((text, n) => ({ id: `${basename(path)}#${n}`, text }));
}

/** Reads a corpus file by extension: `.csv` as a report table, anything else as blank-line blocks. */
export function readCorpus(path: string): CorpusDocument[] {
  const docs = path.toLowerCase().endsWith('.csv') ? readReportCsv(path) : readTextCorpus(path);
  if (docs.length === 0) throw fileError(path, 'no text found');
  return docs;
}

/**
 * The fixed held-out split: a document is held out when a hash of its id falls in the lowest
 * `fraction`. Hashing the id (not the row position) keeps the split stable when the CSV is
 * reordered or extended, so figures stay comparable.
 */
export function isHeldOut(id: string, fraction = 0.1): boolean {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  // FNV's top bits barely move when only the last character differs ("x.txt#1", "x.txt#2"), so
  // finish with murmur3's avalanche before reading them
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b) >>> 0; h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35) >>> 0; h ^= h >>> 16;
  return (h >>> 0) / 4294967296 < fraction;
}

/**
 * Sentence spans of a report: ends at ".", "?" or "!" followed by whitespace or the end, or at a
 * newline. Decimal points ("5.4 mm") do not end a sentence because no whitespace follows them.
 */
export function splitSentences(text: string): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  let start = 0;
  const push = (end: number) => {
    let s = start, e = end;
    while (s < e && /\s/.test(text[s]!)) s++;
    while (e > s && /\s/.test(text[e - 1]!)) e--;
    if (e > s) out.push({ start: s, end: e });
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\n') { push(i); start = i + 1; } else if ((c === '.' || c === '?' || c === '!' || c === ';') && (i + 1 === text.length || /\s/.test(text[i + 1]!))) {
      push(i + 1); start = i + 1;
    }
  }
  push(text.length);
  return out;
}
