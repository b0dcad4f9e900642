import { readdirSync, readSync, openSync, closeSync, fstatSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileError, quoteName } from '../common/index.ts';
import type { Vec3 } from './types.ts';

/**
 * The few header fields ctground needs to pick a series and check its slices. Patient-module
 * tags (group 0010) and every free-text field (descriptions, comments, names) are never decoded,
 * so nothing a person typed can leak into messages or files: a series is named by its number,
 * UID, slice count and geometry.
 */
export interface DicomSliceHeader {
  file: string;
  seriesUid: string;
  seriesNumber: string;
  modality: string;
  position?: Vec3;
  orientation?: number[];
  /** PixelSpacing (row spacing, column spacing) in mm, as written (unchecked) */
  pixelSpacing?: number[];
  rows?: number;
  columns?: number;
}

const WANTED: Record<number, string> = {
  0x0020000e: 'seriesUid', 0x00200011: 'seriesNumber', 0x00080060: 'modality',
  0x00200032: 'position', 0x00200037: 'orientation', 0x00280030: 'pixelSpacing',
};
/** US (binary) elements: Rows and Columns */
const WANTED_US: Record<number, string> = { 0x00280010: 'rows', 0x00280011: 'columns' };
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const PIXEL_DATA = 0x7fe00010;
const ITEM = 0xfffee000, ITEM_END = 0xfffee00d, SEQ_END = 0xfffee0dd;

class Reader {
  pos: number;
  constructor(readonly b: Buffer, pos: number, readonly explicit: boolean) { this.pos = pos; }
  get done(): boolean { return this.pos + 8 > this.b.length; }
  tag(): number { const g = this.b.readUInt16LE(this.pos), e = this.b.readUInt16LE(this.pos + 2); this.pos += 4; return ((g << 16) | e) >>> 0; }
}

/** Parses elements until the end, a delimiter, or pixel data; collects WANTED values into `out`. */
function parseElements(r: Reader, out: Record<string, string>, end: number, depth: number): void {
  while (r.pos + 8 <= end) {
    const tag = r.tag();
    if (tag === ITEM_END || tag === SEQ_END) { r.pos += 4; return; }
    if (tag === PIXEL_DATA) { r.pos = r.b.length; return; }
    let len: number;
    if (r.explicit && tag !== ITEM) {
      const vr = r.b.toString('latin1', r.pos, r.pos + 2);
      if (!/^[A-Z]{2}$/.test(vr)) throw new Error('bad VR');
      if (LONG_VRS.has(vr)) { len = r.b.readUInt32LE(r.pos + 4); r.pos += 8; } else { len = r.b.readUInt16LE(r.pos + 2); r.pos += 4; }
    } else {
      len = r.b.readUInt32LE(r.pos); r.pos += 4;
    }
    if (len === 0xffffffff) {
      // An undefined-length value is a sequence (or its item): walk it to find where it ends.
      if (depth > 32) throw new Error('sequence nesting too deep');
      if (tag === ITEM) parseElements(r, {}, end, depth + 1);
      else parseItems(r, end, depth + 1);
      continue;
    }
    if (tag === ITEM) continue; // defined-length item of a defined-length walk: its elements follow inline
    if (r.pos + len > r.b.length) throw new Error('element runs past the end of the file');
    const key = depth === 0 ? WANTED[tag] : undefined;
    if (key) out[key] = r.b.toString('latin1', r.pos, r.pos + len).replace(/[\0 ]+$/, '').trim();
    const us = depth === 0 && len === 2 ? WANTED_US[tag] : undefined;
    if (us) out[us] = String(r.b.readUInt16LE(r.pos));
    r.pos += len;
  }
}

function parseItems(r: Reader, end: number, depth: number): void {
  while (r.pos + 8 <= end) {
    const tag = r.tag();
    const len = r.b.readUInt32LE(r.pos); r.pos += 4;
    if (tag === SEQ_END) return;
    if (tag !== ITEM) throw new Error('malformed sequence');
    if (len === 0xffffffff) parseElements(r, {}, end, depth + 1);
    else r.pos += len;
  }
}

