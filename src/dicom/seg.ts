import { randomUUID } from 'node:crypto';
import { worldToIndex, type Geometry, type Vec3, type VoxelBox } from '../volume/index.ts';
import { dcmjs, readPart10, writePart10, str, nums, type Dataset } from './lib.ts';
import { findingCodes, type Code } from './codes.ts';
import type { SourceSeries } from './source.ts';

export const SEG_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.66.4';

/** One segment to write: a finding, its words and codes, and where on the volume grid it lies. */
export interface SegmentInput {
  /** "liver cyst": organ and type, what a viewer lists */
  label: string;
  /** the report's phrase for the finding */
  description: string;
  organ: string;
  type: string;
  /** the finding's id (findings.json), kept as the segment's Tracking ID */
  trackingId: string;
  /** value at voxel (i, j, k) of the grid: 0 or 1 (binary), or a probability in [0, 1] (fractional) */
  value: (i: number, j: number, k: number) => number;
  /** the voxels where value may be non-zero; null: nowhere */
  box: VoxelBox | null;
}

export interface SegmentationOptions {
  fractional?: boolean;
  /** algorithm name (the model) and the software version writing it */
  algorithm: { name: string; version: string };
  seriesDescription?: string;
}

export interface EncodedSegmentation {
  bytes: Buffer;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  studyInstanceUid: string;
  frames: number;
}

/** A 2.25 UID from a random UUID: unique without a registered root (PS3.5 B.2). */
export function newUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replace(/-/g, '')}`).toString()}`;
}

const lpsToRas = (p: readonly number[]): Vec3 => [-p[0]!, -p[1]!, p[2]!];

/**
 * Where one source slice's pixels lie on the volume grid: the voxel of pixel (row 0, column 0) and
 * the voxel steps of one column and one row. The volume was read from these very slices, so each
 * step is one voxel along one axis; anything else (a resampled grid) is refused rather than guessed.
 */
interface Plane { at: Vec3; dc: Vec3; dr: Vec3 }

function planeOf(grid: Geometry, src: SourceSeries, position: Vec3): Plane {
  const o = src.orientation, [rowSp, colSp] = src.pixelSpacing;
  const p00 = position;
  const p01 = [0, 1, 2].map((a) => p00[a]! + o[a]! * colSp);
  const p10 = [0, 1, 2].map((a) => p00[a]! + o[3 + a]! * rowSp);
  const i00 = worldToIndex(grid, lpsToRas(p00)), i01 = worldToIndex(grid, lpsToRas(p01)), i10 = worldToIndex(grid, lpsToRas(p10));
  const near = (v: number): boolean => Math.abs(v - Math.round(v)) < 0.05;
  const at = i00.map(Math.round) as Vec3;
  const dc = i01.map((v, a) => v - i00[a]!), dr = i10.map((v, a) => v - i00[a]!);
  const unit = (d: number[]): boolean => near(d[0]!) && near(d[1]!) && near(d[2]!) && d.reduce((s, v) => s + Math.abs(Math.round(v)), 0) === 1;
  if (!i00.every(near) || !unit(dc) || !unit(dr)) throw new Error('the volume grid is not the source series\' pixel grid (resampled?); a segmentation must lie on the source slices');
  const last: Vec3 = [0, 1, 2].map((a) => at[a]! + Math.round(dc[a]!) * (src.columns - 1) + Math.round(dr[a]!) * (src.rows - 1)) as Vec3;
  for (const c of [at, last]) if (c.some((v, a) => v < 0 || v >= grid.size[a]!)) throw new Error('a source slice lies outside the volume grid');
  return { at, dc: dc.map(Math.round) as Vec3, dr: dr.map(Math.round) as Vec3 };
}

const codeItem = (c: Code): Dataset => ({ CodeValue: c.value, CodingSchemeDesignator: c.scheme, CodeMeaning: c.meaning });

