import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { UserError, fileError, writeFileAtomic } from '../common/index.ts';
import { fallbackAnatomy, fromTotalSegmentator, loadOrganScheme } from '../anatomy/index.ts';
import { readVolume, resampleToGrid, sameGrid, voxelBoxToWorld, writeNifti, type Volume } from '../volume/index.ts';
import { structureReport } from '../report/index.ts';
import { readRecord, studyPaths, writeManifest, type ManifestAnomaly, type ManifestStudy } from './dataset.ts';
import type { Span } from './report.ts';

const round3 = (v: number): number => Math.round(v * 1000) / 1000;

/** Binary mask of `value` (or any nonzero voxel when value is undefined) and its world box. */
function binaryMask(src: Volume, value?: number): { mask: Volume<Uint8Array>; box: ManifestAnomaly['box'] } | null {
  const [nx, ny] = src.size;
  const data = new Uint8Array(src.data.length);
  const lo = [Infinity, Infinity, Infinity], hi = [-1, -1, -1];
  let n = 0;
  for (let p = 0; p < data.length; p++) {
    const v = src.data[p]!;
    if (value === undefined ? !v : v !== value) continue;
    data[p] = 1; n++;
    const ijk = [p % nx, Math.floor(p / nx) % ny, Math.floor(p / (nx * ny))];
    for (let a = 0; a < 3; a++) { if (ijk[a]! < lo[a]!) lo[a] = ijk[a]!; if (ijk[a]! > hi[a]!) hi[a] = ijk[a]!; }
  }
  if (!n) return null;
  const b = voxelBoxToWorld(src, { min: lo.map((v) => v - 0.5) as [number, number, number], max: hi.map((v) => v + 0.5) as [number, number, number] });
  return { mask: { data, size: [...src.size], spacing: [...src.spacing], origin: [...src.origin], direction: [...src.direction] }, box: [b[0].map(round3) as [number, number, number], b[1].map(round3) as [number, number, number]] };
}

/** Labels in ctground's scheme for a CT: converted from TotalSegmentator, taken as they are, or from HU. */
async function labelsFor(ct: Volume, labelsPath: string | undefined, scheme: 'auto' | 'totalsegmentator' | 'ctground'): Promise<Volume<Uint8Array>> {
  if (!labelsPath) return fallbackAnatomy(ct);
  let lab = await readVolume(labelsPath);
  if (!sameGrid(ct, lab)) lab = resampleToGrid(lab, ct, 'nearest', { fill: 0 });
  let max = 0;
  for (let i = 0; i < lab.data.length; i++) if (lab.data[i]! > max) max = lab.data[i]!;
  const ts = scheme === 'totalsegmentator' || (scheme === 'auto' && max > loadOrganScheme().maxValue);
  if (ts) return fromTotalSegmentator(lab, ct);
  if (max > loadOrganScheme().maxValue) throw fileError(labelsPath, `label value ${max} is outside ctground's organ scheme (use --labels-scheme totalsegmentator?)`);
  return { ...lab, data: Uint8Array.from(lab.data) };
}

/** Rewrites manifest.jsonl of `out` with `rec` added (or replacing the study of the same id). */
function upsertManifest(out: string, rec: ManifestStudy): void {
  const mf = join(out, 'manifest.jsonl');
  const records: ManifestStudy[] = existsSync(mf) ? readFileSync(mf, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as ManifestStudy) : [];
  const i = records.findIndex((r) => r.id === rec.id);
  if (i >= 0) records[i] = rec; else records.push(rec);
  writeManifest(out, records);
}

/** The findings file of `ctground dataset import`. */
export interface FindingsFile {
  report?: string;
  reportFile?: string;
  split?: string;
  anomalies: { id?: string; organ: string; type: string; certainty?: 'present' | 'uncertain' | 'absent'; spans?: Span[]; phrase?: string; label?: number; box?: [[number, number, number], [number, number, number]] }[];
}

