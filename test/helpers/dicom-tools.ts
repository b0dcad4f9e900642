import { spawnSync } from 'node:child_process';

/** Debian's Python (python3-pydicom lives there, not in a pyenv or venv python found first on PATH). */
export const PYTHON = '/usr/bin/python3';

export const haveDciodvfy = (): boolean => spawnSync('dciodvfy', [], { stdio: 'ignore' }).error === undefined;
export const havePydicom = (): boolean => spawnSync(PYTHON, ['-c', 'import pydicom, numpy'], { stdio: 'ignore' }).status === 0;

/**
 * Why the DICOM checks skip, or undefined when they run. CI (CTGROUND_CI=1) never skips: a missing
 * tool there is a failure.
 */
export function dicomToolsSkipReason(): string | undefined {
  if (process.env.CTGROUND_CI) return undefined;
  const missing = [!haveDciodvfy() && 'dciodvfy (dicom3tools)', !havePydicom() && 'python3-pydicom'].filter(Boolean);
  return missing.length ? `${missing.join(' and ')} not installed (apt-get install dicom3tools python3-pydicom; CI installs them and requires them)` : undefined;
}

/** dciodvfy's verdict: its Error lines (warnings are not failures). */
export function dciodvfyErrors(file: string): { errors: string[]; output: string } {
  const r = spawnSync('dciodvfy', [file], { encoding: 'utf8' });
  if (r.error) throw r.error;
  const output = `${r.stdout}${r.stderr}`;
  return { errors: output.split('\n').filter((l) => /^Error/.test(l)), output };
}