// Patient, clinical trial subject, general study, patient study and clinical trial study modules
// (PS3.3 C.7.1.1, C.7.1.3, C.7.2.1, C.7.2.2, C.7.2.3): copied from the source as they are, so the
// SEG files under the same patient and study in any archive.
const COPIED = [
  'PatientName', 'PatientID', 'IssuerOfPatientID', 'IssuerOfPatientIDQualifiersSequence', 'TypeOfPatientID', 'PatientBirthDate', 'PatientBirthTime',
  'PatientSex', 'OtherPatientIDsSequence', 'PatientSpeciesDescription', 'PatientSpeciesCodeSequence', 'PatientBreedDescription', 'PatientBreedCodeSequence',
  'BreedRegistrationSequence', 'ResponsiblePerson', 'ResponsiblePersonRole', 'ResponsibleOrganization', 'PatientComments', 'PatientIdentityRemoved',
  'DeidentificationMethod', 'DeidentificationMethodCodeSequence', 'QualityControlSubject', 'StrainDescription',
  'ClinicalTrialSponsorName', 'ClinicalTrialProtocolID', 'ClinicalTrialProtocolName', 'ClinicalTrialSiteID', 'ClinicalTrialSiteName',
  'ClinicalTrialSubjectID', 'ClinicalTrialSubjectReadingID', 'ClinicalTrialTimePointID', 'ClinicalTrialTimePointDescription',
  'StudyDate', 'StudyTime', 'ReferringPhysicianName', 'StudyID', 'AccessionNumber', 'IssuerOfAccessionNumberSequence', 'StudyDescription',
  'ProcedureCodeSequence', 'AdmittingDiagnosesDescription', 'PatientAge', 'PatientSize', 'PatientWeight', 'PatientSizeCodeSequence',
  'Occupation', 'AdditionalPatientHistory', 'PregnancyStatus', 'PatientSexNeutered', 'SmokingStatus',
];
/** Type 2 attributes of those modules: present, empty when the source lacks them. */
const REQUIRED_EMPTY = ['PatientName', 'PatientID', 'PatientBirthDate', 'PatientSex', 'StudyDate', 'StudyTime', 'ReferringPhysicianName', 'StudyID', 'AccessionNumber'];

function twoDigits(n: number): string { return String(n).padStart(2, '0'); }

/**
 * Encodes a DICOM Segmentation (PS3.3 A.51) of `segments` on the source series: one frame per
 * segment and source slice where the segment has voxels (an empty segment keeps one empty frame, so
 * every segment is referenced), frames ordered by segment then slice position, each frame naming its
 * source slice. dcmjs writes the bytes.
 */