export interface ImportOptions {
  out: string;
  ct: string;
  findings: string;
  mask?: string;
  labels?: string;
  labelScheme?: 'auto' | 'totalsegmentator' | 'ctground';
  id?: string;
  split?: string;
}

/**
 * Imports one study from a CT, a multi-label lesion mask (value k = the k-th anomaly unless the
 * findings say otherwise) and a findings JSON, into the dataset folder `out`.
 */
export async function importStudy(o: ImportOptions): Promise<ManifestStudy> {
  let f: FindingsFile;
  try { f = JSON.parse(readFileSync(o.findings, 'utf8')) as FindingsFile; } catch (e) { throw fileError(o.findings, `cannot read findings JSON (${(e as Error).message.split('\n')[0]})`); }
  if (!Array.isArray(f.anomalies)) throw fileError(o.findings, '"anomalies" must be a list');
  const text = f.report ?? (f.reportFile ? readFileSync(join(o.findings, '..', f.reportFile), 'utf8') : undefined);
  if (typeof text !== 'string') throw fileError(o.findings, 'needs "report" (the report text) or "reportFile"');
  const id = o.id ?? basename(o.ct).replace(/\.(nii(\.gz)?|nrrd|mha|mhd)$/i, '');
  const split = o.split ?? f.split ?? 'train';
  const ct = await readVolume(o.ct);
  const labels = await labelsFor(ct, o.labels, o.labelScheme ?? 'auto');
  let mask = o.mask ? await readVolume(o.mask) : undefined;
  if (mask && !sameGrid(ct, mask)) mask = resampleToGrid(mask, ct, 'nearest', { fill: 0 });
  const p = studyPaths(id);
  const anomalies: ManifestAnomaly[] = [];
  let searchFrom = 0;
  for (let i = 0; i < f.anomalies.length; i++) {
    const a = f.anomalies[i]!;
    const aid = a.id ?? `a${i + 1}`;
    let spans = a.spans;
    if (!spans && a.phrase) {
      let at = text.indexOf(a.phrase, searchFrom);
      if (at < 0) at = text.indexOf(a.phrase);
      if (at < 0) throw fileError(o.findings, `anomaly ${aid}: phrase '${a.phrase}' is not in the report`);
      searchFrom = at + a.phrase.length;
      spans = [{ start: at, end: at + a.phrase.length, text: a.phrase, class: 'anomaly' }];
    }
    if (!spans) throw fileError(o.findings, `anomaly ${aid} needs "spans" or "phrase"`);
    for (const s of spans) if (text.slice(s.start, s.end) !== s.text) throw fileError(o.findings, `anomaly ${aid}: span [${s.start}, ${s.end}) '${s.text}' is not the report's text there`);
    const m: ManifestAnomaly = { id: aid, organ: a.organ, type: a.type, certainty: a.certainty ?? 'present', spans };
    if (mask && m.certainty !== 'absent') {
      const bm = binaryMask(mask, a.label ?? i + 1);
      if (!bm) throw fileError(o.mask!, `no voxel with value ${a.label ?? i + 1} for anomaly ${aid}`);
      m.mask = p.mask(aid);
      m.box = bm.box;
      await writeNifti(join(o.out, m.mask), bm.mask);
    } else if (a.box) m.box = a.box;
    anomalies.push(m);
  }
  await writeNifti(join(o.out, p.ct), ct);
  await writeNifti(join(o.out, p.labels), labels);
  writeFileAtomic(join(o.out, p.report), text);
  const rec: ManifestStudy = { id, ct: p.ct, labels: p.labels, report: p.report, split, anomalies };
  writeFileAtomic(join(o.out, p.record), JSON.stringify(rec));
  upsertManifest(o.out, rec);
  return rec;
}

/** A NIfTI-1 image of any dimensionality (the 4-D finding masks of ReXGroundingCT). */
export interface RawNifti { dims: number[]; data: ArrayLike<number> }

