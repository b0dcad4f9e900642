"""Writes a copy of a DICOM series with the identifying UIDs a de-identified copy lost put back,
plus test patient tags, so it can be stored in a PACS (Orthanc refuses instances without study,
series and SOP instance UIDs). Pixel data is copied as it is (still compressed).

usage: dicom_copy.py SRC DST --study UID --series UID [--patient NAME] [--pid ID] [--accession A]
                     [--modality M] [--sop-root ROOT] [--description TEXT] [--thickness MM] [--count N]
--sop-root gives every instance a new SOP Instance UID ROOT.<n> (a second series from the same files).
"""
import argparse, os
import pydicom

ap = argparse.ArgumentParser()
ap.add_argument('src'); ap.add_argument('dst')
ap.add_argument('--study', required=True); ap.add_argument('--series', required=True)
ap.add_argument('--patient', default='CTGROUND^TEST'); ap.add_argument('--pid', default='CTG-0001')
ap.add_argument('--accession', default='ACC0001'); ap.add_argument('--modality')
ap.add_argument('--sop-root'); ap.add_argument('--description'); ap.add_argument('--thickness')
ap.add_argument('--count', type=int)
a = ap.parse_args()
os.makedirs(a.dst, exist_ok=True)
names = sorted(os.listdir(a.src))
if a.count:
    names = names[:a.count]
for n, name in enumerate(names):
    d = pydicom.dcmread(os.path.join(a.src, name))
    d.SOPClassUID = d.file_meta.MediaStorageSOPClassUID
    uid = f'{a.sop_root}.{n + 1}' if a.sop_root else str(d.file_meta.MediaStorageSOPInstanceUID)
    d.SOPInstanceUID = uid
    d.file_meta.MediaStorageSOPInstanceUID = uid
    d.StudyInstanceUID = a.study
    d.SeriesInstanceUID = a.series
    d.PatientName = a.patient
    d.PatientID = a.pid
    d.AccessionNumber = a.accession
    d.SeriesNumber = 2 if a.sop_root else 1
    if a.modality:
        d.Modality = a.modality
    if a.description:
        d.SeriesDescription = a.description
    if a.thickness:
        d.SliceThickness = a.thickness
    d.save_as(os.path.join(a.dst, f'{uid}.dcm'), write_like_original=True)
