/** The 9 phrase classes of the paper (Appendix Table A2), in taxonomy.json order. */
export type PhraseClass = 'anomaly' | 'anatomy' | 'location' | 'size' | 'property' | 'density' | 'certainty' | 'change' | 'diagnosis';

export type Certainty = 'present' | 'uncertain' | 'absent';

/** A phrase: JS string offsets [start, end) into the report text. */
export interface Span {
  start: number;
  end: number;
  text: string;
  class: PhraseClass;
}

export interface Sentence {
  start: number;
  end: number;
  /** report organ classes the sentence speaks of (anatomical prediction), first mentioned first */
  organs: string[];
  /** the report section the sentence sits in ('findings', 'impression', ...) when a header named it */
  section?: string;
}

export interface StructuredAnomaly {
  id: string;
  /** one of the 25 report organ classes */
  organ: string;
  /** an anomalyTypes id of taxonomy.json */
  type: string;
  certainty: Certainty;
  /** the anomaly phrase and every phrase related to it, sorted by start */
  spans: Span[];
  /** the anomaly phrase itself (also in spans) */
  anomaly: Span;
  /** index into StructuredReport.sentences */
  sentence: number;
}

export interface StructuredReport {
  text: string;
  sentences: Sentence[];
  phrases: Span[];
  anomalies: StructuredAnomaly[];
}

/** What the lexicon knows about a recognized phrase, beyond its class. */
export interface PhraseInfo {
  /** organ class an anatomy phrase names, or a location/anomaly implies */
  organ?: string;
  /** organ class of an anomaly word when nothing in its sentence names one (atelectasis: lung) */
  defaultOrgan?: string;
  /** organ class of a term when neither its sentence nor an earlier one names one ('free fluid': abdomen) */
  fallbackOrgan?: string;
  /** anomaly type (anomaly and typed diagnosis phrases) */
  type?: string;
  /** anomaly words whose type depends on density (lesion, area, opacity) */
  generic?: boolean;
  byDensity?: Record<string, string>;
  byOrgan?: Record<string, string>;
  /** location role: laterality or a site inside an organ */
  role?: 'side' | 'site';
  /** density kind (low, high, water, fat, soft, calcified, ground_glass) */
  density?: string;
  /** certainty cue kind */
  cue?: 'negPre' | 'negPost' | 'hedgePre' | 'hedgePost';
  /** a size phrase with a number in it (paired to locations by 'respectively') */
  numeric?: boolean;
  /** a generic word ('area') that is a finding only next to a density phrase, else a place */
  needsDensity?: boolean;
  /** organ class corrections for this anomaly word ('effusion' in the lungs is pleural: chest) */
  organRemap?: Record<string, string>;
  /** an adjective ('enlarged') that is a finding alone but a describing word before another finding */
  adjective?: boolean;
  /** a place word that describes spread ('central', 'peripheral') and never starts a new location */
  noSplit?: boolean;
  /** a bare item of a list of places ('3' of 'segments 2 and 3'): its location borrows the list's word */
  listItem?: boolean;
}

export interface Phrase extends Span {
  info: PhraseInfo;
}
