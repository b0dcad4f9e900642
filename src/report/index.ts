// Public API of report/: a whole English CT report -> one record per described anomaly.
export { structureReport, charClasses } from './structure.ts';
export { splitSentences, type SentenceSpan } from './sentences.ts';
export { recognizePhrases } from './phrases.ts';
export type { StructuredReport, StructuredAnomaly, Span, Sentence, Certainty, PhraseClass } from './types.ts';