export function encodeSegmentation(src: SourceSeries, grid: Geometry, segments: SegmentInput[], opts: SegmentationOptions): EncodedSegmentation {
  if (segments.length === 0) throw new Error('a segmentation needs at least one segment');
  const fractional = opts.fractional === true;
  const planes = src.instances.map((inst) => planeOf(grid, src, inst.position));
  const px = src.rows * src.columns;
  const frames: { seg: number; slice: number; pixels: Uint8Array }[] = [];
  segments.forEach((s, n) => {
    let kept = 0;
    planes.forEach((pl, slice) => {
      const b = s.box;
      if (!b) return;
      // the axis neither step moves along is the slice axis; a slice outside the box has nothing
      const fixed = [0, 1, 2].find((a) => pl.dc[a] === 0 && pl.dr[a] === 0)!;
      if (pl.at[fixed]! < b.min[fixed]! || pl.at[fixed]! > b.max[fixed]!) return;
      const pixels = new Uint8Array(px);
      let any = false;
      for (let r = 0; r < src.rows; r++) {
        for (let c = 0; c < src.columns; c++) {
          const i = pl.at[0] + pl.dr[0] * r + pl.dc[0] * c, j = pl.at[1] + pl.dr[1] * r + pl.dc[1] * c, k = pl.at[2] + pl.dr[2] * r + pl.dc[2] * c;
          if (i < b.min[0] || i > b.max[0] || j < b.min[1] || j > b.max[1] || k < b.min[2] || k > b.max[2]) continue;
          const v = s.value(i, j, k);
          const q = fractional ? Math.round(Math.min(1, Math.max(0, v)) * 255) : v > 0 ? 1 : 0;
          if (q) { pixels[r * src.columns + c] = q; any = true; }
        }
      }
      if (any) { frames.push({ seg: n + 1, slice, pixels }); kept++; }
    });
    if (!kept) frames.push({ seg: n + 1, slice: 0, pixels: new Uint8Array(px) });
  });
  frames.sort((a, b) => a.seg - b.seg || a.slice - b.slice);

  const all = new Uint8Array(frames.length * px);
  frames.forEach((f, n) => all.set(f.pixels, n * px));
  const pixelData = fractional ? all : dcmjs.data.BitArray.pack(all);

  const sopInstanceUid = newUid(), seriesInstanceUid = newUid(), dimensionUid = newUid();
  const now = new Date();
  const date = `${now.getUTCFullYear()}${twoDigits(now.getUTCMonth() + 1)}${twoDigits(now.getUTCDate())}`;
  const time = `${twoDigits(now.getUTCHours())}${twoDigits(now.getUTCMinutes())}${twoDigits(now.getUTCSeconds())}`;
  const h = src.header;
  const ds: Dataset = { _vrMap: { PixelData: 'OB' }, SpecificCharacterSet: 'ISO_IR 192' };
  for (const k of COPIED) if (h[k] !== undefined) ds[k] = h[k];
  for (const k of REQUIRED_EMPTY) if (ds[k] === undefined) ds[k] = '';
  Object.assign(ds, {
    SOPClassUID: SEG_SOP_CLASS, SOPInstanceUID: sopInstanceUid,
    StudyInstanceUID: src.studyInstanceUid,
    Modality: 'SEG', SeriesInstanceUID: seriesInstanceUid, SeriesNumber: 901,
    SeriesDescription: (opts.seriesDescription ?? 'ctground findings').slice(0, 64),
    SeriesDate: date, SeriesTime: time,
    FrameOfReferenceUID: src.frameOfReferenceUid, PositionReferenceIndicator: str(h.PositionReferenceIndicator),
    Manufacturer: 'ctground', ManufacturerModelName: opts.algorithm.name.slice(0, 64), DeviceSerialNumber: '1',
    SoftwareVersions: opts.algorithm.version.slice(0, 64),
    InstanceNumber: 1, ContentDate: date, ContentTime: time,
    ContentLabel: 'FINDINGS', ContentDescription: 'Report findings grounded in the CT', ContentCreatorName: '',
    ImageType: ['DERIVED', 'PRIMARY'], LossyImageCompression: '00',
    SamplesPerPixel: 1, PhotometricInterpretation: 'MONOCHROME2', Rows: src.rows, Columns: src.columns,
    BitsAllocated: fractional ? 8 : 1, BitsStored: fractional ? 8 : 1, HighBit: fractional ? 7 : 0, PixelRepresentation: 0,
    SegmentationType: fractional ? 'FRACTIONAL' : 'BINARY',
    ...(fractional ? { SegmentationFractionalType: 'PROBABILITY', MaximumFractionalValue: 255 } : {}),
    SegmentSequence: segments.map((s, n) => {
      const codes = findingCodes(s.organ, s.type);
      return {
        SegmentNumber: n + 1, SegmentLabel: s.label.slice(0, 64), SegmentDescription: s.description.slice(0, 1024),
        SegmentAlgorithmType: 'AUTOMATIC', SegmentAlgorithmName: opts.algorithm.name.slice(0, 64),
        SegmentedPropertyCategoryCodeSequence: [codeItem(codes.category)],
        SegmentedPropertyTypeCodeSequence: [codeItem(codes.type)],
        AnatomicRegionSequence: [codeItem(codes.region)],
        TrackingID: s.trackingId.slice(0, 64), TrackingUID: newUid(),
      };
    }),
    ReferencedSeriesSequence: [{
      SeriesInstanceUID: src.seriesInstanceUid,
      ReferencedInstanceSequence: src.instances.map((i) => ({ ReferencedSOPClassUID: i.sopClassUid, ReferencedSOPInstanceUID: i.sopInstanceUid })),
    }],
    DimensionOrganizationSequence: [{ DimensionOrganizationUID: dimensionUid }],
    DimensionOrganizationType: '3D',
    DimensionIndexSequence: [
      { DimensionOrganizationUID: dimensionUid, DimensionIndexPointer: 0x0062000b, FunctionalGroupPointer: 0x0062000a, DimensionDescriptionLabel: 'ReferencedSegmentNumber' },
      { DimensionOrganizationUID: dimensionUid, DimensionIndexPointer: 0x00200032, FunctionalGroupPointer: 0x00209113, DimensionDescriptionLabel: 'ImagePositionPatient' },
    ],
    SharedFunctionalGroupsSequence: [{
      PlaneOrientationSequence: [{ ImageOrientationPatient: src.orientation }],
      PixelMeasuresSequence: [{ PixelSpacing: src.pixelSpacing, SliceThickness: src.sliceThickness ?? src.spacing, SpacingBetweenSlices: round6(src.spacing) }],
    }],
    PerFrameFunctionalGroupsSequence: frames.map((f) => {
      const inst = src.instances[f.slice]!;
      return {
        DerivationImageSequence: [{
          SourceImageSequence: [{
            ReferencedSOPClassUID: inst.sopClassUid, ReferencedSOPInstanceUID: inst.sopInstanceUid,
            PurposeOfReferenceCodeSequence: [{ CodeValue: '121322', CodingSchemeDesignator: 'DCM', CodeMeaning: 'Source image for image processing operation' }],
          }],
          DerivationCodeSequence: [{ CodeValue: '113076', CodingSchemeDesignator: 'DCM', CodeMeaning: 'Segmentation' }],
        }],
        FrameContentSequence: [{ DimensionIndexValues: [f.seg, f.slice + 1] }],
        PlanePositionSequence: [{ ImagePositionPatient: inst.position }],
        SegmentIdentificationSequence: [{ ReferencedSegmentNumber: f.seg }],
      };
    }),
    NumberOfFrames: frames.length,
    PixelData: [pixelData.buffer.slice(pixelData.byteOffset, pixelData.byteOffset + pixelData.byteLength)],
  });
  return { bytes: writePart10(ds, SEG_SOP_CLASS, sopInstanceUid), sopInstanceUid, seriesInstanceUid, studyInstanceUid: src.studyInstanceUid, frames: frames.length };
}

