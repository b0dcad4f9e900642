// Public API of eval/: the paper's and ReXGroundingCT's metrics, no-learning oracles, the difficulty
// report and the dataset evaluation behind `ctground eval`.
export {
  MIOU_THRESHOLDS, ACCURACY_THRESHOLD, ACCURACY_IOU, DICE_THRESHOLD,
  overlap, iouOf, diceOf, iouAt, diceAt, scoreAnomaly, peakDistanceMm, boxIou, connectedComponents, instanceCounts, summarize, mean, quantile,
  type AnomalyScore, type Overlap, type Summary, type Box, type InstanceCounts, type MaskLike,
} from './metrics.ts';
export { oracleGrounder, organSideMask, namedPlace, ballMap, ORACLE_NAMES, type OracleName, type OracleOptions, type OrganLookup } from './oracles.ts';
export { readManifest, splitOf, goldReport, readReportText, type ManifestStudy, type ManifestAnomaly } from './manifest.ts';
export { evaluateStudies, evaluateModels, scoreMap, iouQuartiles, medianLesionMm3, typicalLesionVolumes, difficultyOf, distribution, formatEval, evalJson, sameOrganSplit, type EvalResult, type AnomalyResult, type Difficulty, type Distribution, type OrganTypeCell, type VolumeReader, type GroundingBox } from './evaluate.ts';
export { schemeOrganLookup } from './organs.ts';
export { calibrationPoint, chooseCalibration, chooseKindCalibration, findingsByKind, type CalibrationPoint, type CalibrationSettings, type KindCandidate, type KindChoice } from './calibrate.ts';
export { setKind, realFirst, formatSetTable, type SetKind } from './sets.ts';
