// Public API of train/: preparing crops from a dataset, the training loop behind `ctground train`.
export { trainGroundingModel, batchDice, cropHits, copyTextEncoder, balancedWeights, sampleKind, weightedDraw, type TrainOptions, type TrainResult, type LogEntry } from './train.ts';
export { prepareSamples, makeBatch, type Sample, type SampleSet, type Batch } from './samples.ts';
export { lossCurveSvg } from './svg.ts';
export { freshTextEncoder } from './text.ts';
