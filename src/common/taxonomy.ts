import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from './paths.ts';

/** The shared vocabulary of the pipeline: report organ classes, phrase classes, anomaly types. */
export interface Taxonomy {
  reportOrgans: string[];
  phraseClasses: string[];
  /**
   * sizeIsExtent: a size phrase of this type measures the finding itself (diameter or axes), not a
   * wall's thickness, a duct's caliber or an effusion's depth; only then can it bound the map's region.
   * densityDefined: the finding is seen as a density different from its organ's (a cyst, a nodule, a
   * fluid-filled duct), not by its shape or size (an aneurysm, a wall thickening, a stenosis)
   */
  anomalyTypes: { id: string; label: string; diffuse: boolean; sizeIsExtent?: boolean; densityDefined?: boolean }[];
  certainty: string[];
}

let cached: Taxonomy | undefined;
export function loadTaxonomy(): Taxonomy {
  cached ??= JSON.parse(readFileSync(join(projectRoot, 'data', 'taxonomy', 'taxonomy.json'), 'utf8')) as Taxonomy;
  return cached;
}
