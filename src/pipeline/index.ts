// Public API of pipeline/: study-level orchestration behind `ground`, `demo`, `label` and the viewer.
export { groundStudy, writeGroundingOutputs, findingsTable, safeId, DEFAULT_THRESHOLD, type GroundingResult, type Finding, type FindingsFile, type StudyInput, type StageTimes, type AnatomySource } from './study.ts';
export { summarizeMap, labelMapOf, maskOf, dominantAxes, type MapSummary, type FindingBox } from './findings.ts';
export { renderOverview, wrapText, type OverviewItem } from './overview.ts';
export { loadGrounder, loadGrounderWithFallback, DEFAULT_MODEL_DIR } from './grounder.ts';
export { studiesFromFolder, studiesFromDataset, labelStudies, labelOneStudy, writeManifest, oneLineReason, type BatchStudy, type BatchSummary, type ManifestRecord, type StudyOutcome } from './batch.ts';
export { writeFindingsSeg, SEG_FILE, type SegWritten } from './seg.ts';