function round6(v: number): number { return Math.round(v * 1e6) / 1e6; }

/** A segment as read back from a SEG. */
export interface DecodedSegment {
  number: number;
  label: string;
  description: string;
  trackingId: string;
  category: Code | null;
  type: Code | null;
  region: Code | null;
}

export interface DecodedFrame {
  segment: number;
  /** ImagePositionPatient, LPS mm */
  position: Vec3;
  sourceInstance: string;
  /** rows × columns, 0/1 (binary) or 0–255 (fractional) */
  pixels: Uint8Array;
}

export interface DecodedSegmentation {
  sopInstanceUid: string;
  studyInstanceUid: string;
  frameOfReferenceUid: string;
  type: 'BINARY' | 'FRACTIONAL';
  rows: number;
  columns: number;
  orientation: number[];
  pixelSpacing: [number, number];
  segments: DecodedSegment[];
  frames: DecodedFrame[];
}

const codeOf = (seq: unknown): Code | null => {
  const it = Array.isArray(seq) ? (seq[0] as Dataset | undefined) : (seq as Dataset | undefined);
  return it ? { value: str(it.CodeValue), scheme: str(it.CodingSchemeDesignator), meaning: str(it.CodeMeaning) } : null;
};
const first = (v: unknown): Dataset => (Array.isArray(v) ? (v[0] as Dataset) : (v as Dataset)) ?? {};

