import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, fstatSync, realpathSync } from 'node:fs';
import { fileError } from '../common/index.ts';
import { chooseSeries, checkSliceStack, scanDicomFolder, type Vec3 } from '../volume/index.ts';
import { readPart10, str, nums, type Dataset } from './lib.ts';

/** One slice of the source series: what a SEG frame references. Position in DICOM's LPS mm. */
export interface SourceInstance {
  file: string;
  sopInstanceUid: string;
  sopClassUid: string;
  position: Vec3;
}

/**
 * The CT series a volume was read from, as a DICOM Segmentation must reference it: its instances in
 * stack order (along the slice normal, as readVolume stacks them), its plane geometry and UIDs, and
 * the first instance's header, from which the SEG copies the patient and study modules.
 */
export interface SourceSeries {
  dir: string;
  instances: SourceInstance[];
  /** ImageOrientationPatient: row direction then column direction, LPS */
  orientation: number[];
  /** PixelSpacing: between rows, between columns (mm) */
  pixelSpacing: [number, number];
  rows: number;
  columns: number;
  sliceThickness?: number;
  /** between neighbouring slices along the normal (mm) */
  spacing: number;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  frameOfReferenceUid: string;
  modality: string;
  header: Dataset;
  /** UIDs the source lacked (a de-identified copy): the SEG names derived ones instead */
  derived: string[];
}

const HEAD_BYTES = 512 * 1024;

/** The header of one file; a first slice of the file is enough unless the header is longer. */
function readHeader(file: string): { meta: Dataset; data: Dataset } {
  const fd = openSync(file, 'r');
  let head: Buffer;
  try {
    const size = fstatSync(fd).size;
    head = Buffer.alloc(Math.min(size, HEAD_BYTES));
    readSync(fd, head, 0, head.length, 0);
    if (size <= HEAD_BYTES) return readPart10(head, true);
  } finally {
    closeSync(fd);
  }
  try {
    return readPart10(head, true);
  } catch {
    return readPart10(readFileSync(file), true);
  }
}

/** A UID that is the same for the same instances, for a source that lost its own (PS3.5 B.2, 2.25 form). */
function derivedUid(kind: string, instanceUids: string[]): string {
  const h = createHash('sha256').update(kind).update('\0').update(instanceUids.join('\\')).digest('hex').slice(0, 32);
  return `2.25.${BigInt(`0x${h}`).toString()}`;
}

const dot = (a: readonly number[], b: readonly number[]): number => a[0]! * b[0]! + a[1]! * b[1]! + a[2]! * b[2]!;

/**
 * Reads the headers of the series in `dir` that readVolume reads (the same choice, the same slice
 * order). Every problem is a one-line error naming the folder; pixel data is never read.
 */
export function readSourceSeries(dir: string, choice?: string): SourceSeries {
  let real = dir;
  try { real = realpathSync(dir); } catch { /* the scan names the problem */ }
  const series = chooseSeries(dir, scanDicomFolder(real), choice);
  const files = checkSliceStack(dir, series);
  const heads = files.map((f) => {
    try {
      return { file: f, ...readHeader(f) };
    } catch (e) {
      throw fileError(f, `DICOM header could not be read (${String((e as Error).message ?? e).split('\n')[0]!.slice(0, 120)})`);
    }
  });
  const first = heads[0]!.data;
  const orientation = nums(first.ImageOrientationPatient);
  const spacing = nums(first.PixelSpacing);
  const rows = Number(first.Rows), columns = Number(first.Columns);
  if (orientation.length !== 6 || !orientation.every(Number.isFinite)) throw fileError(dir, 'DICOM series has no ImageOrientationPatient; a segmentation cannot be placed on it');
  if (spacing.length !== 2 || !spacing.every((s) => s > 0)) throw fileError(dir, 'DICOM series has no PixelSpacing; a segmentation cannot be placed on it');
  if (!(rows > 0 && columns > 0)) throw fileError(dir, 'DICOM series has no Rows/Columns');
  const instances: SourceInstance[] = heads.map(({ file, meta, data }) => {
    const pos = nums(data.ImagePositionPatient);
    if (pos.length !== 3 || !pos.every(Number.isFinite)) throw fileError(file, 'slice has no ImagePositionPatient');
    if (Number(data.Rows) !== rows || Number(data.Columns) !== columns) throw fileError(file, `slice is ${String(data.Columns)}×${String(data.Rows)}, the series ${columns}×${rows}`);
    // de-identification tools often blank the data set's UIDs but keep the meta header's copies
    const sopInstanceUid = str(data.SOPInstanceUID) || str(meta.MediaStorageSOPInstanceUID);
    const sopClassUid = str(data.SOPClassUID) || str(meta.MediaStorageSOPClassUID);
    if (!sopInstanceUid || !sopClassUid) throw fileError(file, 'slice has no SOP Instance/Class UID; a segmentation cannot reference it');
    return { file, sopInstanceUid, sopClassUid, position: pos as Vec3 };
  });
  const uids = new Set(instances.map((i) => i.sopInstanceUid));
  if (uids.size !== instances.length) throw fileError(dir, 'two slices share one SOP Instance UID');
  const normal: Vec3 = [
    orientation[1]! * orientation[5]! - orientation[2]! * orientation[4]!,
    orientation[2]! * orientation[3]! - orientation[0]! * orientation[5]!,
    orientation[0]! * orientation[4]! - orientation[1]! * orientation[3]!,
  ];
  const z = instances.map((i) => dot(i.position, normal));
  const gap = z.length > 1 ? Math.abs(z[z.length - 1]! - z[0]!) / (z.length - 1) : Number(first.SliceThickness) || 1;
  const derived: string[] = [];
  const sorted = [...uids].sort();
  const uid = (key: string, kind: string): string => {
    const v = str(first[key]);
    if (v) return v;
    derived.push(key);
    return derivedUid(kind, sorted);
  };
  const thickness = Number(first.SliceThickness);
  return {
    dir, instances, orientation, pixelSpacing: [spacing[0]!, spacing[1]!], rows, columns,
    ...(thickness > 0 ? { sliceThickness: thickness } : {}),
    spacing: gap,
    studyInstanceUid: uid('StudyInstanceUID', 'study'),
    seriesInstanceUid: uid('SeriesInstanceUID', 'series'),
    frameOfReferenceUid: uid('FrameOfReferenceUID', 'frame of reference'),
    modality: str(first.Modality),
    header: first,
    derived,
  };
}
