// Public API of pipeline/: study-level orchestration behind `ground`, `demo`, `label` and the viewer.
export { groundStudy, writeGroundingOutputs, findingsTable, safeId, DEFAULT_THRESHOLD, type GroundingResult, type Finding, type FindingsFile, type StudyInput, type StageTimes, type AnatomySource } from './study.ts';
export { summarizeMap, labelMapOf, maskOf, dominantAxes, type MapSummary, type FindingBox } from './findings.ts';
export { renderOverview, wrapText, type OverviewItem } from './overview.ts';
export { loadGrounder, loadGrounderWithFallback, DEFAULT_MODEL_DIR } from './grounder.ts';
export { studiesFromFolder, studiesFromDataset, labelStudies, labelOneStudy, writeManifest, oneLineReason, type BatchStudy, type BatchSummary, type ManifestRecord, type StudyOutcome } from './batch.ts';
// the job queue (BullMQ on Redis) is loaded only by the commands that use it: plain `label` runs without Redis
export const loadQueue = (): Promise<typeof import('./queue.ts')> => import('./queue.ts');
export type { StudyJob, StudyJobResult, PacsJob, QueueStatus, WorkerOptions, EnqueueOptions } from './queue.ts';
export { writeFindingsSeg, SEG_FILE, type SegWritten } from './seg.ts';
export { labelFromDicomweb, listPacsStudies, fetchPacsStudy, storePacsSeg, chooseCtSeries, readReportTable, reportRow, writePacsSummary, sinceRange, type PacsStudy, type PacsSummary, type PacsOptions, type ReportTable } from './pacs.ts';