export function parseNifti(file: string, bytes: Uint8Array): RawNifti {
  const buf = bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : Buffer.from(bytes);
  if (buf.length < 352) throw fileError(file, 'too short to be a NIfTI-1 file');
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let le = true;
  if (dv.getInt32(0, true) !== 348) {
    if (dv.getInt32(0, false) === 348) le = false;
    else throw fileError(file, 'not a NIfTI-1 file (NIfTI-2 is not supported for finding masks)');
  }
  const nd = dv.getInt16(40, le);
  if (nd < 1 || nd > 7) throw fileError(file, `bad dimension count ${nd}`);
  const dims = Array.from({ length: nd }, (_, i) => dv.getInt16(42 + 2 * i, le));
  const datatype = dv.getInt16(70, le);
  const off = Math.round(dv.getFloat32(108, le));
  const n = dims.reduce((a, b) => a * b, 1);
  const types: Record<number, [number, (o: number) => number]> = {
    2: [1, (o) => dv.getUint8(o)], 256: [1, (o) => dv.getInt8(o)], 4: [2, (o) => dv.getInt16(o, le)], 512: [2, (o) => dv.getUint16(o, le)],
    8: [4, (o) => dv.getInt32(o, le)], 768: [4, (o) => dv.getUint32(o, le)], 16: [4, (o) => dv.getFloat32(o, le)], 64: [8, (o) => dv.getFloat64(o, le)],
  };
  const t = types[datatype];
  if (!t) throw fileError(file, `NIfTI datatype ${datatype} is not supported for masks`);
  if (off + n * t[0] > buf.length) throw fileError(file, 'file is shorter than its header says (truncated?)');
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = t[1](off + i * t[0]);
  return { dims, data };
}

function indexNifti(dir: string, skip: string, out = new Map<string, string>()): Map<string, string> {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir)) {
    const f = join(dir, e);
    if (f === skip) continue;
    const st = statSync(f);
    if (st.isDirectory()) indexNifti(f, skip, out);
    else if (e.endsWith('.nii.gz') && !out.has(e)) out.set(e, f);
  }
  return out;
}

interface RexEntry { name: string; findings: Record<string, string>; categories?: Record<string, string> }

/**
 * Imports ReXGroundingCT (Hugging Face rajpurkarlab/ReXGroundingCT): `dataset.json` with
 * train/val/test lists of {name, findings: {k: text}, ...}, finding masks `segmentations/<name>`
 * shaped (F, H, W, D) on the CT's voxel grid, CT volumes from CT-RATE found by file name under
 * `ctDir`. Each finding becomes one anomaly; its organ, type and phrase spans come from the
 * report structurer (findings it cannot type stay as lung findings with the whole sentence as
 * their phrase). Studies without a CT or mask are skipped and listed. Resumable.
 */
