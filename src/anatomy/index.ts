// Public API of anatomy/: ctground's organ scheme, its import from TotalSegmentator, a fallback from
// HU alone, and the normalized label channel the grounding model reads.
export { loadOrganScheme, organValue, organsForReportClass, organEntriesForReportClass, reportClassOf, type Organ, type OrganScheme, type OrganFilter } from './scheme.ts';
export { fromTotalSegmentator, totalSegmentatorLut, type TotalSegmentatorVersion } from './totalsegmentator.ts';
export { organMapFor, organOriginOf, organVolumes, type OrganMap, type OrganMapOptions, type OrganMapSource, type OrganOrigin } from './organmap.ts';
export { fallbackAnatomy } from './fallback.ts';
export { estimateAnatomy, loadAtlases, type Atlas, type EstimateOptions, type Registration } from './estimate.ts';
export { evaluateEstimate, EVAL_ORGANS, type EvalTarget, type EvalOrgan } from './evaluate.ts';
export { normalizedAnatomyChannel } from './channel.ts';
export { loadPlaces, placeRegion, resolvePlace, principalAxis, type PlaceRegion, type PlaceScheme, type AnatomyPart } from './places.ts';
export { connectedComponents, connectedToBorder, insideDistance, maskBounds, type Size3 } from './morph.ts';
