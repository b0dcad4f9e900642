// Public API of the report text encoder (model/text): WordPiece tokenizer, corpus reading,
// masked-LM pretraining, the BERT encoder graph and per-character embeddings.
export { basicTokenize, WordPieceTokenizer, trainWordPiece, SPECIAL_TOKENS, type Token, type Word, type WordPieceTrainOptions } from './tokenizer.ts';
export { readCorpus, readReportCsv, readTextCorpus, parseCsv, isHeldOut, splitSentences, REPORT_COLUMNS, type CorpusDocument } from './corpus.ts';
export { packWindows, sentenceSequences, makeMlmBatch, maxPredictionsFor, unigramBaseline, type MlmBatch, type IdSequence } from './mlm.ts';
export { paperConfig, smallConfig, readConfig, writeConfig, validateConfig, type TextEncoderConfig } from './config.ts';
export { buildTextEncoder, buildMlmHead, encoderTensorShapes, mlmHeadTensorShapes, type TextEncoderWeights, type TextEncoderOptions, type TextEncoderOutput } from './encoder.ts';
export { loadTextEncoderFolder, saveTextEncoderFolder, shipTextEncoderFolder, type TextEncoderFolder } from './checkpoint.ts';
export { readSafetensors as readHfSafetensors, writeSafetensors as writeHfSafetensors, floatToHalf, type NamedTensor } from './safetensors.ts';
export { charTokenIndex, tokenWindows } from './chars.ts';
export { ReportTextEncoder, loadTextEncoder, DEFAULT_TEXT_ENCODER_DIR, type CharacterEmbeddings } from './runtime.ts';
export { pretrainText, evaluateMlm, evalBatches, weightsFromGraph, loadCorpora, PRETRAIN_DEFAULTS, type PretrainOptions, type MlmEval } from './pretrain.ts';
