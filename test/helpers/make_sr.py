"""Writes a Basic Text SR holding a report's text, in a given study: the report source of a study
without a CSV row.

usage: make_sr.py OUT.dcm --study UID --text TEXT [--patient NAME] [--pid ID] [--accession A]
"""
import argparse
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

ap = argparse.ArgumentParser()
ap.add_argument('out'); ap.add_argument('--study', required=True); ap.add_argument('--text', required=True)
ap.add_argument('--patient', default='CTGROUND^TEST'); ap.add_argument('--pid', default='CTG-0001'); ap.add_argument('--accession', default='')
a = ap.parse_args()

meta = FileMetaDataset()
meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.88.11'
meta.MediaStorageSOPInstanceUID = generate_uid()
meta.TransferSyntaxUID = ExplicitVRLittleEndian
d = FileDataset(a.out, {}, file_meta=meta, preamble=b'\0' * 128)
d.is_little_endian = True; d.is_implicit_VR = False
d.SpecificCharacterSet = 'ISO_IR 192'
d.SOPClassUID = meta.MediaStorageSOPClassUID; d.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
d.StudyInstanceUID = a.study; d.SeriesInstanceUID = generate_uid(); d.Modality = 'SR'
d.PatientName = a.patient; d.PatientID = a.pid; d.AccessionNumber = a.accession
d.StudyDate = '20221208'; d.StudyTime = '000000'; d.SeriesNumber = 9; d.InstanceNumber = 1
d.ValueType = 'CONTAINER'; d.ContinuityOfContent = 'SEPARATE'; d.CompletionFlag = 'COMPLETE'; d.VerificationFlag = 'UNVERIFIED'
title = Dataset(); title.CodeValue = '18748-4'; title.CodingSchemeDesignator = 'LN'; title.CodeMeaning = 'Diagnostic imaging report'
d.ConceptNameCodeSequence = [title]
item = Dataset(); item.RelationshipType = 'CONTAINS'; item.ValueType = 'TEXT'
name = Dataset(); name.CodeValue = '121071'; name.CodingSchemeDesignator = 'DCM'; name.CodeMeaning = 'Finding'
item.ConceptNameCodeSequence = [name]; item.TextValue = a.text
d.ContentSequence = [item]
d.save_as(a.out, write_like_original=False)