/** Reads the header of one file; null when it is not DICOM (a README, DICOMDIR, thumbnails…). */
export function readDicomSliceHeader(file: string): DicomSliceHeader | null {
  let b: Buffer;
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    // Headers sit before the pixel data; 256 KiB covers them in practice, and the walk stops at pixel data.
    b = Buffer.alloc(Math.min(size, 256 * 1024));
    readSync(fd, b, 0, b.length, 0);
  } finally {
    closeSync(fd);
  }
  if (b.length < 132 || b.toString('latin1', 128, 132) !== 'DICM') return null;
  try {
    const meta = new Reader(b, 132, true);
    const metaOut: Record<string, string> = {};
    let ts = '1.2.840.10008.1.2.1';
    while (!meta.done && b.readUInt16LE(meta.pos) === 0x0002) {
      const tag = meta.tag();
      const vr = b.toString('latin1', meta.pos, meta.pos + 2);
      let len: number;
      if (LONG_VRS.has(vr)) { len = b.readUInt32LE(meta.pos + 4); meta.pos += 8; } else { len = b.readUInt16LE(meta.pos + 2); meta.pos += 4; }
      if (tag === 0x00020010) ts = b.toString('latin1', meta.pos, meta.pos + len).replace(/[\0 ]+$/, '');
      // A DICOMDIR (media directory) sits beside the slices of many CDs; it is not an image.
      if (tag === 0x00020002 && b.toString('latin1', meta.pos, meta.pos + len).replace(/[\0 ]+$/, '') === '1.2.840.10008.1.3.10') return null;
      meta.pos += len;
    }
    if (ts === '1.2.840.10008.1.2.1.99' || ts === '1.2.840.10008.1.2.2') return { file, seriesUid: '', seriesNumber: '', modality: '' };
    const r = new Reader(b, meta.pos, ts !== '1.2.840.10008.1.2');
    parseElements(r, metaOut, b.length, 0);
    const nums = (s: string | undefined) => (s ? s.split('\\').map(Number) : undefined);
    const pos = nums(metaOut.position), ori = nums(metaOut.orientation), ps = nums(metaOut.pixelSpacing);
    return {
      file,
      seriesUid: metaOut.seriesUid ?? '',
      seriesNumber: metaOut.seriesNumber ?? '',
      modality: metaOut.modality ?? '',
      position: pos && pos.length === 3 && pos.every(Number.isFinite) ? (pos as Vec3) : undefined,
      orientation: ori && ori.length === 6 && ori.every(Number.isFinite) ? ori : undefined,
      // kept even when nonsense (0, negative, NaN): checkSliceStack refuses it with a message
      pixelSpacing: ps,
      rows: metaOut.rows ? Number(metaOut.rows) : undefined,
      columns: metaOut.columns ? Number(metaOut.columns) : undefined,
    };
  } catch {
    return null;
  }
}

export interface DicomSeries {
  uid: string;
  number: string;
  modality: string;
  files: string[];
  /** the first slice's matrix and pixel spacing: how the series is told apart in messages */
  rows?: number;
  columns?: number;
  pixelSpacing?: number[];
}

/** Characters of a UID's end shown in messages: enough to tell series apart and to pass to --series. */
const UID_SUFFIX = 12;

/**
 * A series as messages name it: number, modality, UID suffix, slice count and geometry. Never a
 * description or any other free text (it can hold a name). Every part passes a strict pattern,
 * so a crafted header cannot put control characters or text into the line either.
 */
function describe(s: DicomSeries): string {
  const safe = (v: string, re: RegExp): string => (re.test(v) ? v : '?');
  const uid = safe(s.uid, /^[0-9.]{1,64}$/);
  const geometry = s.rows && s.columns ? `, ${s.rows}×${s.columns}${s.pixelSpacing?.length === 2 && s.pixelSpacing.every(Number.isFinite) ? ` at ${s.pixelSpacing.map((v) => +v.toFixed(3)).join('×')} mm` : ''}` : '';
  return `#${safe(s.number, /^[+-]?\d{1,12}$/)} ${safe(s.modality, /^[A-Z]{2,4}$/)} uid ${s.uid ? (uid.length > UID_SUFFIX ? `…${uid.slice(-UID_SUFFIX)}` : uid) : '(none)'} (${s.files.length} slices${geometry})`;
}

/** All image series in a folder (not recursive), largest first. */
export function scanDicomFolder(dir: string): DicomSeries[] {
  const names = readdirSync(dir).filter((n) => !n.startsWith('.')).sort();
  const bySeries = new Map<string, DicomSeries>();
  for (const n of names) {
    const f = join(dir, n);
    if (!statSync(f).isFile()) continue;
    const h = readDicomSliceHeader(f);
    if (!h) continue;
    let s = bySeries.get(h.seriesUid);
    if (!s) bySeries.set(h.seriesUid, (s = { uid: h.seriesUid, number: h.seriesNumber, modality: h.modality, files: [], rows: h.rows, columns: h.columns, pixelSpacing: h.pixelSpacing }));
    s.files.push(f);
  }
  return [...bySeries.values()].sort((a, b) => b.files.length - a.files.length);
}