/** Reads a DICOM Segmentation (ours or another tool's, uncompressed) into segments and frames. */
export function decodeSegmentation(bytes: Buffer): DecodedSegmentation {
  const { data } = readPart10(bytes, false);
  if (str(data.SOPClassUID) !== SEG_SOP_CLASS) throw new Error('not a DICOM Segmentation (SOP Class UID is not 1.2.840.10008.5.1.4.1.1.66.4)');
  const rows = Number(data.Rows), columns = Number(data.Columns), n = Number(data.NumberOfFrames) || 1;
  const type = str(data.SegmentationType) === 'FRACTIONAL' ? 'FRACTIONAL' : 'BINARY';
  const raw = data.PixelData;
  const buf = Array.isArray(raw) ? raw[0] : raw;
  if (!(buf instanceof ArrayBuffer)) throw new Error('segmentation has no pixel data');
  const px = rows * columns;
  const bytesIn = new Uint8Array(buf);
  // dcmjs unpacks a set bit to 255; frames say 0/1
  const all = type === 'BINARY' ? dcmjs.data.BitArray.unpack(bytesIn).subarray(0, n * px).map((v) => (v ? 1 : 0)) : bytesIn;
  if (all.length < n * px) throw new Error(`segmentation pixel data is short: ${all.length} pixels for ${n} frames of ${columns}×${rows}`);
  const shared = first(data.SharedFunctionalGroupsSequence);
  const perFrame = (Array.isArray(data.PerFrameFunctionalGroupsSequence) ? data.PerFrameFunctionalGroupsSequence : []) as Dataset[];
  const frames: DecodedFrame[] = perFrame.slice(0, n).map((g, f) => {
    const src = first(first(first(g.DerivationImageSequence).SourceImageSequence));
    return {
      segment: Number(first(g.SegmentIdentificationSequence).ReferencedSegmentNumber ?? first(shared.SegmentIdentificationSequence).ReferencedSegmentNumber),
      position: nums(first(g.PlanePositionSequence).ImagePositionPatient) as Vec3,
      sourceInstance: str(src.ReferencedSOPInstanceUID),
      pixels: all.subarray(f * px, (f + 1) * px),
    };
  });
  const planeOri = first(shared.PlaneOrientationSequence).ImageOrientationPatient ?? first(perFrame[0]?.PlaneOrientationSequence).ImageOrientationPatient;
  const measures = first(shared.PixelMeasuresSequence).PixelSpacing ?? first(perFrame[0]?.PixelMeasuresSequence).PixelSpacing;
  const sp = nums(measures);
  return {
    sopInstanceUid: str(data.SOPInstanceUID), studyInstanceUid: str(data.StudyInstanceUID), frameOfReferenceUid: str(data.FrameOfReferenceUID),
    type, rows, columns, orientation: nums(planeOri), pixelSpacing: [sp[0]!, sp[1]!],
    segments: ((Array.isArray(data.SegmentSequence) ? data.SegmentSequence : []) as Dataset[]).map((s) => ({
      number: Number(s.SegmentNumber), label: str(s.SegmentLabel), description: str(s.SegmentDescription), trackingId: str(s.TrackingID),
      category: codeOf(s.SegmentedPropertyCategoryCodeSequence), type: codeOf(s.SegmentedPropertyTypeCodeSequence), region: codeOf(s.AnatomicRegionSequence),
    })),
    frames,
  };
}

/**
 * A decoded SEG's segments as volumes on `grid` (a CT read from the same slices, in RAS): each
 * frame's pixels land on the voxels at their patient positions. Binary segments are 0/1, fractional
 * ones value / 255. A frame whose pixels do not fall on the grid's voxel centres is an error: the
 * SEG belongs to another scan or grid.
 */
export function segmentationOnGrid(seg: DecodedSegmentation, grid: Geometry): { segment: DecodedSegment; data: Float32Array }[] {
  const n = grid.size[0] * grid.size[1] * grid.size[2];
  const src = { orientation: seg.orientation, pixelSpacing: seg.pixelSpacing, rows: seg.rows, columns: seg.columns } as SourceSeries;
  const scale = seg.type === 'FRACTIONAL' ? 1 / 255 : 1;
  const out = seg.segments.map((segment) => ({ segment, data: new Float32Array(n) }));
  const byNumber = new Map(out.map((o) => [o.segment.number, o]));
  for (const f of seg.frames) {
    const target = byNumber.get(f.segment);
    if (!target) continue;
    const pl = planeOf(grid, src, f.position);
    for (let r = 0; r < seg.rows; r++) {
      for (let c = 0; c < seg.columns; c++) {
        const v = f.pixels[r * seg.columns + c]!;
        if (!v) continue;
        const i = pl.at[0] + pl.dr[0] * r + pl.dc[0] * c, j = pl.at[1] + pl.dr[1] * r + pl.dc[1] * c, k = pl.at[2] + pl.dr[2] * r + pl.dc[2] * c;
        target.data[i + grid.size[0] * (j + grid.size[1] * k)] = v * scale;
      }
    }
  }
  return out;
}

/** What a review did to one segment (by its Tracking ID): kept, dropped, or cut to a voxel box of the grid. */
export type SegmentEdit = 'keep' | 'drop' | VoxelBox;

/**
 * The reviewed version of a SEG: rejected segments dropped, redrawn ones cut to their box, the rest
 * as they were; everything else (references, patient and study modules, codes) kept, under a new SOP
 * Instance and Series UID. Null when no segment is left. `grid` is the CT grid the boxes are on.
 */
