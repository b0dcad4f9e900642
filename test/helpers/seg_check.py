"""Independent check of a DICOM Segmentation written by ctground, with pydicom and numpy only.

Reads the SEG, the label map (NIfTI-1, its sform parsed here by hand), findings.json and the
source DICOM folder, and checks voxel for voxel that every segment's frames equal the label map on
the source slices (binary: labels == the finding's value; fractional: round(255 * map)), that a
(segment, slice) pair without a frame has no voxel there, and that each frame references the SOP
Instance UID of the source slice at its ImagePositionPatient. Prints one JSON line; exit 1 on any
mismatch.

usage: seg_check.py SEG LABELS.nii.gz FINDINGS.json SOURCE_DIR [--fractional MAPS_DIR]
"""
import gzip, json, os, struct, sys
import numpy as np
import pydicom


def read_nifti(path):
    raw = open(path, 'rb').read()
    if raw[:2] == b'\x1f\x8b':
        raw = gzip.decompress(raw)
    if struct.unpack('<i', raw[:4])[0] != 348:
        raise SystemExit(f'{path}: not a little-endian NIfTI-1 file')
    dim = struct.unpack('<8h', raw[40:56])
    datatype = struct.unpack('<h', raw[70:72])[0]
    vox_offset = int(struct.unpack('<f', raw[108:112])[0])
    slope, inter = struct.unpack('<2f', raw[112:120])
    sform_code = struct.unpack('<h', raw[254:256])[0]
    if sform_code <= 0:
        raise SystemExit(f'{path}: no sform; this checker reads sform only')
    srow = np.array(struct.unpack('<12f', raw[280:328]), dtype=np.float64).reshape(3, 4)
    affine = np.vstack([srow, [0, 0, 0, 1]])
    dtypes = {2: np.uint8, 4: np.int16, 8: np.int32, 16: np.float32, 64: np.float64, 256: np.int8, 512: np.uint16, 768: np.uint32}
    n = dim[1] * dim[2] * dim[3]
    data = np.frombuffer(raw, dtype=dtypes[datatype], count=n, offset=vox_offset).astype(np.float64)
    if slope not in (0.0, 1.0) or inter != 0.0:
        data = data * (slope or 1.0) + inter
    # NIfTI stores i fastest: reshape in Fortran order gives data[i, j, k]
    return data.reshape((dim[1], dim[2], dim[3]), order='F'), affine


def main():
    args = sys.argv[1:]
    fractional_dir = None
    if '--fractional' in args:
        at = args.index('--fractional')
        fractional_dir = args[at + 1]
        args = args[:at] + args[at + 2:]
    seg_path, labels_path, findings_path, source_dir = args
    seg = pydicom.dcmread(seg_path)
    findings = {f['id']: f for f in json.load(open(findings_path))['anomalies']}
    labels, affine = read_nifti(labels_path)
    inv = np.linalg.inv(affine)

    # source slices: SOP Instance UID (the data set's, else the meta header's) by position
    by_pos = {}
    for name in sorted(os.listdir(source_dir)):
        p = os.path.join(source_dir, name)
        try:
            d = pydicom.dcmread(p, stop_before_pixels=True)
        except Exception:
            continue
        uid = str(d.get('SOPInstanceUID', '') or d.file_meta.MediaStorageSOPInstanceUID)
        by_pos[tuple(round(float(v), 3) for v in d.ImagePositionPatient)] = uid

    shared = seg.SharedFunctionalGroupsSequence[0]
    iop = np.array([float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient])
    row_sp, col_sp = (float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing)
    rows, cols = int(seg.Rows), int(seg.Columns)
    frames = seg.pixel_array.reshape((int(seg.NumberOfFrames), rows, cols))
    fractional = seg.SegmentationType == 'FRACTIONAL'
    if fractional != (fractional_dir is not None):
        raise SystemExit(f'SegmentationType {seg.SegmentationType} but checker mode fractional={fractional_dir is not None}')

    segments = {int(s.SegmentNumber): s for s in seg.SegmentSequence}
    rr, cc = np.meshgrid(np.arange(rows), np.arange(cols), indexing='ij')

    def expected(segment, pos):
        """The segment's values on the source slice at pos, from the label map (or the map)."""
        lps = pos[None, None, :] + cc[..., None] * col_sp * iop[None, None, :3] + rr[..., None] * row_sp * iop[None, None, 3:]
        ras = lps * np.array([-1.0, -1.0, 1.0])
        ijk = np.einsum('ab,rcb->rca', inv[:3, :3], ras) + inv[:3, 3]
        idx = np.rint(ijk).astype(int)
        if np.abs(ijk - idx).max() > 0.05:
            raise SystemExit('source pixels do not fall on label-map voxel centres')
        inside = np.all((idx >= 0) & (idx < np.array(labels.shape)), axis=-1)
        f = findings[str(segment.TrackingID)]
        vol = labels if not fractional else maps[f['id']]
        vals = np.zeros((rows, cols))
        vals[inside] = vol[idx[inside][:, 0], idx[inside][:, 1], idx[inside][:, 2]]
        if fractional:
            return np.rint(np.clip(vals, 0, 1) * 255)
        return (vals == f['label']).astype(np.float64)

    maps = {}
    if fractional:
        for sid in segments.values():
            f = findings[str(sid.TrackingID)]
            maps[f['id']], _ = read_nifti(os.path.join(os.path.dirname(findings_path), f['map']))

    seen = set()
    compared = mismatched = 0
    wrong_refs = []
    for n, g in enumerate(seg.PerFrameFunctionalGroupsSequence):
        s = int(g.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        pos = np.array([float(v) for v in g.PlanePositionSequence[0].ImagePositionPatient])
        key = tuple(round(float(v), 3) for v in pos)
        ref = str(g.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
        if by_pos.get(key) != ref:
            wrong_refs.append(n)
        seen.add((s, key))
        exp = expected(segments[s], pos)
        compared += exp.size
        mismatched += int((frames[n].astype(np.float64) != exp).sum())
    # a (segment, slice) with no frame must have nothing there
    missing_nonzero = 0
    for s, segment in segments.items():
        for key in by_pos:
            if (s, key) not in seen:
                exp = expected(segment, np.array(key))
                compared += exp.size
                missing_nonzero += int((exp != 0).sum())
    refs = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    listed = sorted(str(r.ReferencedSOPInstanceUID) for r in refs)
    out = {
        'segments': len(segments), 'frames': int(seg.NumberOfFrames), 'compared': compared,
        'mismatched': mismatched, 'missing_nonzero': missing_nonzero, 'wrong_refs': len(wrong_refs),
        'referenced_all': listed == sorted(by_pos.values()),
        'labels': {str(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence},
        'nonzero_voxels': int(sum(int((frames[n] != 0).sum()) for n in range(frames.shape[0]))),
    }
    print(json.dumps(out))
    ok = mismatched == 0 and missing_nonzero == 0 and not wrong_refs and out['referenced_all']
    sys.exit(0 if ok else 1)


main()