/**
 * Picks one series: the only one, or the one named by `choice` (series number or UID). Several
 * without a choice is an error listing them, because guessing would silently ground the wrong scan.
 */
export function chooseSeries(dir: string, all: DicomSeries[], choice?: string): DicomSeries {
  if (all.length === 0) throw fileError(dir, 'no DICOM files in this folder (expected a folder holding one CT series)');
  if (choice !== undefined) {
    let hit = all.filter((s) => s.uid === choice || s.number === choice);
    // the UID's end, as messages show it
    if (hit.length === 0 && choice.replace(/^…/, '').length >= 6) hit = all.filter((s) => s.uid.endsWith(choice.replace(/^…/, '')));
    if (hit.length === 1) return hit[0]!;
    throw fileError(dir, `${hit.length ? 'several' : 'no'} DICOM series match '${quoteName(choice)}'; the folder holds: ${all.map(describe).join('; ')}`);
  }
  if (all.length > 1) throw fileError(dir, `${all.length} DICOM series found; choose one with --series NUMBER|UID: ${all.map(describe).join('; ')}`);
  return all[0]!;
}

const dot = (a: readonly number[], b: readonly number[]) => a[0]! * b[0]! + a[1]! * b[1]! + a[2]! * b[2]!;

/**
 * Orders a series' slices along the slice normal and checks they form one evenly spaced stack:
 * a gap (missing file) or two slices at one position would otherwise turn into a silently
 * stretched or scrambled volume.
 */
export function checkSliceStack(dir: string, series: DicomSeries): string[] {
  const heads = series.files.map((f) => readDicomSliceHeader(f)!);
  // the in-plane grid is read from one slice and applied to all: slices that disagree are not one volume
  const ps0 = heads[0]!.pixelSpacing;
  if (ps0 && !(ps0.length === 2 && ps0.every((v) => Number.isFinite(v) && v > 0))) {
    throw fileError(dir, `DICOM PixelSpacing '${ps0.map((v) => (Number.isFinite(v) ? String(v) : 'NaN')).join('\\')}' is not two positive numbers (zero, negative or unreadable spacing)`);
  }
  for (const h of heads) {
    const ps = h.pixelSpacing;
    if (ps0 && (!ps || ps.length !== 2 || ps.some((v, i) => !(Math.abs(v - ps0[i]!) <= 1e-4 * Math.max(1, ps0[i]!))))) {
      throw fileError(dir, `slices of one series have different pixel spacings (${ps0.join('×')} mm and ${ps?.every(Number.isFinite) ? ps.join('×') : 'unreadable'} mm): not a single stack`);
    }
    if (h.rows !== heads[0]!.rows || h.columns !== heads[0]!.columns) throw fileError(dir, `slices of one series have different matrix sizes (${heads[0]!.rows}×${heads[0]!.columns} and ${h.rows}×${h.columns}): not a single stack`);
  }
  if (heads.length < 2) return series.files;
  const o = heads[0]!.orientation;
  if (!o || heads.some((h) => !h.position)) return series.files; // no geometry to check; itk-wasm decides
  for (const h of heads) {
    if (!h.orientation || h.orientation.some((v, i) => Math.abs(v - o[i]!) > 1e-3)) throw fileError(dir, 'slices of one series have different orientations (not a single stack)');
  }
  const n: Vec3 = [o[1]! * o[5]! - o[2]! * o[4]!, o[2]! * o[3]! - o[0]! * o[5]!, o[0]! * o[4]! - o[1]! * o[3]!];
  const sorted = heads.map((h) => ({ f: h.file, z: dot(h.position!, n) })).sort((a, b) => a.z - b.z);
  const gaps = sorted.slice(1).map((s, i) => s.z - sorted[i]!.z);
  const med = [...gaps].sort((a, b) => a - b)[gaps.length >> 1]!;
  gaps.forEach((g, i) => {
    const a = sorted[i]!, b = sorted[i + 1]!;
    if (g < 1e-3) throw fileError(dir, `two slices at the same position ${a.z.toFixed(2)} mm along the slice normal (duplicate files or several acquisitions in one series)`);
    if (g > 1.5 * med) throw fileError(dir, `missing slice: gap of ${g.toFixed(2)} mm between slice positions ${a.z.toFixed(2)} and ${b.z.toFixed(2)} mm where the spacing is ${med.toFixed(2)} mm`);
    if (Math.abs(g - med) > 0.1 * med) throw fileError(dir, `uneven slice spacing: ${g.toFixed(2)} mm between positions ${a.z.toFixed(2)} and ${b.z.toFixed(2)} mm where the rest are ${med.toFixed(2)} mm`);
  });
  return sorted.map((s) => s.f);
}
