import type { BoxedVolume, Volume } from '../volume/index.ts';

/**
 * The part of a structured report that grounding reads. report/'s StructuredReport is assignable
 * to it, and so is a report rebuilt from a dataset manifest's gold anomalies (for evaluation that
 * isolates grounding from structuring).
 */
export interface GroundingSpan { start: number; end: number; text: string; class: string }
export interface GroundingAnomaly { id: string; organ: string; type: string; certainty: string; spans: GroundingSpan[] }
export interface GroundingReport { text: string; anomalies: GroundingAnomaly[] }

/** One study to ground: the CT, its organ label map on the same grid, and its structured report. */
export interface GroundingStudy { ct: Volume; anatomy: Volume; report: GroundingReport }

/**
 * One anomaly's probability map on the CT's exact grid, stored over the box of its nonzero voxels
 * (volume/'s `denseVolume` gives the whole grid).
 */
export type GroundingMap = BoxedVolume;

/**
 * Anything that grounds every anomaly of a report: a trained model or a no-learning oracle. The
 * result holds one probability map per anomaly id.
 */
export interface GroundingModel {
  /** a short name for tables ("full", "oracle:organ", …) */
  readonly name: string;
  /** the probability at which this model's maps are meant to be cut into regions (boxes, labels); absent: 0.5 */
  readonly threshold?: number;
  ground(study: GroundingStudy): Promise<Map<string, GroundingMap>>;
}
