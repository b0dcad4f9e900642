import { UserError } from '../common/index.ts';

/** The DICOM SEG flags `ground` and `label` share. */
export const DICOM_SEG_FLAGS = { 'dicom-seg': { type: 'boolean' }, 'no-dicom-seg': { type: 'boolean' }, fractional: { type: 'boolean' } } as const;

/**
 * Whether to write findings.seg.dcm: by default when the CT is a DICOM series (a SEG references its
 * slices, so a NIfTI CT has none to reference); --dicom-seg forces it, --no-dicom-seg skips it.
 */
export function dicomSegFor(v: { 'dicom-seg'?: boolean; 'no-dicom-seg'?: boolean; fractional?: boolean }, ctIsDicom: boolean): boolean {
  if (v['dicom-seg'] && v['no-dicom-seg']) throw new UserError('give --dicom-seg or --no-dicom-seg, not both');
  if (v['no-dicom-seg']) {
    if (v.fractional) throw new UserError('--fractional is for the DICOM SEG, which --no-dicom-seg turns off');
    return false;
  }
  if (v['dicom-seg'] && !ctIsDicom) throw new UserError('--dicom-seg needs --ct to be a DICOM series folder (a SEG references the CT\'s slices)');
  return ctIsDicom;
}

/** The SEG a `label` study gets (its CT is a DICOM folder or a PACS series), the flags checked as dicomSegFor does. */
export function dicomSegMode(v: { 'dicom-seg'?: boolean; 'no-dicom-seg'?: boolean; fractional?: boolean }): 'binary' | 'fractional' | 'off' {
  if (!dicomSegFor(v, true)) return 'off';
  return v.fractional ? 'fractional' : 'binary';
}
