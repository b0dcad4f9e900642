import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { projectRoot } from '../../src/common/index.ts';

/**
 * The one place tests find `../shared` (real CT, labels and reports). CTGROUND_SHARED overrides it
 * for a clone that lives elsewhere.
 */
export function sharedDir(): string {
  // A CI clone may live somewhere other than beside ../shared, so the workplace's fixed path is a fallback.
  const candidates = [process.env.CTGROUND_SHARED, resolve(projectRoot, '..', 'shared'), '/work/shared'].filter((d): d is string => Boolean(d));
  const dir = candidates.find((d) => existsSync(join(d, 'data')));
  if (!dir) throw new Error(`shared data folder not found (tried ${candidates.join(', ')}; set CTGROUND_SHARED)`);
  return dir;
}

export function sharedPath(...parts: string[]): string {
  return join(sharedDir(), ...parts);
}

export const TS = (...parts: string[]): string => sharedPath('data', 'totalsegmentator', ...parts);
export const REPORTS_CSV = (): string => sharedPath('data', 'ct-rate', 'validation_reports.csv');
