export { UserError, fileError, quoteName } from './errors.ts';
export { createRng, type Rng } from './rng.ts';
export { writeFileAtomic, writeOutputsAtomic, removePartialOutputs, writeFailure } from './fs.ts';
export { Progress, formatSeconds } from './progress.ts';
export { loadTaxonomy, type Taxonomy } from './taxonomy.ts';
export { projectRoot } from './paths.ts';
export { isThreshold, median, selectKth, THRESHOLD_RULE } from './numbers.ts';
