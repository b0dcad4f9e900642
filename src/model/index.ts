// Public API of model/: the grounding model interface (shared with eval/'s oracles).
export type { GroundingModel, GroundingStudy, GroundingReport, GroundingAnomaly, GroundingSpan } from './types.ts';
