import { readPart10, str, type Dataset } from './lib.ts';

/** The identifying UIDs and modality of one Part 10 file (its header only). */
export function readPart10Header(bytes: Buffer): { modality: string; sopInstanceUid: string; sopClassUid: string; studyInstanceUid: string; seriesInstanceUid: string } {
  let meta: Dataset, data: Dataset;
  try {
    ({ meta, data } = readPart10(bytes, true));
  } catch (e) {
    throw new Error(`not a DICOM file (${String((e as Error).message ?? e).split("\n")[0]!.slice(0, 100)})`, { cause: e });
  }
  return {
    modality: str(data.Modality),
    sopInstanceUid: str(data.SOPInstanceUID) || str(meta.MediaStorageSOPInstanceUID),
    sopClassUid: str(data.SOPClassUID) || str(meta.MediaStorageSOPClassUID),
    studyInstanceUid: str(data.StudyInstanceUID),
    seriesInstanceUid: str(data.SeriesInstanceUID),
  };
}

/**
 * The text of a structured report: its TEXT content items (findings, impressions…) in document
 * order, one per line. Coded and numeric items carry no report prose and are left out.
 */
export function srText(bytes: Buffer): string {
  const { data } = readPart10(bytes, false);
  if (str(data.Modality) !== 'SR') return '';
  const lines: string[] = [];
  const walk = (items: unknown, depth: number): void => {
    if (!Array.isArray(items) || depth > 32) return;
    for (const it of items as Dataset[]) {
      if (str(it.ValueType) === 'TEXT') {
        const t = typeof it.TextValue === 'string' ? it.TextValue : str(it.TextValue);
        if (t.trim()) lines.push(t.trim());
      }
      walk(it.ContentSequence, depth + 1);
    }
  };
  walk(data.ContentSequence, 0);
  return lines.join('\n');
}