export function reviseSegmentation(bytes: Buffer, grid: Geometry, edits: Map<string, SegmentEdit>): Buffer | null {
  const { data } = readPart10(bytes, false);
  const seg = decodeSegmentation(bytes);
  const src = { orientation: seg.orientation, pixelSpacing: seg.pixelSpacing, rows: seg.rows, columns: seg.columns } as SourceSeries;
  const items = (data.SegmentSequence as Dataset[]) ?? [];
  const groups = (data.PerFrameFunctionalGroupsSequence as Dataset[]) ?? [];
  const renumber = new Map<number, number>();
  const keptItems: Dataset[] = [];
  for (const it of items) {
    const edit = edits.get(str(it.TrackingID)) ?? 'keep';
    if (edit === 'drop') continue;
    renumber.set(Number(it.SegmentNumber), keptItems.length + 1);
    keptItems.push({ ...it, SegmentNumber: keptItems.length + 1 });
  }
  if (!keptItems.length) return null;
  const boxOf = new Map<number, VoxelBox>();
  for (const it of items) {
    const edit = edits.get(str(it.TrackingID));
    if (edit && edit !== 'keep' && edit !== 'drop') boxOf.set(Number(it.SegmentNumber), edit);
  }
  const px = seg.rows * seg.columns;
  const frames: { group: Dataset; pixels: Uint8Array; seg: number }[] = [];
  seg.frames.forEach((f, n) => {
    const to = renumber.get(f.segment);
    if (to === undefined) return;
    const pixels = Uint8Array.from(f.pixels);
    const b = boxOf.get(f.segment);
    if (b) {
      const pl = planeOf(grid, src, f.position);
      for (let r = 0; r < seg.rows; r++) for (let c = 0; c < seg.columns; c++) {
        const i = pl.at[0] + pl.dr[0] * r + pl.dc[0] * c, j = pl.at[1] + pl.dr[1] * r + pl.dc[1] * c, k = pl.at[2] + pl.dr[2] * r + pl.dc[2] * c;
        if (i < b.min[0] || i > b.max[0] || j < b.min[1] || j > b.max[1] || k < b.min[2] || k > b.max[2]) pixels[r * seg.columns + c] = 0;
      }
    }
    const g = groups[n]!;
    const content = (g.FrameContentSequence as Dataset[] | undefined)?.[0];
    const dims = content ? nums(content.DimensionIndexValues) : [];
    frames.push({
      seg: to, pixels,
      group: {
        ...g,
        SegmentIdentificationSequence: [{ ReferencedSegmentNumber: to }],
        ...(content ? { FrameContentSequence: [{ ...content, DimensionIndexValues: [to, ...dims.slice(1)] }] } : {}),
      },
    });
  });
  // frames a cut emptied go, but every segment keeps one
  const kept = frames.filter((f) => f.pixels.some((v) => v));
  for (let s = 1; s <= keptItems.length; s++) {
    const first = frames.find((f) => f.seg === s);
    if (first && !kept.some((f) => f.seg === s)) kept.push(first);
  }
  kept.sort((a, b) => a.seg - b.seg || frames.indexOf(a) - frames.indexOf(b));
  const all = new Uint8Array(kept.length * px);
  kept.forEach((f, n) => all.set(f.pixels, n * px));
  const packed = seg.type === 'BINARY' ? dcmjs.data.BitArray.pack(all) : all;
  const sopInstanceUid = newUid();
  const out: Dataset = {
    ...data,
    _vrMap: { ...(data._vrMap ?? {}), PixelData: 'OB' },
    SOPInstanceUID: sopInstanceUid, SeriesInstanceUID: newUid(),
    SeriesDescription: `${str(data.SeriesDescription) || 'ctground findings'} (reviewed)`.slice(0, 64),
    SegmentSequence: keptItems,
    PerFrameFunctionalGroupsSequence: kept.map((f) => f.group),
    NumberOfFrames: kept.length,
    PixelData: [packed.buffer.slice(packed.byteOffset, packed.byteOffset + packed.byteLength)],
  };
  return writePart10(out, SEG_SOP_CLASS, sopInstanceUid);
}
