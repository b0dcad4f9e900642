// Public API of report/: a whole English CT report -> one record per described anomaly.
export { structureReport, charClasses, charClassRuns } from './structure.ts';
export { splitSentences, type SentenceSpan } from './sentences.ts';
export { recognizePhrases } from './phrases.ts';
export { loadDevSet, devAnomalyProblem, evaluateDevSet, formatEvaluation, ERROR_KINDS, type ErrorKind, type DevItem, type DevAnomaly, type DevEvaluation, type Prf } from './evaluate.ts';
export { parseCsv, readCsvColumn, readText, decodeUtf8, readReport, checkReportText, MAX_REPORT_BYTES } from './io.ts';
export type { StructuredReport, StructuredAnomaly, Span, Sentence, Certainty, PhraseClass } from './types.ts';