export async function importRexGrounding(src: string, out: string, o: { ctDir?: string; json?: string; limit?: number; onStudy?: (done: number, total: number) => void } = {}): Promise<{ imported: number; skipped: string[] }> {
  const jf = o.json ?? join(src, 'dataset.json');
  if (!existsSync(jf)) throw fileError(jf, 'not found (the ReXGroundingCT folder holds dataset.json and segmentations/)');
  let meta: Record<string, RexEntry[]>;
  try { meta = JSON.parse(readFileSync(jf, 'utf8')) as Record<string, RexEntry[]>; } catch { throw fileError(jf, 'not valid JSON'); }
  const segDir = join(src, 'segmentations');
  const cts = indexNifti(o.ctDir ?? src, segDir);
  const entries: { e: RexEntry; split: string }[] = [];
  for (const [split, list] of Object.entries(meta)) {
    if (!Array.isArray(list)) continue;
    const sp = split === 'valid' || split === 'validation' ? 'val' : split;
    for (const e of list) if (e && typeof e.name === 'string' && e.findings) entries.push({ e, split: sp });
  }
  if (!entries.length) throw fileError(jf, 'lists no studies (expected {"train": [{"name", "findings", ...}], ...})');
  const chosen = entries.slice(0, o.limit ?? entries.length);
  const skipped: string[] = [];
  const records: ManifestStudy[] = [];
  let done = 0;
  for (const { e, split } of chosen) {
    const id = e.name.replace(/\.nii(\.gz)?$/, '');
    const prev = readRecord(out, id);
    if (prev) { records.push(prev); o.onStudy?.(++done, chosen.length); continue; }
    const maskFile = join(segDir, e.name), ctFile = cts.get(e.name);
    if (!existsSync(maskFile)) { skipped.push(`${maskFile}: finding mask missing, study skipped`); o.onStudy?.(++done, chosen.length); continue; }
    if (!ctFile) { skipped.push(`${e.name}: CT volume not found under ${o.ctDir ?? src}, study skipped`); o.onStudy?.(++done, chosen.length); continue; }
    const ct = await readVolume(ctFile);
    const raw = parseNifti(maskFile, readFileSync(maskFile));
    const keys = Object.keys(e.findings).sort((a, b) => Number(a) - Number(b));
    const [nx, ny, nz] = ct.size;
    // (F, H, W, D) as the card states, or (H, W, D, F) as some exports write it.
    let layout: 'first' | 'last';
    if (raw.dims.length === 4 && raw.dims[1] === nx && raw.dims[2] === ny && raw.dims[3] === nz) layout = 'first';
    else if (raw.dims.length >= 3 && raw.dims[0] === nx && raw.dims[1] === ny && raw.dims[2] === nz) layout = 'last';
    else { skipped.push(`${maskFile}: mask shape ${raw.dims.join('x')} does not match the CT's ${ct.size.join('x')}, study skipped`); o.onStudy?.(++done, chosen.length); continue; }
    const F = layout === 'first' ? raw.dims[0]! : raw.dims[3] ?? 1;
    let text = '';
    const anomalies: ManifestAnomaly[] = [];
    const p = studyPaths(id);
    const nvox = nx * ny * nz;
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k]!, f = Number(key);
      let sentence = e.findings[key]!.trim();
      if (!/[.!?]$/.test(sentence)) sentence += '.';
      const off = text ? text.length + 1 : 0;
      text = text ? `${text} ${sentence}` : sentence;
      const st = structureReport(sentence).anomalies.find((a) => a.certainty !== 'absent' && a.spans.some((s) => s.class === 'anomaly'));
      const spans: Span[] = st ? st.spans.map((s) => ({ start: s.start + off, end: s.end + off, text: s.text, class: s.class })) : [{ start: off, end: off + sentence.length - 1, text: sentence.slice(0, -1), class: 'anomaly' }];
      const a: ManifestAnomaly = { id: `f${key}`, organ: st?.organ ?? 'lung', type: st?.type ?? 'high_density_area', certainty: 'present', spans };
      if (Number.isInteger(f) && f >= 0 && f < F) {
        const data = new Uint8Array(nvox);
        for (let q = 0; q < nvox; q++) data[q] = raw.data[layout === 'first' ? f + F * q : q + nvox * f]! ? 1 : 0;
        const bm = binaryMask({ ...ct, data });
        if (bm) { a.mask = p.mask(a.id); a.box = bm.box; await writeNifti(join(out, a.mask), bm.mask); }
      }
      if (!a.mask) skipped.push(`${maskFile}: finding ${key} has no voxels; kept without a mask`);
      anomalies.push(a);
    }
    await writeNifti(join(out, p.ct), ct);
    await writeNifti(join(out, p.labels), fallbackAnatomy(ct));
    writeFileAtomic(join(out, p.report), text);
    const rec: ManifestStudy = { id, ct: p.ct, labels: p.labels, report: p.report, split: ['train', 'val', 'test'].includes(split) ? split : 'train', anomalies };
    writeFileAtomic(join(out, p.record), JSON.stringify(rec));
    records.push(rec);
    o.onStudy?.(++done, chosen.length);
  }
  if (!records.length) throw new UserError(`${jf}: no study could be imported (${skipped.length} skipped: ${skipped[0] ?? ''})`);
  writeManifest(out, records);
  return { imported: records.length, skipped };
}
