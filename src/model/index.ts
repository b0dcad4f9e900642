// Public API of model/: the grounding model (paper Sec. 3.4) — interface shared with eval/'s oracles,
// configuration and variants, graphs for training and inference, and loading a trained folder.
export type { GroundingMap, GroundingModel, GroundingStudy, GroundingReport, GroundingAnomaly, GroundingSpan } from './types.ts';
export { defaultConfig, checkConfig, usesAnatomy, usesStructure, inputChannels, validGrid, validMaxSpacing, validWidths, validWindows, GRID_RULE, MAX_SPACING_RULE, WIDTHS_RULE, WINDOWS_RULE, VARIANTS, type GroundingConfig, type KindCalibration, type Variant, type ZoomConfig } from './config.ts';
export { DEFAULT_CROP, cropGeometry, cropChannels, cropTiles, isTiled, organCrop, placePenalized, tileNear, maskWorldBox, positionChannels, positionScale, POSITION_FEATURES, type CropConfig, type CropGeometry, type CropRegion } from './crop.ts';
export { tokenClasses, aggregateSequence, namedStructures, anomalyBox, anomalyPlace, anomalyCrop, anomalyTiles, zoomTile, groundsThroughTiles, cropKey, cropLabels, namedSideLobe, type SeqItem, type TokenSpan } from './prepare.ts';
export { buildTrainGraph, buildImageGraph, buildImageLogitsGraph, buildHeadGraph, buildQueryGraph, buildLogitsGraph, isBoxModel, localizationLoss, mapFromLogits, mapCalibration, applyCalibration, sizeCappedCalibration, SUPPORT_LEVEL, type MapCalibration, type TrainGraph } from './graphs.ts';
export { statedDiameterMm, statedVolumeMm3, mapCapMm3, typicalKey, typicalVolumeMm3, expectedVolumeMm3 } from './size.ts';
export { anomalyText, placeText, maskBox, boxMap, type AnomalyText } from './feed.ts';
export { loadGroundingModel, pasteToGrid, readModelConfig, readWeights, resolveTextDir, textEncoderSha256, TrainedGrounder, DEFAULT_MODEL_DIR, MODEL_FILES, type GroundingPhases } from './grounder.ts';
export { contrastGated, contrastGateFor, isDensityDefined, organDensity, type OrganDensity } from './contrast.ts';
export { widenImageInput, WeightMismatch, type Weights } from './network.ts';
export * from './text/index.ts';
