// Public API of dicom/: DICOM objects ctground writes and reads (Segmentation), and the source series they reference.
export { readSourceSeries, type SourceSeries, type SourceInstance } from './source.ts';
export { encodeSegmentation, decodeSegmentation, segmentationOnGrid, reviseSegmentation, newUid, SEG_SOP_CLASS, type SegmentInput, type SegmentEdit, type SegmentationOptions, type EncodedSegmentation, type DecodedSegmentation, type DecodedSegment, type DecodedFrame } from './seg.ts';
export { findingCodes, codedTerms, organOfRegion, type Code } from './codes.ts';
export { readPart10Header, srText } from './part10.ts';
export { DicomwebClient, jsonValue, jsonValues, multipartParts, type DicomJson, type DicomwebOptions } from './dicomweb.ts';
