// Public API of engine/: a graph builder whose nodes are ONNX ops, reverse-mode autodiff, in-graph
// optimizers, a Trainer running each step as one ORT session, inference models and safetensors.
export { Graph, Tensor, shapeSize, broadcastShapes, type DType, type Shape, type Init, type ParamInfo, type GraphOptions, type TypedData, type Node } from './graph.ts';
export * as ops from './ops.ts';
export {
  add, sub, mul, div, neg, relu, sigmoid, tanh, exp, log, sqrt, abs, softplus, erf, gelu, square, pow, where, compare, cast,
  reshape, transpose, expand, concat, slice, pad, sum, mean, max, matmul, linear, softmax, logSoftmax, embedding, gatherElements,
  conv, conv3d, maxPool, maxPool3d, avgPool, avgPool3d, globalAvgPool, upsampleNearest, resizeLinear,
  layerNorm, layerNormComposed, groupNorm, groupNormComposed, instanceNorm, dropout, lstm, diceLoss, bceWithLogits, maskedCrossEntropy,
  type TLike, type ConvOptions, type PoolOptions, type LstmParams,
} from './ops.ts';
export { gradients, gradRules, unbroadcast } from './grad.ts';
export { Trainer, adam, sgd, loadParams, saveParams, type OptimizerConfig, type TrainerOptions, type StepResult, type StepOptions } from './trainer.ts';
export { InferenceModel, exportOnnx, writeOnnx } from './inference.ts';
export { emitModel, OPSET } from './onnx.ts';
export { createSession, defaultSessionOptions, sessionOptionsFromFlags, toOrt, type SessionOptions, type FeedValue } from './session.ts';
export { readSafetensors, writeSafetensors, encodeSafetensors, decodeSafetensors, floatToHalf, halfToFloat, type NamedArray, type EncodeOptions, type DecodeOptions } from './safetensors.ts';
export { gradCheck, type GradCheckResult } from './gradcheck.ts';
